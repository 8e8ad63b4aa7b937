"""Pydantic preset models and the shipped preset files."""

from presets.models import (SCHEMA_VERSION, NodeConfig, Preset, PresetError, Targets, load_preset, parse_preset,
                            shipped_names)

__all__ = ["SCHEMA_VERSION", "NodeConfig", "Preset", "PresetError", "Targets", "load_preset", "parse_preset",
           "shipped_names"]

"""Pydantic preset models, the shipped preset files, and the user's presets.

models      Preset / NodeConfig / Targets, parse_preset, load_preset
migrations  schema versions and the migration chain of older files
store       user directory, find/load (migrating)/save (atomic)/list/diff/schema
"""

from presets.models import (SCHEMA_VERSION, NodeConfig, Preset, PresetError, Targets, canonical_value, load_preset,
                            parse_preset, shipped_names)
from presets.store import Loaded, PresetEntry, diff, find_preset, list_presets, open_preset, save, schema, user_dir

__all__ = ["SCHEMA_VERSION", "NodeConfig", "Preset", "PresetError", "Targets", "canonical_value", "load_preset",
           "parse_preset", "shipped_names", "Loaded", "PresetEntry", "diff", "find_preset", "list_presets",
           "open_preset", "save", "schema", "user_dir"]

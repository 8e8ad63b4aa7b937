"""Preset models (pydantic v2).

A preset is a chain of nodes (type, name, parameters, bypass) plus what mastering aims
for (loudness target, true-peak ceiling, intensity, EQ target curve) and whether the
parameters are adapted to the input.  This module knows no node types: the graph's
registry is handed in as validation context (``{"node_types": {...}}``), so presets stay
below graph in the import order while every parameter is still checked against its
ParamSpec (range, unit, NaN/Inf).

Every refusal is one line naming the file, the field, the value and what is allowed:
``preset warm.json: chain[2].params.threshold_db = 12.0 is outside [-60, 0] dB``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Mapping

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo,
                      field_validator, model_validator)

SCHEMA_VERSION = 1
SHIPPED_DIR = Path(__file__).resolve().parent
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


class PresetError(ValueError):
    """A preset that cannot be used; the message is one line per problem."""


def _ranged(lo: float, hi: float, unit: str):
    """A float in [lo, hi]; NaN and Inf refused, the message naming the whole range."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"must be a number in [{lo:g}, {hi:g}] {unit}".rstrip())
        v = float(value)
        if not math.isfinite(v) or not lo <= v <= hi:
            raise ValueError(f"is outside [{lo:g}, {hi:g}] {unit}".rstrip())
        return v

    return Annotated[float, BeforeValidator(check), Field(json_schema_extra={"minimum": lo, "maximum": hi, "unit": unit})]


class Targets(BaseModel):
    """What the mastered output must measure (BS.1770 integrated loudness, true peak)."""

    model_config = ConfigDict(extra="forbid")
    integrated_lufs: _ranged(-40.0, -5.0, "LUFS") = -14.0
    ceiling_dbtp: _ranged(-12.0, 0.0, "dBTP") = -1.0


class NodeConfig(BaseModel):
    """One node of the chain."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN)
    type: str
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)
    bypass: bool = False

    @model_validator(mode="after")
    def _known_type_and_params(self, info: ValidationInfo) -> "NodeConfig":
        node_types = (info.context or {}).get("node_types")
        if node_types is None:
            return self
        node_type = node_types.get(self.type)
        if node_type is None:
            raise ValueError(f"type {self.type!r} is not one of {', '.join(sorted(node_types))}")
        specs = {p.name: p for p in (*node_type.params, *node_type.options)}
        for key, value in self.params.items():
            spec = specs.get(key)
            if spec is None:
                raise ValueError(f"params.{key}: {node_type.name} has no parameter {key!r} "
                                 f"(it has {', '.join(specs) or 'none'})")
            # Rate-dependent limits (below Nyquist) are checked again when the graph is built.
            spec.check("", f"params.{key}", value, math.inf)
        return self


class Preset(BaseModel):
    """A mastering/processing chain as stored in a preset file."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    adaptive: bool = Field(True, description="analyse the input and derive the chain's parameters from it")
    eq_target: str = Field("flat", description="target curve for the psychoacoustic EQ")
    intensity: _ranged(0.0, 1.0, "") = 1.0
    target: Targets = Field(default_factory=Targets)
    chain: list[NodeConfig] = Field(min_length=1)

    @field_validator("schema_version")
    @classmethod
    def _supported_version(cls, v: int) -> int:
        if v > SCHEMA_VERSION:
            raise ValueError(f"is newer than this auralis-rt understands ({SCHEMA_VERSION}); upgrade auralis-rt")
        if v < 1:
            raise ValueError("must be >= 1")
        return v

    @model_validator(mode="after")
    def _unique_node_names(self) -> "Preset":
        seen: set[str] = set()
        for node in self.chain:
            if node.name in seen:
                raise ValueError(f"node name {node.name!r} is used twice")
            seen.add(node.name)
        return self

    def node(self, name: str) -> NodeConfig:
        for n in self.chain:
            if n.name == name:
                return n
        raise KeyError(name)


def _loc(parts: tuple) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def format_errors(source: str, exc: ValidationError, data: Any) -> str:
    """One line per problem: ``preset SOURCE: field = value reason``."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = _loc(err["loc"])
        msg = re.sub(r"^(Value error|Assertion failed), ", "", err["msg"])
        if msg.startswith("params.") or msg.startswith(": params."):
            # ParamSpec messages already name the parameter and its value.
            msg = msg.lstrip(": ")
            lines.append(f"preset {source}: {loc}.{msg}")
        elif err["type"] in ("missing",):
            lines.append(f"preset {source}: {loc} is missing")
        elif err["type"] == "extra_forbidden":
            lines.append(f"preset {source}: {loc} is not a known field")
        elif err["type"] == "string_pattern_mismatch":
            lines.append(f"preset {source}: {loc} = {err.get('input')!r} must be 1-32 lowercase letters, digits "
                         f"or _, starting with a letter")
        elif err["type"] == "too_short":
            lines.append(f"preset {source}: {loc} is empty; it needs at least one node")
        else:
            value = err.get("input")
            shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
            lines.append(f"preset {source}: {loc} = {shown} {msg}" if loc else f"preset {source}: {msg}")
    return "\n".join(lines)


def parse_preset(data: Any, source: str, node_types: Mapping[str, Any] | None = None) -> Preset:
    """Validate already-decoded JSON; PresetError with one line per problem."""
    try:
        return Preset.model_validate(data, context={"node_types": node_types} if node_types is not None else None)
    except ValidationError as exc:
        raise PresetError(format_errors(source, exc, data)) from None


def _reject_constant(token: str):
    raise ValueError(f"{token} is not allowed in a preset (use a finite number)")


def load_preset(name_or_path: str | Path, node_types: Mapping[str, Any] | None = None,
                search_dirs: tuple[Path, ...] = ()) -> Preset:
    """A shipped preset by name (``warm``), one in `search_dirs`, or a JSON file by path."""
    text_path = str(name_or_path)
    if re.match(NAME_PATTERN, text_path) and not text_path.endswith(".json"):
        for directory in (*search_dirs, SHIPPED_DIR):
            candidate = Path(directory) / f"{text_path}.json"
            if candidate.is_file():
                path = candidate
                break
        else:
            raise PresetError(f"preset {text_path}: no such preset (shipped: {', '.join(shipped_names())})")
    else:
        path = Path(name_or_path)
    source = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PresetError(f"preset {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError(f"preset {path}: cannot be read ({exc})") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise PresetError(f"preset {source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except ValueError as exc:
        raise PresetError(f"preset {source}: {exc}") from None
    return parse_preset(data, source, node_types)


def shipped_names() -> list[str]:
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.json"))

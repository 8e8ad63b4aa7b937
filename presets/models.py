"""Preset models (pydantic v2).

A preset is a chain of nodes (type, name, parameters, bypass) plus what mastering aims
for (loudness target, true-peak ceiling, intensity, EQ target curve) and whether the
parameters are adapted to the input.  This module knows no node types: the graph's
registry is handed in as validation context (``{"node_types": {...}}``), so presets stay
below graph in the import order while every parameter is still checked against its
ParamSpec (range, unit, NaN/Inf).

Every refusal is one line naming the file, the field, the value and what is allowed:
``preset warm.json: chain[2].params.threshold_db = 12.0 is outside [-60, 0] dB``.

Schema versions: data of an older ``schema_version`` is migrated (presets/migrations.py)
before it is validated, whatever the way in (``parse_preset``, ``Preset.model_validate``,
``load_preset``); a newer one is refused in one line.  A Preset in memory is always of
the current version.  Files: presets/store.py (user directory, atomic saves, backups).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Mapping

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from presets.migrations import CURRENT_VERSION, OLDEST_VERSION, SchemaVersionError, migrate

SCHEMA_VERSION = CURRENT_VERSION
SHIPPED_DIR = Path(__file__).resolve().parent
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
EQ_TARGETS = ("flat", "warm", "bright")


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


TargetLufs = _ranged(-40.0, -5.0, "LUFS")
CeilingDbtp = _ranged(-12.0, 0.0, "dBTP")
ReferenceLufs = _ranged(-36.0, -10.0, "LUFS")
UnitInterval = _ranged(0.0, 1.0, "")


class Targets(BaseModel):
    """What the mastered output must measure (BS.1770 integrated loudness, true peak)."""

    model_config = ConfigDict(extra="forbid")
    integrated_lufs: TargetLufs = Field(-14.0, description="BS.1770 integrated loudness of the output")
    ceiling_dbtp: CeilingDbtp = Field(-1.0, description="true-peak ceiling of the output (BS.1770 true peak)")


class NodeConfig(BaseModel):
    """One node of the chain."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN)
    type: str
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)
    bypass: bool = False

    @model_validator(mode="after")
    def _known_type_and_params(self, info: ValidationInfo) -> "NodeConfig":
        for key, value in self.params.items():
            # Also without the node types: a preset can never hold NaN or Inf.
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"params.{key} = {value!r} is not a finite number")
        node_types = (info.context or {}).get("node_types")
        if node_types is None:
            return self
        node_type = node_types.get(self.type)
        if node_type is None:
            raise ValueError(f"type {self.type!r} is not one of {', '.join(sorted(node_types))}")
        specs = {p.name: p for p in (*node_type.params, *node_type.options)}
        for key, value in list(self.params.items()):
            spec = specs.get(key)
            if spec is None:
                raise ValueError(f"params.{key}: {node_type.name} has no parameter {key!r} "
                                 f"(it has {', '.join(specs) or 'none'})")
            if spec.choices is not None and not isinstance(value, str):
                # Schema 2: a number would mean whatever position the C enum gives it.
                raise ValueError(f"params.{key} = {value!r} must be given by name: one of "
                                 f"{', '.join(map(repr, spec.choices))}")
            # Rate-dependent limits (below Nyquist) are checked again when the graph is built.
            spec.check("", f"params.{key}", value, math.inf)
            self.params[key] = canonical_value(spec, value)
        return self


def is_switch(spec: Any) -> bool:
    """A ParamSpec that is an on/off switch (a whole number in [0, 1], no names)."""
    return spec.choices is None and bool(spec.integer) and spec.lo == 0 and spec.hi == 1


def canonical_value(spec: Any, value: Any) -> float | int | str | bool:
    """A parameter value as a preset stores it: an enumeration by name (also from its
    integer code, e.g. a value read back from a running graph), a switch as a bool, a
    whole-number parameter as an int, anything else unchanged.  ``spec`` is a graph
    ParamSpec; the value is assumed to have passed ``spec.check``."""
    if spec.choices is not None and not isinstance(value, str):
        for name, code in spec.choices.items():
            if code == value:
                return name
        return value
    if is_switch(spec) and not isinstance(value, str):
        return bool(value)
    if spec.integer and isinstance(value, float) and value.is_integer():
        return int(value)  # a count read back from the graph (C units are doubles)
    return value


class Preset(BaseModel):
    """A mastering/processing chain as stored in a preset file."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = Field(
        description=f"format version: this schema describes version {SCHEMA_VERSION}; files of versions "
                    f"{OLDEST_VERSION}..{SCHEMA_VERSION - 1} are migrated on load (presets/migrations.py)",
        json_schema_extra={"const": SCHEMA_VERSION})
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    adaptive: bool = Field(True, description="analyse the input and derive the chain's parameters from it")
    eq_target: str = Field("flat", description="target curve for the psychoacoustic EQ (flat, warm, bright)")
    eq_strength: UnitInterval = Field(0.5, description="share of the adaptive EQ correction applied")
    reference_lufs: ReferenceLufs = Field(
        -20.0, description="level the input gain brings the programme to before EQ and dynamics (adaptive)")
    intensity: UnitInterval = Field(
        1.0, description="dry/wet over the whole chain: 0 = the input (delayed by the chain latency), 1 = processed")
    target: Targets = Field(default_factory=Targets)
    chain: list[NodeConfig] = Field(min_length=1)

    @field_validator("eq_target")
    @classmethod
    def _known_curve(cls, v: str) -> str:
        if v not in EQ_TARGETS:
            raise ValueError(f"is not one of {', '.join(EQ_TARGETS)}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _migrate_older_versions(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        try:
            return migrate(data)[0]
        except SchemaVersionError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("schema_version")
    @classmethod
    def _current_version(cls, v: int) -> int:
        if v != SCHEMA_VERSION:  # guards the migration chain itself: it must end at the current version
            raise ValueError(f"must be {SCHEMA_VERSION} after migration")
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
            if not loc:
                lines.append(f"preset {source}: {msg}")
            elif isinstance(value, (dict, list)):  # a whole node or object: the message names the field
                lines.append(f"preset {source}: {loc}: {msg}")
            else:
                lines.append(f"preset {source}: {loc} = {value!r} {msg}")
    return "\n".join(lines)


def parse_preset(data: Any, source: str, node_types: Mapping[str, Any] | None = None) -> Preset:
    """Validate already-decoded JSON; PresetError with one line per problem."""
    try:
        return Preset.model_validate(data, context={"node_types": node_types} if node_types is not None else None)
    except ValidationError as exc:
        raise PresetError(format_errors(source, exc, data)) from None


def load_preset(name_or_path: str | Path, node_types: Mapping[str, Any] | None = None,
                search_dirs: tuple[Path, ...] = ()) -> Preset:
    """A preset by name (looked up in `search_dirs`, then the user preset directory,
    then the shipped presets) or a JSON file by path; older schema versions are
    migrated (see presets.store.load, which this is)."""
    from presets import store  # store builds on this module

    return store.load(name_or_path, node_types, search_dirs=search_dirs)


def shipped_names() -> list[str]:
    """Names of the presets that come with auralis-rt (sorted)."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.json"))

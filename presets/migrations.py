"""Preset schema versions and the migration chain from each older one to the current one.

``MIGRATIONS[v]`` turns a decoded preset of schema version ``v`` into version ``v + 1``.
Each function takes and returns plain JSON data (dicts, lists, numbers, strings), never
the pydantic models: a migration describes what a file of that version *meant*, so it
must not depend on how the current models or the graph's registry happen to look.  The
tables a migration needs are therefore frozen here, copied as they were when that
version was current.  ``migrate`` applies the chain; ``presets.store`` decides whether
the result is written back (user presets, with a backup) or kept in memory.

Versions
--------
1   (auralis-rt 0.1) The first format.  Node parameters are stored the way the C
    kernels receive them: an enumerated parameter (``biquad.type``, ``compressor.link``,
    ``compressor.detector``, ``eqN.bK_type``) may be its integer code, and a switch
    (``limiter.true_peak``, ``limiter.auto_release``, ``compressor.auto_makeup``,
    ``loudness_meter.true_peak``) is 0 or 1.

2   Enumerations are stored by name and switches as JSON ``true``/``false``.  Why this
    is worth a version: an integer code means whatever position the C enum gives that
    choice (``"link": 0`` is ``none`` and ``1`` is ``max``, which nobody guesses), so a
    v1 file silently changes meaning the day a kernel's enum is reordered or extended in
    the middle, and a reader cannot tell a switch from a count.  With names, a file says
    what it does and keeps saying it; the JSON Schema can describe a switch as boolean.
    A v2 file that gives an enumeration as a number is refused (naming the allowed
    names); a switch written as 0/1 is still accepted and stored back as false/true.

    Why not a legacy format of the predecessor (the mastering player auralis-rt
    replaces): what is known of it (its engine audit and the notes kept with it) is
    its preset names and their loudness targets, which the shipped presets already
    carry, not a file format; an importer for a guessed format would serve nobody.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Callable


class SchemaVersionError(ValueError):
    """The file's schema_version is missing, malformed or newer than this auralis-rt."""


# ---- v1 -> v2 -----------------------------------------------------------------------------------

#: Integer codes of the enumerated parameters as schema 1 stored them (the C enums of
#: rt_kernels/csrc/biquad.h and compressor.h at auralis-rt 0.1).  Frozen on purpose.
V1_FILTER_TYPES = {0: "peaking", 1: "low_shelf", 2: "high_shelf", 3: "low_pass", 4: "high_pass", 5: "band_pass",
                   6: "notch", 7: "all_pass"}
V1_ENUM_CODES: dict[tuple[str, str], dict[int, str]] = {
    ("biquad", "type"): V1_FILTER_TYPES,
    ("compressor", "link"): {0: "none", 1: "max", 2: "mean"},
    ("compressor", "detector"): {0: "peak", 1: "rms"},
}
#: 0/1 parameters of schema 1 that are switches.
V1_SWITCHES = frozenset({("compressor", "auto_makeup"), ("limiter", "auto_release"), ("limiter", "true_peak"),
                         ("loudness_meter", "true_peak")})
_EQ_BAND_TYPE = re.compile(r"^eq\d+$"), re.compile(r"^b\d+_type$")


def _v1_enum_table(node_type: str, param: str) -> dict[int, str] | None:
    if _EQ_BAND_TYPE[0].match(node_type) and _EQ_BAND_TYPE[1].match(param):
        return V1_FILTER_TYPES
    return V1_ENUM_CODES.get((node_type, param))


def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Enumeration codes become their names, 0/1 switches become false/true.

    Only values whose meaning is certain are rewritten: an integer that is a known code
    of that parameter, a switch that is exactly 0 or 1.  Anything else (an unknown node
    type or parameter, a code out of range, a string) is left as it was, so that
    validation afterwards names it with the allowed values instead of a migration
    guessing."""
    out = copy.deepcopy(data)
    chain = out.get("chain")
    if isinstance(chain, list):
        for node in chain:
            if not isinstance(node, dict) or not isinstance(node.get("params"), dict):
                continue
            node_type = node.get("type")
            if not isinstance(node_type, str):
                continue
            params = node["params"]
            for key, value in params.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                table = _v1_enum_table(node_type, key)
                if table is not None:
                    if isinstance(value, int) and value in table:
                        params[key] = table[value]
                elif (node_type, key) in V1_SWITCHES and value in (0, 1):
                    params[key] = bool(value)
    out["schema_version"] = 2
    return out


#: version -> function turning that version's data into the next version's.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: v1_to_v2,
}
CURRENT_VERSION = max(MIGRATIONS) + 1
OLDEST_VERSION = min(MIGRATIONS)


def schema_version_of(data: Any) -> int:
    """The schema_version of decoded preset data; SchemaVersionError (one line, no
    source: the caller prefixes it) if it is missing, malformed or newer than ours."""
    if not isinstance(data, dict):
        raise SchemaVersionError(f"is a JSON {type(data).__name__}, not an object with the preset's fields")
    if "schema_version" not in data:
        raise SchemaVersionError(f"schema_version is missing (this auralis-rt writes {CURRENT_VERSION})")
    version = data["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise SchemaVersionError(f"schema_version = {version!r} must be a whole number "
                                 f"({OLDEST_VERSION}..{CURRENT_VERSION})")
    if version > CURRENT_VERSION:
        raise SchemaVersionError(f"schema_version {version} is newer than this auralis-rt understands "
                                 f"({CURRENT_VERSION}); upgrade auralis-rt")
    if version < OLDEST_VERSION:
        raise SchemaVersionError(f"schema_version = {version} is not a version auralis-rt ever wrote "
                                 f"({OLDEST_VERSION}..{CURRENT_VERSION})")
    return version


def migrate(data: Any) -> tuple[dict[str, Any], int]:
    """``(data at CURRENT_VERSION, the version it had)``.  The input is not modified;
    data already current comes back as it is (same object)."""
    version = schema_version_of(data)
    original = version
    while version < CURRENT_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
        if data.get("schema_version") != version:
            raise AssertionError(f"migration {version - 1} -> {version} did not set schema_version")
    return data, original


__all__ = ["CURRENT_VERSION", "MIGRATIONS", "OLDEST_VERSION", "SchemaVersionError", "migrate", "schema_version_of",
           "v1_to_v2"]

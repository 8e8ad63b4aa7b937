"""Values as people type them: ``-18dB``, ``-18 dB``, ``25ms``, ``0.25 s``, ``1.2kHz``,
``80%``, ``4:1``, ``on``, ``rms``; and values printed back the same way.

Every parameter has a unit (its ``ParamSpec.unit``); a typed unit must be one that
converts to it, else the value is refused naming the unit expected:

==========  =========================================  ===========================
unit        accepted                                   conversion
==========  =========================================  ===========================
dB, dBFS    dB, dBFS, dBTP (any case)                  none
ms          ms, s                                      s x 1000
Hz          Hz, kHz                                    kHz x 1000
(none)      a plain number; ``N:M`` for ``ratio``;     % / 100
            ``%`` where the range is within [0, 2]
            (intensity, widths)
switches    on/off, true/false, yes/no, 1/0
choices     one of the names (any case) or its number
==========  =========================================  ===========================

Numbers are ASCII decimals (``-1.5``, ``.5``, ``2e-3``; U+2212 MINUS SIGN is read as
``-``).  ``nan``, ``inf``, ``1e999``, ``1_000``, non-ASCII digits and empty text are
refused with a one-line ``UnitError``.  Range checks are the ParamSpec's own
(``ParamSpec.check``): this module only turns text into the number it means.
"""

from __future__ import annotations

import math
import re

from graph.params import ParamSpec

__all__ = ["UnitError", "parse_number", "parse_value", "parse_seconds", "format_number", "format_value",
           "is_unit_word", "expected_input"]


class UnitError(ValueError):
    """Text that is not a value of the expected kind (one line, says what is expected)."""


_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# A number followed by an optional unit, with or without a space: "-18dB", "1.2 kHz", "50%".
_VALUE = re.compile(r"(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*(?P<unit>[A-Za-z%]*)")
_RATIO = re.compile(r"(?P<a>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*:\s*(?P<b>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")

# Unit families: the typed unit (lower case) -> factor to the parameter's unit.
_DB = {"db": 1.0, "dbfs": 1.0, "dbtp": 1.0}
_MS = {"ms": 1.0, "s": 1000.0}
_HZ = {"hz": 1.0, "khz": 1000.0}
_FAMILIES = {"db": _DB, "dbfs": _DB, "ms": _MS, "hz": _HZ}
_SWITCH_WORDS = {"on": 1.0, "off": 0.0, "true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0}
UNIT_WORDS = frozenset({*_DB, *_MS, *_HZ, "%"})
_NON_FINITE = {"nan", "inf", "infinity", "snan", "qnan"}


def is_unit_word(token: str) -> bool:
    """True for a token that is only a unit (``dB``, ``ms``, ``%``...), as in ``-18 dB``."""
    return token.lower() in UNIT_WORDS


def _clean(text: str) -> str:
    return text.strip().replace("\u2212", "-")


def parse_number(text: str, what: str = "value") -> float:
    """A finite ASCII decimal number, or UnitError."""
    t = _clean(text)
    if not _NUMBER.fullmatch(t):
        if t.lower().lstrip("+-") in _NON_FINITE:
            raise UnitError(f"{what}: {text!r} is not a finite number")
        raise UnitError(f"{what}: {text!r} is not a number")
    v = float(t)
    if not math.isfinite(v):
        raise UnitError(f"{what}: {text!r} is too large")
    return v


def _is_switch(spec: ParamSpec) -> bool:
    return spec.choices is None and spec.integer and spec.lo == 0.0 and spec.hi == 1.0 or spec.name == "bypass"


def _percent_ok(spec: ParamSpec) -> bool:
    return (spec.unit == "" and spec.choices is None and not spec.integer and spec.name not in ("ratio", "q")
            and spec.lo >= 0.0 and spec.hi <= 2.0)


def describe_range(spec: ParamSpec, sample_rate: float) -> str:
    """The allowed values: ``[-60, 0] dBFS``, ``on/off``, ``one of peak, rms``."""
    return "on/off" if _is_switch(spec) else spec.describe_range(sample_rate)


def expected_input(spec: ParamSpec) -> str:
    """What the parameter takes, for messages: ``dB``, ``ms or s``, ``N:1``..."""
    if spec.choices is not None:
        return "one of " + ", ".join(spec.choices)
    if _is_switch(spec):
        return "on or off"
    unit = spec.unit.lower()
    if unit in ("db", "dbfs"):
        return spec.unit
    if unit == "ms":
        return "ms or s"
    if unit == "hz":
        return "Hz or kHz"
    if spec.name == "ratio":
        return "a ratio like 4:1 (or a plain number)"
    if _percent_ok(spec):
        return "a plain number or %"
    if unit:
        return spec.unit
    return "a plain number"


def parse_value(text: str, spec: ParamSpec, name: str | None = None) -> float | str:
    """The value ``text`` means for parameter ``spec`` (named ``name`` in messages),
    converted to the parameter's unit; a choice name is returned as the name.

    Raises UnitError for text that is not such a value or carries the wrong unit.
    The range is not checked here (ParamSpec.check does it)."""
    label = name or spec.name
    t = _clean(text)
    if not t:
        raise UnitError(f"{label}: a value is missing ({expected_input(spec)})")
    if spec.choices is not None:
        for choice in spec.choices:
            if choice.lower() == t.lower():
                return choice
        if _NUMBER.fullmatch(t):
            v = parse_number(t, label)
            if v == int(v) and int(v) in spec.choices.values():
                return next(k for k, i in spec.choices.items() if i == int(v))
        raise UnitError(f"{label}: {text!r} is not {expected_input(spec)}")
    if _is_switch(spec) and t.lower() in _SWITCH_WORDS:
        return _SWITCH_WORDS[t.lower()]
    ratio = _RATIO.fullmatch(t)
    if ratio:
        if spec.name != "ratio":
            raise UnitError(f"{label}: {text!r} is a ratio; {label} takes {expected_input(spec)}")
        a, b = float(ratio["a"]), float(ratio["b"])
        if b == 0.0 or not math.isfinite(a / b):
            raise UnitError(f"{label}: {text!r} is not a ratio (write it as N:1, e.g. 4:1)")
        return a / b
    m = _VALUE.fullmatch(t)
    if not m:
        if t.lower().lstrip("+-") in _NON_FINITE:
            raise UnitError(f"{label}: {text!r} is not a finite number")
        raise UnitError(f"{label}: {text!r} is not a value; {label} takes {expected_input(spec)} "
                        f"(e.g. {example(spec)})")
    v = parse_number(m["num"], label)
    typed = m["unit"]
    if not typed:
        return v
    key = typed.lower()
    if key == "%":
        if not _percent_ok(spec):
            raise UnitError(f"{label}: {text!r} is a percentage; {label} takes {expected_input(spec)}")
        return v / 100.0
    family = _FAMILIES.get(spec.unit.lower())
    if family is None or key not in family:
        if key not in UNIT_WORDS:
            raise UnitError(f"{label}: {typed!r} is not a unit ({expected_input(spec)})")
        raise UnitError(f"{label}: {text!r} is in {typed}; {label} takes {expected_input(spec)}")
    scaled = v * family[key]
    if not math.isfinite(scaled):
        raise UnitError(f"{label}: {text!r} is too large")
    return scaled


def example(spec: ParamSpec) -> str:
    """A typical value to show in messages and help."""
    if spec.choices is not None:
        return next(iter(spec.choices))
    if _is_switch(spec):
        return "on"
    unit = spec.unit.lower()
    if unit in ("db", "dbfs"):
        return "-6dB"
    if unit == "ms":
        return "25ms"
    if unit == "hz":
        return "1.2kHz"
    if spec.name == "ratio":
        return "4:1"
    if _percent_ok(spec):
        return "80%"
    return "1"


def parse_seconds(text: str, what: str = "position") -> tuple[float, bool]:
    """A time for seek: ``42``, ``42s``, ``1500ms``, ``1:23``, ``1:02:03.5``; a leading
    ``+``/``-`` makes it relative.  Returns (seconds, relative)."""
    t = _clean(text)
    relative = t[:1] in ("+", "-")
    sign = -1.0 if t[:1] == "-" else 1.0
    body = t[1:] if relative else t
    if ":" in body:
        parts = body.split(":")
        if len(parts) > 3 or not all(re.fullmatch(r"[0-9]+(?:\.[0-9]*)?", p) for p in parts):
            raise UnitError(f"{what}: {text!r} is not a time (e.g. 42, 42s, 1:23, 1:02:03)")
        seconds = 0.0
        for p in parts:
            seconds = seconds * 60.0 + float(p)
        if any(float(p) >= 60 for p in parts[1:]):
            raise UnitError(f"{what}: {text!r} has minutes or seconds of 60 or more")
    else:
        m = _VALUE.fullmatch(body)
        if not m or m["num"][:1] in "+-" or m["unit"].lower() not in ("", "s", "ms"):
            raise UnitError(f"{what}: {text!r} is not a time (e.g. 42, 42s, 1500ms, 1:23)")
        seconds = parse_number(m["num"], what) * (0.001 if m["unit"].lower() == "ms" else 1.0)
    if not math.isfinite(seconds) or seconds > 1e9:
        raise UnitError(f"{what}: {text!r} is too large")
    return sign * seconds, relative


def format_number(v: float) -> str:
    """The shortest text that reads back as exactly ``v`` (``-20``, ``0.1``, ``1e-05``)."""
    v = float(v)
    if not math.isfinite(v):
        return "-inf" if v < 0 else ("inf" if v > 0 else "nan")
    text = repr(v)
    return text[:-2] if text.endswith(".0") else text


def format_value(spec: ParamSpec, v: float) -> str:
    """``-18 dBFS``, ``25 ms``, ``4:1``, ``on``, ``rms``: the value as the C node has it."""
    if spec.choices is not None:
        for name, index in spec.choices.items():
            if index == int(v):
                return name
        return format_number(v)
    if _is_switch(spec):
        return "on" if v else "off"
    if spec.name == "ratio":
        return f"{format_number(v)}:1"
    return f"{format_number(v)} {spec.unit}" if spec.unit else format_number(v)

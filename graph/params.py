"""Parameter specifications: name, unit, range, default, smoothing."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class ParamSpec:
    """One live parameter of a node type.

    ``lo``/``hi``: the allowed range in ``unit`` (inclusive).  ``below_nyquist``:
    the value must also stay below half the sample rate (filter frequencies).
    ``smoothing_ms``: > 0 makes the executor ramp the value linearly (in the
    parameter's own units) over that time, stepping every RT_RAMP_CHUNK (16)
    frames; 0 hands the value to the kernel at once -- either it jumps, or the
    kernel smooths it itself (``kernel_smoothing`` documents that, e.g. gain).
    ``choices``: an enumerated parameter; the value is one of the names (or its
    number), and it always switches at once.
    """

    name: str
    unit: str = ""
    lo: float = 0.0
    hi: float = 1.0
    default: float | str = 0.0
    smoothing_ms: float = 0.0
    kernel_smoothing: bool = False
    below_nyquist: bool = False
    choices: Mapping[str, int] | None = field(default=None, hash=False)
    integer: bool = False
    doc: str = ""

    def bounds(self, sample_rate: float) -> tuple[float, float, bool]:
        """(lo, hi, hi_open) at this sample rate."""
        if self.below_nyquist and sample_rate / 2 <= self.hi:
            return self.lo, sample_rate / 2, True
        return self.lo, self.hi, False

    def describe_range(self, sample_rate: float) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        lo, hi, hi_open = self.bounds(sample_rate)
        unit = f" {self.unit}" if self.unit else ""
        return f"[{lo:g}, {hi:g}{')' if hi_open else ']'}{unit}"

    def check(self, where: str, qualified_name: str, value, sample_rate: float) -> float:
        """The value as the float the C node receives; one-line error otherwise.

        ``where`` names the call, ``qualified_name`` the parameter (node.param).
        """
        if self.choices is not None:
            if isinstance(value, str):
                if value not in self.choices:
                    raise ValueError(f"{where}: {qualified_name} = {value!r} is not {self.describe_range(sample_rate)}")
                return float(self.choices[value])
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and int(value) in self.choices.values():
                return float(value)
            raise ValueError(f"{where}: {qualified_name} = {value!r} is not {self.describe_range(sample_rate)}")
        if isinstance(value, (bool, np.bool_)):
            if self.lo == 0.0 and self.hi == 1.0:
                return float(value)
            raise TypeError(f"{where}: {qualified_name} must be a number, got bool {value!r}")
        if not isinstance(value, (Real, np.floating, np.integer)):
            raise TypeError(f"{where}: {qualified_name} must be a number, got {type(value).__name__} {value!r}")
        v = float(value)
        lo, hi, hi_open = self.bounds(sample_rate)
        if not math.isfinite(v) or v < lo or v > hi or (hi_open and v >= hi):
            raise ValueError(f"{where}: {qualified_name} = {v!r} is outside {self.describe_range(sample_rate)}")
        if self.integer and v != int(v):
            raise ValueError(f"{where}: {qualified_name} = {v!r} must be a whole number in "
                             f"{self.describe_range(sample_rate)}")
        return v

    def default_value(self, sample_rate: float) -> float:
        return self.check("ParamSpec.default", self.name, self.default, sample_rate)


#: Every node has this parameter: True/1 = bypassed (output = input delayed by
#: the node's latency), reached through a short linear crossfade.
BYPASS = ParamSpec("bypass", "", 0.0, 1.0, 0.0, doc="1 = bypassed (latency-compensated, click-free)")

#: The executor's own parameter (publish key "intensity"): global dry/wet.
INTENSITY = ParamSpec("intensity", "", 0.0, 1.0, 1.0, doc="0 = dry (input delayed by the latency), 1 = processed")

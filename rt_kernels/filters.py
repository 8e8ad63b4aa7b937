"""RBJ Audio EQ Cookbook biquads, cascaded, computed in C (rt_kernels/csrc/biquad.c)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from rt_kernels import _validate as check
from rt_kernels._ffi import ffi, lib
from rt_kernels.kernel import Kernel

FILTER_TYPES = {
    "peaking": lib.RT_BQ_PEAKING,
    "low_shelf": lib.RT_BQ_LOW_SHELF,
    "high_shelf": lib.RT_BQ_HIGH_SHELF,
    "low_pass": lib.RT_BQ_LOW_PASS,
    "high_pass": lib.RT_BQ_HIGH_PASS,
    "band_pass": lib.RT_BQ_BAND_PASS,
    "notch": lib.RT_BQ_NOTCH,
    "all_pass": lib.RT_BQ_ALL_PASS,
}
GAIN_TYPES = ("peaking", "low_shelf", "high_shelf")
SHELF_TYPES = ("low_shelf", "high_shelf")

Q_RANGE = (0.025, 100.0)
GAIN_DB_RANGE = (-48.0, 48.0)
SHELF_SLOPE_RANGE = (0.01, 2.0)  # S = 1 is the steepest monotonic shelf


@dataclass(frozen=True)
class Section:
    """One biquad section.

    ``type``: one of FILTER_TYPES.  ``freq_hz``: centre/corner frequency.
    ``q``: quality factor (for shelves, used unless ``shelf_slope`` is given).
    ``gain_db``: peaking and shelf sections only.  ``shelf_slope``: the
    cookbook's S for shelves (1 = steepest without overshoot).
    """

    type: str
    freq_hz: float
    q: float = 0.7071067811865476
    gain_db: float = 0.0
    shelf_slope: float | None = None

    def checked(self, where: str, sample_rate: float) -> "Section":
        if self.type not in FILTER_TYPES:
            raise ValueError(f"{where}: type = {self.type!r} is not one of {', '.join(FILTER_TYPES)}")
        check.number(where, "freq_hz", self.freq_hz, 0.0, sample_rate / 2, "Hz (0 and Nyquist excluded)",
                     lo_open=True, hi_open=True)
        check.number(where, "q", self.q, *Q_RANGE)
        check.number(where, "gain_db", self.gain_db, *GAIN_DB_RANGE, "dB")
        if self.type not in GAIN_TYPES and self.gain_db != 0.0:
            raise ValueError(f"{where}: gain_db = {self.gain_db!r} has no effect on a {self.type} section "
                             f"(only {', '.join(GAIN_TYPES)} take a gain)")
        if self.shelf_slope is not None:
            if self.type not in SHELF_TYPES:
                raise ValueError(f"{where}: shelf_slope applies to {' and '.join(SHELF_TYPES)} only, not {self.type}")
            check.number(where, "shelf_slope", self.shelf_slope, *SHELF_SLOPE_RANGE)
        return self

    def coefficients(self, sample_rate: float) -> np.ndarray:
        """Normalised [b0, b1, b2, a1, a2] as the C kernel computes them."""
        self.checked("Section.coefficients", sample_rate)
        out = ffi.new("double[5]")
        rc = lib.rt_biquad_design(FILTER_TYPES[self.type], sample_rate, self.freq_hz, self.q,
                                  self.gain_db, self.shelf_slope or 0.0, out)
        if rc != 0:
            raise ValueError(f"Section.coefficients: {self} has no stable design at {sample_rate:g} Hz")
        return np.frombuffer(ffi.buffer(out), dtype=np.float64).copy()


def _as_section(value: Section | Mapping) -> Section:
    return value if isinstance(value, Section) else Section(**value)


class BiquadCascade(Kernel):
    """N biquad sections in series over any number of channels (latency 0).

    Coefficients are computed in C and can be changed between blocks with
    :meth:`set_section`; filter state is kept across blocks and changes.
    """

    _prefix = "rt_biquad"

    def __init__(self, sections: Iterable[Section | Mapping], channels: int, sample_rate: float):
        super().__init__(channels, sample_rate)
        sections = [_as_section(s) for s in sections]
        if not sections:
            raise ValueError("BiquadCascade: sections is empty; give at least one Section")
        self._adopt(lib.rt_biquad_create(self.channels, len(sections), self.sample_rate))
        self.sections: list[Section] = [Section("peaking", 1000.0)] * len(sections)
        for i, section in enumerate(sections):
            self.set_section(i, section)

    def set_section(self, index: int, section: Section | Mapping) -> None:
        index = check.count("BiquadCascade.set_section", "index", index, 0, len(self.sections) - 1)
        section = _as_section(section).checked(f"BiquadCascade section {index}", self.sample_rate)
        rc = lib.rt_biquad_set_section(self._state, index, FILTER_TYPES[section.type], section.freq_hz,
                                       section.q, section.gain_db, section.shelf_slope or 0.0)
        if rc != 0:
            raise ValueError(f"BiquadCascade section {index}: shelf_slope = {section.shelf_slope} is too steep "
                             f"for gain_db = {section.gain_db} (lower the slope)")
        self.sections[index] = section

    def state_snapshot(self) -> np.ndarray:
        """The recursive state (test accessor): per channel, per section x1 x2 y1 y2."""
        size = lib.rt_biquad_state_size(self._state)
        buf = ffi.new("double[]", size)
        lib.rt_biquad_read_state(self._state, buf)
        return np.frombuffer(ffi.buffer(buf), dtype=np.float64).copy()

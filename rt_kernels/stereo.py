"""Stereo kernels: multiband mid/side width and a phase correlation meter (C: csrc/stereo_width.c,
csrc/correlation.c).  Both work on exactly two channels, (L, R)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rt_kernels import _validate as check
from rt_kernels._ffi import channel_pointers, ffi, lib
from rt_kernels.kernel import Kernel

MAX_BANDS = int(lib.RT_SW_MAX_BANDS)
WIDTH_RANGE = (0.0, 2.0)           # 0 = mono, 1 = unchanged, 2 = side +6 dB
CROSSOVER_HZ_MIN = 20.0            # upper limit: 0.45 * sample_rate
MONO_BASS_HZ_RANGE = (20.0, 1000.0)
RAMP_MS_RANGE = (0.0, 10_000.0)
WINDOW_MS_RANGE = (1.0, 60_000.0)


def _require_stereo(where: str, channels) -> int:
    channels = check.count(where, "channels", channels, 1, 64)
    if channels != 2:
        raise ValueError(f"{where}: channels = {channels}; this kernel works on stereo (L, R) only, "
                         f"convert the signal to 2 channels first")
    return channels


def _check_stereo_block(where: str, block) -> np.ndarray:
    if isinstance(block, np.ndarray) and block.ndim == 2 and block.shape[0] != 2:
        raise ValueError(f"{where}: block has {block.shape[0]} channels (shape {block.shape}); "
                         f"this kernel takes stereo (2, frames) blocks only")
    return check.audio_block(where, block, 2)


class StereoWidth(Kernel):
    """Multiband mid/side stereo width with Linkwitz-Riley (LR4) crossovers.

    ``M = (L+R)/2``, ``S = (L-R)/2``; S is split into ``len(crossover_hz) + 1``
    bands (1..4) by LR4 crossovers, each band scaled by its width and summed
    (lower bands phase-compensated by the higher crossovers' all-passes); M goes
    through the same all-passes, so M and S stay phase-aligned.  Output
    ``L = M' + S'``, ``R = M' - S'``.

    - All widths 1, no mono bass: an all-pass applied identically to L and R —
      flat magnitude, unchanged stereo image (phase turns at the crossovers; not
      bit-exact).  All widths 0: L == R exactly.  Width 2: side +6 dB.
    - ``mono_bass_hz``: side removed below it by an LR8 split (48 dB/oct, -6 dB
      at the frequency, about -48 dB an octave below), mid through the matching
      all-pass; None = off.  Turning it on or off fades over ``ramp_ms``.  The
      first time it is turned on in a running kernel its all-pass enters the
      path (a small low-frequency transient, like switching in a filter); from
      then on it stays in the path, as an all-pass while off, until
      :meth:`reset` (which removes it if off).  For click-free toggling from the
      start, construct with ``mono_bass_hz`` and turn it off.
    - Width changes ramp linearly per sample over ``ramp_ms``; crossover changes
      take effect at the next block (coefficients recomputed, state kept).  The
      band count is fixed at construction.  Latency 0.
    """

    _prefix = "rt_stereo_width"

    def __init__(self, sample_rate: float, crossover_hz: Sequence[float] = (250.0, 4000.0),
                 widths: Sequence[float] | None = None, mono_bass_hz: float | None = None,
                 ramp_ms: float = 20.0, channels: int = 2):
        where = "StereoWidth"
        super().__init__(_require_stereo(where, channels), sample_rate)
        freqs = self._checked_crossovers(where, crossover_hz)
        self.ramp_ms = check.number(where, "ramp_ms", ramp_ms, *RAMP_MS_RANGE, "ms")
        self.bands = len(freqs) + 1
        c_freqs = ffi.new("double[]", freqs) if freqs else ffi.NULL
        self._adopt(lib.rt_stereo_width_create(2, self.sample_rate, self.bands, c_freqs, self.ramp_ms))
        self._crossover_hz = tuple(freqs)
        self._mono_bass_hz: float | None = None
        if widths is not None:
            self.set_widths(widths)
        self.set_mono_bass(mono_bass_hz)
        self.reset()  # start at the requested widths and mono bass, no ramps

    def _checked_crossovers(self, where: str, crossover_hz) -> list[float]:
        try:
            freqs = list(crossover_hz)
        except TypeError:
            raise TypeError(f"{where}: crossover_hz must be a sequence of frequencies, "
                            f"got {type(crossover_hz).__name__}") from None
        if len(freqs) > MAX_BANDS - 1:
            raise ValueError(f"{where}: crossover_hz has {len(freqs)} frequencies; at most {MAX_BANDS - 1} "
                             f"({MAX_BANDS} bands)")
        hi = 0.45 * self.sample_rate
        freqs = [check.number(where, f"crossover_hz[{i}]", f, CROSSOVER_HZ_MIN, hi, "Hz")
                 for i, f in enumerate(freqs)]
        for i in range(1, len(freqs)):
            if not freqs[i] > freqs[i - 1]:
                raise ValueError(f"{where}: crossover_hz[{i}] = {freqs[i]!r} is not above "
                                 f"crossover_hz[{i - 1}] = {freqs[i - 1]!r}; give them in increasing order")
        return freqs

    @property
    def crossover_hz(self) -> tuple[float, ...]:
        return self._crossover_hz

    @property
    def mono_bass_hz(self) -> float | None:
        return self._mono_bass_hz

    @property
    def mono_bass_amount(self) -> float:
        """How much of the side below mono_bass_hz is removed now (0..1; between while fading)."""
        return float(lib.rt_stereo_width_mono_bass_amount(self._state))

    @property
    def widths(self) -> tuple[float, ...]:
        """Target width of each band (low to high)."""
        return tuple(float(lib.rt_stereo_width_target_width(self._state, b)) for b in range(self.bands))

    @property
    def current_widths(self) -> tuple[float, ...]:
        """Width of each band now (mid-ramp, the value reached so far)."""
        return tuple(float(lib.rt_stereo_width_current_width(self._state, b)) for b in range(self.bands))

    def set_width(self, band: int, width: float) -> None:
        """Width of one band (0 = mono, 1 = unchanged, 2 = side +6 dB); ramps over ramp_ms."""
        where = "StereoWidth.set_width"
        band = check.count(where, "band", band, 0, self.bands - 1)
        width = check.number(where, "width", width, *WIDTH_RANGE)
        if lib.rt_stereo_width_set_width(self._state, band, width) != 0:  # pragma: no cover - checked above
            raise ValueError(f"{where}: the kernel refused width = {width!r} for band {band}")

    def set_widths(self, widths: Sequence[float]) -> None:
        """One width per band, low to high (validated together before any is applied)."""
        where = "StereoWidth.set_widths"
        widths = list(widths)
        if len(widths) != self.bands:
            raise ValueError(f"{where}: widths has {len(widths)} values; this instance has {self.bands} bands")
        widths = [check.number(where, f"widths[{i}]", w, *WIDTH_RANGE) for i, w in enumerate(widths)]
        for band, width in enumerate(widths):
            lib.rt_stereo_width_set_width(self._state, band, width)

    def set_crossovers(self, crossover_hz: Sequence[float]) -> None:
        """New crossover frequencies (same count as at construction), increasing."""
        where = "StereoWidth.set_crossovers"
        freqs = self._checked_crossovers(where, crossover_hz)
        if len(freqs) != self.bands - 1:
            raise ValueError(f"{where}: crossover_hz has {len(freqs)} frequencies; this instance has "
                             f"{self.bands} bands, so it needs {self.bands - 1}")
        if freqs and lib.rt_stereo_width_set_crossovers(self._state, ffi.new("double[]", freqs), len(freqs)) != 0:
            raise ValueError(f"StereoWidth.set_crossovers: no stable design for {freqs} Hz")  # pragma: no cover
        self._crossover_hz = tuple(freqs)

    def set_mono_bass(self, mono_bass_hz: float | None) -> None:
        """Remove the side below ``mono_bass_hz`` (LR8 split; fades in over ramp_ms); None fades it out."""
        if mono_bass_hz is None:
            lib.rt_stereo_width_set_mono_bass(self._state, 0.0)
        else:
            hz = check.number("StereoWidth.set_mono_bass", "mono_bass_hz", mono_bass_hz, *MONO_BASS_HZ_RANGE, "Hz")
            if lib.rt_stereo_width_set_mono_bass(self._state, hz) != 0:  # pragma: no cover - checked above
                raise ValueError(f"StereoWidth.set_mono_bass: no stable design for {hz} Hz")
            mono_bass_hz = hz
        self._mono_bass_hz = mono_bass_hz

    def process(self, block: np.ndarray) -> np.ndarray:
        """Process a stereo float32 (2, frames) block; returns a new block."""
        return super().process(_check_stereo_block("StereoWidth.process", block))


class CorrelationMeter(Kernel):
    """Phase correlation r = E[LR] / sqrt(E[L²] E[R²]) of a stereo pair, in [-1, 1].

    E is an exponential moving average with time constant ``window_ms`` (a
    sample's weight falls to 1/e after window_ms), computed per sample in
    double.  +1: identical channels (mono), -1: one inverted, ~0: unrelated.
    Silence (either channel's average power 0) reads 0, never NaN.
    :meth:`value` is the snapshot published at the end of the last block.
    """

    _prefix = "rt_correlation"

    def __init__(self, sample_rate: float, window_ms: float = 300.0, channels: int = 2):
        where = "CorrelationMeter"
        super().__init__(_require_stereo(where, channels), sample_rate)
        self.window_ms = check.number(where, "window_ms", window_ms, *WINDOW_MS_RANGE, "ms")
        self._adopt(lib.rt_correlation_create(2, self.sample_rate, self.window_ms))

    @property
    def coefficient(self) -> float:
        """The one-pole averaging coefficient a = 1 - exp(-1 / (window_ms/1000 * fs))."""
        return float(lib.rt_correlation_coefficient(self._state))

    def process(self, block: np.ndarray) -> int:  # type: ignore[override]
        """Meter a stereo float32 (2, frames) block; returns the number of frames read."""
        block = _check_stereo_block("CorrelationMeter.process", block)
        return int(lib.rt_correlation_process(self._state, channel_pointers(block), block.shape[1]))

    def value(self) -> float:
        """Correlation in [-1, 1] as of the end of the last processed block (0 before any)."""
        return float(lib.rt_correlation_value(self._state))

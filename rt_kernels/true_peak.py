"""True-peak meter: 4x/2x/1x polyphase FIR interpolation in the spirit of ITU-R BS.1770-4 Annex 2."""

from __future__ import annotations

import numpy as np

from rt_kernels import _validate as check
from rt_kernels._ffi import channel_pointers, denormals_off, lib
from rt_kernels.kernel import Kernel

FACTORS = (1, 2, 4, 8)


def bs1770_factor(sample_rate: float) -> int:
    """Oversampling factor BS.1770 asks for: 4x below 96 kHz, 2x below 192 kHz, else 1x."""
    return 4 if sample_rate < 96000 else 2 if sample_rate < 192000 else 1


class TruePeakMeter(Kernel):
    """Per-channel running maximum of the |interpolated| signal (linear and dBTP).

    ``factor=None`` uses the BS.1770 rule (:func:`bs1770_factor`); 1, 2, 4 or 8 forces
    one.  The filter is a 32-tap-per-phase Kaiser-windowed sinc cut off at fs/2; every
    phase is flat within 0.1 dB up to 0.4545 fs.  The interpolated signal lags the
    input by :attr:`latency_frames` (16 frames, 0 at 1x).
    """

    _prefix = "rt_true_peak"

    def __init__(self, channels: int, sample_rate: float, factor: int | None = None):
        super().__init__(channels, sample_rate)
        if factor is None:
            factor = bs1770_factor(self.sample_rate)
        elif isinstance(factor, bool) or not isinstance(factor, (int, np.integer)):
            raise TypeError(f"TruePeakMeter: factor must be an int or None, got {type(factor).__name__} {factor!r}")
        elif int(factor) not in FACTORS:
            raise ValueError(f"TruePeakMeter: factor = {factor} is not one of {FACTORS}")
        self._adopt(lib.rt_true_peak_create_factor(self.channels, self.sample_rate, int(factor)))

    @property
    def factor(self) -> int:
        return int(lib.rt_true_peak_factor(self._state))

    def process(self, block: np.ndarray) -> int:  # type: ignore[override]
        """Meter a planar float32 block; returns the number of frames read."""
        block = check.audio_block("TruePeakMeter.process", block, self.channels)
        with denormals_off():
            return int(lib.rt_true_peak_process(self._state, channel_pointers(block), block.shape[1]))

    def envelope(self, block: np.ndarray, refined: bool = False) -> np.ndarray:
        """Meter a block and return, per channel and frame, the largest |interpolated value|
        over that frame's oversampled phases (lagging the input by ``latency_frames``).

        ``refined``: local maxima count as the peak of the parabola through their
        neighbours (see rt_true_peak_envelope_refined in csrc/true_peak.h)."""
        block = check.audio_block("TruePeakMeter.envelope", block, self.channels)
        if not isinstance(refined, (bool, np.bool_)):
            raise TypeError(f"TruePeakMeter.envelope: refined must be a bool, got {type(refined).__name__} {refined!r}")
        env = np.empty_like(block)
        fn = lib.rt_true_peak_envelope_refined if refined else lib.rt_true_peak_envelope
        with denormals_off():
            fn(self._state, channel_pointers(block), channel_pointers(env), block.shape[1])
        return env

    def max(self) -> np.ndarray:
        """Per-channel true peak (linear) since creation, reset or :meth:`clear`."""
        return np.array([lib.rt_true_peak_max(self._state, c) for c in range(self.channels)])

    def max_dbtp(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return 20.0 * np.log10(self.max())

    def clear(self) -> None:
        """Forget the maxima (the filter history is kept)."""
        lib.rt_true_peak_clear(self._state)

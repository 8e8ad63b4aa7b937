"""Peak and RMS level meter."""

from __future__ import annotations

import numpy as np

from rt_kernels import _validate as check
from rt_kernels._ffi import channel_pointers, lib
from rt_kernels.kernel import Kernel


def _db(values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(values)


class LevelMeter(Kernel):
    """Per-channel sample peak (held until :meth:`clear_peak`) and RMS over a sliding window."""

    _prefix = "rt_level_meter"

    def __init__(self, channels: int, sample_rate: float, window_ms: float = 300.0):
        super().__init__(channels, sample_rate)
        self.window_ms = check.number("LevelMeter", "window_ms", window_ms, 1.0, 60_000.0, "ms")
        self._adopt(lib.rt_level_meter_create(self.channels, self.sample_rate, self.window_ms))

    def process(self, block: np.ndarray) -> int:  # type: ignore[override]
        """Meter a planar float32 block; returns the number of frames read."""
        block = check.audio_block("LevelMeter.process", block, self.channels)
        return int(lib.rt_level_meter_process(self._state, channel_pointers(block), block.shape[1]))

    @property
    def window_frames(self) -> int:
        return int(lib.rt_level_meter_window_frames(self._state))

    def peak(self) -> np.ndarray:
        return np.array([lib.rt_level_meter_peak(self._state, c) for c in range(self.channels)])

    def rms(self) -> np.ndarray:
        return np.array([lib.rt_level_meter_rms(self._state, c) for c in range(self.channels)])

    def peak_dbfs(self) -> np.ndarray:
        return _db(self.peak())

    def rms_dbfs(self) -> np.ndarray:
        return _db(self.rms())

    def clear_peak(self) -> None:
        lib.rt_level_meter_clear_peak(self._state)

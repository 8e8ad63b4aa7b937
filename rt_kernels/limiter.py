"""Lookahead brick-wall limiter (stereo-linked, optional true-peak detection)."""

from __future__ import annotations

import numpy as np

from rt_kernels import _validate as check
from rt_kernels._ffi import channel_pointers, denormals_off, ffi, lib
from rt_kernels.kernel import Kernel

LOOKAHEAD_MS_RANGE = (0.5, 10.0)
CEILING_DB_RANGE = (-60.0, 0.0)
RELEASE_MS_RANGE = (1.0, 5000.0)


def _flag(where: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


class Limiter(Kernel):
    """Brick-wall limiter: no output sample above ``ceiling_db`` dBFS, ever.

    One gain for all channels.  The output is the input delayed by
    :attr:`latency_frames` times a gain <= 1 (bit-exact when nothing needs limiting).

    - ``lookahead_ms`` (0.5-10): the gain ramps down over this time before a peak.
    - ``release_ms`` (1-5000): time constant of the gain's recovery (linear gain, one pole).
    - ``auto_release``: program-dependent release, from ``release_ms / 4`` for isolated
      peaks to ``release_ms`` when the last ~500 ms were mostly spent limiting.
    - ``true_peak``: detect on a 4x-oversampled envelope so that the output's true peak
      (inter-sample peaks) stays at the ceiling too; adds 33 frames of latency.
    See rt_kernels/csrc/limiter.h for the algorithm and the proof of the guarantee.
    """

    _prefix = "rt_limiter"

    def __init__(self, channels: int, sample_rate: float, ceiling_db: float = -0.3,
                 lookahead_ms: float = 1.5, release_ms: float = 50.0,
                 auto_release: bool = False, true_peak: bool = False):
        super().__init__(channels, sample_rate)
        where = "Limiter"
        ceiling_db = check.number(where, "ceiling_db", ceiling_db, *CEILING_DB_RANGE, "dBFS")
        lookahead_ms = check.number(where, "lookahead_ms", lookahead_ms, *LOOKAHEAD_MS_RANGE, "ms")
        release_ms = check.number(where, "release_ms", release_ms, *RELEASE_MS_RANGE, "ms")
        auto_release = _flag(where, "auto_release", auto_release)
        self.true_peak = _flag(where, "true_peak", true_peak)
        self._ceiling_db, self._lookahead_ms, self._release_ms = ceiling_db, lookahead_ms, release_ms
        self._auto_release = auto_release
        self._adopt(lib.rt_limiter_create(self.channels, self.sample_rate, lookahead_ms, ceiling_db,
                                          release_ms, int(auto_release), int(self.true_peak)))

    # parameters
    @property
    def ceiling_db(self) -> float:
        return self._ceiling_db

    def set_ceiling_db(self, ceiling_db: float) -> None:
        value = check.number("Limiter.set_ceiling_db", "ceiling_db", ceiling_db, *CEILING_DB_RANGE, "dBFS")
        lib.rt_limiter_set_ceiling_db(self._state, value)
        self._ceiling_db = value

    @property
    def release_ms(self) -> float:
        return self._release_ms

    def set_release_ms(self, release_ms: float) -> None:
        value = check.number("Limiter.set_release_ms", "release_ms", release_ms, *RELEASE_MS_RANGE, "ms")
        lib.rt_limiter_set_release_ms(self._state, value)
        self._release_ms = value

    @property
    def auto_release(self) -> bool:
        return self._auto_release

    def set_auto_release(self, on: bool) -> None:
        self._auto_release = _flag("Limiter.set_auto_release", "on", on)
        lib.rt_limiter_set_auto_release(self._state, int(self._auto_release))

    @property
    def lookahead_ms(self) -> float:
        return self._lookahead_ms

    def set_lookahead_ms(self, lookahead_ms: float) -> None:
        """Changes the latency and clears the history (as :meth:`reset`)."""
        value = check.number("Limiter.set_lookahead_ms", "lookahead_ms", lookahead_ms, *LOOKAHEAD_MS_RANGE, "ms")
        lib.rt_limiter_set_lookahead_ms(self._state, value)
        self._lookahead_ms = value

    @property
    def lookahead_frames(self) -> int:
        return int(lib.rt_limiter_lookahead_frames(self._state))

    # processing
    def process_with_gain(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`process`, also returning the linear gain applied to each output frame."""
        block = check.audio_block("Limiter.process_with_gain", block, self.channels)
        out = np.empty_like(block)
        gain = np.empty(block.shape[1], dtype=np.float32)
        with denormals_off():
            lib.rt_limiter_process_gain(self._state, channel_pointers(block), channel_pointers(out),
                                        ffi.cast("float *", gain.ctypes.data), block.shape[1])
        return out, gain

    # metering
    @property
    def gain_reduction_db(self) -> float:
        """Gain reduction (dB, >= 0) on the last output frame."""
        return float(lib.rt_limiter_gain_reduction_db(self._state))

    @property
    def max_gain_reduction_db(self) -> float:
        """Largest gain reduction since creation, reset or :meth:`clear_meter`."""
        return float(lib.rt_limiter_max_gain_reduction_db(self._state))

    def clear_meter(self) -> None:
        lib.rt_limiter_clear_meter(self._state)

    @property
    def clamp_count(self) -> int:
        """Output samples the last-resort safety stage had to set to the ceiling."""
        return int(lib.rt_limiter_clamp_count(self._state))

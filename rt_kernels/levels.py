"""Gain, dry/wet mix, equal-power crossfade and DC blocker kernels."""

from __future__ import annotations

import math

import numpy as np

from rt_kernels import _validate as check
from rt_kernels._ffi import channel_pointers, denormals_off, lib
from rt_kernels.kernel import Kernel

GAIN_DB_RANGE = (-120.0, 48.0)
RAMP_MS_RANGE = (0.0, 10_000.0)


def db_to_linear(gain_db: float) -> float:
    return 10.0 ** (gain_db / 20.0)


def linear_to_db(value: float) -> float:
    return 20.0 * math.log10(value) if value > 0 else -math.inf


class Gain(Kernel):
    """Gain in dB; a change ramps linearly (in linear gain) over ``ramp_ms``, per sample."""

    _prefix = "rt_gain"

    def __init__(self, channels: int, sample_rate: float, gain_db: float = 0.0, ramp_ms: float = 20.0):
        super().__init__(channels, sample_rate)
        gain_db = check.number("Gain", "gain_db", gain_db, *GAIN_DB_RANGE, "dB")
        self.ramp_ms = check.number("Gain", "ramp_ms", ramp_ms, *RAMP_MS_RANGE, "ms")
        self._adopt(lib.rt_gain_create(self.channels, self.sample_rate, self.ramp_ms, db_to_linear(gain_db)))

    def set_gain_db(self, gain_db: float) -> None:
        gain_db = check.number("Gain.set_gain_db", "gain_db", gain_db, *GAIN_DB_RANGE, "dB")
        lib.rt_gain_set_linear(self._state, db_to_linear(gain_db))

    @property
    def gain_db(self) -> float:
        """The gain now (mid-ramp, the value reached so far)."""
        return linear_to_db(lib.rt_gain_current(self._state))

    @property
    def target_db(self) -> float:
        return linear_to_db(lib.rt_gain_target(self._state))


class _TwoInput(Kernel):
    """Kernels whose process takes two blocks of the same shape."""

    def process(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:  # type: ignore[override]
        where = f"{type(self).__name__}.process"
        names = self._input_names
        first = check.audio_block(where, first, self.channels, names[0])
        second = check.audio_block(where, second, self.channels, names[1])
        check.same_shape(where, names[0], first, names[1], second)
        out = np.empty_like(first)
        with denormals_off():
            self._c("process")(self._state, channel_pointers(first), channel_pointers(second),
                               channel_pointers(out), first.shape[1])
        return out


class Mix(_TwoInput):
    """Dry/wet mix: ``dry * (1 - wet) + wet_signal * wet``; ``wet`` ramps over ``ramp_ms``.

    wet = 0 returns the dry block bit for bit; wet = 1 the wet block.
    """

    _prefix = "rt_mix"
    _input_names = ("dry", "wet")

    def __init__(self, channels: int, sample_rate: float, wet: float = 1.0, ramp_ms: float = 20.0):
        super().__init__(channels, sample_rate)
        wet = check.number("Mix", "wet", wet, 0.0, 1.0)
        self.ramp_ms = check.number("Mix", "ramp_ms", ramp_ms, *RAMP_MS_RANGE, "ms")
        self._adopt(lib.rt_mix_create(self.channels, self.sample_rate, self.ramp_ms, wet))

    def set_wet(self, wet: float) -> None:
        lib.rt_mix_set_amount(self._state, check.number("Mix.set_wet", "wet", wet, 0.0, 1.0))

    @property
    def wet(self) -> float:
        return float(lib.rt_mix_current(self._state))


class Crossfade(_TwoInput):
    """Equal-power crossfade from input ``a`` to input ``b`` (cos/sin law).

    Outputs ``a`` until :meth:`start`, then fades over the given time and
    outputs ``b`` bit for bit once the fade is done.
    """

    _prefix = "rt_xfade"
    _input_names = ("a", "b")

    def __init__(self, channels: int, sample_rate: float):
        super().__init__(channels, sample_rate)
        self._adopt(lib.rt_xfade_create(self.channels))

    def start(self, length_s: float) -> int:
        """Begin the fade at the next processed frame; returns its length in frames."""
        length_s = check.number("Crossfade.start", "length_s", length_s, 0.0, 60.0, "s")
        frames = round(length_s * self.sample_rate)
        lib.rt_xfade_start(self._state, frames)
        return frames

    @property
    def position(self) -> float:
        """0 = all a, 1 = all b."""
        return float(lib.rt_xfade_position(self._state))


class DcBlocker(Kernel):
    """First-order DC blocker (high-pass at ``cutoff_hz``, unity gain at Nyquist)."""

    _prefix = "rt_dc_blocker"

    def __init__(self, channels: int, sample_rate: float, cutoff_hz: float = 5.0):
        super().__init__(channels, sample_rate)
        self.cutoff_hz = check.number("DcBlocker", "cutoff_hz", cutoff_hz, 0.1, 200.0, "Hz")
        self._adopt(lib.rt_dc_blocker_create(self.channels, self.sample_rate, self.cutoff_hz))

"""Dynamics kernels: feed-forward compressor and soft clipper (C: csrc/compressor.c, csrc/soft_clipper.c)."""

from __future__ import annotations

import numpy as np

from rt_kernels import _validate as check
from rt_kernels._ffi import ffi, lib
from rt_kernels.kernel import Kernel

THRESHOLD_DB_RANGE = (-100.0, 20.0)
RATIO_RANGE = (1.0, 1000.0)
KNEE_DB_RANGE = (0.0, 48.0)
ATTACK_MS_RANGE = (0.0, 2000.0)
RELEASE_MS_RANGE = (0.0, 10_000.0)
MAKEUP_DB_RANGE = (-48.0, 48.0)
RMS_MS_RANGE = (0.1, 2000.0)
DETECTORS = {"peak": lib.RT_CMP_DETECT_PEAK, "rms": lib.RT_CMP_DETECT_RMS}
LINKS = {"none": lib.RT_CMP_LINK_NONE, "max": lib.RT_CMP_LINK_MAX, "mean": lib.RT_CMP_LINK_MEAN}

CEILING_DB_RANGE = (-60.0, 0.0)
CLIP_KNEE_DB_RANGE = (0.1, 24.0)

_NUMERIC = {
    "threshold_db": (THRESHOLD_DB_RANGE, "dBFS"),
    "ratio": (RATIO_RANGE, ""),
    "knee_db": (KNEE_DB_RANGE, "dB"),
    "attack_ms": (ATTACK_MS_RANGE, "ms"),
    "release_ms": (RELEASE_MS_RANGE, "ms"),
    "makeup_db": (MAKEUP_DB_RANGE, "dB"),
    "rms_ms": (RMS_MS_RANGE, "ms"),
}
_CHOICES = {"detector": DETECTORS, "link": LINKS}


def _choice(where: str, name: str, value, choices: dict) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{where}: {name} = {value!r} is not one of {', '.join(map(repr, choices))}")
    return value


def _flag(where: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


class Compressor(Kernel):
    """Feed-forward compressor after Giannoulis, Massberg & Reiss (JAES 2012), latency 0.

    Per sample: the detector level in dB (``detector="peak"``: 20·log10|x|;
    ``"rms"``: 10·log10 of the mean square, a one-pole average with time constant
    ``rms_ms``) goes through the static curve (``threshold_db``, ``ratio``, quadratic
    soft knee of full width ``knee_db``, 0 = hard knee); the wanted gain reduction is
    smoothed in dB by the paper's smooth branching peak detector (``attack_ms`` while
    it rises, ``release_ms`` while it falls; a time constant is the time to cover
    1 − 1/e of a step); the gain ``10**((makeup - GR)/20)`` is applied sample by sample.

    ``link``: ``"none"`` (each channel its own detector and gain), ``"max"`` (one
    detector fed by the loudest channel: a loud left channel turns the right one down
    equally) or ``"mean"`` (one detector fed by the mean of the channels' linear
    levels: mean |x|, or in RMS mode the mean of the channels' RMS values).

    ``auto_makeup``: adds the static curve's gain reduction at a 0 dBFS level (knee
    included), so a steady 0 dBFS level comes out at 0 dBFS + ``makeup_db``;
    ``makeup_db`` stays active as a trim.  Makeup changes ramp over 20 ms.

    Metering: :meth:`gain_reduction_db` (now) and :meth:`take_max_gain_reduction_db`
    (largest since the previous take; clears it), per channel, dB >= 0.

    Ranges: threshold_db [-100, 20] dBFS, ratio [1, 1000], knee_db [0, 48] dB,
    attack_ms [0, 2000], release_ms [0, 10000] (0 = instant), makeup_db [-48, 48] dB,
    rms_ms [0.1, 2000].  :meth:`set` changes any of them between blocks, all or none.
    """

    _prefix = "rt_compressor"

    def __init__(self, channels: int, sample_rate: float, threshold_db: float = -20.0, ratio: float = 4.0,
                 knee_db: float = 6.0, attack_ms: float = 10.0, release_ms: float = 100.0,
                 makeup_db: float = 0.0, auto_makeup: bool = False, detector: str = "peak",
                 rms_ms: float = 10.0, link: str = "max"):
        super().__init__(channels, sample_rate)
        self._params: dict = {}
        params = self._checked("Compressor", dict(
            threshold_db=threshold_db, ratio=ratio, knee_db=knee_db, attack_ms=attack_ms,
            release_ms=release_ms, makeup_db=makeup_db, auto_makeup=auto_makeup, detector=detector,
            rms_ms=rms_ms, link=link))
        self._adopt(lib.rt_compressor_create(self.channels, self.sample_rate, self._c_params(params)))
        self._params = params

    @staticmethod
    def _checked(where: str, values: dict) -> dict:
        out = {}
        for name, value in values.items():
            if name in _NUMERIC:
                (lo, hi), unit = _NUMERIC[name]
                out[name] = check.number(where, name, value, lo, hi, unit)
            elif name in _CHOICES:
                out[name] = _choice(where, name, value, _CHOICES[name])
            elif name == "auto_makeup":
                out[name] = _flag(where, name, value)
            else:
                raise TypeError(f"{where}: unknown parameter {name!r} "
                                f"(known: {', '.join(list(_NUMERIC) + list(_CHOICES) + ['auto_makeup'])})")
        return out

    @staticmethod
    def _c_params(p: dict):
        c = ffi.new("rt_compressor_params *")
        for name in ("threshold_db", "ratio", "knee_db", "attack_ms", "release_ms", "makeup_db", "rms_ms"):
            setattr(c, name, p[name])
        c.auto_makeup = int(p["auto_makeup"])
        c.detector = DETECTORS[p["detector"]]
        c.link = LINKS[p["link"]]
        return c

    def set(self, **changes) -> None:
        """Change any parameters at once (one consistent update); all are checked before any applies."""
        merged = dict(self._params)
        merged.update(self._checked("Compressor.set", changes))
        if lib.rt_compressor_set_params(self._state, self._c_params(merged)) != 0:
            raise ValueError(f"Compressor.set: the C kernel refused {changes!r}")  # pragma: no cover
        self._params = merged

    @property
    def params(self) -> dict:
        """The current parameters (a copy)."""
        return dict(self._params)

    @property
    def makeup_total_db(self) -> float:
        """The makeup now targeted: makeup_db plus the auto part when auto_makeup is on."""
        return float(lib.rt_compressor_makeup_total_db(self._state))

    def gain_reduction_db(self) -> np.ndarray:
        """Per channel, the gain reduction at the last processed frame (dB, >= 0, makeup excluded)."""
        return np.array([lib.rt_compressor_gr_db(self._state, c) for c in range(self.channels)])

    def take_max_gain_reduction_db(self) -> np.ndarray:
        """Per channel, the largest gain reduction since the previous take or reset (dB, >= 0); clears it."""
        return np.array([lib.rt_compressor_gr_max_take_db(self._state, c) for c in range(self.channels)])


def _param_property(name: str) -> property:
    return property(lambda self: self._params[name], doc=f"Current {name} (change it with set()).")


for _name in (*_NUMERIC, *_CHOICES, "auto_makeup"):
    setattr(Compressor, _name, _param_property(_name))
del _name


class SoftClipper(Kernel):
    """Static soft clipper, latency 0.

    Identity (bit-exact) for |x| up to the knee start ``T = ceiling · 10**(-knee_db/20)``;
    above it ``T + (C − T)·tanh((|x| − T)/(C − T))`` with the sign of x, C the ceiling:
    continuous value, slope and curvature at T, odd, and never above ``ceiling_db``
    (the float32 output is held at the largest float <= C).
    """

    _prefix = "rt_soft_clipper"

    def __init__(self, channels: int, ceiling_db: float = -1.0, knee_db: float = 6.0):
        super().__init__(channels, None)
        self.ceiling_db, self.knee_db = self._checked("SoftClipper", ceiling_db, knee_db)
        self._adopt(lib.rt_soft_clipper_create(self.channels, self.ceiling_db, self.knee_db))

    @staticmethod
    def _checked(where: str, ceiling_db, knee_db) -> tuple[float, float]:
        return (check.number(where, "ceiling_db", ceiling_db, *CEILING_DB_RANGE, "dBFS"),
                check.number(where, "knee_db", knee_db, *CLIP_KNEE_DB_RANGE, "dB"))

    def set(self, ceiling_db: float | None = None, knee_db: float | None = None) -> None:
        """Change the ceiling and/or the knee (takes effect at the next frame)."""
        ceiling_db, knee_db = self._checked("SoftClipper.set",
                                            self.ceiling_db if ceiling_db is None else ceiling_db,
                                            self.knee_db if knee_db is None else knee_db)
        lib.rt_soft_clipper_set_params(self._state, ceiling_db, knee_db)
        self.ceiling_db, self.knee_db = ceiling_db, knee_db

    @property
    def knee_linear(self) -> float:
        """Where the curve leaves the identity (linear amplitude)."""
        return float(lib.rt_soft_clipper_knee_linear(self._state))

    @property
    def ceiling_linear(self) -> float:
        """The largest output value (the largest float32 <= the ceiling)."""
        return float(lib.rt_soft_clipper_ceiling_linear(self._state))

    def curve(self, x) -> np.ndarray:
        """The static curve in double precision (for plots), without the float32 hold."""
        values = np.asarray(x, dtype=np.float64)
        return np.array([lib.rt_soft_clipper_curve(self._state, float(v)) for v in values.ravel()]).reshape(values.shape)

"""ITU-R BS.1770-4 / EBU R 128 loudness meter, computed in C (rt_kernels/csrc/loudness.c).

:class:`LoudnessMeter` streams: feed it planar float32 blocks of any size (on the audio
thread in C, or from Python here) and read :meth:`LoudnessMeter.snapshot` whenever you
like; :func:`measure` runs one over a whole signal (files: engine.mastering.measure_file).
Every reported value is bit-identical whatever the block sizes.

What comes back (:class:`LoudnessValues`):

* loudness in LUFS, ``-inf`` where there is nothing to measure (silence, or before the
  first 400 ms gating block for the integrated value) -- never NaN;
* ``loudness_range_lu`` is ``0.0`` until at least one 3 s block passes its gates;
* peaks in dBFS / dBTP, ``-inf`` for digital silence; the true-peak fields are None
  for a meter made with ``true_peak=False``;
* momentary (400 ms) and short-term (3 s) values are updated every 10 ms (a tick of
  hop/10 frames, hop = round(sample_rate / 10)); windows that reach back before the
  start count the missing time as silence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rt_kernels import _validate as check
from rt_kernels._ffi import channel_pointers, denormals_off, ffi, lib
from rt_kernels.kernel import Kernel

#: BS.1770-4 channel weights G per layout, in channel order.
LAYOUTS: dict[str, tuple[float, ...]] = {
    "mono": (1.0,),
    "stereo": (1.0, 1.0),                        # L R
    "5.0": (1.0, 1.0, 1.0, 1.41, 1.41),          # L R C Ls Rs
    "5.1": (1.0, 1.0, 1.0, 0.0, 1.41, 1.41),     # L R C LFE Ls Rs (LFE excluded)
}
#: Layout assumed when neither ``layout`` nor ``weights`` is given.
DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 5: "5.0", 6: "5.1"}
WEIGHT_RANGE = (0.0, 16.0)
MAX_CHANNELS = int(lib.RT_LOUDNESS_MAX_CHANNELS)


@dataclass(frozen=True)
class LoudnessValues:
    """One consistent reading of a :class:`LoudnessMeter` (see the module docstring)."""

    momentary_lufs: float
    short_term_lufs: float
    integrated_lufs: float
    integrated_gate_lufs: float       #: the relative gate (-10 LU) the integrated value used
    loudness_range_lu: float
    max_momentary_lufs: float
    max_short_term_lufs: float
    sample_peak_dbfs: float           #: max over channels
    true_peak_dbtp: float | None      #: max over channels (None: meter made with true_peak=False)
    channel_sample_peak_dbfs: tuple[float, ...]
    channel_true_peak_dbtp: tuple[float, ...] | None
    true_peak_factor: int             #: oversampling of the true peak (4 below 96 kHz; 0 = off)
    frames: int                       #: frames metered since creation or reset
    nonfinite_ticks: int              #: 10 ms ticks dropped for non-finite input (C callers only)


def k_weighting(sample_rate: float) -> np.ndarray:
    """The K-weighting the meter uses at ``sample_rate``, as scipy-style second-order
    sections, shape (2, 6): the high shelf, then the RLB high-pass."""
    fs = check.sample_rate("k_weighting", sample_rate)
    out = ffi.new("double[10]")
    if lib.rt_loudness_k_weighting(fs, out) != 0:  # pragma: no cover - the range is checked above
        raise ValueError(f"k_weighting: sample_rate = {fs!r} was refused")
    c = np.frombuffer(ffi.buffer(out), dtype=np.float64)
    return np.array([[c[0], c[1], c[2], 1.0, c[3], c[4]], [c[5], c[6], c[7], 1.0, c[8], c[9]]])


def _weights(where: str, channels: int, layout, weights) -> tuple[tuple[float, ...], str | None]:
    if layout is not None and weights is not None:
        raise ValueError(f"{where}: give layout or weights, not both (layout = {layout!r}, weights = {weights!r})")
    if weights is None:
        if layout is None:
            layout = DEFAULT_LAYOUTS.get(channels)
            if layout is None:
                raise ValueError(
                    f"{where}: channels = {channels} has no default layout; pass layout= (one of "
                    f"{', '.join(LAYOUTS)}) or weights= (one BS.1770 weight per channel)")
        if not isinstance(layout, str) or layout not in LAYOUTS:
            raise ValueError(f"{where}: layout = {layout!r} is not one of {', '.join(LAYOUTS)}")
        if len(LAYOUTS[layout]) != channels:
            raise ValueError(f"{where}: layout = {layout!r} has {len(LAYOUTS[layout])} channels, not {channels}")
        return LAYOUTS[layout], layout
    if isinstance(weights, (str, bytes)) or not isinstance(weights, (Sequence, np.ndarray)):
        raise TypeError(f"{where}: weights must be a sequence of numbers, got {type(weights).__name__}")
    if len(weights) != channels:
        raise ValueError(f"{where}: weights has {len(weights)} entries for {channels} channels")
    values = tuple(check.number(where, f"weights[{i}]", w, *WEIGHT_RANGE) for i, w in enumerate(weights))
    if not any(w > 0.0 for w in values):
        raise ValueError(f"{where}: weights = {list(values)} are all 0; at least one channel must count")
    return values, None


class LoudnessMeter(Kernel):
    """BS.1770-4 / EBU R 128 meter: momentary, short-term, integrated, loudness range
    (EBU Tech 3342), their maxima, sample peak and true peak, over any channel count.

    ``layout``: one of :data:`LAYOUTS` (``"mono"``, ``"stereo"``, ``"5.0"``, ``"5.1"``);
    ``weights``: or one BS.1770 weight per channel instead (1.0 front, 1.41 surround,
    0 excludes, e.g. the LFE).  Default: mono, stereo, 5.0 (L R C Ls Rs) for 5 channels,
    5.1 (L R C LFE Ls Rs) for 6; other channel counts must say.
    ``true_peak``: run the BS.1770 true-peak oversampler (the bulk of the cost per
    sample); when False the true-peak fields of :meth:`snapshot` are None.

    A sink: :meth:`process` reads a block and returns its frame count.  Memory is fixed
    at creation (histograms, not a list of blocks), so a meter can run for days.
    """

    _prefix = "rt_loudness"

    def __init__(self, channels: int, sample_rate: float, layout: str | None = None,
                 weights: Sequence[float] | None = None, true_peak: bool = True):
        super().__init__(channels, sample_rate)
        self.weights, self.layout = _weights("LoudnessMeter", self.channels, layout, weights)
        if not isinstance(true_peak, bool):
            raise TypeError(f"LoudnessMeter: true_peak must be True or False, got {true_peak!r}")
        self.true_peak = true_peak
        self._adopt(lib.rt_loudness_create(self.channels, self.sample_rate, ffi.new("double[]", self.weights),
                                           int(true_peak)))

    def process(self, block: np.ndarray) -> int:  # type: ignore[override]
        """Meter a planar float32 (channels, frames) block; returns the number of frames read."""
        block = check.audio_block("LoudnessMeter.process", block, self.channels)
        with denormals_off():
            done = lib.rt_loudness_process(self._state, channel_pointers(block), block.shape[1])
        if done != block.shape[1]:
            raise RuntimeError(f"rt_loudness_process returned {done} frames for {block.shape[1]}")
        return int(done)

    def _process_checked_after(self, block: np.ndarray, where: str, name: str) -> None:
        """For one-shot meters (measure, measure_file): `block` has passed
        check.audio_block_shape; finiteness is checked by the C pass itself, and a
        non-finite sample raises audio_block's ValueError (the meter is then spoilt)."""
        with denormals_off():
            done = lib.rt_loudness_process(self._state, channel_pointers(block), block.shape[1])
        if done != block.shape[1]:
            raise RuntimeError(f"rt_loudness_process returned {done} frames for {block.shape[1]}")
        if lib.rt_loudness_saw_nonfinite(self._state):
            check.audio_block(where, block, self.channels, name=name)  # raises, naming the first bad sample
            raise RuntimeError(f"{where}: the meter saw a non-finite sample that numpy did not")  # pragma: no cover

    def snapshot(self) -> LoudnessValues:
        """All current values, read consistently (safe while another thread processes)."""
        v = ffi.new("rt_loudness_values *")  # per call: snapshots may come from several threads
        lib.rt_loudness_snapshot(self._state, v)
        n = self.channels
        return LoudnessValues(
            momentary_lufs=v.momentary_lufs,
            short_term_lufs=v.short_term_lufs,
            integrated_lufs=v.integrated_lufs,
            integrated_gate_lufs=v.integrated_gate_lufs,
            loudness_range_lu=v.loudness_range_lu,
            max_momentary_lufs=v.max_momentary_lufs,
            max_short_term_lufs=v.max_short_term_lufs,
            sample_peak_dbfs=v.sample_peak_dbfs,
            true_peak_dbtp=v.true_peak_dbtp if v.true_peak_factor else None,
            channel_sample_peak_dbfs=tuple(v.channel_sample_peak_dbfs[0:n]),
            channel_true_peak_dbtp=tuple(v.channel_true_peak_dbtp[0:n]) if v.true_peak_factor else None,
            true_peak_factor=int(v.true_peak_factor),
            frames=int(v.frames),
            nonfinite_ticks=int(v.nonfinite_ticks),
        )

    @property
    def hop_frames(self) -> int:
        """Frames per 100 ms step of the gating blocks (round(sample_rate / 10))."""
        return int(lib.rt_loudness_hop_frames(self._state))


def measure(audio: np.ndarray, sample_rate: float, layout: str | None = None,
            weights: Sequence[float] | None = None, true_peak: bool = True) -> LoudnessValues:
    """All loudness values of a whole planar float32 (channels, frames) signal."""
    audio = check.audio_block_shape("measure", audio, None, name="audio")
    meter = LoudnessMeter(audio.shape[0], sample_rate, layout=layout, weights=weights, true_peak=true_peak)
    meter._process_checked_after(audio, "measure", "audio")  # finiteness checked in the same pass
    return meter.snapshot()


__all__ = ["LAYOUTS", "DEFAULT_LAYOUTS", "LoudnessMeter", "LoudnessValues", "k_weighting", "measure"]

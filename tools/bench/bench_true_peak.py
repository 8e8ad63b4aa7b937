"""True-peak oversampler (C kernel, called directly as the audio thread does): 4x and 2x
meter (rt_true_peak_process), and the limiter's detector (4x, 64 taps per phase): the
refined envelope everywhere (rt_true_peak_envelope_refined) and where it may exceed a
ceiling (rt_true_peak_envelope_bounded, the limiter's, -1 dBTP: the noise here, 0.3 RMS,
crosses it now and then).  Peer: scipy.signal.resample_poly by the same factor followed by
max |y| (an offline float64 reference, not a streaming meter).  At most 10 s of stereo
audio whatever --seconds says (resample_poly holds it all in float64)."""

from __future__ import annotations

import numpy as np
from scipy import signal

from rt_kernels._ffi import channel_pointers, denormals_off, ffi, lib
from tools.bench.common import Row, median_seconds, per_unit_ns

RATE = 44100
UNIT = "ns per sample-channel (stereo)"


def _audio(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    return (0.3 * rng.standard_normal((2, int(seconds * RATE)))).astype(np.float32)


def _ours(audio, factor, taps=32, beta=4.5, refined=False, threshold=None):
    pointers = channel_pointers(audio)
    env = np.empty_like(audio)
    env_ptrs = channel_pointers(env)
    frames = audio.shape[1]

    def go(env=env):  # keeps env (the buffer env_ptrs points into) alive
        st = ffi.gc(lib.rt_true_peak_create_design(2, RATE, factor, taps, beta), lib.rt_true_peak_destroy)
        with denormals_off():
            if threshold is not None:
                lib.rt_true_peak_envelope_bounded(st, pointers, env_ptrs, threshold, frames)
            elif refined:
                lib.rt_true_peak_envelope_refined(st, pointers, env_ptrs, frames)
            else:
                lib.rt_true_peak_process(st, pointers, frames)

    return go


def _peer(audio, factor):
    x = audio.astype(np.float64)
    return lambda: np.max(np.abs(signal.resample_poly(x, factor, 1, axis=1)), axis=1)


def run(opts) -> list[Row]:
    audio = _audio(min(opts.seconds, 10.0))  # per-unit figures; caps the peer's float64 memory
    units = audio.size

    def ns(fn):
        return per_unit_ns(median_seconds(fn, opts.repeats), units)

    p4, p2 = ns(_peer(audio, 4)), ns(_peer(audio, 2))
    return [
        Row("true_peak: 4x meter (32 taps/phase)", UNIT, ns(_ours(audio, 4)), "resample_poly 4x + max", p4),
        Row("true_peak: 2x meter (32 taps/phase)", UNIT, ns(_ours(audio, 2)), "resample_poly 2x + max", p2),
        Row("true_peak: 4x refined env (64 taps, limiter)", UNIT,
            ns(_ours(audio, 4, 64, 9.0, refined=True)), "resample_poly 4x + max", p4),
        Row("true_peak: 4x refined env over -1 dBTP", UNIT,
            ns(_ours(audio, 4, 64, 9.0, threshold=10 ** (-1 / 20))), "resample_poly 4x + max", p4),
    ]

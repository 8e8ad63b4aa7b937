"""Loudness meter vs pyloudnorm: integrated loudness of a stereo 44.1 kHz signal.

`python -m tools.bench --only loudness --seconds 180` for the 3-minute figure.  Ours runs
the whole meter (momentary, short-term, integrated, LRA, peaks; with or without the 4x
true-peak oversampler) through the validating facade, on float32 planar audio; the peer
is pyloudnorm.Meter(rate).integrated_loudness on the same samples (float64, (frames, 2)).
The "C kernel only" rows call rt_loudness_process directly, as the audio thread does
(measure() checks finiteness in the same C pass, so the facade adds little).  The true
peak skips oversampling where it cannot raise the maximum, so its cost depends on the
material: on this programme (levels changing every second) most of it is skipped (~0.25
ns per sample-channel with AVX-512); steady noise 10 dB below full scale costs ~0.7 ns
more, a steady full-scale sine, whose every sample is near the maximum, ~5.5 ns more.
The K-weighting path follows rt_cpu_level() (AURALIS_RT_ISA=base|v3|v4 to compare).
"""

from __future__ import annotations

import numpy as np
import pyloudnorm

from rt_kernels._ffi import channel_pointers, denormals_off, ffi, lib
from rt_kernels.loudness import measure
from tools.bench.common import Row, median_seconds, per_unit_ns

RATE = 44100
UNIT = "ns per sample-channel"


def _programme(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    frames = int(seconds * RATE)
    x = rng.standard_normal((2, frames))
    segment = RATE  # level changes every second, so both gates have work to do
    levels = rng.uniform(-40, -10, frames // segment + 1)
    return (x * np.repeat(10 ** (levels / 20), segment)[:frames]).astype(np.float32)


def _kernel_only(audio: np.ndarray, true_peak: bool):
    """The C meter as the audio thread runs it: no facade, no validation."""
    weights = ffi.new("double[]", [1.0, 1.0])
    pointers = channel_pointers(audio)

    def go():
        st = ffi.gc(lib.rt_loudness_create(2, RATE, weights, int(true_peak)), lib.rt_loudness_destroy)
        with denormals_off():
            lib.rt_loudness_process(st, pointers, audio.shape[1])

    return go


def run(opts) -> list[Row]:
    audio = _programme(opts.seconds)
    interleaved = np.ascontiguousarray(audio.T.astype(np.float64))
    units = audio.size
    meter = pyloudnorm.Meter(RATE)
    peer = per_unit_ns(median_seconds(lambda: meter.integrated_loudness(interleaved), opts.repeats), units)
    with_tp = per_unit_ns(median_seconds(lambda: measure(audio, RATE), opts.repeats), units)
    without_tp = per_unit_ns(median_seconds(lambda: measure(audio, RATE, true_peak=False), opts.repeats), units)
    kernel_tp = per_unit_ns(median_seconds(_kernel_only(audio, True), opts.repeats), units)
    kernel = per_unit_ns(median_seconds(_kernel_only(audio, False), opts.repeats), units)
    ours, theirs = measure(audio, RATE).integrated_lufs, meter.integrated_loudness(interleaved)
    print(f"  integrated: ours {ours:.3f} LUFS, pyloudnorm {theirs:.3f} LUFS "
          f"({opts.seconds:g} s stereo {RATE} Hz)")
    return [
        Row("loudness: integrated + true peak (4x)", UNIT, with_tp, "pyloudnorm integrated", peer, ">= 20x"),
        Row("loudness: integrated, true_peak=False", UNIT, without_tp, "pyloudnorm integrated", peer, ">= 20x"),
        Row("loudness C kernel only: + true peak (4x)", UNIT, kernel_tp, "pyloudnorm integrated", peer),
        Row("loudness C kernel only: true_peak=False", UNIT, kernel, "pyloudnorm integrated", peer),
    ]

"""Issue 2 kernels: ns per sample-channel, biquads against scipy.signal.sosfilt and
pedalboard's PeakFilter on the same audio in the same run."""

from __future__ import annotations

import numpy as np

import rt_kernels as rk
from rt_kernels._ffi import channel_pointers, denormals_off, lib
from tools.bench.common import Row, median_seconds, per_unit_ns

FS = 44100
UNIT = "ns per sample-channel (per section for biquads)"


def kernel_call(kernel, x: np.ndarray):
    """The bare C process call, as the executor makes it (the facade's checks excluded)."""
    out = np.empty_like(x)
    ins, outs = channel_pointers(x), channel_pointers(out)
    process = getattr(lib, f"{kernel._prefix}_process")

    def call(keep_alive=(x, out)):  # the pointers above point into these arrays
        with denormals_off():
            process(kernel._state, ins, outs, x.shape[1])
    return call


def run(opts) -> list[Row]:
    frames = int(opts.seconds * FS)
    rng = np.random.default_rng(1)
    x = (0.25 * rng.standard_normal((2, frames))).astype(np.float32)
    units = x.size
    rows = []

    from scipy import signal

    for sections in (1, 6):
        spec = [rk.Section("peaking", 200.0 * (i + 1), 1.0, 3.0) for i in range(sections)]
        eq = rk.BiquadCascade(spec, 2, FS)
        ours = per_unit_ns(median_seconds(kernel_call(eq, x), opts.repeats), units * sections)
        sos = np.array([np.r_[s.coefficients(FS)[:3], 1.0, s.coefficients(FS)[3:]] for s in spec])
        x64 = x.astype(np.float64)
        peer = per_unit_ns(median_seconds(lambda: signal.sosfilt(sos, x64, axis=1), opts.repeats), units * sections)
        rows.append(Row(f"biquad x{sections}, stereo", UNIT, ours, "scipy sosfilt (float64)", peer,
                        "<= 1.5 ns, >= 3x sosfilt"))

    try:
        import pedalboard
    except ImportError:  # pragma: no cover
        pedalboard = None
    if pedalboard is not None:
        eq = rk.BiquadCascade([rk.Section("peaking", 1000.0, 1.0, 3.0)], 2, FS)
        board = pedalboard.Pedalboard([pedalboard.PeakFilter(cutoff_frequency_hz=1000.0, gain_db=3.0, q=1.0)])
        ours = per_unit_ns(median_seconds(kernel_call(eq, x), opts.repeats), units)
        peer = per_unit_ns(median_seconds(lambda: board(x, FS, reset=True), opts.repeats), units)
        rows.append(Row("biquad peaking, stereo", UNIT, ours, "pedalboard PeakFilter", peer, ">= 4x pedalboard"))
        facade = per_unit_ns(median_seconds(lambda: eq.process(x), opts.repeats), units)
        rows.append(Row("  same, through the checking facade", UNIT, facade, "pedalboard PeakFilter", peer))

    gain = rk.Gain(2, FS, gain_db=-3.0)
    rows.append(Row("gain (settled)", UNIT, per_unit_ns(median_seconds(kernel_call(gain, x), opts.repeats), units)))
    dc = rk.DcBlocker(2, FS)
    rows.append(Row("dc blocker", UNIT, per_unit_ns(median_seconds(kernel_call(dc, x), opts.repeats), units)))
    mix = rk.Mix(2, FS, wet=0.5)
    rows.append(Row("dry/wet mix", UNIT, per_unit_ns(median_seconds(lambda: mix.process(x, x), opts.repeats), units)))
    meter = rk.LevelMeter(2, FS)
    rows.append(Row("peak + RMS meter", UNIT, per_unit_ns(median_seconds(lambda: meter.process(x), opts.repeats), units)))
    rows.append(Row("mid/side encode", UNIT, per_unit_ns(median_seconds(lambda: rk.ms_encode(x), opts.repeats), units)))
    return rows

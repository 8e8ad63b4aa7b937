"""Compressor vs pedalboard.Compressor (JUCE dsp::Compressor), soft clipper on its own.

Same settings on both sides: threshold -20 dBFS, ratio 4, attack 5 ms, release 100 ms,
hard knee, peak detection, channels unlinked (JUCE's compressor is per channel).
Stereo 44.1 kHz, opts.seconds of noise whose level moves in 50 ms steps over
-40..0 dBFS, so the compressor spends time in attack, release and below threshold.
Both process the whole signal in one call (pedalboard in its default 8192-frame chunks).

The two "in the ... chain" rows time the kernel alone, one C call over the whole signal
(no Python facade, no per-block Python call; the executor calls it per 512 frames from
C, which changes no work: the kernel works in 256-frame chunks either way), with the
settings of the chains issue #4 measures (bench_master): the adaptive preset's
compressor, and the one in the "6 EQ + compressor + limiter vs pedalboard" chain, on the
same kind of programme (drums, bass, tones, noise).  Their peer is pedalboard's
Compressor (peak, unlinked) on that programme.
"""

from __future__ import annotations

import numpy as np

from rt_kernels._ffi import channel_pointers, denormals_off, lib
from tools.bench.common import Row, median_seconds, per_unit_ns

FS = 44100
SETTINGS = dict(threshold_db=-20.0, ratio=4.0, attack_ms=5.0, release_ms=100.0)
UNIT = "ns per sample-channel"


def _signal(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(3)
    frames = int(seconds * FS)
    step = FS // 20
    env = np.repeat(10 ** (rng.uniform(-40.0, 0.0, frames // step + 1) / 20), step)[:frames]
    return (0.3 * rng.standard_normal((2, frames)) * env).astype(np.float32)


def run(opts) -> list[Row]:
    import pedalboard

    from rt_kernels.dynamics import Compressor, SoftClipper

    x = _signal(opts.seconds)
    units = x.size
    rows = []

    ours = Compressor(2, FS, knee_db=0.0, link="none", **SETTINGS)
    peer = pedalboard.Compressor(**SETTINGS)

    def run_ours(kernel=ours):
        kernel.reset()
        kernel.process(x)

    t_ours = median_seconds(run_ours, opts.repeats)
    t_peer = median_seconds(lambda: peer.process(x, FS, reset=True), opts.repeats)
    rows.append(Row("compressor peak, unlinked, stereo 44.1k", UNIT, per_unit_ns(t_ours, units),
                    "pedalboard.Compressor", per_unit_ns(t_peer, units)))

    for label, extra in (("compressor peak, max-linked", dict(link="max")),
                         ("compressor RMS 10 ms, unlinked, 6 dB knee", dict(link="none", detector="rms", knee_db=6.0))):
        kwargs = dict(knee_db=0.0, **SETTINGS)
        kwargs.update(extra)
        kernel = Compressor(2, FS, **kwargs)
        rows.append(Row(label, UNIT, per_unit_ns(median_seconds(lambda k=kernel: run_ours(k), opts.repeats), units)))

    rows.extend(_chain_rows(opts))

    clipper = SoftClipper(2, ceiling_db=-1.0, knee_db=6.0)
    hot = (x * 4.0).astype(np.float32)
    rows.append(Row("soft clipper (+12 dB drive)", UNIT,
                    per_unit_ns(median_seconds(lambda: clipper.process(hot), opts.repeats), units)))
    return rows


# (label, Compressor keyword arguments): presets/adaptive.json's "comp" (threshold and
# ratio as given there, before adaptation), and bench_master's equivalent chain (node defaults
# otherwise: peak detector, max link, 6 dB knee).
CHAIN_SETTINGS = (
    ("compressor in the mastering chain (kernel)",
     dict(threshold_db=-24.0, ratio=2.0, knee_db=6.0, attack_ms=20.0, release_ms=200.0, detector="rms", rms_ms=10.0,
          link="max")),
    ("compressor in the 6 EQ chain (kernel)",
     dict(threshold_db=-24.0, ratio=2.0, knee_db=6.0, attack_ms=20.0, release_ms=200.0, detector="peak", link="max")),
)


def _chain_rows(opts) -> list[Row]:
    import pedalboard

    from rt_kernels.dynamics import Compressor
    from tests.material import programme

    x = np.ascontiguousarray(programme("mix", FS, opts.seconds, 2, -6.0, seed=11).T)
    out = np.empty_like(x)
    ins, outs = channel_pointers(x), channel_pointers(out)
    peer = pedalboard.Compressor(threshold_db=-24.0, ratio=2.0, attack_ms=20.0, release_ms=200.0)
    t_peer = median_seconds(lambda: peer.process(x, FS, reset=True), opts.repeats)
    rows = []
    for label, settings in CHAIN_SETTINGS:
        kernel = Compressor(2, FS, **settings)

        def run(state=kernel._state):
            lib.rt_compressor_reset(state)
            with denormals_off():
                lib.rt_compressor_process(state, ins, outs, x.shape[1])
        rows.append(Row(label, UNIT, per_unit_ns(median_seconds(run, opts.repeats), x.size),
                        "pedalboard.Compressor", per_unit_ns(t_peer, x.size)))
    return rows

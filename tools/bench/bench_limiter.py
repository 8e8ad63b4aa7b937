"""Limiter: ours vs pedalboard.Limiter (same ceiling and release, stereo 44.1 kHz),
lookahead scaling (0.5 ms vs 10 ms: the sliding minimum is O(1) per sample), and the
cost of true-peak mode."""

from __future__ import annotations

import numpy as np

from rt_kernels.limiter import Limiter
from tools.bench.common import Row, median_seconds, per_unit_ns

FS = 44100
CEILING_DB = -1.0
RELEASE_MS = 50.0


def _signal(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    frames = int(FS * seconds)
    # Loud programme-like material: noise with a slow level swing, peaks well over the ceiling.
    swing = 1.0 + 0.8 * np.sin(2 * np.pi * 0.5 * np.arange(frames) / FS)
    x = 0.4 * swing * rng.standard_normal((2, frames))
    return np.ascontiguousarray(x.astype(np.float32))


def _ours(x: np.ndarray, **kwargs):
    def run():
        Limiter(2, FS, ceiling_db=CEILING_DB, release_ms=RELEASE_MS, **kwargs).process(x)
    return run


def run(opts) -> list[Row]:
    x = _signal(opts.seconds)
    units = x.size  # sample-channels
    unit = "ns per sample-channel (stereo 44.1 kHz)"

    def ns(fn):
        return per_unit_ns(median_seconds(fn, repeats=opts.repeats), units)

    ours = ns(_ours(x))
    ours_tp = ns(_ours(x, true_peak=True))
    la_short = ns(_ours(x, lookahead_ms=0.5))
    la_long = ns(_ours(x, lookahead_ms=10.0))
    try:
        import pedalboard

        def peer():
            pedalboard.Limiter(threshold_db=CEILING_DB, release_ms=RELEASE_MS)(x, FS)

        peer_ns = ns(peer)
        peer_name = "pedalboard.Limiter"
    except ImportError:  # pragma: no cover
        peer_ns, peer_name = None, "pedalboard missing"
    return [
        Row("limiter 1.5 ms, sample peak", unit, ours, peer_name, peer_ns),
        Row("limiter 1.5 ms, true peak (4x)", unit, ours_tp, peer_name, peer_ns),
        Row("limiter 10 ms lookahead", unit, la_long, "ours at 0.5 ms", la_short, "ratio ~1 (O(1))"),
        Row("limiter true peak vs sample peak", unit, ours_tp, "ours, sample peak", ours),
    ]

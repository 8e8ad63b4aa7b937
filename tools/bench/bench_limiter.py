"""Limiter: ours vs pedalboard.Limiter (same ceiling and release, stereo 44.1 kHz) on two
materials, lookahead scaling (0.5 ms vs 10 ms: the sliding minimum is O(1) per sample),
and the cost of true-peak mode.

- "dense": noise with a slow level swing, peaks well over the ceiling: limiting almost all
  the time (the worst case: every frame through the gain recursion, the true-peak filter
  computed for most of the signal);
- "programme": the test suite's drums + bass + tones + noise mix with its sample peak 1 dB
  over the ceiling: what a mastering chain's limiter sees, mostly below the ceiling with
  occasional overs (unity stretches taken whole, the true-peak filter only near overs).
Ours through the facade in one call per run (the kernel splits internally)."""

from __future__ import annotations

import numpy as np

from rt_kernels.limiter import Limiter
from tools.bench.common import Row, median_seconds, per_unit_ns

FS = 44100
CEILING_DB = -1.0
RELEASE_MS = 50.0


def _dense(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    frames = int(FS * seconds)
    # Loud programme-like material: noise with a slow level swing, peaks well over the ceiling.
    swing = 1.0 + 0.8 * np.sin(2 * np.pi * 0.5 * np.arange(frames) / FS)
    x = 0.4 * swing * rng.standard_normal((2, frames))
    return np.ascontiguousarray(x.astype(np.float32))


def _programme(seconds: float) -> np.ndarray:
    from tests.material import programme

    return np.ascontiguousarray(programme("mix", FS, seconds, 2, CEILING_DB + 1.0, seed=11).T)


def _ours(x: np.ndarray, **kwargs):
    def run():
        Limiter(2, FS, ceiling_db=CEILING_DB, release_ms=RELEASE_MS, **kwargs).process(x)
    return run


def run(opts) -> list[Row]:
    x = _dense(opts.seconds)
    prog = _programme(opts.seconds)
    units = x.size  # sample-channels
    unit = "ns per sample-channel (stereo 44.1 kHz)"

    def ns(fn, n=units):
        return per_unit_ns(median_seconds(fn, repeats=opts.repeats), n)

    ours = ns(_ours(x))
    ours_tp = ns(_ours(x, true_peak=True))
    la_short = ns(_ours(x, lookahead_ms=0.5))
    la_long = ns(_ours(x, lookahead_ms=10.0))
    prog_sp = ns(_ours(prog, auto_release=True), prog.size)
    prog_tp = ns(_ours(prog, auto_release=True, true_peak=True), prog.size)
    try:
        import pedalboard

        def peer(audio):
            return lambda: pedalboard.Limiter(threshold_db=CEILING_DB, release_ms=RELEASE_MS)(audio, FS)

        peer_ns, peer_prog = ns(peer(x)), ns(peer(prog), prog.size)
        peer_name = "pedalboard.Limiter"
    except ImportError:  # pragma: no cover
        peer_ns, peer_prog, peer_name = None, None, "pedalboard missing"
    return [
        Row("limiter 1.5 ms, sample peak, dense", unit, ours, peer_name, peer_ns),
        Row("limiter 1.5 ms, true peak (4x), dense", unit, ours_tp, peer_name, peer_ns),
        Row("limiter 1.5 ms, sample peak, programme", unit, prog_sp, peer_name, peer_prog),
        Row("limiter 1.5 ms, true peak (4x), programme", unit, prog_tp, peer_name, peer_prog),
        Row("limiter 10 ms lookahead, dense", unit, la_long, "ours at 0.5 ms", la_short, "ratio ~1 (O(1))"),
        Row("limiter true peak vs sample peak, dense", unit, ours_tp, "ours, sample peak", ours),
    ]

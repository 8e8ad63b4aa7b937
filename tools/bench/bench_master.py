"""Issue 4: a 3-minute stereo 44.1 kHz programme through the default mastering chain.

- executor alone (processing only, the chain the adaptive preset chose), x real time;
- the whole `master` (analysis pass, loudness-solve passes, file read and write), x real time;
- pedalboard's equivalent chain (six PeakFilters, Compressor, Limiter) on the same audio,
  as ns per sample-channel against our executor.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.mastering import master
from engine.mastering.analysis import analyse_blocks
from engine.mastering.chain import initial_loudness_gain, plan_chain
from engine.mastering.render import resolve_preset
from graph import Executor, Graph, Node
from graph.nodes import eq_node_type
from tools.bench.common import Row, median_seconds, per_unit_ns

FS = 44100
UNIT = "ns per sample-channel; x real time where stated"


def _programme(seconds: float) -> np.ndarray:
    from tests.material import programme

    return programme("mix", FS, seconds, 2, -6.0, seed=11)


def run(opts) -> list[Row]:
    seconds = max(opts.seconds, 180.0)
    audio = _programme(seconds)
    units = audio.size
    rows = []
    preset = resolve_preset("adaptive")
    analysis = analyse_blocks([audio], FS, 2)
    plan = plan_chain(preset, 2, FS, analysis, preset.target.ceiling_dbtp, fixed=True)
    gain = initial_loudness_gain(plan, analysis, preset.target.integrated_lufs)
    planar = np.ascontiguousarray(audio.T)

    def executor_pass(timing=False):
        ex = Executor(plan.graph(gain), 2, FS, max_block=512)
        ex.set_timing(timing)  # as master runs it: per-node cost and peaks are not read offline
        ex.process(planar)

    t = median_seconds(executor_pass, max(3, opts.repeats // 2))
    kept = ", ".join(plan.graph(gain).nodes)
    rows.append(Row(f"executor, default chain ({seconds:.0f} s: {kept})", UNIT, per_unit_ns(t, units),
                    target=f"{seconds / t:.0f}x real time (target >= 1000x)"))
    t_timed = median_seconds(lambda: executor_pass(True), max(3, opts.repeats // 2))
    rows.append(Row("  the same with per-node telemetry on (live default)", UNIT, per_unit_ns(t_timed, units),
                    target=f"{seconds / t_timed:.0f}x real time"))
    # The same with the width stage doing multiband work (adaptive leaves it out when every
    # band has width 1, as for this programme): three bands at 0.9 / 1.0 / 1.1.
    pre, post = plan.split_at_loudness(gain)
    wide = Graph(*pre.nodes.values(), Node("stereo_width", "width_3band", width_1=0.9, width_2=1.0, width_3=1.1),
                 *post.nodes.values())

    def wide_pass():
        ex = Executor(wide, 2, FS, max_block=512)
        ex.set_timing(False)
        ex.process(planar)

    t_wide = median_seconds(wide_pass, max(3, opts.repeats // 2))
    rows.append(Row("  the same + a 3-band width stage (0.9/1.0/1.1)", UNIT, per_unit_ns(t_wide, units),
                    target=f"{seconds / t_wide:.0f}x real time"))

    try:
        import pedalboard as pb
    except ImportError:  # pragma: no cover
        pb = None
    if pb is not None:
        board = pb.Pedalboard([*(pb.PeakFilter(cutoff_frequency_hz=f, gain_db=1.5, q=1.0)
                                 for f in (60, 200, 800, 2500, 6000, 12000)),
                               pb.Compressor(threshold_db=-24, ratio=2, attack_ms=20, release_ms=200),
                               pb.Limiter(threshold_db=-1.0, release_ms=50)])
        peer = median_seconds(lambda: board(audio, FS, reset=True), max(3, opts.repeats // 2))
        rows.append(Row("  default chain vs pedalboard 6 EQ+Comp+Limiter", UNIT, per_unit_ns(t, units),
                        "pedalboard chain", per_unit_ns(peer, units), "(not the same work)"))
        # The same work: six peaking bands, a compressor and a (sample-peak) limiter.
        eq_type = eq_node_type(6)
        bands = {f"b{i + 1}_{k}": v for i, f in enumerate((60, 200, 800, 2500, 6000, 12000))
                 for k, v in (("freq_hz", f), ("gain_db", 1.5), ("q", 1.0))}

        def equivalent_pass():
            same = Graph(Node(eq_type, "eq", **bands),
                         Node("compressor", "comp", threshold_db=-24, ratio=2, attack_ms=20, release_ms=200),
                         Node("limiter", "lim", ceiling_db=-1.0, release_ms=50))
            ex = Executor(same, 2, FS, max_block=512)
            ex.set_timing(False)
            ex.process(planar)

        t_same = median_seconds(equivalent_pass, max(3, opts.repeats // 2))
        rows.append(Row("executor, 6 EQ + compressor + limiter", UNIT, per_unit_ns(t_same, units),
                        "pedalboard chain", per_unit_ns(peer, units), ">= 3x pedalboard"))

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        sf.write(src, audio, FS, subtype="PCM_24")
        reports = []
        t_master = median_seconds(lambda: reports.append(master(src, dst, "adaptive", progress=False)),
                                  max(3, opts.repeats // 2))
    report = reports[-1]
    rows.append(Row(f"master command, median ({report.passes} render passes + analysis)", UNIT,
                    per_unit_ns(t_master, units),
                    target=f"{seconds / t_master:.0f}x real time (target >= 300x)"))
    return rows

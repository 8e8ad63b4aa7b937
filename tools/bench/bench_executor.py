"""The graph executor: 6 peaking biquads + gain + DC blocker, stereo 44.1 kHz.

Compared in the same run with (a) the same C kernels called one by one from
Python through their facades (the overhead the executor removes) and (b)
pedalboard's equivalent chain (6 PeakFilter, Gain, HighpassFilter at 5 Hz).
Figures are ns per sample-channel."""

from __future__ import annotations

import numpy as np

from graph import Executor, Graph, Node, eq_node_type
from rt_kernels.filters import BiquadCascade, Section
from rt_kernels.levels import DcBlocker, Gain
from tools.bench.common import Row, median_seconds, per_unit_ns

FS = 44100
BANDS = [(60.0, 0.7, 2.0), (200.0, 1.0, -1.5), (800.0, 1.2, 1.0), (2500.0, 1.4, -2.0), (6000.0, 0.9, 1.5),
         (12000.0, 0.7, 2.5)]
BLOCK = 512


def graph() -> Graph:
    eq = [Node("biquad", f"eq{i}", type="peaking", freq_hz=f, q=q, gain_db=g) for i, (f, q, g) in enumerate(BANDS)]
    return Graph(*eq, Node("gain", "trim", gain_db=-3.0), Node("dc_blocker", "dc", cutoff_hz=5.0))


def graph_eq6() -> Graph:
    """The same chain with the six bands as one eq6 node (one cascade pass)."""
    eq_node_type(6)
    values = {}
    for i, (f, q, g) in enumerate(BANDS, 1):
        values.update({f"b{i}_freq_hz": f, f"b{i}_q": q, f"b{i}_gain_db": g})
    return Graph(Node("eq6", "eq", **values), Node("gain", "trim", gain_db=-3.0), Node("dc_blocker", "dc", cutoff_hz=5.0))


def run(opts) -> list[Row]:
    frames = int(opts.seconds * FS)
    x = (0.2 * np.random.default_rng(0).standard_normal((2, frames))).astype(np.float32)
    units = x.size

    ex = Executor(graph(), 2, FS, max_block=BLOCK)
    ours = median_seconds(lambda: ex.process(x), repeats=opts.repeats)
    ex_quiet = Executor(graph(), 2, FS, max_block=BLOCK)
    ex_quiet.set_timing(False)
    quiet = median_seconds(lambda: ex_quiet.process(x), repeats=opts.repeats)

    kernels = [BiquadCascade([Section("peaking", f, q=q, gain_db=g)], 2, FS) for f, q, g in BANDS]
    kernels += [Gain(2, FS, gain_db=-3.0), DcBlocker(2, FS, cutoff_hz=5.0)]

    def one_by_one():
        for start in range(0, frames, BLOCK):
            block = np.ascontiguousarray(x[:, start:start + BLOCK])
            for k in kernels:
                block = k.process(block)

    python_loop = median_seconds(one_by_one, repeats=max(1, opts.repeats // 2))

    rows = [
        Row("executor: 6 biquads+gain+dc, block 512", "ns per sample-channel", per_unit_ns(ours, units),
            "same kernels from Python", per_unit_ns(python_loop, units), "overhead removed"),
        Row("executor, telemetry off", "ns per sample-channel", per_unit_ns(quiet, units),
            "executor, telemetry on", per_unit_ns(ours, units), "cost of metering"),
    ]
    try:
        import pedalboard as pb
    except ImportError:  # pragma: no cover
        return rows
    board = pb.Pedalboard([pb.PeakFilter(cutoff_frequency_hz=f, gain_db=g, q=q) for f, q, g in BANDS]
                          + [pb.Gain(gain_db=-3.0), pb.HighpassFilter(cutoff_frequency_hz=5.0)])
    peer = median_seconds(lambda: board(x, FS, buffer_size=BLOCK), repeats=opts.repeats)
    rows.append(Row("executor vs pedalboard chain", "ns per sample-channel", per_unit_ns(ours, units),
                    "pedalboard 0.9 (buffer 512)", per_unit_ns(peer, units), "faster than peer"))
    ex6 = Executor(graph_eq6(), 2, FS, max_block=BLOCK)
    eq6 = median_seconds(lambda: ex6.process(x), repeats=opts.repeats)
    rows.append(Row("executor, bands as one eq6 node", "ns per sample-channel", per_unit_ns(eq6, units),
                    "pedalboard 0.9 (buffer 512)", per_unit_ns(peer, units), "faster than peer"))
    rows.append(Row("executor real time (8-node chain)", "ns per sample-channel", per_unit_ns(ours, units),
                    "", None, f"{frames / FS / ours:,.0f}x real time, one core"))
    return rows

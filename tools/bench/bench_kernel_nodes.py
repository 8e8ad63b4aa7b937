"""Mastering node types through the executor, and the DC blocker: ns per sample-channel
(or per snapshot), each against the named peer in the same run."""

from __future__ import annotations

import numpy as np

from graph import Executor, Graph, Node
from rt_kernels._ffi import channel_pointers, denormals_off, ffi, lib
from rt_kernels.dynamics import Compressor
from rt_kernels.levels import DcBlocker
from rt_kernels.limiter import Limiter
from rt_kernels.psy_eq import PsychoacousticEQ
from rt_kernels.stereo import StereoWidth
from tools.bench.common import Row, median_seconds, per_unit_ns

FS = 48000
UNIT = "ns per sample-channel"


def _chain():
    return Graph(Node("gain", "pre", gain_db=3.0), Node("psy_eq", "eq", band_05_db=4.0),
                 Node("compressor", "comp", threshold_db=-18.0), Node("stereo_width", "sw", width_2=1.3),
                 Node("gain", "trim"), Node("limiter", "lim", true_peak=1))


def run(opts) -> list[Row]:
    frames = int(opts.seconds * FS)
    x = (0.25 * np.random.default_rng(1).standard_normal((2, frames))).astype(np.float32)
    units = x.size
    rows = []

    from scipy import signal
    dc = DcBlocker(2, FS)
    out = np.empty_like(x)
    ins, outs = channel_pointers(x), channel_pointers(out)

    def dc_call():
        with denormals_off():
            lib.rt_dc_blocker_process(dc._state, ins, outs, frames)
    r = np.exp(-2 * np.pi * 5.0 / FS)
    x64 = x.astype(np.float64)
    rows.append(Row("dc blocker (grid flush), stereo", UNIT, per_unit_ns(median_seconds(dc_call, opts.repeats), units),
                    "scipy lfilter (float64)",
                    per_unit_ns(median_seconds(lambda: signal.lfilter([(1 + r) / 2, -(1 + r) / 2], [1, -r], x64, axis=1),
                                               opts.repeats), units)))

    # full chain: executor (512-frame callbacks) vs the same kernels' facades called in sequence
    block = 512
    pieces = [np.ascontiguousarray(x[:, i:i + block]) for i in range(0, frames - block + 1, block)]
    n_units = len(pieces) * block * 2
    ex = Executor(_chain(), 2, FS, max_block=block)
    ex.set_timing(False)

    def run_ex():
        for p in pieces:
            ex.process(p)
    facades = [PsychoacousticEQ(2, FS, gains_db=[0.0] * 4 + [4.0] + [0.0] * 20), Compressor(2, FS, threshold_db=-18.0),
               StereoWidth(FS, widths=(1.0, 1.3, 1.0)), Limiter(2, FS, true_peak=True)]

    def run_fac():
        for p in pieces:
            for f in facades:
                p = f.process(p)
    rows.append(Row("chain gain>psy_eq>comp>width>gain>limiter(tp)", UNIT,
                    per_unit_ns(median_seconds(run_ex, opts.repeats), n_units),
                    "the four facades in sequence", per_unit_ns(median_seconds(run_fac, opts.repeats), n_units)))

    # a 25-band psy_eq snapshot: one deferred solve (adapter) vs one solve per band
    node_state = lib.rt_psy_eq_node_state_create(2, FS, 20.0)
    ops = lib.rt_psy_eq_node_ops()
    eq = lib.rt_psy_eq_create(2, FS, 20.0)
    short = np.ascontiguousarray(x[:, :32])
    o32 = np.empty_like(short)
    si, so = channel_pointers(short), channel_pointers(o32)
    gains = [ffi.new("double[25]", [((i * 7 + k) % 11) - 5.0 for i in range(25)]) for k in range(2)]
    flip = [0]

    def snapshot_node():
        flip[0] ^= 1
        g = gains[flip[0]]
        for i in range(25):
            ops.set_param(node_state, i, g[i])
        ops.process(node_state, si, so, 32)

    def snapshot_per_band():
        flip[0] ^= 1
        g = gains[flip[0]]
        for i in range(25):
            lib.rt_psy_eq_set_gains_db(eq, g)   # what a set_param that solved per band would cost
        lib.rt_psy_eq_process(eq, si, so, 32)
    rows.append(Row("psy_eq node: 25-band snapshot + 32 frames", "ns per snapshot",
                    median_seconds(snapshot_node, opts.repeats) * 1e9, "25 solves (one per band)",
                    median_seconds(snapshot_per_band, opts.repeats) * 1e9))
    ops.destroy(node_state)
    lib.rt_psy_eq_destroy(eq)
    return rows

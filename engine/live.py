"""The live chain: a preset's nodes with their stored parameters, built by the same
planner as offline rendering, followed by meter nodes (loudness, and phase correlation
for stereo) whose lock-free reads feed the printed meters and the REPL toolbar.
Adaptive analysis needs the whole input, so live monitoring uses the preset's values;
the loudness stage stays at its stored gain.  For a non-adaptive preset without a
loudness stage the live output equals engine.render of the same signal (the meters
are pass-through)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from engine.mastering.chain import plan_chain
from graph import Executor, Graph, Node, read_correlation, read_loudness
from graph.nodes import NODE_TYPES
from presets import Preset, PresetError, load_preset
from rt_kernels._ffi import lib

METER_NODE = "meter"
CORRELATION_NODE = "correlation"
#: Nodes the live chain adds after the preset's: not part of any preset.
METER_NODES = (METER_NODE, CORRELATION_NODE)


def live_graph(preset: Preset, channels: int, sample_rate: float) -> tuple[Graph, list[str]]:
    """The preset's chain exactly as offline rendering builds it without an analysis
    (stored parameters, stereo-only stages left out for mono, the limiter under the
    true-peak ceiling), plus the meters.  Returns the graph and notes."""
    for cfg in preset.chain:
        if cfg.name in METER_NODES:
            raise PresetError(f"preset {preset.name}: node name {cfg.name!r} is reserved for the live meters "
                              f"({', '.join(METER_NODES)})")
    plan = plan_chain(preset, channels, int(sample_rate), None, preset.target.ceiling_dbtp)
    meters = [Node("loudness_meter", METER_NODE, true_peak=1)]
    if channels == 2:
        meters.append(Node("correlation_meter", CORRELATION_NODE, window_ms=300.0))
    return Graph(*plan.graph().root.elements, *meters), plan.notes


def live_executor(preset: str | Preset, channels: int, sample_rate: float, max_block: int = 1024) -> tuple[Executor, list[str]]:
    if not isinstance(preset, Preset):
        preset = load_preset(preset, node_types=NODE_TYPES)
    graph, notes = live_graph(preset, channels, sample_rate)
    return Executor(graph, channels, sample_rate, max_block=max_block, intensity=preset.intensity), notes


def _db(v: float) -> str:
    return "  -inf" if v is None or not math.isfinite(v) else f"{v:6.1f}"


def meter_text(executor: Executor) -> str:
    """Momentary and short-term loudness, true peak of the output (lock-free reads)."""
    v = read_loudness(executor, METER_NODE)
    return f"M {_db(v.momentary_lufs)} LUFS  S {_db(v.short_term_lufs)} LUFS  TP {_db(v.true_peak_dbtp)} dBTP"


@dataclass(frozen=True)
class LiveMeters:
    """One reading of the live chain's meters (all lock-free; -inf = silence).

    ``gain_reduction_db``: per compressor/limiter node, dB >= 0 -- the largest since
    the previous ``take`` reading (``read_meters(..., take=True)``), else at the last
    processed frame.  ``correlation``: None for mono."""

    momentary_lufs: float
    short_term_lufs: float
    true_peak_dbtp: float | None
    gain_reduction_db: dict[str, float] = field(default_factory=dict)
    correlation: float | None = None


def gain_reduction_db(node, take: bool = False) -> float | None:
    """Gain reduction (dB, >= 0) of a bound compressor or limiter node, read lock-free
    from its kernel's atomics; None for other node types.  ``take``: the largest since
    the previous take (and clear it -- one reader only, the toolbar), else the value
    at the last processed frame."""
    if not node.bound:
        return None
    state = lib.rt_node_state(node.c_node)
    if node.type.name == "compressor":
        kernel = lib.rt_compressor_node_kernel(state)
        read = lib.rt_compressor_gr_max_take_db if take else lib.rt_compressor_gr_db
        return max(float(read(kernel, ch)) for ch in range(node.context.channels))
    if node.type.name == "limiter":
        return float((lib.rt_limiter_gr_max_take_db if take else lib.rt_limiter_gr_now_db)(state))
    return None


def read_meters(executor: Executor, take: bool = False) -> LiveMeters:
    """The live chain's meters: loudness node, correlation node (stereo), and the gain
    reduction of every compressor and limiter node.  Safe from any control thread
    while the audio thread runs."""
    v = read_loudness(executor, METER_NODE)
    nodes = executor.graph.nodes
    gr = {}
    for name, node in nodes.items():
        value = gain_reduction_db(node, take)
        if value is not None:
            gr[name] = value
    corr = read_correlation(executor, CORRELATION_NODE) if CORRELATION_NODE in nodes else None
    return LiveMeters(v.momentary_lufs, v.short_term_lufs, v.true_peak_dbtp, gr, corr)

"""The live chain: a preset's nodes with their stored parameters, built by the same
planner as offline rendering, followed by a loudness meter node whose lock-free snapshot
feeds the printed meters (and, later, the REPL toolbar).  Adaptive analysis needs the
whole input, so live monitoring uses the preset's values; the loudness stage stays at
its stored gain.  For a non-adaptive preset without a loudness stage the live output
equals engine.render of the same signal."""

from __future__ import annotations

import math

from engine.mastering.chain import plan_chain
from graph import Executor, Graph, Node, read_loudness
from graph.nodes import NODE_TYPES
from presets import Preset, load_preset

METER_NODE = "meter"


def live_graph(preset: Preset, channels: int, sample_rate: float) -> tuple[Graph, list[str]]:
    """The preset's chain exactly as offline rendering builds it without an analysis
    (stored parameters, stereo-only stages left out for mono, the limiter under the
    true-peak ceiling), plus the meter.  Returns the graph and notes."""
    plan = plan_chain(preset, channels, int(sample_rate), None, preset.target.ceiling_dbtp)
    return Graph(*plan.graph().root.elements, Node("loudness_meter", METER_NODE, true_peak=1)), plan.notes


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

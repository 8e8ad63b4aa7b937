"""From a preset (and, when it is adaptive, an analysis of the input) to a graph.

The mastering chain, in order: input gain -> psychoacoustic EQ -> compressor -> stereo
width -> loudness normalisation gain -> true-peak limiter.  Presets name their nodes;
adaptation acts on these names (a preset without one of them simply has no such stage):

    input      gain           brought to the preset's reference level (reference_lufs)
    eq         psy_eq         band gains from the Bark-band balance against eq_target
    comp       compressor     ratio eased for programme that is already dense (low crest)
    width      stereo_width   widths nudged from the input's phase correlation
    loudness   gain           solved by rendering so the output meets the target
    limiter    limiter        ceiling = the preset's (or the caller's) true-peak ceiling - 0.1 dB
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from engine.mastering.analysis import InputAnalysis
from graph import Graph, Node
from graph.nodes import NODE_TYPES
from presets import Preset
from rt_kernels.psy_eq import BANDS, adaptive_gains_db

INPUT_GAIN_LIMIT_DB = 24.0
# The limiter's true-peak detection (4x) holds its ceiling to within 0.1 dB of an 8x
# measurement; mastering promises "at or below", so the limiter is set that much lower.
TRUE_PEAK_MARGIN_DB = 0.1
LOUDNESS_GAIN_LIMIT_DB = 36.0


def band_param(index: int) -> str:
    return f"band_{index + 1:02d}_db"


@dataclass
class ChainPlan:
    """The parameters chosen for one render: per node, plus what was decided and why."""

    preset: Preset
    channels: int
    params: dict[str, dict[str, Any]]
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def has_loudness_stage(self) -> bool:
        return "loudness" in self.params

    def graph(self, loudness_gain_db: float | None = None) -> Graph:
        return Graph(*self._nodes(loudness_gain_db))

    def split_at_loudness(self, loudness_gain_db: float | None = None) -> tuple[Graph, Graph] | None:
        """The chain as (everything before the loudness stage, the loudness stage and
        after), or None when there is no loudness stage or nothing before it.  The first
        part does not depend on the loudness gain, so a loudness solve renders it once."""
        nodes = self._nodes(loudness_gain_db)
        at = next((i for i, n in enumerate(nodes) if n.name == "loudness"), None)
        if not at:
            return None
        return Graph(*nodes[:at]), Graph(*nodes[at:])

    def _nodes(self, loudness_gain_db: float | None) -> list[Node]:
        nodes = []
        for cfg in self.preset.chain:
            if cfg.name in self.skipped:
                continue
            params = dict(self.params[cfg.name])
            if cfg.name == "loudness" and loudness_gain_db is not None:
                params["gain_db"] = loudness_gain_db
            if cfg.bypass:
                params["bypass"] = True
            nodes.append(Node(cfg.type, cfg.name, **params))
        return nodes


def _clamp(v: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, v))


def plan_chain(preset: Preset, channels: int, sample_rate: int, analysis: InputAnalysis | None,
               ceiling_dbtp: float, *, fixed: bool = False) -> ChainPlan:
    """The parameters for `preset` on this input.  ``fixed``: they will not change while
    the chain runs (an offline render), so stages may be simplified to what they do; a
    live chain keeps every stage, since its parameters can be set at any time."""
    params = {cfg.name: dict(cfg.params) for cfg in preset.chain}
    plan = ChainPlan(preset, channels, params)
    _adapt(plan, preset, channels, analysis, ceiling_dbtp)
    if fixed:
        _simplify_width(plan)
    return plan


def _simplify_width(plan: ChainPlan) -> None:
    """A width stage with one width for every band and no mono bass is that width on the
    side signal, nothing more: its crossovers would only add their all-pass phase shift to
    both channels (LR4 bands sum to an all-pass, not to the input).  An offline render's
    parameters never change, so the stage is rendered as what it does: left out at unity,
    one band (M/S without crossovers) otherwise."""
    spec = NODE_TYPES["stereo_width"]
    options = {p.name: p.default for p in spec.options}
    for cfg in plan.preset.chain:
        if cfg.type != "stereo_width" or cfg.name in plan.skipped or cfg.bypass:
            continue
        values = plan.params[cfg.name]
        bands = int(values.get("bands", options["bands"]))
        widths = {float(values.get(f"width_{i}", spec.param(f"width_{i}").default)) for i in range(1, bands + 1)}
        if len(widths) != 1 or float(values.get("mono_bass_hz", spec.param("mono_bass_hz").default)) != 0.0:
            continue
        width = widths.pop()
        if width == 1.0:
            plan.skipped.append(cfg.name)
            plan.notes.append(f"{cfg.name}: every band at width 1 and no mono bass: left out "
                              f"(its crossovers would only shift the phase)")
        elif bands > 1:
            values["bands"] = 1
            values["width_1"] = width
            plan.notes.append(f"{cfg.name}: one width ({width:g}) for every band: rendered as one band "
                              f"(M/S without crossovers, so no crossover phase shift)")


def _adapt(plan: ChainPlan, preset: Preset, channels: int, analysis: InputAnalysis | None,
           ceiling_dbtp: float) -> None:
    params = plan.params
    for cfg in preset.chain:
        if cfg.type == "stereo_width" and channels != 2:
            plan.skipped.append(cfg.name)
            plan.notes.append(f"{cfg.name}: skipped, the input is {'mono' if channels == 1 else f'{channels}-channel'}")
    if "limiter" in params:
        params["limiter"]["ceiling_db"] = round(ceiling_dbtp - TRUE_PEAK_MARGIN_DB, 6)
    if not preset.adaptive or analysis is None:
        return
    m = analysis.measurement
    if m.silent:
        plan.notes.append("adaptive: the input is silent; parameters left as the preset has them")
        return
    if "input" in params:
        gain = _clamp(preset.reference_lufs - m.integrated_lufs, -INPUT_GAIN_LIMIT_DB, INPUT_GAIN_LIMIT_DB)
        params["input"]["gain_db"] = round(gain, 3)
    if "eq" in params and "eq" not in plan.skipped:
        if analysis.bands is None:
            plan.notes.append("eq: input shorter than one analysis segment; EQ left flat")
        else:
            gains = adaptive_gains_db(analysis.bands, target=preset.eq_target) * preset.eq_strength
            for i in range(BANDS):
                params["eq"][band_param(i)] = round(float(gains[i]), 3)
    if "comp" in params:
        ratio = float(params["comp"].get("ratio", NODE_TYPES["compressor"].param("ratio").default))
        # Dense programme (crest under ~8 dB) is already compressed: ease the ratio toward 1:1.
        weight = _clamp((analysis.crest_db - 8.0) / 8.0, 0.0, 1.0) if math.isfinite(analysis.crest_db) else 1.0
        params["comp"]["ratio"] = round(1.0 + (ratio - 1.0) * weight, 3)
        if weight < 1.0:
            plan.notes.append(f"comp: crest factor {analysis.crest_db:.1f} dB, ratio eased to {params['comp']['ratio']}:1")
    if "width" in params and "width" not in plan.skipped and analysis.correlation is not None:
        r = analysis.correlation
        factor = 1.1 if r > 0.9 else (0.9 if r < 0.2 else 1.0)
        if factor != 1.0:
            for key in [k for k in params["width"] if k.startswith("width_")] or ["width_2", "width_3"]:
                base = float(params["width"].get(key, 1.0))
                params["width"][key] = round(_clamp(base * factor, 0.0, 2.0), 3)
            plan.notes.append(f"width: correlation {r:.2f}, widths scaled by {factor}")


def initial_loudness_gain(plan: ChainPlan, analysis: InputAnalysis | None, target_lufs: float) -> float:
    """First guess for the loudness stage: the gap between the target and the level after
    the input gain (EQ and compressor are assumed to leave loudness about where it was)."""
    if analysis is None or analysis.measurement.silent:
        return 0.0
    level = analysis.measurement.integrated_lufs + float(plan.params.get("input", {}).get("gain_db", 0.0))
    return _clamp(target_lufs - level, -LOUDNESS_GAIN_LIMIT_DB, LOUDNESS_GAIN_LIMIT_DB)


__all__ = ["ChainPlan", "plan_chain", "initial_loudness_gain", "band_param", "LOUDNESS_GAIN_LIMIT_DB"]

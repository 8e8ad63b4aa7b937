"""Node types of the mastering kernels (C adapters: rt_kernels/csrc/mastering_nodes.c)
and control-thread readers for the metering nodes.

Registered on ``import graph``:

==================  ===========================================================
compressor          threshold_db, ratio, knee_db, attack_ms, release_ms, makeup_db,
                    auto_makeup (0/1), link (max/mean/none), detector (peak/rms), rms_ms
limiter             ceiling_db, release_ms, auto_release; options lookahead_ms, true_peak
psy_eq              band_01_db .. band_25_db; option ramp_ms
stereo_width        crossover_1..3_hz, width_1..4, mono_bass_hz; options bands, ramp_ms
soft_clipper        ceiling_db, knee_db
loudness_meter      (pass-through sink) option true_peak; read with read_loudness()
correlation_meter   (pass-through sink) option window_ms; read with read_correlation()
==================  ===========================================================

Ranges are the kernel facades' (rt_kernels/dynamics.py, limiter.py, psy_eq.py,
stereo.py).  Smoothing: where the kernel smooths by itself (compressor: makeup ramp
and the attack/release smoother after the static curve; psy_eq: gain ramp over
ramp_ms; stereo_width: width and mono-bass fades over ramp_ms) the value is handed
over at once (``kernel_smoothing``).  The limiter's and soft clipper's ceilings (no
kernel ramp) are ramped by the executor over 20 ms; switches and times jump.

stereo_width: the three crossovers must stay strictly increasing (NodeType.check; the
unused ones too, so the check does not depend on the ``bands`` option) and at most
0.45 * sample_rate (the facade's limit: at 22.05 kHz and below, lower crossover_3_hz
from its 10 kHz default).  The C adapter refuses (-1) a value that leaves the used
crossovers non-increasing, and applies crossovers at the start of the next process
call, only while the used ones increase.  mono_bass_hz: 0 = off, else 20..1000 Hz.
Factory refuses channels != 2.

psy_eq: a full gain solve costs ~15 us, so the C adapter's set_param only stores a
band's command and marks it pending; the next process call applies all pending bands
with ONE rt_psy_eq_set_gains_db (a 25-band snapshot costs one solve), then the kernel
ramps over ramp_ms.  A snapshot therefore takes effect at the start of the node's
next process call (the frame the executor applies the snapshot at).
"""

from __future__ import annotations

from graph.nodes import BuildContext, NodeType, register_node_type
from graph.params import ParamSpec
from rt_kernels import dynamics, limiter as _limiter, stereo as _stereo
from rt_kernels._ffi import ffi, lib
from rt_kernels.loudness import DEFAULT_LAYOUTS, LoudnessValues, _weights

__all__ = ["COMPRESSOR", "LIMITER", "PSY_EQ", "STEREO_WIDTH", "SOFT_CLIPPER", "LOUDNESS_METER",
           "CORRELATION_METER", "read_loudness", "read_correlation"]

_ON = dict(lo=0.0, hi=1.0, integer=True)

# ---- compressor ---------------------------------------------------------------------------------

COMPRESSOR = register_node_type(NodeType(
    "compressor",
    params=(
        ParamSpec("threshold_db", "dBFS", *dynamics.THRESHOLD_DB_RANGE, -20.0, kernel_smoothing=True,
                  doc="passes through the attack/release smoother"),
        ParamSpec("ratio", "", *dynamics.RATIO_RANGE, 4.0, kernel_smoothing=True),
        ParamSpec("knee_db", "dB", *dynamics.KNEE_DB_RANGE, 6.0, kernel_smoothing=True, doc="full width; 0 = hard"),
        ParamSpec("attack_ms", "ms", *dynamics.ATTACK_MS_RANGE, 10.0),
        ParamSpec("release_ms", "ms", *dynamics.RELEASE_MS_RANGE, 100.0),
        ParamSpec("makeup_db", "dB", *dynamics.MAKEUP_DB_RANGE, 0.0, kernel_smoothing=True,
                  doc="the kernel ramps makeup over 20 ms"),
        ParamSpec("auto_makeup", "", default=0.0, **_ON),
        ParamSpec("link", "", default="max", choices={k: int(dynamics.LINKS[k]) for k in ("max", "mean", "none")}),
        ParamSpec("detector", "", default="peak", choices={k: int(v) for k, v in dynamics.DETECTORS.items()}),
        ParamSpec("rms_ms", "ms", *dynamics.RMS_MS_RANGE, 10.0),
    ),
    factory=lambda ctx, o: (lib.rt_compressor_node_ops(),
                            lib.rt_compressor_node_state_create(ctx.channels, ctx.sample_rate)),
    doc="Feed-forward compressor (rt_kernels/csrc/compressor.c), latency 0.",
))

# ---- limiter ------------------------------------------------------------------------------------

LIMITER = register_node_type(NodeType(
    "limiter",
    params=(
        ParamSpec("ceiling_db", "dBFS", *_limiter.CEILING_DB_RANGE, -0.3, smoothing_ms=20.0,
                  doc="dBTP with true_peak=1; ramped by the executor"),
        ParamSpec("release_ms", "ms", *_limiter.RELEASE_MS_RANGE, 50.0),
        ParamSpec("auto_release", "", default=0.0, **_ON),
    ),
    options=(
        ParamSpec("lookahead_ms", "ms", *_limiter.LOOKAHEAD_MS_RANGE, 1.5),
        ParamSpec("true_peak", "", default=0.0, **_ON),
    ),
    factory=lambda ctx, o: (lib.rt_limiter_node_ops(),
                            lib.rt_limiter_create(ctx.channels, ctx.sample_rate, o["lookahead_ms"], -0.3, 50.0, 0,
                                                  int(o["true_peak"]))),
    doc="Brick-wall lookahead limiter (rt_kernels/csrc/limiter.c); latency fixed by lookahead_ms and true_peak.",
))

# ---- psy_eq -------------------------------------------------------------------------------------

PSY_EQ_BANDS = int(lib.RT_PSY_EQ_BANDS)
_PSY_MAX = float(lib.RT_PSY_EQ_MAX_COMMAND_DB)

PSY_EQ = register_node_type(NodeType(
    "psy_eq",
    params=tuple(ParamSpec(f"band_{i:02d}_db", "dB", -_PSY_MAX, _PSY_MAX, 0.0, kernel_smoothing=True,
                           doc="magnitude at the band centre; ramps over ramp_ms")
                 for i in range(1, PSY_EQ_BANDS + 1)),
    options=(ParamSpec("ramp_ms", "ms", 0.0, float(lib.RT_PSY_EQ_MAX_RAMP_MS), 20.0),),
    factory=lambda ctx, o: (lib.rt_psy_eq_node_ops(),
                            lib.rt_psy_eq_node_state_create(ctx.channels, ctx.sample_rate, o["ramp_ms"])),
    doc="25 Bark-band psychoacoustic EQ (rt_kernels/csrc/psy_eq.c); one gain solve per snapshot.",
))

# ---- stereo_width -------------------------------------------------------------------------------

_XOVER_DEFAULTS = (250.0, 4000.0, 10000.0)
_XOVER_HI = 20000.0  # and below 0.45 * sample_rate (check)


def _stereo_width_check(values, sample_rate):
    xs = [values[f"crossover_{i}_hz"] for i in (1, 2, 3)]
    for i, f in enumerate(xs, 1):
        if f > 0.45 * sample_rate:
            return f"crossover_{i}_hz = {f:g} Hz is above 0.45 * sample_rate = {0.45 * sample_rate:g} Hz"
    for i in (1, 2):
        if not xs[i] > xs[i - 1]:
            return (f"crossover_{i + 1}_hz = {xs[i]:g} Hz is not above crossover_{i}_hz = {xs[i - 1]:g} Hz; "
                    f"the crossovers must increase (unused ones too)")
    mb = values["mono_bass_hz"]
    if 0.0 < mb < _stereo.MONO_BASS_HZ_RANGE[0]:
        return (f"mono_bass_hz = {mb:g} Hz is below {_stereo.MONO_BASS_HZ_RANGE[0]:g} Hz; "
                f"use 0 (off) or {_stereo.MONO_BASS_HZ_RANGE[0]:g}..{_stereo.MONO_BASS_HZ_RANGE[1]:g} Hz")
    return None


def _stereo_width_factory(ctx: BuildContext, o):
    if ctx.channels != 2:
        raise ValueError(f"stereo_width: channels = {ctx.channels}; this node takes stereo (2 channels) only")
    return (lib.rt_stereo_width_node_ops(),
            lib.rt_stereo_width_node_state_create(2, ctx.sample_rate, int(o["bands"]), o["ramp_ms"]))


STEREO_WIDTH = register_node_type(NodeType(
    "stereo_width",
    params=(
        *(ParamSpec(f"crossover_{i}_hz", "Hz", _stereo.CROSSOVER_HZ_MIN, _XOVER_HI, d,
                    doc="applies at once (coefficients recomputed, history kept); first bands-1 used")
          for i, d in enumerate(_XOVER_DEFAULTS, 1)),
        *(ParamSpec(f"width_{i}", "", *_stereo.WIDTH_RANGE, 1.0, kernel_smoothing=True,
                    doc="0 = mono, 1 = unchanged, 2 = side +6 dB; ramps over ramp_ms")
          for i in range(1, 5)),
        ParamSpec("mono_bass_hz", "Hz", 0.0, _stereo.MONO_BASS_HZ_RANGE[1], 0.0, kernel_smoothing=True,
                  doc="0 = off, else 20..1000 Hz; fades over ramp_ms"),
    ),
    options=(
        ParamSpec("bands", "", 1, 4, 3, integer=True),
        ParamSpec("ramp_ms", "ms", *_stereo.RAMP_MS_RANGE, 20.0),
    ),
    factory=_stereo_width_factory,
    check=_stereo_width_check,
    doc="Multiband mid/side width with LR4 crossovers (rt_kernels/csrc/stereo_width.c); stereo only.",
))

# ---- soft_clipper -------------------------------------------------------------------------------

SOFT_CLIPPER = register_node_type(NodeType(
    "soft_clipper",
    params=(
        ParamSpec("ceiling_db", "dBFS", *dynamics.CEILING_DB_RANGE, -1.0, smoothing_ms=20.0),
        ParamSpec("knee_db", "dB", *dynamics.CLIP_KNEE_DB_RANGE, 6.0, smoothing_ms=20.0),
    ),
    factory=lambda ctx, o: (lib.rt_soft_clipper_node_ops(), lib.rt_soft_clipper_node_state_create(ctx.channels)),
    doc="Static soft clipper (rt_kernels/csrc/soft_clipper.c); the executor ramps both values.",
))

# ---- meters -------------------------------------------------------------------------------------


def _loudness_factory(ctx: BuildContext, o):
    if ctx.channels not in DEFAULT_LAYOUTS:
        raise ValueError(f"loudness_meter: channels = {ctx.channels} has no default BS.1770 layout; "
                         f"this node takes {', '.join(map(str, DEFAULT_LAYOUTS))} channels "
                         f"({', '.join(DEFAULT_LAYOUTS.values())})")
    weights, _ = _weights("loudness_meter", ctx.channels, None, None)
    return (lib.rt_loudness_node_ops(),
            lib.rt_loudness_node_state_create(ctx.channels, ctx.sample_rate, ffi.new("double[]", weights),
                                              int(o["true_peak"])))


LOUDNESS_METER = register_node_type(NodeType(
    "loudness_meter",
    params=(),
    options=(ParamSpec("true_peak", "", default=1.0, **_ON),),
    factory=_loudness_factory,
    doc="Pass-through BS.1770 / R 128 meter (rt_kernels/csrc/loudness.c); read with graph.read_loudness.",
))


def _correlation_factory(ctx: BuildContext, o):
    if ctx.channels != 2:
        raise ValueError(f"correlation_meter: channels = {ctx.channels}; this node takes stereo (2 channels) only")
    return (lib.rt_correlation_node_ops(),
            lib.rt_correlation_node_state_create(2, ctx.sample_rate, o["window_ms"]))


CORRELATION_METER = register_node_type(NodeType(
    "correlation_meter",
    params=(),
    options=(ParamSpec("window_ms", "ms", *_stereo.WINDOW_MS_RANGE, 300.0),),
    factory=_correlation_factory,
    doc="Pass-through stereo phase-correlation meter (rt_kernels/csrc/correlation.c).",
))


def _meter_state(where: str, executor, name: str, kind: str):
    node = executor.graph.nodes.get(name)
    if node is None:
        raise ValueError(f"{where}: no node {name!r} in the running graph (nodes: {', '.join(executor.graph.nodes)})")
    if node.type.name != kind:
        raise ValueError(f"{where}: node {name!r} is a {node.type.name}, not a {kind}")
    return node, lib.rt_node_state(node.c_node)


def read_loudness(executor, name: str) -> LoudnessValues:
    """The loudness_meter node ``name``'s values as of the end of the last process call.

    Lock-free (the kernel's seqlock snapshot): safe from a control thread while the
    audio thread runs ``executor.process``."""
    node, state = _meter_state("read_loudness", executor, name, "loudness_meter")
    v = ffi.new("rt_loudness_values *")
    lib.rt_loudness_snapshot(lib.rt_loudness_node_meter(state), v)
    n = node.context.channels
    tp = bool(v.true_peak_factor)
    return LoudnessValues(
        momentary_lufs=v.momentary_lufs, short_term_lufs=v.short_term_lufs, integrated_lufs=v.integrated_lufs,
        integrated_gate_lufs=v.integrated_gate_lufs, loudness_range_lu=v.loudness_range_lu,
        max_momentary_lufs=v.max_momentary_lufs, max_short_term_lufs=v.max_short_term_lufs,
        sample_peak_dbfs=v.sample_peak_dbfs, true_peak_dbtp=v.true_peak_dbtp if tp else None,
        channel_sample_peak_dbfs=tuple(v.channel_sample_peak_dbfs[0:n]),
        channel_true_peak_dbtp=tuple(v.channel_true_peak_dbtp[0:n]) if tp else None,
        true_peak_factor=int(v.true_peak_factor), frames=int(v.frames), nonfinite_ticks=int(v.nonfinite_ticks))


def read_correlation(executor, name: str) -> float:
    """The correlation_meter node ``name``'s value in [-1, 1] (atomic; any thread)."""
    _, state = _meter_state("read_correlation", executor, name, "correlation_meter")
    return float(lib.rt_correlation_value(lib.rt_correlation_node_meter(state)))

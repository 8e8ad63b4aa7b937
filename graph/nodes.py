"""Node types (a kernel + its parameter specs + a factory) and nodes (instances)."""

from __future__ import annotations

import itertools
import re
import weakref
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from graph.params import BYPASS, ParamSpec
from rt_kernels._ffi import ffi, lib
from rt_kernels.filters import FILTER_TYPES, Q_RANGE


@dataclass(frozen=True)
class BuildContext:
    """What a factory needs to create a C node for one executor."""

    channels: int
    sample_rate: float
    max_block: int
    bypass_fade_frames: int


#: factory(ctx, options) -> (const rt_node_ops *, void *state).  The state is a
#: freshly created kernel (or adapter) state; NULL means creation failed.
Factory = Callable[[BuildContext, Mapping[str, float]], tuple[Any, Any]]
#: check(values, sample_rate) -> None or a one-line reason the combination is invalid.
Checker = Callable[[Mapping[str, float], float], "str | None"]


@dataclass(frozen=True)
class NodeType:
    """A kernel as the graph sees it.

    ``params``: live parameters, in C param-id order (id = index), publishable
    while running.  ``options``: creation-time arguments (fixed for the node's
    life, e.g. a delay length, since latency may not change inside a plan).
    ``check``: optional cross-parameter validation.
    """

    name: str
    params: tuple[ParamSpec, ...]
    factory: Factory
    options: tuple[ParamSpec, ...] = ()
    check: Checker | None = None
    doc: str = ""

    def param(self, name: str) -> ParamSpec:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def param_id(self, name: str) -> int:
        if name == "bypass":
            return int(lib.RT_PARAM_BYPASS)
        for i, p in enumerate(self.params):
            if p.name == name:
                return i
        raise KeyError(name)


class _Registry(dict):
    """Node types by name.  ``eq<N>`` (1..64 bands) is made on first lookup, so a preset
    or a Node can name any EQ size without eq_node_type(N) having been called first."""

    def __missing__(self, name):
        m = re.fullmatch(r"eq([1-9][0-9]?)", str(name))
        if m and int(m.group(1)) <= 64:
            return eq_node_type(int(m.group(1)))
        raise KeyError(name)

    def __contains__(self, name) -> bool:
        try:
            self[name]
        except KeyError:
            return False
        return True

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default


NODE_TYPES: dict[str, NodeType] = _Registry()


def register_node_type(node_type: NodeType) -> NodeType:
    """Make a node type available by name (Node("compressor", ...))."""
    if dict.__contains__(NODE_TYPES, node_type.name):
        raise ValueError(f"register_node_type: {node_type.name!r} is already registered")
    names = [p.name for p in node_type.params] + [o.name for o in node_type.options]
    if "bypass" in names or len(set(names)) != len(names):
        raise ValueError(f"register_node_type: {node_type.name}: parameter names must be unique and not 'bypass'")
    NODE_TYPES[node_type.name] = node_type
    return node_type


_ids = itertools.count(1)


class Node:
    """One kernel instance in a graph.

    ``Node("biquad", "low", type="low_shelf", freq_hz=120, gain_db=2)``: keyword
    arguments are live parameters or creation options of the node type, plus
    ``bypass``.  The C state is created when the node first joins an executor
    (``bind``); the same Node object in a later graph keeps its state.
    """

    def __init__(self, kind: str | NodeType, name: str, /, **values: Any):
        if isinstance(kind, str):
            if kind not in NODE_TYPES:
                raise ValueError(f"Node {name!r}: type = {kind!r} is not one of {', '.join(sorted(NODE_TYPES))}")
            kind = NODE_TYPES[kind]
        type = kind
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"Node: name = {name!r} must be an identifier (letters, digits, _)")
        self.type: NodeType = type
        self.name = name
        self.node_id = next(_ids)
        self._given = dict(values)
        known = {p.name for p in type.params} | {o.name for o in type.options} | {"bypass"}
        for key in values:
            if key not in known:
                raise ValueError(f"Node {name}: {type.name} has no parameter {key!r} (known: {', '.join(sorted(known))})")
        self.values: dict[str, float] = {}   # live parameters as last published (C units)
        self.options: dict[str, float] = {}
        self.context: BuildContext | None = None
        self._owner = None
        self._c = ffi.NULL

    def __repr__(self) -> str:
        return f"Node({self.type.name!r}, {self.name!r})"

    @property
    def bound(self) -> bool:
        return self.context is not None

    @property
    def c_node(self):
        """The rt_node * (after bind)."""
        return self._c

    @property
    def latency_frames(self) -> int:
        if not self.bound:
            raise RuntimeError(f"Node {self.name}: latency is known once the node is bound to an executor")
        return int(lib.rt_node_latency(self._c))

    def bind(self, ctx: BuildContext, owner: object | None = None) -> None:
        """Create the C node for this executor configuration (once).

        ``owner``: the executor that will run it; a node state can belong to one
        executor only (two audio threads must never run the same state)."""
        if self.context is not None:
            current = self._owner() if self._owner is not None else None
            if owner is not None and current is not None and current is not owner:
                raise ValueError(f"Node {self.name}: already runs in another Executor; create a new Node")
            if self.context != ctx:
                raise ValueError(f"Node {self.name}: already bound to {self.context}; "
                                 f"create a new Node for {ctx}")
            if owner is not None:
                self._owner = weakref.ref(owner)
            return
        where = f"Node {self.name}"
        sr = ctx.sample_rate
        options = {o.name: o.check(where, f"{self.name}.{o.name}", self._given.get(o.name, o.default), sr)
                   for o in self.type.options}
        values = {p.name: p.check(where, f"{self.name}.{p.name}", self._given.get(p.name, p.default), sr)
                  for p in self.type.params}
        bypass = BYPASS.check(where, f"{self.name}.bypass", self._given.get("bypass", False), sr)
        if self.type.check is not None:
            reason = self.type.check(values, sr)
            if reason:
                raise ValueError(f"{where}: {reason}")
        ops, state = self.type.factory(ctx, options)
        if state == ffi.NULL or ops == ffi.NULL:
            raise MemoryError(f"{where}: the {self.type.name} kernel could not be created with {options}")
        c = lib.rt_node_create(ops, state, self.node_id, ctx.channels, len(self.type.params), ctx.max_block,
                               ctx.bypass_fade_frames)
        if c == ffi.NULL:
            raise MemoryError(f"{where}: rt_node_create failed")
        self._c = ffi.gc(c, lib.rt_node_destroy)
        for i, p in enumerate(self.type.params):
            lib.rt_node_set_smoothing(self._c, i, round(p.smoothing_ms * 1e-3 * sr))
            lib.rt_node_init_param(self._c, i, values[p.name])
        lib.rt_node_init_param(self._c, lib.RT_PARAM_BYPASS, bypass)
        lib.rt_node_reset(self._c)  # start at the values, not ramping toward them (e.g. rt_gain)
        self.values = dict(values, bypass=bypass)
        self.options = options
        self.context = ctx
        self._owner = weakref.ref(owner) if owner is not None else None


# ---------------------------------------------------------------------------
# Node types of the foundation kernels

def _biquad_factory(ctx: BuildContext, options):
    return lib.rt_biquad_node_ops(), lib.rt_biquad_node_state_create(ctx.channels, 1, ctx.sample_rate)


def _biquad_check(values, sample_rate):
    out = ffi.new("double[5]")
    rc = lib.rt_biquad_design(int(values["type"]), sample_rate, values["freq_hz"], values["q"],
                              values["gain_db"], values["shelf_slope"], out)
    if rc != 0:
        return (f"type {int(values['type'])}, freq_hz = {values['freq_hz']:g}, q = {values['q']:g}, "
                f"gain_db = {values['gain_db']:g}, shelf_slope = {values['shelf_slope']:g} has no stable design "
                f"(lower shelf_slope or gain_db)")
    return None


BIQUAD = register_node_type(NodeType(
    "biquad",
    params=(
        ParamSpec("type", "", default="peaking", choices=dict(FILTER_TYPES), doc="switches at once"),
        ParamSpec("freq_hz", "Hz", 10.0, 24000.0, 1000.0, smoothing_ms=20.0, below_nyquist=True),
        ParamSpec("q", "", Q_RANGE[0], Q_RANGE[1], 0.7071067811865476, smoothing_ms=20.0),
        ParamSpec("gain_db", "dB", -24.0, 24.0, 0.0, smoothing_ms=20.0, doc="peaking and shelves only"),
        ParamSpec("shelf_slope", "", 0.0, 2.0, 0.0, doc="shelves: S (1 = steepest monotonic); 0 = use q"),
    ),
    factory=_biquad_factory,
    check=_biquad_check,
    doc="One RBJ cookbook biquad section (rt_kernels/csrc/biquad.c); ramps freq, q and gain per 16 frames.",
))

def _eq_check(bands: int) -> Checker:
    def check(values, sample_rate):
        for i in range(1, bands + 1):
            band = {k: values[f"b{i}_{k}"] for k in ("type", "freq_hz", "q", "gain_db", "shelf_slope")}
            reason = _biquad_check(band, sample_rate)
            if reason:
                return f"band b{i}: {reason}"
        return None
    return check


def eq_node_type(bands: int) -> NodeType:
    """An EQ of ``bands`` biquad sections run as one cascade (one pass over the
    block: cheaper than ``bands`` biquad nodes).  Registered as ``eq<bands>``;
    parameters ``b1_type``, ``b1_freq_hz``, ``b1_q``, ``b1_gain_db``,
    ``b1_shelf_slope``, ``b2_...``; each band starts as a 0 dB peaking filter."""
    name = f"eq{bands}"
    if dict.__contains__(NODE_TYPES, name):
        return dict.__getitem__(NODE_TYPES, name)
    if not 1 <= bands <= 64:
        raise ValueError(f"eq_node_type: bands = {bands} is outside [1, 64]")
    params = tuple(replace(p, name=f"b{i}_{p.name}") for i in range(1, bands + 1) for p in BIQUAD.params)
    return register_node_type(NodeType(
        name, params=params,
        factory=lambda ctx, o: (lib.rt_biquad_node_ops(),
                                lib.rt_biquad_node_state_create(ctx.channels, bands, ctx.sample_rate)),
        check=_eq_check(bands),
        doc=f"{bands}-band biquad EQ (one rt_biquad cascade).",
    ))


GAIN = register_node_type(NodeType(
    "gain",
    params=(ParamSpec("gain_db", "dB", -120.0, 48.0, 0.0, kernel_smoothing=True,
                      doc="the kernel ramps linearly in linear gain over ramp_ms"),),
    options=(ParamSpec("ramp_ms", "ms", 0.0, 10_000.0, 20.0),),
    factory=lambda ctx, o: (lib.rt_gain_node_ops(),
                            lib.rt_gain_create(ctx.channels, ctx.sample_rate, o["ramp_ms"], 1.0)),
    doc="Gain (rt_kernels/csrc/gain.c).",
))

DC_BLOCKER = register_node_type(NodeType(
    "dc_blocker",
    params=(),
    options=(ParamSpec("cutoff_hz", "Hz", 0.1, 200.0, 5.0),),
    factory=lambda ctx, o: (lib.rt_dc_blocker_node_ops(),
                            lib.rt_dc_blocker_create(ctx.channels, ctx.sample_rate, o["cutoff_hz"])),
    doc="First-order DC blocker (rt_kernels/csrc/dc_blocker.c).",
))

MAX_DELAY_FRAMES = 1 << 22

DELAY = register_node_type(NodeType(
    "delay",
    params=(),
    options=(ParamSpec("delay_frames", "frames", 0, MAX_DELAY_FRAMES, 0, integer=True),),
    factory=lambda ctx, o: (lib.rt_delay_node_ops(),
                            lib.rt_delay_create(ctx.channels, int(o["delay_frames"]), int(o["delay_frames"]))),
    doc="Integer delay; reports its length as latency (rt_kernels/csrc/delay.c).",
))

LEVEL_METER = register_node_type(NodeType(
    "level_meter",
    params=(),
    options=(ParamSpec("window_ms", "ms", 1.0, 10_000.0, 300.0),),
    factory=lambda ctx, o: (lib.rt_level_meter_node_ops(),
                            lib.rt_level_meter_node_state_create(ctx.channels, ctx.sample_rate, o["window_ms"])),
    doc="Pass-through peak/RMS meter (rt_kernels/csrc/level_meter.c).",
))

"""The running executor: process audio, publish/schedule parameters, swap plans, read telemetry.

Threads: ``process`` belongs to one audio (or offline) thread; everything else
may be called from any other Python thread.  Control calls are serialised by a
Python lock that the audio side never touches; the audio side only reads
atomics and lock-free rings (rt_kernels/csrc/executor.c).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from graph.nodes import BuildContext, Node
from graph.params import BYPASS, INTENSITY
from graph.plan import Plan, compile_graph
from graph.topology import Graph
from rt_kernels import _validate as check
from rt_kernels._ffi import channel_pointers, denormals_off, ffi, lib


@dataclass(frozen=True)
class NodeTelemetry:
    name: str
    node_id: int
    latency_frames: int
    peak_last: float       # max |output| in the last block (linear)
    peak_hold: float       # since the last clear_peaks()
    cost_ns_last: int
    cost_ns_total: int
    frames: int


@dataclass(frozen=True)
class Telemetry:
    frames: int
    blocks: int
    nonfinite_blocks: int
    plan_swaps: int
    param_blocks: int
    late_param_blocks: int
    cost_ns_last: int
    dsp_load: float        # processing time / real time of the frames (1.0 = all of it)
    latency_frames: int
    intensity: float
    peak_last: float
    peak_hold: float
    nodes: tuple[NodeTelemetry, ...]

    def node(self, name: str) -> NodeTelemetry:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)


class Executor:
    """Runs a Graph in C.

    ``channels``, ``sample_rate``: the stream.  ``max_block``: the largest
    internal block (process accepts any length and splits it).
    ``max_latency_frames``: the largest plan latency (the dry path of
    ``intensity`` is preallocated for it).  ``queue_capacity``: objects in
    flight to the audio thread (published and scheduled snapshots, plans);
    publish raises when it is exhausted and the audio thread is not running.
    ``intensity``: initial global dry/wet; ``intensity_ramp_ms`` its ramp.
    ``bypass_fade_ms``: crossfade length of a node's bypass.
    """

    def __init__(self, graph: Graph | None, channels: int, sample_rate: float, *, max_block: int = 512,
                 max_latency_frames: int = 65536, queue_capacity: int = 1024, intensity: float = 1.0,
                 intensity_ramp_ms: float = 20.0, bypass_fade_ms: float = 10.0, max_telemetry_nodes: int = 256):
        where = "Executor"
        channels = check.channels(where, channels)
        sample_rate = check.sample_rate(where, sample_rate)
        max_block = check.count(where, "max_block", max_block, 1, 1 << 20)
        max_latency_frames = check.count(where, "max_latency_frames", max_latency_frames, 0, 1 << 24)
        self.queue_capacity = check.count(where, "queue_capacity", queue_capacity, 4, 1 << 20)
        intensity = INTENSITY.check(where, "intensity", intensity, sample_rate)
        intensity_ramp_ms = check.number(where, "intensity_ramp_ms", intensity_ramp_ms, 0.0, 10_000.0, "ms")
        bypass_fade_ms = check.number(where, "bypass_fade_ms", bypass_fade_ms, 0.0, 1000.0, "ms")
        max_telemetry_nodes = check.count(where, "max_telemetry_nodes", max_telemetry_nodes, 0, 65536)
        self.channels, self.sample_rate, self.max_block = channels, sample_rate, max_block
        self.max_latency_frames = max_latency_frames
        self.context = BuildContext(channels, sample_rate, max_block, round(bypass_fade_ms * 1e-3 * sample_rate))
        ex = lib.rt_executor_create(channels, sample_rate, max_block, max_latency_frames, self.queue_capacity,
                                    max_telemetry_nodes, intensity_ramp_ms, intensity)
        if ex == ffi.NULL:
            raise MemoryError("Executor: rt_executor_create failed")
        self._ex = ffi.gc(ex, lib.rt_executor_destroy)
        self._lock = threading.Lock()
        self._in_flight: dict[int, Any] = {}   # address -> object the audio thread may still use
        self._retired_plans = 0
        self._retired_blocks = 0
        self._graph = Graph()
        self._plan: Plan | None = None
        self._comp_cache: dict[str, Node] = {}
        self._names: dict[int, str] = {}
        self.intensity = intensity
        self._tel = ffi.new("rt_telemetry *")
        self._tel_nodes = ffi.new("rt_node_telemetry[]", max(1, max_telemetry_nodes))
        self.swap(graph if graph is not None else Graph())

    # -- C handles for backends -------------------------------------------------
    @property
    def c_executor(self):
        """The ``rt_executor *``: a backend's C callback calls
        ``rt_executor_process(ex, in, out, frames)`` with it."""
        return self._ex

    # -- audio ---------------------------------------------------------------
    def process(self, block: np.ndarray) -> np.ndarray:
        """Process a planar float32 (channels, frames) block of any length; returns a new block."""
        block = check.audio_block("Executor.process", block, self.channels)
        out = np.empty_like(block)
        with denormals_off():
            done = lib.rt_executor_process(self._ex, channel_pointers(block), channel_pointers(out), block.shape[1])
        if done != block.shape[1]:
            raise RuntimeError(f"rt_executor_process returned {done} frames for {block.shape[1]}")
        return out

    # -- control -------------------------------------------------------------
    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def latency_frames(self) -> int:
        """Latency of the most recently swapped-in plan (what the output will lag)."""
        return self._plan.latency_frames if self._plan else 0

    @property
    def running_latency_frames(self) -> int:
        """Latency of the plan the audio thread is running now."""
        return int(lib.rt_executor_latency(self._ex))

    @property
    def frames(self) -> int:
        """Frames processed since creation or reset (the clock of schedule())."""
        return int(lib.rt_executor_frames(self._ex))

    def _validated(self, where: str, params: Mapping[str, Any]) -> list[tuple[Node | None, str, int, float]]:
        """All-or-nothing validation: (node, param, id, value) for every entry."""
        if not isinstance(params, Mapping) or not params:
            raise TypeError(f"{where}: params must be a non-empty dict like {{'eq1.gain_db': 3.0}}, got {params!r}")
        events = []
        pending: dict[str, dict[str, float]] = {}
        for key, value in params.items():
            if key == "intensity":
                events.append((None, "intensity", int(lib.RT_EXEC_PARAM_INTENSITY),
                               INTENSITY.check(where, "intensity", value, self.sample_rate)))
                continue
            node_name, dot, param = str(key).partition(".")
            if not dot:
                raise ValueError(f"{where}: {key!r} is not 'node.param' or 'intensity'")
            node = self._graph.nodes.get(node_name)
            if node is None:
                known = ", ".join(self._graph.nodes) or "none"
                raise ValueError(f"{where}: {key} names no node of the running graph (nodes: {known})")
            if param == "bypass":
                spec = BYPASS
            else:
                try:
                    spec = node.type.param(param)
                except KeyError:
                    names = ", ".join([p.name for p in node.type.params] + ["bypass"])
                    fixed = [o.name for o in node.type.options]
                    hint = f"; {param} is fixed at creation" if param in fixed else ""
                    raise ValueError(f"{where}: {key}: {node.type.name} has no live parameter {param!r} "
                                     f"(live: {names}{hint})") from None
            v = spec.check(where, key, value, self.sample_rate)
            pending.setdefault(node_name, {})[param] = v
            events.append((node, param, node.type.param_id(param), v))
        for node_name, updates in pending.items():
            node = self._graph.nodes[node_name]
            if node.type.check is not None and set(updates) - {"bypass"}:
                merged = {k: v for k, v in {**node.values, **updates}.items() if k != "bypass"}
                reason = node.type.check(merged, self.sample_rate)
                if reason:
                    raise ValueError(f"{where}: {node_name}: {reason}")
        return events

    def _make_block(self, where: str, events):
        block = lib.rt_param_block_create(len(events))
        if block == ffi.NULL:
            raise MemoryError(f"{where}: rt_param_block_create failed")
        block = ffi.gc(block, lib.rt_param_block_destroy)
        keep = []
        for i, (node, _, pid, v) in enumerate(events):
            rc = lib.rt_param_block_set(block, i, node.c_node if node else ffi.NULL, pid, v)
            if rc != 0:
                raise RuntimeError(f"{where}: rt_param_block_set refused event {i}")
            if node is not None:
                keep.append(node)
        return block, keep

    def _reserve(self, where: str) -> None:
        self._collect_locked()
        if len(self._in_flight) >= self.queue_capacity - 1:
            raise RuntimeError(f"{where}: {len(self._in_flight)} snapshots/plans are waiting for the audio thread "
                               f"(queue_capacity {self.queue_capacity}); is process() running?")

    def _send(self, where: str, events, frame: int | None) -> None:
        block, keep = self._make_block(where, events)
        if frame is not None:
            lib.rt_param_block_schedule(block, frame)
        self._reserve(where)
        if lib.rt_executor_publish(self._ex, block) != 0:
            raise RuntimeError(f"{where}: the parameter queue is full; is process() running?")
        self._in_flight[int(ffi.cast("uintptr_t", block))] = ("block", block, keep)
        for node, param, _, v in events:
            if node is None:
                self.intensity = v
            else:
                node.values[param] = v

    def publish(self, params: Mapping[str, Any]) -> None:
        """Apply ``{"node.param": value, ..., "intensity": x}`` together at the start of the next block.

        Everything is validated first; one bad entry refuses the whole snapshot.
        """
        with self._lock:
            events = self._validated("Executor.publish", params)
            self._send("Executor.publish", events, None)

    def schedule(self, frame: int, params: Mapping[str, Any]) -> None:
        """Apply the snapshot exactly at executor frame ``frame`` (see ``frames``).

        The executor splits its block there.  A frame already past applies at
        the next block (and counts in telemetry as late).
        """
        with self._lock:
            frame = check.count("Executor.schedule", "frame", frame, 0, (1 << 63) - 1)
            events = self._validated("Executor.schedule", params)
            self._send("Executor.schedule", events, frame)

    def prepare(self, params: Mapping[str, Any]) -> "PreparedSnapshot":
        """Validate ``params`` into a snapshot that the audio side applies itself.

        The snapshot is not queued: a C source hands ``.pointer`` to the audio
        thread through its own ring, which calls ``rt_executor_apply_now`` (or
        ``rt_executor_drop``) between two ``rt_executor_process`` calls, e.g. at
        the first frame of the next track, wherever that frame falls in executor
        time.  It counts against ``queue_capacity`` until collect() sees it come
        back; the nodes' ``values`` are not updated (call ``applied()`` once the
        source reports it applied).
        """
        with self._lock:
            events = self._validated("Executor.prepare", params)
            block, keep = self._make_block("Executor.prepare", events)
            self._reserve("Executor.prepare")
            self._in_flight[int(ffi.cast("uintptr_t", block))] = ("block", block, keep)
            return PreparedSnapshot(block, tuple(events))

    def applied(self, snapshot: "PreparedSnapshot") -> None:
        """Record a prepared snapshot's values as the nodes' current values."""
        with self._lock:
            for node, param, _, v in snapshot.events:
                if node is None:
                    self.intensity = v
                else:
                    node.values[param] = v

    def swap(self, graph: Graph) -> Plan:
        """Compile ``graph`` and publish it with one atomic pointer exchange.

        Nodes that are in both graphs (same Node objects) keep their state and
        parameters; new nodes start fresh.  The old plan is freed by collect().
        """
        if not isinstance(graph, Graph):
            raise TypeError(f"Executor.swap: graph must be a Graph, got {type(graph).__name__}")
        with self._lock:
            plan = compile_graph(graph, self.context, self._comp_cache, owner=self)
            if plan.latency_frames > self.max_latency_frames:
                raise ValueError(f"Executor.swap: plan latency {plan.latency_frames} frames exceeds "
                                 f"max_latency_frames = {self.max_latency_frames}")
            self._collect_locked()
            if len(self._in_flight) >= self.queue_capacity - 1:
                raise RuntimeError(f"Executor.swap: {len(self._in_flight)} objects wait for the audio thread; "
                                   f"is process() running?")
            displaced = ffi.new("rt_plan **")
            if lib.rt_executor_swap_plan(self._ex, plan.c_plan, displaced) != 0:
                raise RuntimeError("Executor.swap: rt_executor_swap_plan refused the plan")
            if displaced[0] != ffi.NULL:   # published earlier, never run: ours to drop
                self._in_flight.pop(int(ffi.cast("uintptr_t", displaced[0])), None)
                self._retired_plans += 1
            self._in_flight[int(ffi.cast("uintptr_t", plan.c_plan))] = ("plan", plan)
            self._graph = graph
            self._plan = plan
            self._comp_cache = plan.compensation
            for node in plan.nodes:
                self._names[node.node_id] = node.name
            return plan

    def _collect_locked(self) -> int:
        n = 0
        while True:
            p = lib.rt_executor_collect(self._ex)
            if p == ffi.NULL:
                return n
            kind = self._in_flight.pop(int(ffi.cast("uintptr_t", p)))[0]
            if kind == "plan":
                self._retired_plans += 1
            else:
                self._retired_blocks += 1
            n += 1

    def collect(self) -> int:
        """Free what the audio thread has finished with; returns how many objects."""
        with self._lock:
            return self._collect_locked()

    @property
    def retired(self) -> dict[str, int]:
        """Totals freed so far: {"plans": n, "param_blocks": m}."""
        return {"plans": self._retired_plans, "param_blocks": self._retired_blocks}

    @property
    def in_flight(self) -> int:
        """Objects handed to the audio thread and not yet collected (the running plan included)."""
        return len(self._in_flight)

    def telemetry(self) -> Telemetry:
        """A consistent snapshot (seqlock) of meters and per-node cost."""
        with self._lock:
            n = lib.rt_executor_read_telemetry(self._ex, self._tel, self._tel_nodes, len(self._tel_nodes))
            if n < 0:
                raise RuntimeError("Executor.telemetry: no consistent snapshot (audio thread kept writing)")
            t = self._tel
            nodes = tuple(
                NodeTelemetry(self._names.get(r.node_id, f"#{r.node_id}"), r.node_id, r.latency_frames,
                              float(r.peak_last), float(r.peak_hold), int(r.cost_ns_last), int(r.cost_ns_total),
                              int(r.frames))
                for r in (self._tel_nodes[i] for i in range(n)))
            return Telemetry(int(t.frames), int(t.blocks), int(t.nonfinite_blocks), int(t.plan_swaps),
                             int(t.param_blocks), int(t.late_param_blocks), int(t.cost_ns_last),
                             float(t.dsp_load), int(t.latency_frames), float(t.intensity), float(t.peak_last), float(t.peak_hold),
                             nodes)

    def clear_peaks(self) -> None:
        lib.rt_executor_clear_peaks(self._ex)

    def set_timing(self, enabled: bool) -> None:
        """Per-node cost and peak metering on (default) or off (saves ~2 clock reads per node per block)."""
        lib.rt_executor_set_timing(self._ex, bool(enabled))

    def reset(self) -> None:
        """Not while process() runs: clear all history, frame counter to 0, drop scheduled snapshots."""
        with self._lock:
            lib.rt_executor_reset(self._ex)
            self._collect_locked()


@dataclass(frozen=True)
class PreparedSnapshot:
    """A validated parameter block not yet handed to the audio thread (Executor.prepare)."""

    pointer: Any               # rt_param_block * (owned by the executor until collected)
    events: tuple              # (node, param, param_id, value)

    @property
    def values(self) -> dict[str, float]:
        return {("intensity" if n is None else f"{n.name}.{p}"): v for n, p, _, v in self.events}


def db(value: float) -> float:
    return 20 * math.log10(value) if value > 0 else -math.inf

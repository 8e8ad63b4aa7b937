"""Compile a Graph into a Plan: C steps over a preallocated buffer pool (off the audio thread)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from graph.nodes import DELAY, BuildContext, Node
from graph.topology import Chain, Element, Graph, Parallel
from rt_kernels._ffi import ffi, lib


@dataclass
class Plan:
    """A sealed C plan plus the Python objects it references (kept alive with it)."""

    c_plan: object
    latency_frames: int
    nodes: list[Node]                 # every node the plan runs, compensation delays included
    steps: list[tuple]                # ("node", name, in, out) / ("copy", src, dst) / ("sum", src, dst)
    buffers: int
    compensation: dict[str, Node] = field(default_factory=dict)

    def describe(self) -> str:
        return "\n".join(" ".join(map(str, s)) for s in self.steps)


class _Builder:
    def __init__(self, ctx: BuildContext, comp_node: Callable[[str, int], Node]):
        self.ctx = ctx
        self.comp_node = comp_node
        self.steps: list[tuple] = []
        self.buffers = 1                  # buffer 0 holds the input block
        self.free: list[int] = []
        self.latency: dict[str, int] = {}

    def alloc(self) -> int:
        if self.free:
            return self.free.pop()
        self.buffers += 1
        return self.buffers - 1

    def element(self, e: Element, buf: int, lat: int, path: str) -> tuple[int, int]:
        """Emit steps for e reading (and overwriting) buf; returns (out buffer, latency)."""
        if isinstance(e, Node):
            self.steps.append(("node", e, buf, buf))
            return buf, lat + e.latency_frames
        if isinstance(e, Chain):
            for i, sub in enumerate(e.elements):
                buf, lat = self.element(sub, buf, lat, f"{path}/{_key(sub)}")
            return buf, lat
        assert isinstance(e, Parallel)
        outs = []
        last = len(e.branches) - 1
        for i, branch in enumerate(e.branches):
            # Every branch but the last gets a copy; the last works on buf itself.
            b = buf
            if i < last:
                b = self.alloc()
                self.steps.append(("copy", buf, b))
            outs.append(self.element(branch, b, lat, f"{path}[{i}:{_key(branch)}]"))
        total = max(l for _, l in outs)
        for i, (b, l) in enumerate(outs):
            if l < total:
                comp = self.comp_node(f"{path}[{i}:{_key(e.branches[i])}]", total - l)
                self.steps.append(("node", comp, b, b))
        # Branches run in place, so the last one's output is in buf: sum into it.
        for b, _ in outs[:-1]:
            self.steps.append(("sum", b, buf))
            self.free.append(b)
        return buf, total


def _key(e: Element) -> str:
    if isinstance(e, Node):
        return e.name
    if isinstance(e, Chain):
        return "(" + ",".join(_key(s) for s in e.elements) + ")"
    return "{" + "|".join(_key(b) for b in e.branches) + "}"


def compile_graph(graph: Graph, ctx: BuildContext, comp_cache: dict[str, Node] | None = None,
                  owner: object | None = None) -> Plan:
    """Bind the graph's nodes to ctx and build the C plan.

    comp_cache maps a compensation delay's structural key (its place in the
    graph, by node names, and its length) to the delay Node from an earlier
    compile, so a swap that keeps the structure keeps the delay's contents.
    """
    for node in graph.nodes.values():
        node.bind(ctx, owner)
    old = comp_cache or {}
    used: dict[str, Node] = {}

    def comp_node(where: str, frames: int) -> Node:
        key = f"{where}+{frames}"
        node = old.get(key) or Node(DELAY, "compensation", delay_frames=frames)
        node.bind(ctx, owner)
        used[key] = node
        return node

    builder = _Builder(ctx, comp_node)
    out, latency = builder.element(graph.root, 0, 0, "")
    c_plan = lib.rt_plan_create(ctx.channels, ctx.max_block, builder.buffers, len(builder.steps))
    if c_plan == ffi.NULL:
        raise MemoryError("compile_graph: rt_plan_create failed")
    c_plan = ffi.gc(c_plan, lib.rt_plan_destroy)
    described = []
    nodes = []
    for step in builder.steps:
        if step[0] == "node":
            _, node, a, b = step
            rc = lib.rt_plan_add_node(c_plan, node.c_node, a, b)
            nodes.append(node)
            described.append(("node", node.name, a, b))
        elif step[0] == "copy":
            rc = lib.rt_plan_add_copy(c_plan, step[1], step[2])
            described.append(step)
        else:
            rc = lib.rt_plan_add_sum(c_plan, step[1], step[2])
            described.append(step)
        if rc != 0:
            raise RuntimeError(f"compile_graph: the C plan refused step {described[-1]}")
    c_latency = lib.rt_plan_finish(c_plan, out)
    if c_latency != latency:
        raise RuntimeError(f"compile_graph: C plan latency {c_latency} != compiled {latency} (misaligned sum?)")
    return Plan(c_plan, latency, nodes, described, builder.buffers, used)

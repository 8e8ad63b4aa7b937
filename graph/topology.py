"""The shape of a graph: series chains and parallel branches of nodes.

A series/parallel tree instead of free ports and edges: every chain a
mastering or monitoring setup needs (EQ -> dynamics -> limiter, a dry path
around a lookahead stage, parallel compression, multiband splits summed back)
is series/parallel, a tree cannot express a cycle or a dangling input, and each
Parallel is exactly the place where latency is compensated and branches are
summed.  Edges are implicit: element i feeds element i + 1 of a Chain, and a
Parallel feeds its input to every branch and sums their outputs.
"""

from __future__ import annotations

from typing import Iterator, Union

from graph.nodes import Node

Element = Union[Node, "Chain", "Parallel"]


class Chain:
    """Elements in series.  ``Chain()`` is a wire (a dry path in a Parallel)."""

    def __init__(self, *elements: Element):
        for e in elements:
            _check_element("Chain", e)
        self.elements: tuple[Element, ...] = tuple(elements)

    def __repr__(self) -> str:
        return f"Chain({', '.join(map(repr, self.elements))})"


class Parallel:
    """Branches fed the same input, delay-compensated to the slowest one and summed."""

    def __init__(self, *branches: Element):
        if len(branches) < 2:
            raise ValueError(f"Parallel: needs at least 2 branches, got {len(branches)} (use Chain for one)")
        for b in branches:
            _check_element("Parallel", b)
        self.branches: tuple[Element, ...] = tuple(branches)

    def __repr__(self) -> str:
        return f"Parallel({', '.join(map(repr, self.branches))})"


def _check_element(where: str, e) -> None:
    if not isinstance(e, (Node, Chain, Parallel)):
        raise TypeError(f"{where}: elements must be Node, Chain or Parallel, got {type(e).__name__} {e!r}")


def walk(element: Element) -> Iterator[Node]:
    if isinstance(element, Node):
        yield element
    elif isinstance(element, Chain):
        for e in element.elements:
            yield from walk(e)
    else:
        for b in element.branches:
            yield from walk(b)


class Graph:
    """A complete processing graph: ``Graph(node_a, Parallel(...), node_b)`` is a Chain.

    Node names must be unique (they address parameters: ``"eq1.gain_db"``).
    """

    def __init__(self, *elements: Element):
        self.root = Chain(*elements)
        self.nodes: dict[str, Node] = {}
        for node in walk(self.root):
            if node.name in self.nodes:
                if self.nodes[node.name] is node:
                    raise ValueError(f"Graph: node {node.name!r} appears twice (a node state can run once per block)")
                raise ValueError(f"Graph: two nodes are named {node.name!r}")
            if node.name == "intensity":
                raise ValueError("Graph: 'intensity' is reserved for the executor's dry/wet parameter")
            self.nodes[node.name] = node

    def __repr__(self) -> str:
        return "Graph" + repr(self.root)[len("Chain"):]

"""The graph model and runtime: node types and parameter specs, series/parallel
graphs, compile-to-plan, and the C executor's Python face (lock-free parameter
publication, scheduled snapshots, hot swap, telemetry).  Imports rt_kernels only."""

from graph.nodes import NODE_TYPES, BuildContext, Node, NodeType, eq_node_type, register_node_type
from graph.params import BYPASS, INTENSITY, ParamSpec
from graph.plan import Plan, compile_graph
from graph.runtime import Executor, NodeTelemetry, Telemetry
from graph.topology import Chain, Graph, Parallel

__all__ = [
    "NODE_TYPES", "BuildContext", "Node", "NodeType", "eq_node_type", "register_node_type", "BYPASS", "INTENSITY", "ParamSpec",
    "Plan", "compile_graph", "Executor", "NodeTelemetry", "Telemetry", "Chain", "Graph", "Parallel",
]

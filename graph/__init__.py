"""The graph model: nodes, ports, edges, parameter specs, latency, compile-to-plan,
lock-free parameter publication, hot swap and meter readers (issue 4)."""

"""Timing helpers shared by the benchmark modules."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class Row:
    """One comparison.  `ours_ns` / `peer_ns` are per unit (e.g. per sample-channel)."""

    name: str
    unit: str
    ours_ns: float
    peer: str = ""
    peer_ns: float | None = None
    target: str = ""

    @property
    def ratio(self) -> float | None:
        """How many times faster we are than the peer (peer / ours)."""
        return None if self.peer_ns is None else self.peer_ns / self.ours_ns


def median_seconds(fn: Callable[[], object], repeats: int = 7, warmup: int = 1) -> float:
    """Median wall time of fn() over `repeats` runs after `warmup` discarded runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def per_unit_ns(seconds: float, units: float) -> float:
    return seconds * 1e9 / units


def print_rows(rows: list[Row]) -> None:
    header = f"{'benchmark':44s} {'ours':>12s} {'peer':>28s} {'peer time':>12s} {'ratio':>8s}  target"
    print(header)
    print("-" * len(header))
    for r in rows:
        peer_ns = "" if r.peer_ns is None else f"{r.peer_ns:9.2f} ns"
        ratio = "" if r.ratio is None else f"{r.ratio:7.1f}x"
        print(f"{r.name:44s} {r.ours_ns:9.2f} ns {r.peer:>28s} {peer_ns:>12s} {ratio:>8s}  {r.target}")
    units = sorted({r.unit for r in rows if r.unit})
    if units:
        print("units: " + "; ".join(units) + ". ratio = peer time / ours (higher is faster).")

"""Benchmarks: `python -m tools.bench [--only NAME]`.  Each `bench_*.py` module here
exposes `run(opts) -> list[Row]`; rows compare our kernel with a peer timed in the
same run, as a ratio of medians (the machines are shared and noisy)."""

"""Run every benchmark module (or --only some) and print one table of medians and ratios."""

from __future__ import annotations

import argparse
import importlib
import pkgutil

import tools.bench as package
from tools.bench.common import print_rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__)
    parser.add_argument("--only", action="append", default=[],
                        help="run only modules whose name contains this (repeatable)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the test audio (s)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per measurement (median kept)")
    opts = parser.parse_args()
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.name.startswith("bench_"))
    if opts.only:
        names = [n for n in names if any(o in n for o in opts.only)]
    rows = []
    for name in names:
        module = importlib.import_module(f"tools.bench.{name}")
        print(f"running {name} ...", flush=True)
        rows.extend(module.run(opts))
    print()
    print_rows(rows)


if __name__ == "__main__":
    main()

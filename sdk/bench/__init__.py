"""`python -m sdk bench <what>`: benchmarks printed as a table and written as JSON.

Each benchmark module exposes `add_parser(subparsers)`; figures are ratios against a baseline
measured in the same run, never absolute timings checked by tests.
"""
from __future__ import annotations

import argparse
import importlib
import statistics
import time
from collections.abc import Callable

# Subverb -> module under sdk.bench; imported only when the bench verb is built.
BENCHMARKS = ("codec", "live")


def median_ms(call: Callable[[], object], runs: int, warmup: int = 3) -> float:
    """Median wall time of `call` in ms over `runs` calls, after `warmup` untimed ones (lazy init, caches)."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append(1000 * (time.perf_counter() - started))
    return statistics.median(samples)


def add_bench_verb(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks (table + JSON)")
    which = parser.add_subparsers(dest="bench", metavar="WHAT", required=True)
    for name in BENCHMARKS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue  # not written yet
        module.add_parser(which)

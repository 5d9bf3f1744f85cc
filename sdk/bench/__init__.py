"""`python -m sdk bench <what>`: benchmarks printed as a table and written as JSON.

Each benchmark module exposes `add_parser(subparsers)`; figures are ratios against a baseline
measured in the same run, never absolute timings checked by tests. Shared here: `busy_core` (the
fixed synthetic load of "busy machine" runs); the timing helper is `sdk.timing.median_ms`.
"""
from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

# Subverb -> module under sdk.bench; imported only when the bench verb is built.
BENCHMARKS = ("animate", "codec", "live")
# The fixed synthetic load of the "busy" runs: one process spinning in pure Python on one core.
SYNTHETIC_LOAD = {"processes": 1, "kind": "python busy loop", "pinned_to": "the last core this process may use"}


@contextmanager
def busy_core() -> Iterator[int | None]:
    """`SYNTHETIC_LOAD` running inside the block: yields the core it is pinned to (None where the OS
    has no affinity API and the scheduler places it)."""
    try:
        core: int | None = max(os.sched_getaffinity(0))
    except AttributeError:
        core = None
    pin = f"os.sched_setaffinity(0, {{{core}}})\n" if core is not None else ""
    process = subprocess.Popen([sys.executable, "-c", f"import os\n{pin}while True:\n    pass\n"])
    try:
        time.sleep(0.2)  # let it start spinning
        yield core
    finally:
        process.kill()
        process.wait()


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

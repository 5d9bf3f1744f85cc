"""The one timing helper: median wall time of a call, used by the benchmarks and `--backend auto`."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_ms(call: Callable[[], object], runs: int, warmup: int = 3) -> float:
    """Median wall time of `call` in ms over `runs` calls (at least one), after `warmup` untimed
    ones (lazy init, caches)."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(max(runs, 1)):
        started = time.perf_counter()
        call()
        samples.append(1000 * (time.perf_counter() - started))
    return statistics.median(samples)

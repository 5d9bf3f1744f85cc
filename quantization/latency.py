"""Latency of graphs here: median over many runs at a fixed thread count, variants interleaved.

The machines this runs on are shared, so the variants of one comparison are timed round-robin
(run 1 of every variant, then run 2, ...): load that comes and goes hits them all alike, and the
ratios stay meaningful even when the absolute numbers drift. Each variant is a zero-argument
callable that runs one graph once on fixed inputs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .errors import QuantizationError


@dataclass(frozen=True)
class LatencyConfig:
    runs: int = 50  # timed runs per variant (the median is reported)
    warmup: int = 5
    threads: tuple[int, ...] = (1, 2)

    def __post_init__(self) -> None:
        if self.runs < 1 or self.warmup < 0 or not self.threads or min(self.threads) < 1:
            raise QuantizationError(f"invalid latency settings {self}")


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int


def time_interleaved(variants: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict[str, Latency]:
    """Latency of every variant, timed round-robin after `warmup` untimed runs of each."""
    for run in variants.values():
        for _ in range(warmup):
            run()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, run in variants.items():
            started = time.perf_counter()
            run()
            samples[name].append(1000.0 * (time.perf_counter() - started))
    return {name: Latency(float(np.median(values)), float(np.percentile(values, 10)),
                          float(np.percentile(values, 90)), len(values)) for name, values in samples.items()}


def ort_runner(session, feeds: dict[str, np.ndarray]) -> Callable[[], object]:
    return lambda: session.run(None, feeds)


def torch_runner(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> Callable[[], object]:
    def run() -> object:
        with torch.inference_mode():
            return module(*inputs)
    return run


def ort_op_profile(path, feeds: dict[str, np.ndarray], runs: int = 10) -> dict[str, float]:
    """Milliseconds per run spent in each ONNX Runtime kernel type (ORT's profiler, 1 thread), largest first.

    The first run (allocations) is run but not counted.
    """
    import json
    import tempfile
    from collections import Counter
    from pathlib import Path

    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder) / "profile")
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for _ in range(runs + 1):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    first_run = next(event for event in events if event.get("name") == "model_run")
    counted_from = first_run["ts"] + first_run["dur"]
    totals: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= counted_from:
            totals[event["args"]["op_name"]] += event["dur"] / 1000.0 / runs
    return dict(totals.most_common())

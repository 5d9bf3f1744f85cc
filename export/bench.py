"""`python -m export bench DIR`: per-graph latency of every runnable export against torch, 1 and 2 threads.

Median over `runs` calls after warm-up, on fixed-shape example inputs at the folder's output
size, for torch (the model's own graph modules) and each ONNX / TFLite group in the folder (the
graphs it holds: a face-prior "prior" model has no keypoint encoder; its generator is timed on the
same kind of inputs, keypoints, Jacobians and an expression). Ratios are against torch at the same
thread count, measured in the same run (the machine is shared: absolute numbers move with load).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from sdk.timing import median_ms
from sdk.runtime.graph_backend import as_array
from sdk.runtime.graphs import build_graphs, example_inputs, graph_specs

from .manifest import ExportManifest, damaged, incomplete
from .request import ExportError
from .table import format_table
from .verify import exported_model, graph_runner

@dataclass(frozen=True)
class Timing:
    graph: str
    runtime: str  # "torch", "onnx-fp32", "tflite-fp16", ...
    threads: int
    median_ms: float
    ratio_vs_torch: float  # torch ms / this ms: > 1 means faster than torch


def bench_export(directory: str | Path, threads: tuple[int, ...] = (1, 2), runs: int = 50,
                 model: str | None = None) -> list[Timing]:
    directory = Path(directory)
    manifest = ExportManifest.load(directory)
    torch_model = exported_model(directory, manifest, model)
    graphs = build_graphs(torch_model, output_size=manifest.output_size)
    specs = graph_specs(torch_model.cfg, manifest.output_size)
    inputs = example_inputs(torch_model.cfg, output_size=manifest.output_size)
    names = [name for name in specs if name in manifest.graphs]  # the folder's graphs (`--graphs`)
    feeds = {name: {spec: as_array(value) for spec, value in zip(specs[name].input_names, inputs[name])}
             for name in names}
    groups = {key: entries for key, entries in manifest.groups().items()
              if key[0] in ("onnx", "tflite") and not incomplete(entries, manifest.graphs)}
    for entries in groups.values():
        problem = damaged(directory, entries)
        if problem:
            raise ExportError(f"{problem}; re-export")
    timings: list[Timing] = []
    previous_threads = torch.get_num_threads()
    try:
        for count in threads:
            torch.set_num_threads(count)
            baseline = {}
            for name in names:
                with torch.inference_mode():
                    baseline[name] = median_ms(lambda graph=graphs[name], args=inputs[name]: graph(*args), runs)
                timings.append(Timing(name, "torch", count, baseline[name], 1.0))
            for (fmt, precision), entries in groups.items():
                runner = graph_runner(fmt, {entry.graph: directory / entry.path for entry in entries}, count)
                for name in names:
                    ms = median_ms(lambda run=runner.run, graph=name: run(graph, feeds[graph]), runs)
                    timings.append(Timing(name, f"{fmt}-{precision}", count, ms, baseline[name] / ms))
    finally:
        torch.set_num_threads(previous_threads)
    return timings


def bench_table(timings: list[Timing]) -> str:
    rows = [[t.graph, t.runtime, str(t.threads), f"{t.median_ms:.2f}", f"{t.ratio_vs_torch:.2f}x"] for t in timings]
    return format_table(["graph", "runtime", "threads", "median ms", "speed vs torch"], rows)


def timings_json(timings: list[Timing]) -> list[dict]:
    return [asdict(timing) for timing in timings]

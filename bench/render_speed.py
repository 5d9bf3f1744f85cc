"""Per-frame speed of every model config in torch on this CPU: encoder and render, 1 and 2 threads;
and what the composite head adds to the per-frame graph on every runtime backend.

    python bench/render_speed.py [--configs dagan++-mobile ...] [--runs 50] [--json out/render_speed.json]
    python bench/render_speed.py --composite-cost [--configs dagan++-mobile] [--sizes 256 512]
        [--backends torch onnx onnx-int8 tflite] [--rounds 7] [--runs 5] [--data cache/prepared]
        [--json out/composite_cost.json]

Prints a table and writes JSON. Ratios are against the named baseline config (default
`fomm-mobile`, the depth-free FOMM generator at the same size) measured in the same run.

`--composite-cost`: the receiver's per-frame cost (`Backend.render`: the generator graph) of a
config with the composite head at each output size, against the same model without the head
(`composite=None`, the same weights otherwise) rendering at the internal resolution, as frames
were rendered before the head. Each backend's graphs are exported once into `--work` (INT8:
`quantization.quantize_onnx_int8` on `--pairs` calibration pairs of `--data`, every layer INT8;
TFLite: litert-torch, row-gather warp). The variants are timed in interleaved rounds (each round
times every variant with `sdk.timing.median_ms`; the median over rounds is reported), so load that
comes and goes affects them alike.

Weights are random: speed does not depend on them. Run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from sdk.timing import median_ms
from sdk.models import CONFIG_NAMES, TalkingHeadModel, count_macs, count_params, get_config
from sdk.runtime import Backend

COMPOSITE_BACKENDS = ("torch", "onnx", "onnx-int8", "tflite")
PLAIN = "without composite"  # the variant rendering as before the head: decoded image at R


@torch.inference_mode()
def measure(name: str, runs: int, threads: list[int]) -> dict:
    cfg = get_config(name)
    model = TalkingHeadModel(cfg).eval()
    image = torch.rand(1, 3, cfg.resolution, cfg.resolution)
    driving = torch.rand(1, 3, cfg.resolution, cfg.resolution)
    state = model.prepare_source(image)
    code = model.encode(driving)
    row = {"config": name, "resolution": cfg.resolution, "params_m": count_params(model) / 1e6,
           "encode_gmac": count_macs(model.encode, (driving,)) / 1e9,
           "render_gmac": count_macs(lambda: model.render(state, code), ()) / 1e9}
    count = max(3, runs // 10) if cfg.size == "paper" else runs
    for n in threads:
        torch.set_num_threads(n)
        row[f"encode_ms_{n}t"] = median_ms(lambda: model.encode(driving), count)
        row[f"render_ms_{n}t"] = median_ms(lambda: model.render(state, code), count)
    return row


def composite_models(name: str, seed: int = 0) -> tuple[TalkingHeadModel, TalkingHeadModel]:
    """The config with its composite head, and the same weights without the head."""
    torch.manual_seed(seed)
    cfg = get_config(name)
    model = TalkingHeadModel(cfg).eval()
    plain = TalkingHeadModel(replace(cfg, composite=None)).eval()
    plain.load_state_dict({key: value for key, value in model.state_dict().items()
                           if not key.startswith("generator.composite_head.")})
    return model, plain


def backend_factory(kind: str, model: TalkingHeadModel, size: int, work: Path, data: Path, pairs: int
                    ) -> Callable[[int], Backend]:
    """threads -> a `kind` backend of `model` at output size `size`; its graphs are exported into
    `work` on first use and reused by later runs."""
    from sdk.runtime import OnnxBackend, OrtSettings, TfliteBackend, TorchBackend
    from sdk.runtime.metadata import model_sha256

    if kind == "torch":
        return lambda threads: TorchBackend(model, output_size=size)
    if kind == "onnx":
        return lambda threads: OnnxBackend.from_model(model, OrtSettings(threads=threads), work, output_size=size)
    folder = work / f"{kind}-{model_sha256(model)[:16]}-{size}"
    if kind == "onnx-int8":
        from quantization.calibration import CalibrationConfig
        from quantization.onnx_int8 import Int8Config, quantize_onnx_int8
        from sdk.runtime.onnx_export import onnx_graph_path

        if not onnx_graph_path(folder, "int8", "generator").is_file():
            quantize_onnx_int8(model, folder, Int8Config(CalibrationConfig(data, pairs=pairs), target_psnr_db=0.0),
                               output_size=size)
        return lambda threads: OnnxBackend.from_export_dir(folder, "int8", OrtSettings(threads=threads))
    if kind == "tflite":
        from export.tflite_writer import write_tflite
        from sdk.runtime.graphs import graph_specs
        from sdk.runtime.metadata import graph_metadata
        from sdk.runtime.tflite_backend import tflite_graph_path

        for graph, spec in graph_specs(model.cfg, size).items():
            path = tflite_graph_path(folder, "fp32", graph)
            if not path.is_file():
                write_tflite(model, graph, "fp32", path, graph_metadata(model, spec, "fp32"))
        return lambda threads: TfliteBackend.from_export_dir(folder, "fp32", threads)
    raise ValueError(f"unknown backend {kind!r}; expected one of {', '.join(COMPOSITE_BACKENDS)}")


def interleaved_ms(calls: dict[str, Callable[[], object]], rounds: int, runs: int) -> dict[str, float]:
    """Median over `rounds` of each call's `median_ms` over `runs`, the calls taking turns each round."""
    for call in calls.values():
        median_ms(call, 1)  # lazy initialisation before the first round
    samples: dict[str, list[float]] = {label: [] for label in calls}
    for _ in range(rounds):
        for label, call in calls.items():
            samples[label].append(median_ms(call, runs, warmup=1))
    return {label: statistics.median(values) for label, values in samples.items()}


@torch.inference_mode()
def measure_composite_cost(name: str, sizes: list[int], kinds: list[str], threads: list[int], rounds: int,
                           runs: int, work: Path, data: Path, pairs: int) -> list[dict]:
    """Per backend and thread count: render ms without the composite head (at R) and with it at each size."""
    model, plain = composite_models(name)
    resolution = model.cfg.resolution
    variants = {PLAIN: (plain, resolution), **{f"{size}": (model, size) for size in sizes}}
    generator = torch.Generator().manual_seed(1)
    frame = torch.rand((1, 3, resolution, resolution), generator=generator)
    portraits = {side: torch.rand((1, 3, side, side), generator=generator) for _, side in variants.values()}
    rows = []
    for kind in kinds:
        print(f"{kind}: exporting or loading the graphs", file=sys.stderr, flush=True)
        factories = {label: backend_factory(kind, variant, side, work, data, pairs)
                     for label, (variant, side) in variants.items()}
        for count in threads:
            torch.set_num_threads(count)
            calls = {}
            for label, factory in factories.items():
                backend = factory(count)
                state, code = backend.prepare_source(portraits[variants[label][1]]), backend.encode(frame)
                calls[label] = lambda backend=backend, state=state, code=code: backend.render(state, code)
            timed = interleaved_ms(calls, rounds, runs)
            row = {"config": name, "backend": kind, "threads": count, "resolution": resolution,
                   "plain_ms": timed[PLAIN]}
            for size in sizes:
                row[f"composite_ms_{size}"] = timed[f"{size}"]
                row[f"extra_ms_{size}"] = timed[f"{size}"] - timed[PLAIN]
                row[f"ratio_{size}"] = timed[f"{size}"] / timed[PLAIN]
            print(composite_row(row, sizes), flush=True)
            rows.append(row)
    return rows


def composite_header(sizes: list[int], resolution: int) -> str:
    cells = ["backend", "threads", f"today ms ({resolution}², no composite)"]
    cells += [label for size in sizes for label in (f"{size}² ms", f"+ms {size}²", f"× today {size}²")]
    return " | ".join(cells)


def composite_row(row: dict, sizes: list[int]) -> str:
    cells = [row["backend"], str(row["threads"]), f"{row['plain_ms']:.1f}"]
    cells += [cell for size in sizes for cell in (f"{row[f'composite_ms_{size}']:.1f}",
                                                  f"{row[f'extra_ms_{size}']:+.1f}", f"{row[f'ratio_{size}']:.2f}")]
    return " | ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=None,
                        help="configs (default: every non-paper config; with --composite-cost: dagan++-mobile)")
    parser.add_argument("--baseline", default="fomm-mobile")
    parser.add_argument("--runs", type=int, default=None, help="timed runs (default 50; --composite-cost: 5 per round)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", default=None, help="default out/render_speed.json (out/composite_cost.json)")
    composite = parser.add_argument_group("--composite-cost")
    composite.add_argument("--composite-cost", action="store_true",
                           help="time the composite head's per-frame cost per backend instead")
    composite.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="output sizes")
    composite.add_argument("--backends", nargs="+", default=list(COMPOSITE_BACKENDS), choices=COMPOSITE_BACKENDS)
    composite.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median over them)")
    composite.add_argument("--work", type=Path, default=Path("out/composite_cost_graphs"),
                           help="where the graphs are exported (reused by later runs)")
    composite.add_argument("--data", type=Path, default=Path("cache/prepared"),
                           help="prepared folder for the INT8 calibration frames")
    composite.add_argument("--pairs", type=int, default=4, help="INT8 calibration pairs")
    args = parser.parse_args()
    if args.composite_cost:
        run_composite_cost(args)
        return
    names = list(dict.fromkeys([args.baseline, *(args.configs or [n for n in CONFIG_NAMES
                                                                  if not n.endswith("-paper")])]))
    runs = args.runs or 50
    rows = [measure(name, runs, args.threads) for name in names]
    base = rows[0]
    last = args.threads[-1]
    for row in rows:
        row[f"render_ratio_vs_baseline_{last}t"] = row[f"render_ms_{last}t"] / base[f"render_ms_{last}t"]
    header = ["config", "params M", "enc GMAC", "render GMAC"] + [
        f"{stage} ms {n}t" for n in args.threads for stage in ("enc", "render")] + [f"render ×{args.baseline}"]
    print(" | ".join(header))
    for row in rows:
        cells = [row["config"], f"{row['params_m']:.2f}", f"{row['encode_gmac']:.3f}", f"{row['render_gmac']:.3f}"]
        cells += [f"{row[f'{stage}_ms_{n}t']:.1f}" for n in args.threads for stage in ("encode", "render")]
        cells.append(f"{row[f'render_ratio_vs_baseline_{last}t']:.2f}")
        print(" | ".join(cells))
    out = Path(args.json or "out/render_speed.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"baseline": args.baseline, "runs": runs, "rows": rows}, indent=1))


def run_composite_cost(args: argparse.Namespace) -> None:
    import os

    load_before = os.getloadavg()
    rows = []
    for name in args.configs or ["dagan++-mobile"]:
        resolution = get_config(name).resolution
        print(f"{name}: render ms per frame (median of {args.rounds} interleaved rounds × {args.runs or 5} runs)")
        print(composite_header(args.sizes, resolution), flush=True)
        rows += measure_composite_cost(name, args.sizes, args.backends, args.threads, args.rounds, args.runs or 5,
                                       args.work, args.data, args.pairs)
    print(f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} cores)")
    out = Path(args.json or "out/composite_cost.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"sizes": args.sizes, "rounds": args.rounds, "runs": args.runs or 5,
                               "load_average": [load_before[0], os.getloadavg()[0]], "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

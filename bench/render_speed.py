"""Per-frame speed of every model config in torch on this CPU: encoder and render, 1 and 2 threads;
and what the composite head adds to the per-frame graph on every runtime backend.

    python bench/render_speed.py [--configs dagan++-mobile ...] [--runs 50] [--json out/render_speed.json]
    python bench/render_speed.py --composite-cost [--configs dagan++-mobile] [--sizes 256 512]
        [--backends torch onnx onnx-int8 tflite] [--rounds 7] [--runs 5] [--data cache/prepared]
        [--json out/composite_cost.json]
    python bench/render_speed.py --torch-paths [--configs dagan++-mobile dagan++-mobile-prior] [--size 256]
        [--threads 1 2] [--rounds 7] [--runs 8] [--compile] [--json out/torch_paths.json]

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

`--torch-paths`: the torch backend's ways of running the same per-frame stages (keypoint encoder,
render at the output size) on this CPU, against the eager modules (`TorchBackend(frozen=False)`,
as the torch backend ran before) in the same interleaved rounds: channels-last tensors, the
frozen TorchScript graphs (traced, frozen, BatchNorm folded, source tensors constant) of the
contiguous model, the encoder's frozen graph fed channels-last images only, the backend's frozen
graphs of its channels-last copy (`TorchBackend(frozen=True)`, what the torch backend runs now),
frozen + `torch.jit.optimize_for_inference` (oneDNN's blocked layouts), and
with `--compile`, `torch.compile` (inductor, needs a C++ compiler; ~100 s to compile here). Each
row gives the max abs difference from the eager output, so "the same computation" is checked too.

Weights are random: speed does not depend on them. Run it on a quiet machine (the JSON records the
load average before and after: on a shared machine only the ratios of one run compare).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from sdk.timing import median_ms
from sdk.models import CONFIG_NAMES, Keypoints, TalkingHeadModel, count_macs, count_params, get_config
from sdk.runtime import Backend, TorchBackend
from sdk.runtime.factory import neutral_avatar_mesh
from sdk.runtime.torch_backend import AvatarGenerator, TensorKeypointEncoder, freeze_trace

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
    paths = parser.add_argument_group("--torch-paths")
    paths.add_argument("--torch-paths", action="store_true",
                       help="time the torch backend's ways of running the per-frame stages instead")
    paths.add_argument("--size", type=int, default=256, help="output size of the render")
    paths.add_argument("--compile", action="store_true", help="also torch.compile (minutes to compile)")
    args = parser.parse_args()
    if args.composite_cost:
        run_composite_cost(args)
        return
    if args.torch_paths:
        run_torch_paths(args)
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


EAGER = "eager"
KEPT = "frozen + channels-last (TorchBackend(frozen=True))"


def torch_path_calls(model: TalkingHeadModel, size: int, with_compile: bool
                     ) -> dict[str, dict[str, Callable[[], torch.Tensor]]]:
    """stage ("encode", "render") -> variant -> a call returning the stage's main output (keypoints,
    frame) on one fixed input; "encode" only for models with a keypoint encoder."""
    generator = torch.Generator().manual_seed(1)
    portrait = torch.rand((1, 3, size, size), generator=generator)
    frame = torch.rand((1, 3, model.cfg.resolution, model.cfg.resolution), generator=generator)
    mesh = None if model.cfg.semantic is None else neutral_avatar_mesh(model.prior(), size)
    eager, frozen = TorchBackend(model, output_size=size), TorchBackend(model, output_size=size, frozen=True)
    state, frozen_state = eager.prepare_source(portrait, mesh), frozen.prepare_source(portrait, mesh)
    if model.cfg.num_kp:
        driving = eager.encode(frame)
        if model.cfg.semantic is not None:  # hybrid: the prior's keypoints, then the learned ones
            prior = model.cfg.semantic.prior_keypoints
            driving = Keypoints(torch.cat([state.keypoints.value[:, :prior], driving.value], 1),
                                torch.cat([state.keypoints.jacobian[:, :prior], driving.jacobian], 1))
    else:
        driving = Keypoints(state.keypoints.value + 0.02, state.keypoints.jacobian)
    expression = (None if model.cfg.semantic is None
                  else 0.1 * torch.randn((1, model.cfg.semantic.expression_dims), generator=generator))
    inputs = (driving.value, driving.jacobian) + (() if expression is None else (expression,))
    cl_backend = TorchBackend(copy.deepcopy(model).to(memory_format=torch.channels_last), output_size=size)
    cl_state = cl_backend.prepare_source(portrait.contiguous(memory_format=torch.channels_last), mesh)
    cl_frame = frame.contiguous(memory_format=torch.channels_last)
    render = {
        EAGER: lambda: eager.render(state, driving, expression),
        "channels-last": lambda: cl_backend.render(cl_state, driving, expression),
        "frozen, contiguous": _frozen_call(AvatarGenerator(model, state), inputs),
        KEPT: lambda: frozen.render(frozen_state, driving, expression),
        "frozen + optimize_for_inference": _frozen_call(AvatarGenerator(model, state), inputs, optimize=True),
    }
    encode = {}
    if model.cfg.num_kp:
        encode = {
            EAGER: lambda: eager.encode(frame).value,
            "channels-last": lambda: cl_backend.encode(cl_frame).value,
            "frozen, contiguous": _frozen_call(TensorKeypointEncoder(model), (frame,), output=0),
            "frozen, channels-last input only": _frozen_call(TensorKeypointEncoder(model), (cl_frame,), output=0),
            KEPT: lambda: frozen.encode(frame).value,
            "frozen + optimize_for_inference": _frozen_call(TensorKeypointEncoder(model), (cl_frame,), output=0,
                                                            optimize=True),
        }
    if with_compile:
        started = time.perf_counter()
        compiled = torch.compile(AvatarGenerator(model, state), dynamic=False)
        compiled(*inputs)
        print(f"torch.compile of the render: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        render["torch.compile"] = lambda: compiled(*inputs)
        if model.cfg.num_kp:
            compiled_encoder = torch.compile(TensorKeypointEncoder(model), dynamic=False)
            compiled_encoder(frame)
            encode["torch.compile"] = lambda: compiled_encoder(frame)[0]
    return {"encode": encode, "render": render} if encode else {"render": render}


def _frozen_call(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: int | None = None,
                 optimize: bool = False) -> Callable[[], torch.Tensor]:
    graph = freeze_trace(module, tuple(t.clone() for t in inputs))
    if optimize:
        graph = torch.jit.optimize_for_inference(graph)

    def call() -> torch.Tensor:
        result = graph(*inputs)
        return result if output is None else result[output]
    return call


@torch.inference_mode()
def measure_torch_paths(name: str, size: int, threads: list[int], rounds: int, runs: int, with_compile: bool
                        ) -> list[dict]:
    torch.manual_seed(0)
    model = TalkingHeadModel(get_config(name)).eval()
    stages = torch_path_calls(model, size, with_compile)
    rows = []
    for count in threads:
        torch.set_num_threads(count)
        for stage, calls in stages.items():
            reference = calls[EAGER]()
            differences = {label: float((call() - reference).abs().max()) for label, call in calls.items()}
            timed = interleaved_ms(calls, rounds, runs)
            for label, ms in timed.items():
                row = {"config": name, "stage": stage, "variant": label, "threads": count, "size": size, "ms": ms,
                       "speedup_vs_eager": timed[EAGER] / ms, "max_abs_diff": differences[label]}
                print(f"{name} | {stage} | {count} | {label} | {ms:.1f} | {row['speedup_vs_eager']:.2f}x | "
                      f"{row['max_abs_diff']:.1e}", flush=True)
                rows.append(row)
    return rows


def run_torch_paths(args: argparse.Namespace) -> None:
    load_before = os.getloadavg()
    print(f"config | stage | threads | variant | ms (median of {args.rounds} interleaved rounds × {args.runs or 8}) | "
          "× eager | max abs diff", flush=True)
    rows = []
    for name in args.configs or ["dagan++-mobile", "dagan++-mobile-prior"]:
        rows += measure_torch_paths(name, args.size, args.threads, args.rounds, args.runs or 8, args.compile)
    load_after = os.getloadavg()
    print(f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after ({os.cpu_count()} cores)")
    out = Path(args.json or "out/torch_paths.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"size": args.size, "rounds": args.rounds, "runs": args.runs or 8,
                               "load_average": [load_before[0], load_after[0]], "cpus": os.cpu_count(),
                               "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

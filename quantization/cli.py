"""`python -m quantization <verb>`: int8 (INT8 ONNX graphs), prune (structured pruning + fine-tuning), report.

Each verb parses its options into the library's typed configs and calls one library function; every
error caused by input is an `sdk.SdkError`, printed as one line with exit status 2.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from sdk.cli import run_command

from .errors import QuantizationError


def _parts(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _threads(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _parts(text))
    except ValueError:
        raise QuantizationError(f"--threads {text!r}: expected comma-separated integers") from None


def _say(message: str) -> None:
    print(message, flush=True)


def _int8_config(args: argparse.Namespace, source: str):
    from .calibration import CalibrationConfig
    from .onnx_int8 import Int8Config

    return Int8Config(CalibrationConfig(source and Path(source), args.split, args.pairs, args.seed), args.target_psnr,
                      args.sensitivity_pairs, args.warp, args.preset)


def _run_int8(args: argparse.Namespace) -> int:
    from .onnx_int8 import quantize_onnx_int8
    from .pruning import load_any_model

    config = _int8_config(args, args.calibration)
    model = load_any_model(args.model)
    result = quantize_onnx_int8(model, args.out, config, _say, args.size)
    for name, path in result.paths.items():
        counts = result.kernels[name]
        print(f"{name:18s} {path}  ({path.stat().st_size / 1e6:.2f} MB; ORT INT8 kernels {counts.int8_total}, "
              f"float conv/matmul {counts.float_total})")
    print(f"INT8 vs float frames on {config.sensitivity_pairs} calibration pairs: {result.psnr_vs_float_db:.2f} dB; "
          f"{len(result.float_layers)} layers kept float; {result.seconds:.0f} s")
    size = model.cfg.default_output_size if args.size is None else args.size
    print(f"load with: sdk.runtime.create_backend(model, kind='onnx-int8', graphs='{args.out}', output_size={size})")
    return 0


def _run_prune(args: argparse.Namespace) -> int:
    from .calibration import CalibrationConfig
    from .finetune import FinetuneConfig
    from .pruning import PruneConfig, load_any_model
    from .structured import prune_model

    prune = PruneConfig(args.ratio, _parts(args.parts))
    finetune = FinetuneConfig(Path(args.data), args.steps, args.batch_size, args.lr, args.distill, args.seed, args.device)
    calibration = CalibrationConfig(Path(args.data), "train", args.reconstruct_pairs, args.seed)
    result = prune_model(load_any_model(args.model), args.out, prune, calibration, finetune, _say)
    print(f"generator MACs {result.generator_macs_before / 1e6:.0f} -> {result.generator_macs_after / 1e6:.0f} M "
          f"({result.mac_reduction:.1%} fewer); parameters {result.parameters_before / 1e6:.2f} -> "
          f"{result.parameters_after / 1e6:.2f} M; saved to {result.directory} in {result.seconds:.0f} s")
    return 0


def _run_report(args: argparse.Namespace) -> int:
    from .evaluation import EvalConfig
    from .finetune import FinetuneConfig
    from .latency import LatencyConfig
    from .pruning import PruneConfig
    from .report import ReportConfig, build_report

    threads = _threads(args.threads)
    int8 = _int8_config(args, args.data)
    config = ReportConfig(args.model, Path(args.out), Path(args.data), _parts(args.formats),
                          Path(args.pruned) if args.pruned else None, int8,
                          PruneConfig(args.ratio, _parts(args.parts)),
                          FinetuneConfig(Path(args.data), args.steps),
                          args.unstructured_ratio, EvalConfig(Path(args.data), "test", args.stride, args.max_frames),
                          LatencyConfig(args.runs, threads=threads), args.size)
    result = build_report(config, _say)
    print(json.dumps(result["targets"], indent=1))
    return 0


def _add_calibration_options(parser: argparse.ArgumentParser, with_source: bool = True) -> None:
    from .onnx_int8 import PRESETS, WARPS

    if with_source:
        parser.add_argument("--calibration", default=None,
                            help="prepared folder (python -m sdk data prepare), a folder of portrait images or a "
                                 "video (default: cache/prepared if prepared, else the bundled driving clip)")
    parser.add_argument("--split", default="train", help="prepared split to calibrate on")
    parser.add_argument("--pairs", type=int, default=64, help="calibration frame pairs")
    parser.add_argument("--target-psnr", type=float, default=40.0,
                        help="PSNR (dB) of INT8 vs float frames the sensitivity pass keeps layers float for; 0: none")
    parser.add_argument("--sensitivity-pairs", type=int, default=8, help="pairs rendered per layer in the sensitivity pass")
    parser.add_argument("--warp", choices=WARPS, default="row_gather", help="the generator's warp in the INT8 graph")
    parser.add_argument("--preset", choices=PRESETS, default="performance", help="NNCF quantization preset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=None,
                        help="output size S the graphs render at (default: the model's default output size)")


def _add_pruning_options(parser: argparse.ArgumentParser) -> None:
    from .pruning import PRUNABLE_PARTS

    parser.add_argument("--ratio", type=float, default=0.5, help="fraction of each group's channels removed")
    parser.add_argument("--parts", default=",".join(PRUNABLE_PARTS), help=f"some of {', '.join(PRUNABLE_PARTS)}")
    parser.add_argument("--steps", type=int, default=300, help="fine-tuning steps after pruning")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m quantization",
                                     description="INT8 quantization, pruning and the compression report.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    int8 = verbs.add_parser("int8", help="INT8 ONNX graphs (NNCF, calibrated, sensitivity-chosen float layers)")
    int8.add_argument("--model", default="default", help="default, a shipped model name, or a model folder")
    int8.add_argument("--out", required=True, help="export folder: writes OUT/onnx/int8/<graph>.onnx")
    _add_calibration_options(int8)
    int8.set_defaults(run=_run_int8)

    prune = verbs.add_parser("prune", help="structured channel pruning + least-squares refit + fine-tuning")
    prune.add_argument("--model", default="default")
    prune.add_argument("--out", required=True, help="folder for the pruned model (load with quantization.load_pruned)")
    prune.add_argument("--data", default="cache/prepared", help="prepared folder (train split)")
    _add_pruning_options(prune)
    prune.add_argument("--batch-size", type=int, default=4)
    prune.add_argument("--lr", type=float, default=1e-4)
    prune.add_argument("--distill", type=float, default=10.0, help="weight of the L1 to the unpruned model's frames")
    prune.add_argument("--reconstruct-pairs", type=int, default=16, help="train pairs for the least-squares refit")
    prune.add_argument("--device", default="cpu")
    prune.add_argument("--seed", type=int, default=0)
    prune.set_defaults(run=_run_prune)

    report = verbs.add_parser("report", help="format × precision × pruning: size, latency, quality (md, html, json)")
    report.add_argument("--model", default="default")
    report.add_argument("--out", required=True)
    report.add_argument("--data", default="cache/prepared", help="prepared folder: train (calibration), test (scores)")
    report.add_argument("--formats", default="onnx,tflite,coreml", help="some of onnx, tflite, coreml")
    report.add_argument("--pruned", help="a pruned model folder from `python -m quantization prune` (else pruned here)")
    report.add_argument("--unstructured-ratio", type=float, default=0.5, help="nncf.prune magnitude ratio; 0: skip")
    report.add_argument("--stride", type=int, default=10, help="every N-th test frame drives")
    report.add_argument("--max-frames", type=int, default=None, help="at most N driving frames per test clip")
    report.add_argument("--runs", type=int, default=50, help="timed runs per graph and variant")
    report.add_argument("--threads", default="1,2", help="thread counts to time")
    _add_calibration_options(report, with_source=False)
    _add_pruning_options(report)
    report.set_defaults(run=_run_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: args.run(args), args.verbose, logging.WARNING)


__all__ = ["QuantizationError", "build_parser", "main"]

"""`python -m quantization report`: every format × precision × pruning level of a model — size, latency here,
quality — as Markdown, HTML and JSON with plots.

Variants (rows), all of one model:
- torch fp32 (the reference frames), and the same model with NNCF unstructured magnitude pruning;
- ONNX fp32 as the exporter writes it (GridSample warp), ONNX fp32 with the row-gather warp the
  INT8 graphs use, ONNX fp16, and ONNX INT8 (`onnx_int8`);
- TFLite fp32 and INT8 (LiteRT, XNNPACK here), Core ML fp32 and W8 (size and structure only:
  Core ML predicts only on macOS);
- the structurally pruned model (`structured`, fine-tuned) as torch fp32, ONNX fp32 and ONNX INT8.

All variants render at one output size (`ReportConfig.output_size`, default the model's). Per
variant: file size (the three graphs), generator MACs, latency of each graph here (median
of `LatencyConfig.runs` runs at 1 and 2 threads, variants interleaved), and quality on the test
identities (`evaluation`). The sensitivity pass of the INT8 run and what could not be measured
here are reported too. Timings on a shared machine drift: the ratios, measured in one
interleaved run, are what to read.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from sdk.media import to_image
from sdk.models import TalkingHeadModel

from . import plots
from .calibration import CalibrationConfig, CalibrationSet, graph_feeds
from .document import Section, Table, to_html, to_markdown
from .errors import QuantizationError
from .evaluation import EvalConfig, Quality, QualityScorer, load_test_pairs, render_pairs
from .finetune import FinetuneConfig
from .latency import Latency, LatencyConfig, ort_op_profile, ort_runner, time_interleaved, torch_runner
from .onnx_int8 import Int8Config, Int8Result, quantize_onnx_int8, resolve_output_size
from .pruning import PLAN_FILE, PruneConfig, load_any_model, load_pruned, prune_unstructured
from .structured import SUMMARY_FILE, generator_macs, prune_model

REPORT_FORMATS: tuple[str, ...] = ("onnx", "tflite", "coreml")
ProgressFn = Callable[[str], None]

NOT_MEASURABLE = [
    "Core ML predictions (and so Core ML latency and frame quality, and W8A8 activation calibration): "
    "coremltools predicts only on macOS; here the packages are converted and their structure checked "
    "(`python -m export verify`), and `export/check_coreml_macos.py` compares them with torch on a Mac.",
    "Phone NPUs (Android NNAPI / vendor delegates, Apple Neural Engine): no device here; the TFLite "
    "numbers are LiteRT's XNNPACK CPU kernels on this x86 machine.",
    "Desktop CUDA / TensorRT (ONNX Runtime GPU providers): this machine has no GPU and no GPU machine "
    "was lent to this task; `OrtSettings(device='cuda', tensorrt=True)` is untested.",
    "Latency on an idle machine: these 2 cores are shared with training jobs, so absolute times drift; "
    "variants are timed interleaved, so the ratios between them are the numbers to read.",
]


@dataclass(frozen=True)
class ReportConfig:
    """model: a model name or folder (`sdk.load_model`); out: the report folder; data: a prepared folder
    (train split: calibration and fine-tuning; test split: scores; it stands in for the data folders of
    `int8`, `finetune` and `evaluation`); formats: which of
    `REPORT_FORMATS`; pruned: a folder from `python -m quantization prune` (None: pruned here with
    `prune` and `finetune`); unstructured_ratio: NNCF magnitude pruning ratio (0: skipped);
    output_size: the side of the frames every variant renders (None: the model's default)."""
    model: str = "default"
    out: Path = Path("out/quantization")
    data: Path = Path("cache/prepared")
    formats: tuple[str, ...] = REPORT_FORMATS
    pruned: Path | None = None
    int8: Int8Config = Int8Config()
    prune: PruneConfig = PruneConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    unstructured_ratio: float = 0.5
    evaluation: EvalConfig = EvalConfig()
    latency: LatencyConfig = LatencyConfig()
    output_size: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "data", Path(self.data))
        unknown = sorted(set(self.formats) - set(REPORT_FORMATS))
        if unknown:
            raise QuantizationError(f"unknown report formats {unknown}; choose from {', '.join(REPORT_FORMATS)}")
        if not 0.0 <= self.unstructured_ratio < 1.0:
            raise QuantizationError(f"unstructured_ratio must be in [0, 1), got {self.unstructured_ratio}")


@dataclass
class Variant:
    """One row: how it is stored and how to run it (torch model or graph files)."""
    name: str
    format: str  # torch | onnx | tflite | coreml
    precision: str  # fp32 | fp16 | int8 | w8
    pruning: str  # none | structured N% | unstructured N%
    model: TalkingHeadModel | None = None  # torch variants, and the model the graph files were made from
    files: dict[str, Path] = field(default_factory=dict)
    notes: str = ""

    @property
    def runnable(self) -> bool:
        """Whether it runs here: Core ML predicts only on macOS."""
        return self.format != "coreml"


@dataclass
class Row:
    name: str
    format: str
    precision: str
    pruning: str
    size_bytes: int
    generator_mmac: float | None
    latency_ms: dict[int, dict[str, Latency]] = field(default_factory=dict)  # threads -> graph -> latency
    quality: Quality | None = None
    notes: str = ""

    def frame_ms(self, threads: int) -> float | None:
        graphs = self.latency_ms.get(threads)
        if not graphs:
            return None
        return graphs["keypoint_encoder"].median_ms + graphs["generator"].median_ms


def build_report(config: ReportConfig, progress: ProgressFn | None = None) -> dict:
    """Make every variant, measure it, and write report.md, report.html, report.json and figures/ to `config.out`."""
    say = progress or (lambda message: None)
    started = time.perf_counter()
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    model = load_any_model(config.model).eval()
    size = resolve_output_size(model, config.output_size)
    int8 = replace(config.int8, calibration=replace(config.int8.calibration, source=config.data))
    say("loading test pairs")
    pairs = load_test_pairs(replace(config.evaluation, data=config.data), size)
    variants, records = _make_variants(model, config, int8, say, size)
    rows = [Row(v.name, v.format, v.precision, v.pruning, _size(v), _macs(v, size), notes=v.notes) for v in variants]
    environment = {"cpu": _cpu_name(), "cores": os.cpu_count(), "load_before": os.getloadavg(),
                   "python": platform.python_version(), "torch": torch.__version__}
    feeds = _latency_feeds(model, pairs[0])
    torch_threads = torch.get_num_threads()
    try:
        for threads in config.latency.threads:
            say(f"latency at {threads} thread(s)")
            _measure_latency(variants, rows, feeds, threads, config.latency, size)
    finally:
        torch.set_num_threads(torch_threads)
    environment["load_after_latency"] = os.getloadavg()
    say("ONNX Runtime profile of the generators")
    records["generator_profiles"] = {variant.name: ort_op_profile(variant.files["generator"], feeds["generator"])
                                     for variant in variants if variant.format == "onnx" and variant.pruning == "none"}
    say("quality on the test identities")
    _measure_quality(variants, rows, pairs, config.evaluation, say, size)
    document = _document(config, model, rows, records, environment, len(pairs), size)
    _write(out, document, config.model)
    say(f"report written to {out} in {time.perf_counter() - started:.0f} s")
    return document["json"]


# ----------------------------------------------------------------------------------------------
# Variants


def _make_variants(model: TalkingHeadModel, config: ReportConfig, int8: Int8Config,
                   say: ProgressFn, size: int) -> tuple[list[Variant], dict]:
    from sdk.runtime.onnx_export import export_onnx

    graphs_dir = config.out / "graphs"
    records: dict = {}
    # First, so that a --pruned folder that is not a pruned copy of this model fails before the long steps.
    pruned, summary = _pruned_model(model, config, say, size)
    variants = [Variant("torch fp32", "torch", "fp32", "none", model)]
    if config.unstructured_ratio:
        say(f"unstructured pruning {config.unstructured_ratio:.0%} (nncf.prune)")
        sparse, report = prune_unstructured(model, config.unstructured_ratio)
        records["unstructured"] = asdict(report)
        variants.append(Variant(f"torch fp32 sparse {config.unstructured_ratio:.0%}", "torch", "fp32",
                                f"unstructured {config.unstructured_ratio:.0%}", sparse,
                                notes=f"{report.sparsity:.0%} of generator weights zero; fp16 weights gzip'd "
                                      f"{report.weights_gzip_bytes / 1e6:.2f} MB (dense "
                                      f"{report.dense_weights_gzip_bytes / 1e6:.2f} MB); dense kernels"))
    if "onnx" in config.formats:
        say("ONNX fp32 / fp16 graphs (exporter)")
        for precision in ("fp32", "fp16"):
            files = export_onnx(model, graphs_dir / "dense", precision, output_size=size)
            variants.append(Variant(f"onnx {precision}", "onnx", precision, "none", model, files,
                                    notes="exporter's graphs (GridSample warp)"))
        variants.append(Variant("onnx fp32 row-gather", "onnx", "fp32", "none", model,
                                _float_graphs(model, graphs_dir / "dense-row_gather", int8.warp, size),
                                notes="same graph structure as INT8"))
        say("ONNX INT8 (NNCF)")
        result = quantize_onnx_int8(model, graphs_dir / "dense", int8, say, size)
        records["int8"] = result.record()
        variants.append(Variant("onnx int8", "onnx", "int8", "none", model, result.paths,
                                notes=_kernel_note(result)))
    if "tflite" in config.formats:
        variants += _tflite_variants(model, graphs_dir / "dense", int8.calibration, say, size)
    if "coreml" in config.formats:
        variants += _coreml_variants(model, graphs_dir / "dense", say, size)
    records["structured"] = summary
    label = f"structured {summary['ratio']:.0%}"
    variants.append(Variant("torch fp32 pruned", "torch", "fp32", label, pruned))
    if "onnx" in config.formats:
        variants.append(Variant("onnx fp32 row-gather pruned", "onnx", "fp32", label, pruned,
                                _float_graphs(pruned, graphs_dir / "pruned-row_gather", int8.warp, size)))
        say("ONNX INT8 of the pruned model (float layers of the dense run)")
        pruned_result = quantize_onnx_int8(pruned, graphs_dir / "pruned",
                                           replace(int8, float_layers=tuple(result.float_layers)), say, size)
        records["int8_pruned"] = pruned_result.record()
        variants.append(Variant("onnx int8 pruned", "onnx", "int8", label, pruned, pruned_result.paths,
                                notes=_kernel_note(pruned_result)))
    return variants, records


def _kernel_note(result: Int8Result) -> str:
    int8 = sum(count.int8_total for count in result.kernels.values())
    floats = sum(count.float_total for count in result.kernels.values())
    return f"ORT runs {int8} INT8 kernels, {floats} float conv/matmul; {len(result.float_layers)} layers kept float"


def _float_graphs(model: TalkingHeadModel, directory: Path, warp: str, size: int) -> dict[str, Path]:
    """Float ONNX graphs at output size `size` with `warp`, with the exporter's metadata, in
    ``directory/onnx/fp32/``."""
    from sdk.runtime.graphs import graph_specs
    from sdk.runtime.metadata import graph_metadata, model_sha256
    from sdk.runtime.onnx_export import onnx_graph_path, save_onnx, set_onnx_metadata

    from .onnx_int8 import float_onnx_graphs

    sha256 = model_sha256(model)
    specs = graph_specs(model.cfg, size)
    paths = {}
    for name, proto in float_onnx_graphs(model, warp, size).items():
        set_onnx_metadata(proto, graph_metadata(model, specs[name], "fp32", sha256).to_strings())
        paths[name] = save_onnx(proto, onnx_graph_path(directory, "fp32", name))
    return paths


def _tflite_variants(model: TalkingHeadModel, directory: Path, calibration: CalibrationConfig,
                     say: ProgressFn, size: int) -> list[Variant]:
    from export.tflite_writer import write_tflite
    from sdk.runtime.graphs import graph_specs
    from sdk.runtime.metadata import graph_metadata, model_sha256
    from sdk.runtime.tflite_backend import tflite_graph_path

    from .export_hook import calibration_feeds, write_tflite_int8

    sha256 = model_sha256(model)
    specs = graph_specs(model.cfg, size)
    feeds = calibration_feeds(model, calibration, size)
    files: dict[str, dict[str, Path]] = {"fp32": {}, "int8": {}}
    for name, spec in specs.items():
        say(f"TFLite fp32 {name} (litert-torch)")
        files["fp32"][name] = write_tflite(model, name, "fp32", tflite_graph_path(directory, "fp32", name),
                                           graph_metadata(model, spec, "fp32", sha256))
        say(f"TFLite INT8 {name} (ai-edge-quantizer)")
        files["int8"][name] = write_tflite_int8(model, name, tflite_graph_path(directory, "int8", name),
                                                graph_metadata(model, spec, "int8", sha256), feeds[name])
    return [Variant("tflite fp32", "tflite", "fp32", "none", model, files["fp32"], notes="XNNPACK, row-gather warp"),
            Variant("tflite int8", "tflite", "int8", "none", model, files["int8"],
                    notes="CONV_2D static int8, rest float")]


def _coreml_variants(model: TalkingHeadModel, directory: Path, say: ProgressFn, size: int) -> list[Variant]:
    from export.coreml_writer import check_coreml, write_coreml
    from export.files import graph_path
    from sdk.runtime.graphs import graph_specs
    from sdk.runtime.metadata import graph_metadata, model_sha256

    from .export_hook import write_coreml_w8

    sha256 = model_sha256(model)
    variants = []
    for precision in ("fp32", "int8"):
        files, problems = {}, []
        for name, spec in graph_specs(model.cfg, size).items():
            say(f"Core ML {precision} {name}")
            metadata = graph_metadata(model, spec, precision, sha256)
            path = graph_path(directory, "coreml", precision, name)
            files[name] = (write_coreml_w8(model, name, path, metadata) if precision == "int8"
                           else write_coreml(model, name, precision, path, metadata))
            problems += check_coreml(files[name], metadata)[1]
        note = "structure checked" + (f"; problems: {'; '.join(problems)}" if problems else ", ok")
        variants.append(Variant(f"coreml {'w8' if precision == 'int8' else precision}", "coreml",
                                "w8" if precision == "int8" else precision, "none", model, files,
                                notes=note + "; predicts only on macOS"))
    return variants


def _pruned_model(model: TalkingHeadModel, config: ReportConfig, say: ProgressFn, size: int
                  ) -> tuple[TalkingHeadModel, dict]:
    """The structurally pruned model (`config.pruned`, or pruned here) and its summary; QuantizationError when
    a given folder was pruned from another model than `model` (its comparisons would be meaningless)."""
    from sdk.runtime.metadata import model_sha256

    directory = config.pruned
    if directory is None:
        directory = config.out / "pruned"
        say(f"structured pruning {config.prune.ratio:.0%} + {config.finetune.steps} fine-tuning steps")
        prune_model(model, directory, config.prune, CalibrationConfig(config.data, pairs=16),
                    replace(config.finetune, data=config.data), say)
    pruned = load_pruned(directory)
    source_sha256 = pruned.metadata.get("pruned_from_sha256")
    if pruned.cfg.to_dict() != model.cfg.to_dict() or (source_sha256 and source_sha256 != model_sha256(model)):
        raise QuantizationError(f"{directory}: pruned from another model than {config.model} "
                                f"({pruned.metadata.get('pruned_from', 'unknown')}); prune this one "
                                "with `python -m quantization prune`, or leave out --pruned")
    summary_file = Path(directory) / SUMMARY_FILE
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    plan = json.loads((Path(directory) / PLAN_FILE).read_text())
    summary.update(ratio=plan["ratio"], parts=plan["parts"], directory=str(directory),
                   generator_macs_before=generator_macs(model, size), generator_macs_after=generator_macs(pruned, size))
    summary["mac_reduction"] = 1.0 - summary["generator_macs_after"] / summary["generator_macs_before"]
    return pruned, summary


# ----------------------------------------------------------------------------------------------
# Measurements


def _size(variant: Variant) -> int:
    """Bytes of the three graph files, or of a torch model's fp32 weights (the checkpoint stores fp16: half)."""
    from export.files import path_size

    if variant.files:
        return sum(path_size(path) for path in variant.files.values())
    return sum(p.numel() * 4 for p in variant.model.state_dict().values() if p.is_floating_point())


def _macs(variant: Variant, size: int) -> float | None:
    if variant.model is None:
        return None
    return generator_macs(variant.model, size) / 1e6


def _latency_feeds(model: TalkingHeadModel, pair) -> dict[str, dict[str, np.ndarray]]:
    """Every graph's inputs for the first test pair (real frames at the output size), from the fp32 torch graphs."""
    source = to_image(pair.source)
    frames = graph_feeds(model, CalibrationSet([source], [pair.real], 0, "test pair"))
    return {name: items[0] for name, items in frames.items()}


def _runners(variant: Variant, feeds: dict[str, dict[str, np.ndarray]], threads: int, size: int
             ) -> dict[str, Callable]:
    from sdk.runtime.graphs import build_graphs, graph_specs

    from .qdq import ort_session

    if variant.format == "torch":
        specs = graph_specs(variant.model.cfg, size)
        modules = build_graphs(variant.model, output_size=size)
        return {name: torch_runner(modules[name], tuple(torch.from_numpy(feeds[name][n]) for n in spec.input_names))
                for name, spec in specs.items()}
    if variant.format == "onnx":
        return {name: ort_runner(ort_session(path, threads), feeds[name]) for name, path in variant.files.items()}
    from sdk.runtime.tflite_backend import TfliteRunner

    runner = TfliteRunner(variant.files, threads)
    return {name: (lambda name=name: runner.run(name, feeds[name])) for name in variant.files}


def _measure_latency(variants: list[Variant], rows: list[Row], feeds, threads: int, config: LatencyConfig,
                     size: int) -> None:
    torch.set_num_threads(threads)
    runnable = [(variant, row) for variant, row in zip(variants, rows) if variant.runnable]
    runners = {variant.name: _runners(variant, feeds, threads, size) for variant, _ in runnable}
    for graph in ("keypoint_encoder", "source_encoder", "generator"):
        timed = time_interleaved({name: graphs[graph] for name, graphs in runners.items()}, config.runs, config.warmup)
        for variant, row in runnable:
            row.latency_ms.setdefault(threads, {})[graph] = timed[variant.name]


def _backend(variant: Variant, size: int):
    from sdk.runtime import OnnxBackend, OrtSettings, TorchBackend
    from sdk.runtime.tflite_backend import TfliteBackend

    if variant.format == "torch":
        return TorchBackend(variant.model, output_size=size)
    kind = variant.format if variant.precision == "fp32" else f"{variant.format}-{variant.precision}"
    if variant.format == "onnx":
        return OnnxBackend(variant.files, OrtSettings(threads=2), kind)
    return TfliteBackend(variant.files, 2, kind)


def _measure_quality(variants: list[Variant], rows: list[Row], pairs, config: EvalConfig, say: ProgressFn,
                     size: int) -> None:
    reference = render_pairs(_backend(variants[0], size), pairs)
    scorer = QualityScorer(pairs, reference, config.akd)
    try:
        for variant, row in zip(variants, rows):
            if variant.runnable:
                say(f"scoring {variant.name}")
                row.quality = scorer.score(reference if variant is variants[0]
                                           else render_pairs(_backend(variant, size), pairs))
    finally:
        scorer.close()


# ----------------------------------------------------------------------------------------------
# The document


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _find(rows: list[Row], name: str) -> Row | None:
    return next((row for row in rows if row.name == name), None)


def _targets(rows: list[Row], records: dict, threads: tuple[int, ...]) -> tuple[list[list[str]], dict]:
    """The issue's figures: measured, target, met?"""
    table, checks = [], {}
    int8, shipped, same = _find(rows, "onnx int8"), _find(rows, "onnx fp32"), _find(rows, "onnx fp32 row-gather")
    for baseline, label, key in ((shipped, "exporter's fp32 ONNX", "exporter_fp32"),
                                 (same, "fp32 ONNX, same warp", "same_warp_fp32")):
        if int8 is None or baseline is None:
            continue
        for count in threads:
            if int8.frame_ms(count) and baseline.frame_ms(count):
                speed = baseline.frame_ms(count) / int8.frame_ms(count)
                generator = (baseline.latency_ms[count]["generator"].median_ms
                             / int8.latency_ms[count]["generator"].median_ms)
                checks[f"int8_speedup_vs_{key}_{count}t"] = speed
                table.append([f"INT8 ONNX speed vs {label}, {count} thread(s) (encoder + generator)",
                              f"{speed:.2f}× (generator alone {generator:.2f}×)", "≥ 2×", _yes(speed >= 2.0)])
        size = baseline.size_bytes / int8.size_bytes
        checks[f"int8_size_ratio_vs_{key}"] = size
        table.append([f"INT8 ONNX size vs {label}", f"{size:.2f}× smaller", "≥ 3.5×", _yes(size >= 3.5)])
        if int8.quality and baseline.quality:
            lost = baseline.quality.psnr_vs_real - int8.quality.psnr_vs_real
            checks[f"int8_psnr_lost_vs_{key}"] = lost
            table.append([f"INT8 ONNX PSNR lost vs {label} (real frames)", f"{lost:.2f} dB", "≤ 0.5 dB",
                          _yes(lost <= 0.5)])
    dense, pruned = _find(rows, "torch fp32"), _find(rows, "torch fp32 pruned")
    structured = records.get("structured", {})
    if structured:
        reduction = structured["mac_reduction"]
        checks["pruning_mac_reduction"] = reduction
        table.append(["structured pruning: fewer generator MACs", f"{reduction:.1%}", "≥ 30 %", _yes(reduction >= 0.3)])
    if dense and pruned and dense.quality and pruned.quality:
        lost = dense.quality.psnr_vs_real - pruned.quality.psnr_vs_real
        checks["pruning_psnr_lost"] = lost
        table.append(["structured pruning: PSNR lost after fine-tuning (real frames)", f"{lost:.2f} dB", "≤ 0.5 dB",
                      _yes(lost <= 0.5)])
    return table, checks


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def _document(config: ReportConfig, model: TalkingHeadModel, rows: list[Row], records: dict, environment: dict,
              pair_count: int, size: int) -> dict:
    figures = config.out / "figures"
    threads = config.latency.threads
    main = Table(["variant", "format", "precision", "pruning", "size MB", "generator MMAC"]
                 + [f"frame ms {t}t" for t in threads]
                 + ["PSNR vs fp32", "SSIM vs fp32", "PSNR real", "SSIM real", "AKD px", "notes"],
                 [[row.name, row.format, row.precision, row.pruning, _fmt(row.size_bytes / 1e6), _fmt(row.generator_mmac, 0)]
                  + [_fmt(row.frame_ms(t), 1) for t in threads]
                  + ([_fmt(row.quality.psnr_vs_fp32), _fmt(row.quality.ssim_vs_fp32, 4), _fmt(row.quality.psnr_vs_real),
                      _fmt(row.quality.ssim_vs_real, 3), _fmt(row.quality.akd)] if row.quality else ["—"] * 5)
                  + [row.notes] for row in rows])
    per_graph = Table(["variant"] + [f"{graph} ms {t}t" for t in threads
                                     for graph in ("keypoint_encoder", "source_encoder", "generator")],
                      [[row.name] + [_fmt(row.latency_ms[t][graph].median_ms, 1) if t in row.latency_ms else "—"
                                     for t in threads for graph in ("keypoint_encoder", "source_encoder", "generator")]
                       for row in rows])
    target_rows, checks = _targets(rows, records, threads)
    sections = [
        Section("Summary", [f"Model {config.model} ({model.cfg.name}, {model.cfg.resolution}² internal, frames at "
                            f"{size}²). Quality on "
                            f"{pair_count} self-reenactment frames of the test identities (every "
                            f"{config.evaluation.stride}th frame driving the clip's first frame). Latency here: "
                            f"median of {config.latency.runs} runs per graph, variants interleaved; "
                            f"{environment['cpu']}, load average {environment['load_before'][0]:.1f} before and "
                            f"{environment['load_after_latency'][0]:.1f} after timing "
                            f"({environment['cores']} cores, shared)."],
                [main]),
        Section("Figures to reach", [], [Table(["figure", "measured", "target", "met"], target_rows)]),
        Section("Latency per graph (ms, median)", ["The sender runs keypoint_encoder per frame, the receiver "
                                                   "generator per frame and source_encoder once per avatar."],
                [per_graph]),
    ]
    images = []
    runnable = [row for row in rows if row.frame_ms(threads[0]) is not None]
    images.append((plots.size_latency([(row.name, row.size_bytes / 1e6, row.frame_ms(threads[0])) for row in runnable],
                                      figures / "size_latency.png", threads[0]), "size vs per-frame latency"))
    images.append((plots.latency_bars([(row.name, {t: row.frame_ms(t) or 0.0 for t in threads}) for row in runnable],
                                      figures / "latency.png"), "per-frame latency by thread count"))
    scored = [row for row in rows if row.quality]
    images.append((plots.quality_bars([(row.name, row.quality.psnr_vs_real, row.quality.psnr_vs_fp32) for row in scored],
                                      figures / "quality.png"), "PSNR against the real frames and against fp32 torch"))
    sections[0].figures = [(str(path.relative_to(config.out)), caption) for path, caption in images]
    if records.get("generator_profiles"):
        sections.append(_profile_section(records["generator_profiles"]))
    if "int8" in records:
        sections.append(_int8_section(config, records["int8"], figures))
    if "structured" in records:
        sections.append(_pruning_section(config, records, figures))
    sections.append(Section("Not measurable here", bullets=NOT_MEASURABLE))
    report = {"config": json.loads(json.dumps(asdict(config), default=str)), "environment": environment,
              "rows": [_row_json(row) for row in rows], "targets": checks, "records": records}
    return {"sections": sections, "json": report}


def _profile_section(profiles: dict[str, dict[str, float]]) -> Section:
    """Per kernel type, ms per generator run (1 thread) and share, for each ONNX variant."""
    kinds = list(dict.fromkeys(op for profile in profiles.values() for op in list(profile)[:8]))
    rows = []
    for op in kinds:
        row = [op]
        for profile in profiles.values():
            total = sum(profile.values()) or 1.0
            row.append(f"{profile.get(op, 0.0):.2f} ({100 * profile.get(op, 0.0) / total:.0f} %)")
        rows.append(row)
    rows.append(["total"] + [f"{sum(profile.values()):.2f}" for profile in profiles.values()])
    return Section("Where the generator's time goes (ONNX Runtime profiler, 1 thread, ms per run)", [
        "INT8 speeds up the convolutions and attention products, and the decoder's upsample-and-concatenate "
        "joins move uint8 instead of float (`qdq.byte_concats`); the warp (GridSample, or the row gather and "
        "its blend), the motion maths, the attention's upsampling and the layout changes stay float."],
        [Table(["kernel"] + list(profiles), rows)])


def _int8_section(config: ReportConfig, record: dict, figures: Path) -> Section:
    float_layers = {tuple(item) for item in record["float_layers"]}
    ordered = sorted(record["sensitivity"], key=lambda item: item["psnr_db"])
    section = Section("INT8 quantization: per-layer sensitivity", [
        f"NNCF {record['versions'].get('nncf')} post-training quantization (ONNX backend) of every Conv and MatMul, "
        f"calibrated on {record['calibration']['pairs']} pairs of {record['calibration']['origin']} "
        f"({record['calibration']['frames_without_face']} frames without a face dropped). Every other op (GridSample, "
        "the keypoint Gaussians and flows, softmax blending) stays float. Sensitivity: frames rendered with only one "
        "layer INT8, against float frames, on calibration pairs. Kept float until the summed cost reached "
        f"{config.int8.target_psnr_db:.0f} dB: {len(float_layers)} layers. All graphs INT8 vs float on those pairs: "
        f"{record['psnr_vs_float_db']:.2f} dB."])
    section.tables.append(Table(["graph", "layer", "op", "PSNR alone (dB)", "kept float"],
                                [[item["graph"], item["layer"], item["op_type"], _fmt(item["psnr_db"]),
                                  "yes" if (item["graph"], item["layer"]) in float_layers else ""]
                                 for item in ordered[:20]]))
    section.tables.append(Table(["graph", "INT8 kernels", "float conv/matmul kernels"],
                                [[graph, ", ".join(f"{k} {v}" for k, v in counts["int8"].items()) or "—",
                                  ", ".join(f"{k} {v}" for k, v in counts["float"].items()) or "—"]
                                 for graph, counts in record["kernels"].items()]))
    if ordered:
        path = plots.sensitivity_bars([(f"{item['graph'][:3]} {item['layer']}", item["psnr_db"],
                                        (item["graph"], item["layer"]) in float_layers) for item in ordered[:40]],
                                      figures / "sensitivity.png")
        section.figures.append((str(path.relative_to(config.out)), "the 40 most sensitive layers"))
    return section


def _pruning_section(config: ReportConfig, records: dict, figures: Path) -> Section:
    structured = records["structured"]
    paragraphs = [f"Structured: {structured['ratio']:.0%} of the channels of {', '.join(structured['parts'])} removed "
                  "(BatchNorm-scaled L1 ranking), readers refitted by least squares, then fine-tuned "
                  f"({structured.get('finetune', {}).get('steps', '?')} steps, training losses + distillation). "
                  f"Generator: {structured['generator_macs_before'] / 1e6:.0f} → "
                  f"{structured['generator_macs_after'] / 1e6:.0f} MMAC ({structured['mac_reduction']:.1%} fewer)."]
    if "unstructured" in records:
        sparse = records["unstructured"]
        paragraphs.append(f"Unstructured (nncf.prune, magnitude {sparse['mode']}, ratio {sparse['ratio']:.0%}): "
                          f"{sparse['sparsity']:.1%} of the generator's weights are zero; fp16 weights gzip'd: "
                          f"{sparse['dense_weights_gzip_bytes'] / 1e6:.2f} → {sparse['weights_gzip_bytes'] / 1e6:.2f} MB. "
                          "Dense kernels (ORT, XNNPACK) run zeros at full cost, so this buys download size only.")
    section = Section("Pruning", paragraphs)
    losses = structured.get("finetune", {}).get("losses")
    if losses:
        path = plots.loss_curve([tuple(point) for point in losses], figures / "finetune_loss.png")
        section.figures.append((str(path.relative_to(config.out)), "fine-tuning loss of the pruned generator"))
    return section


def _row_json(row: Row) -> dict:
    return {"name": row.name, "format": row.format, "precision": row.precision, "pruning": row.pruning,
            "size_bytes": row.size_bytes, "generator_mmac": row.generator_mmac, "notes": row.notes,
            "latency_ms": {str(t): {g: asdict(v) for g, v in graphs.items()} for t, graphs in row.latency_ms.items()},
            "frame_ms": {str(t): row.frame_ms(t) for t in row.latency_ms},
            "quality": asdict(row.quality) if row.quality else None}


def _write(out: Path, document: dict, model_name: str) -> None:
    title = f"Compression report: {model_name}"
    (out / "report.md").write_text(to_markdown(title, document["sections"]))
    (out / "report.html").write_text(to_html(title, document["sections"]))
    (out / "report.json").write_text(json.dumps(document["json"], indent=1, default=str) + "\n")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"

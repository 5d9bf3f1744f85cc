"""`python -m export --audio [MODEL]` and the audio part of `python -m export verify DIR` (issue 13).

The audio-to-code model's two graphs (`sdk.runtime.audio_graphs`: ``audio_expression``, the
log-mel front end + the live expression net, and ``audio_motion``, front end + motion nets)
go to ``DIR/audio/<format>/<precision>/<graph><ext>`` with ``DIR/audio/export.json``:

- onnx fp32 / fp16: the runtime's exporter (`sdk.runtime.audio_backend.export_audio_onnx`);
  int8: NNCF on the float graph, calibrated on speech (`quantization.audio_int8`);
- tflite fp32 / fp16: litert-torch with named signatures (`export.tflite_writer`); int8:
  ai-edge-quantizer static INT8 of the nets' CONV_2D, calibrated on speech;
- coreml fp32 / fp16 (mlprogram, converted here; Core ML predicts on macOS only); int8: W8
  weights of the nets.
The front end and the expression net's smoother stay float in the int8 files
(`quantization.audio_int8` says why, with the measured errors).

Verify: per format × precision, the files against their recorded sha256 and metadata, then the
graphs on a shared speech clip, the live path's inputs for every frame (and the torch chain's
states and offsets for every clip), against the torch graphs: max-abs and relative error
(max-abs / max |torch|) and the PSNR of the deltas (peak = max |torch|). Core ML: structure only.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from sdk.audio.model_file import load_audio_model
from sdk.files import write_bytes_atomic
from sdk.models.audio_to_code import AudioToCodeModel
from sdk.runtime.audio_backend import AUDIO_FOLDER, audio_graph_path, export_audio_onnx, load_audio_graphs
from sdk.runtime.audio_graphs import (AUDIO_GRAPH_NAMES, AudioGraphMetadata, audio_example_inputs,
                                      audio_graph_metadata, audio_graph_specs, audio_model_sha256, build_audio_graphs)

from .frames import shared_data_dir
from .manifest import ExportEntry, damaged, incomplete
from .request import ExportError
from .table import format_table

log = logging.getLogger(__name__)

MANIFEST_FILE = "export.json"  # inside DIR/audio/
# Largest relative error (max-abs / max |torch|) of the deltas that passes, per precision.
RELATIVE_TOLERANCE = {"fp32": 1e-3, "fp16": 3e-2, "int8": 0.15}
VERIFY_SECONDS = 8.0  # of the verification clip


@dataclass
class AudioExportManifest:
    """What DIR/audio holds: the audio model (its source, sha256, face prior) and one entry per graph file."""

    model_source: str
    audio_model_sha256: str
    prior_sha256: str
    sdk_version: str
    entries: list[ExportEntry] = field(default_factory=list)

    def save(self, directory: Path) -> Path:
        return write_bytes_atomic(Path(directory) / AUDIO_FOLDER / MANIFEST_FILE,
                                  (json.dumps(asdict(self), indent=1) + "\n").encode())

    @classmethod
    def load(cls, directory: Path) -> AudioExportManifest:
        path = Path(directory) / AUDIO_FOLDER / MANIFEST_FILE
        if not path.is_file():
            raise ExportError(f"{directory}: no audio graphs ({path} missing); run `python -m export --audio`")
        try:
            data = json.loads(path.read_text())
            entries = [ExportEntry(**entry) for entry in data.pop("entries")]
            manifest = cls(**data, entries=entries)
            for entry in manifest.entries:
                if entry.graph not in AUDIO_GRAPH_NAMES or Path(entry.path) != audio_graph_path(
                        Path(), entry.format, entry.precision, entry.graph):
                    raise ValueError(f"unknown graph or path in {entry}")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ExportError(f"{path}: corrupt or not written by `python -m export --audio` ({exc})") from exc
        return manifest

    def groups(self) -> dict[tuple[str, str], list[ExportEntry]]:
        grouped: dict[tuple[str, str], list[ExportEntry]] = {}
        for entry in self.entries:
            grouped.setdefault((entry.format, entry.precision), []).append(entry)
        return grouped


def has_audio_export(directory: str | Path) -> bool:
    return (Path(directory) / AUDIO_FOLDER / MANIFEST_FILE).is_file()


# -- writers ---------------------------------------------------------------------------------


def write_audio_tflite(model: AudioToCodeModel, graph: str, precision: str, path: Path,
                       metadata: AudioGraphMetadata) -> Path:
    """One audio graph as .tflite (fp32, or fp16 weights) with `metadata`."""
    import litert_torch

    from .tflite_writer import NamedGraph, add_metadata, fp16_weights

    if precision not in ("fp32", "fp16"):
        raise ValueError(f"TFLite float export writes fp32 or fp16, not {precision!r}")
    litert_torch.config.show_progress = False
    spec = metadata.spec
    module = NamedGraph(build_audio_graphs(model)[graph], spec).eval()
    sample = dict(zip(spec.input_names, audio_example_inputs(model.config, frames=metadata.frames)[graph]))
    with torch.no_grad():
        content = bytes(litert_torch.convert(module, sample_kwargs=sample).model_content())
    if precision == "fp16":
        content = fp16_weights(content)
    return write_bytes_atomic(path, add_metadata(content, metadata.to_strings()))


def write_audio_coreml(model: AudioToCodeModel, graph: str, precision: str, path: Path,
                       metadata: AudioGraphMetadata) -> Path:
    """One audio graph as a Core ML mlprogram (fp32 or fp16 compute, float32 I/O) with `metadata`."""
    from .coreml_writer import save_mlprogram

    if precision not in ("fp32", "fp16"):
        raise ValueError(f"Core ML float export writes fp32 or fp16, not {precision!r}")
    with torch.no_grad():
        traced = torch.jit.trace(build_audio_graphs(model)[graph],
                                 audio_example_inputs(model.config, frames=metadata.frames)[graph])
    return save_mlprogram(traced, metadata.spec, precision, metadata.to_strings(), metadata.sdk_version,
                          f"audio-to-code {graph} ({precision}), talking-head SDK {metadata.sdk_version}", path)


def write_audio_graph(model: AudioToCodeModel, fmt: str, precision: str, graph: str, path: Path,
                      metadata: AudioGraphMetadata, calibration: Path | None) -> Path:
    if precision == "int8":
        try:
            from quantization import audio_int8
        except ImportError as exc:
            raise ExportError(f"int8 audio graphs need the quantization package ({exc})") from None
        writer = {"onnx": audio_int8.write_audio_int8_onnx, "tflite": audio_int8.write_audio_int8_tflite,
                  "coreml": audio_int8.write_audio_coreml_w8}[fmt]
        return writer(model, graph, path, metadata, calibration)
    writer = {"onnx": export_audio_onnx, "tflite": write_audio_tflite, "coreml": write_audio_coreml}[fmt]
    return writer(model, graph, precision, path, metadata)


def run_audio_export(model_source: str, formats: tuple[str, ...], precisions: tuple[str, ...], out: Path,
                     calibration: Path | None = None, show_progress: bool = True) -> AudioExportManifest:
    """Write every format × precision × audio graph into ``out/audio/`` (a failure is recorded, the
    others go on) and `export.json`; exporting again into the folder replaces the entries it writes."""
    from tqdm import tqdm

    from sdk import __version__

    from .files import path_sha256, path_size

    model = load_audio_model(model_source)
    sha256 = audio_model_sha256(model)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: exists and is not a folder")
    manifest = AudioExportManifest(str(model_source), sha256, str(model.metadata.get("prior_sha256") or ""),
                                   __version__)
    if has_audio_export(out):
        previous = AudioExportManifest.load(out)
        if previous.audio_model_sha256 != sha256:
            raise ExportError(f"--out {out}: holds audio graphs of another audio model "
                              f"({previous.audio_model_sha256[:12]}); choose a new folder")
        manifest.entries = previous.entries
    jobs = [(fmt, precision, graph) for fmt in formats for precision in precisions for graph in AUDIO_GRAPH_NAMES]
    written = []
    for fmt, precision, graph in tqdm(jobs, disable=not show_progress, unit="graph", desc="audio graphs"):
        path = audio_graph_path(out, fmt, precision, graph)
        relative = str(path.relative_to(out))
        started = time.perf_counter()
        try:
            write_audio_graph(model, fmt, precision, graph, path, audio_graph_metadata(model, graph, precision, sha256),
                              calibration)
        except Exception as exc:  # noqa: BLE001 - any converter failure goes in the table; the others go on
            log.debug("%s %s %s failed:\n%s", fmt, precision, graph, traceback.format_exc())
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            written.append(ExportEntry(fmt, precision, graph, relative, "failed",
                                       seconds=round(time.perf_counter() - started, 2), error=message[:300]))
            continue
        written.append(ExportEntry(fmt, precision, graph, relative, "ok", path_size(path),
                                   round(time.perf_counter() - started, 2), path_sha256(path)))
    replaced = {(entry.format, entry.precision, entry.graph) for entry in written}
    manifest.entries = [entry for entry in manifest.entries
                        if (entry.format, entry.precision, entry.graph) not in replaced] + written
    manifest.save(out)
    return manifest


# -- verify ----------------------------------------------------------------------------------


@dataclass
class AudioGroupResult:
    """One format × precision: status pass, fail, checked (Core ML structure), corrupt, error, incomplete;
    per graph output: max-abs error, relative error, PSNR (dB) of the deltas against torch."""

    format: str
    precision: str
    status: str
    max_abs_error: dict[str, float] = field(default_factory=dict)
    relative_error: dict[str, float] = field(default_factory=dict)
    psnr_db: dict[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass
class AudioVerifyReport:
    directory: str
    audio_model_sha256: str
    clip: str
    frames: int
    clips: int
    groups: list[AudioGroupResult]

    @property
    def passed(self) -> bool:
        return all(group.status in ("pass", "checked") for group in self.groups)

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def verify_speech(speech: Path | None = None) -> Path:
    """The clip to verify on: `speech`, else the shared data's last speech clip (the INT8 calibration
    takes the first ones)."""
    if speech is not None:
        return Path(speech)
    manifest = shared_data_dir() / "manifest.csv"
    if not manifest.is_file():
        raise ExportError(f"no speech to verify on: {manifest} not found (set SDK_SHARED_DATA or pass --audio-clip)")
    with manifest.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["kind"] == "audio"]
    if not rows:
        raise ExportError(f"{manifest}: no speech clip to verify on")
    return shared_data_dir() / rows[-1]["path"]


def reference_feeds(model: AudioToCodeModel, samples: np.ndarray) -> dict[str, list[dict[str, np.ndarray]]]:
    """Each graph's inputs on `samples` as the live path makes them (torch chain for the motion)."""
    from sdk.audio.driver import MotionSampling
    from sdk.audio.features import frames_for_samples
    from sdk.audio.live import MotionChain, window_of
    from sdk.runtime.audio_backend import TorchAudioBackend

    config = model.config
    frames = frames_for_samples(len(samples), config.mel)
    clip = config.motion_space.clip_frames
    feeds: dict[str, list[dict[str, np.ndarray]]] = {
        "audio_expression": [{"samples": window_of(samples, config.expression_live.window, j, 1, config.mel)[None]}
                             for j in range(frames)], "audio_motion": []}
    chain = MotionChain(TorchAudioBackend(model), MotionSampling())
    for first in range(0, frames, clip):
        window = window_of(samples, config.motion.window, first - clip, clip, config.mel)
        state, offset = chain.inputs()
        feeds["audio_motion"].append({"samples": window[None], "previous_pose": state[None].astype(np.float32),
                                      "offset": offset[None].astype(np.float32)})
        chain.advance(window, state, offset)
    return feeds


def compare(got: np.ndarray, expected: np.ndarray) -> tuple[float, float, float]:
    """(max-abs error, relative error = max-abs / max |expected|, PSNR dB with peak max |expected|)."""
    error = float(np.abs(got - expected).max())
    peak = float(np.abs(expected).max()) or 1.0
    mse = float(((got - expected) ** 2).mean())
    return error, error / peak, (100.0 if mse == 0 else min(100.0, 10 * math.log10(peak * peak / mse)))


def verify_audio_export(directory: str | Path, model: str | None = None, speech: Path | None = None
                        ) -> AudioVerifyReport:
    """Verify every format × precision of ``directory/audio`` (module docstring)."""
    from sdk.audio.source import load_audio

    directory = Path(directory)
    manifest = AudioExportManifest.load(directory)
    torch_model = load_audio_model(model or manifest.model_source)
    if audio_model_sha256(torch_model) != manifest.audio_model_sha256:
        raise ExportError(f"{directory}: audio graphs of audio model {manifest.audio_model_sha256[:12]}, but "
                          f"{model or manifest.model_source} is another; pass --audio-model")
    clip_path = verify_speech(speech)
    samples = load_audio(clip_path).samples[:int(VERIFY_SECONDS * 16000)]
    feeds = reference_feeds(torch_model, samples)
    graphs = build_audio_graphs(torch_model)
    specs = audio_graph_specs(torch_model.config)
    expected = {}
    with torch.inference_mode():
        for name, items in feeds.items():
            expected[name] = np.concatenate([graphs[name](*(torch.from_numpy(item[n]) for n in specs[name].input_names))
                                             .numpy() for item in items])
    groups = [verify_audio_group(directory, fmt, precision, entries, torch_model, manifest, feeds, expected)
              for (fmt, precision), entries in manifest.groups().items()]
    return AudioVerifyReport(str(directory), manifest.audio_model_sha256, str(clip_path),
                             len(feeds["audio_expression"]), len(feeds["audio_motion"]), groups)


def verify_audio_group(directory: Path, fmt: str, precision: str, entries: list[ExportEntry],
                       model: AudioToCodeModel, manifest: AudioExportManifest,
                       feeds: dict[str, list[dict[str, np.ndarray]]], expected: dict[str, np.ndarray]
                       ) -> AudioGroupResult:
    from sdk.errors import SdkError

    result = AudioGroupResult(fmt, precision, "error")
    problem = incomplete(entries, list(AUDIO_GRAPH_NAMES)) or damaged(directory, entries)
    if problem:
        result.status, result.note = ("incomplete" if "missing graphs" in problem or "failed" in problem
                                      else "corrupt"), problem
        return result
    if fmt == "coreml":
        return _check_coreml(result, directory, model, manifest)
    try:
        backend = load_audio_graphs(directory, fmt, precision)
        if backend.audio_model_sha256 != manifest.audio_model_sha256:
            result.status, result.note = "fail", f"metadata audio model {backend.audio_model_sha256[:12]}"
            return result
        outputs = {"audio_expression": "expression", "audio_motion": "path"}
        for graph, output in outputs.items():
            got = np.concatenate([backend.runner.run(graph, item)[output] for item in feeds[graph]])
            key = f"{graph}.{output}"
            error, relative, psnr = compare(got, expected[graph])
            result.max_abs_error[key], result.relative_error[key], result.psnr_db[key] = error, relative, psnr
    except SdkError as exc:
        result.note = str(exc)
        return result
    worst = max(result.relative_error.values())
    limit = RELATIVE_TOLERANCE[precision]
    result.status = "pass" if worst <= limit else "fail"
    result.note = f"relative error {worst:.2g} (limit {limit:g}), min PSNR {min(result.psnr_db.values()):.1f} dB"
    return result


def _check_coreml(result: AudioGroupResult, directory: Path, model: AudioToCodeModel,
                  manifest: AudioExportManifest) -> AudioGroupResult:
    from .coreml_writer import _coremltools

    ct = _coremltools()
    problems = []
    for graph in AUDIO_GRAPH_NAMES:
        path = audio_graph_path(directory, "coreml", result.precision, graph)
        try:
            spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
        except Exception as exc:  # coremltools raises bare Exceptions / protobuf errors for corrupt packages
            result.status, result.note = "corrupt", f"{path}: coremltools cannot read it ({exc})"
            return result
        try:
            metadata = AudioGraphMetadata.from_strings(dict(spec.description.metadata.userDefined), str(path))
        except ValueError as exc:
            problems.append(str(exc))
            continue
        shapes = {f.name: tuple(int(d) for d in f.type.multiArrayType.shape) for f in spec.description.input}
        want = {t.name: t.shape for t in audio_graph_specs(model.config, metadata.frames)[graph].inputs}
        if shapes != want:
            problems.append(f"{graph}: inputs {shapes} != spec {want}")
        if result.precision == "int8":
            front_end = [name for name in _coreml_quantized_weights(spec) if name.startswith("front_end")]
            if front_end:
                problems.append(f"{graph}: the front end's weights {front_end} are int8 (they must stay float)")
        if (metadata.audio_model_sha256, metadata.precision, metadata.graph) != (
                manifest.audio_model_sha256, result.precision, graph):
            problems.append(f"{graph}: metadata names {metadata.graph} {metadata.precision} of "
                            f"{metadata.audio_model_sha256[:12]}")
    result.status = "fail" if problems else "checked"
    result.note = "; ".join(problems) or ("inputs, outputs and metadata checked; Core ML predicts on macOS only")
    return result


def _coreml_quantized_weights(spec) -> list[str]:
    """Names of the weights an mlprogram stores quantized (constexpr ops)."""
    return [output.name for function in spec.mlProgram.functions.values()
            for block in function.block_specializations.values() for op in block.operations
            if op.type.startswith("constexpr") for output in op.outputs]


def audio_report_table(report: AudioVerifyReport) -> str:
    rows = []
    for group in report.groups:
        for key in group.max_abs_error or {"-": 0.0}:
            rows.append([group.format, group.precision, key,
                         f"{group.max_abs_error[key]:.3g}" if key in group.max_abs_error else "-",
                         f"{group.relative_error[key]:.3g}" if key in group.relative_error else "-",
                         f"{group.psnr_db[key]:.1f}" if key in group.psnr_db else "-", group.status, group.note])
    return format_table(["format", "precision", "output", "max abs err", "rel err", "PSNR dB", "status", "note"],
                        rows)

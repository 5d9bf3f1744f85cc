"""`python -m export verify DIR`: run every exported graph that can run here on real frames; compare with torch.

For each format × precision of the folder, at the folder's output size S:
1. integrity: every file (and a face-prior model's prior file) exists and matches the sha256
   recorded at export (else "corrupt"), and its metadata names the graph, precision, model,
   bitstream version, output size and face prior expected (else "fail");
2. graphs, on identical inputs: the keypoint encoder on every frame, the source encoder on the
   first, the generator on torch's source tensors and driving keypoints [and expression] — max
   abs error per output;
3. end to end: the first frame (cropped at S) is the avatar, the others drive it with relative
   motion through `TalkingHeadPipeline` on the exported backend and on torch — PSNR of the
   rendered frames (at S). Face-prior models are driven by the frames' face meshes (the avatar
   rigged by its own, through the folder's prior file), as their receiver is. A folder of part of
   the graphs (`--graphs`) has no end to end: its generator's PSNR on torch's inputs stands in;
4. Core ML (no predict on Linux): names, shapes, metadata, op set and compute precision.
A group passes when its keypoint errors and its lowest PSNR are within `TOLERANCES[precision]`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from sdk.checkpoint import load_model
from sdk.errors import SdkError
from sdk.models import Keypoints, TalkingHeadModel
from sdk.pipeline import HybridCode, TalkingHeadPipeline
from sdk.models.semantic_inputs import concat_keypoints, driven_keypoints
from sdk.runtime.graph_backend import GraphBackend, GraphRunner, as_array, export_folder_prior
from sdk.runtime.graphs import build_graphs, generator_inputs, graph_names, graph_specs
from sdk.runtime.metadata import GraphMetadata, graph_metadata, model_sha256
from sdk.runtime.torch_backend import TorchBackend

from .frames import test_frames
from .manifest import ExportEntry, ExportManifest, damaged, incomplete
from .request import ExportError
from .table import format_table

KEYPOINT_OUTPUTS = ("keypoints", "jacobians", "source_keypoints", "source_jacobians", "learned_keypoints",
                    "learned_jacobians")
PSNR_CAP_DB = 100.0  # identical frames: reported as this instead of infinity


@dataclass(frozen=True)
class Tolerance:
    """Largest keypoint/Jacobian error and lowest rendered-frame PSNR (dB) that pass."""
    keypoint_error: float
    min_psnr_db: float


TOLERANCES = {"fp32": Tolerance(1e-3, 40.0), "fp16": Tolerance(3e-2, 30.0), "int8": Tolerance(1e-1, 25.0)}


@dataclass
class GroupResult:
    """One format × precision. status: pass, fail, checked (structure only), corrupt, error, incomplete."""
    format: str
    precision: str
    status: str
    max_abs_error: dict[str, float] = field(default_factory=dict)  # "graph.output" -> error
    psnr_mean_db: float | None = None
    psnr_min_db: float | None = None
    note: str = ""


@dataclass
class VerifyReport:
    directory: str
    model_id: str
    model_sha256: str
    clip: str
    frames: int
    groups: list[GroupResult]

    @property
    def passed(self) -> bool:
        return all(group.status in ("pass", "checked") for group in self.groups)

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class Reference:
    """Torch's outputs on the test frames at one output size: what every exported group is compared with."""
    output_size: int
    frames: list[np.ndarray]  # RGB uint8 crops (S, S, 3)
    meshes: list[np.ndarray] | None  # face-prior models: each crop's mesh (478, 3) in its pixels
    feeds: dict[str, list[dict[str, np.ndarray]]]  # graph -> one feed per evaluation
    outputs: dict[str, list[dict[str, np.ndarray]]]  # graph -> torch outputs for those feeds
    rendered: list[torch.Tensor]  # end-to-end torch frames, (1, 3, S, S)


def verify_export(directory: str | Path, model: str | None = None, prepared: str | Path | None = None,
                  frames: int = 6) -> VerifyReport:
    """Verify every format × precision in `directory` (see the module docstring).

    model: the torch model to compare with (default: the one named in export.json); it must be the
    exported model (same `model_sha256`). prepared: a prepared data folder to take test frames from.
    """
    directory = Path(directory)
    manifest = ExportManifest.load(directory)
    torch_model = exported_model(directory, manifest, model)
    semantic = torch_model.cfg.semantic is not None
    clip, crops, meshes = test_frames(manifest.output_size, frames, Path(prepared) if prepared else None, semantic)
    reference = torch_reference(torch_model, crops, manifest.output_size, meshes)
    groups = [verify_group(directory, fmt, precision, entries, torch_model, manifest, reference)
              for (fmt, precision), entries in manifest.groups().items()]
    return VerifyReport(str(directory), manifest.model_id, manifest.model_sha256, clip, len(crops), groups)


def exported_model(directory: Path, manifest: ExportManifest, model: str | None = None) -> TalkingHeadModel:
    """The torch model the folder was exported from: `model`, else the one named in export.json; ExportError
    when it is another model (its `model_sha256` differs from the manifest's)."""
    torch_model = load_model(model or manifest.model_source)
    sha256 = model_sha256(torch_model)
    if sha256 != manifest.model_sha256:
        raise ExportError(f"{directory}: exported from model {manifest.model_sha256[:12]} ({manifest.model_id}), "
                          f"but {model or manifest.model_source} is {sha256[:12]}; pass --model")
    return torch_model


def torch_reference(model: TalkingHeadModel, crops: list[np.ndarray], output_size: int,
                    meshes: list[np.ndarray] | None = None) -> Reference:
    """Torch's graph inputs and outputs and end-to-end frames at `output_size`; crops[0] is the
    avatar (face-prior models: with `meshes`, each crop's mesh in its pixels)."""
    pipeline = TalkingHeadPipeline(TorchBackend(model, output_size=output_size))
    graphs = build_graphs(model, output_size=output_size)
    specs = graph_specs(model.cfg, output_size)
    feeds: dict[str, list[dict[str, np.ndarray]]] = {name: [] for name in specs}
    outputs: dict[str, list[dict[str, np.ndarray]]] = {name: [] for name in specs}
    meshes_or_none = meshes or [None] * len(crops)

    def record(graph: str, inputs: tuple[torch.Tensor, ...]) -> None:
        with torch.inference_mode():
            result = graphs[graph](*inputs)
        result = (result,) if isinstance(result, torch.Tensor) else result
        feeds[graph].append({name: as_array(value) for name, value in zip(specs[graph].input_names, inputs)})
        outputs[graph].append({name: as_array(value) for name, value in zip(specs[graph].output_names, result)})

    if "keypoint_encoder" in specs:
        for crop in crops:
            record("keypoint_encoder", (pipeline.to_model_input(crop),))
    state = pipeline.prepare_source(crops[0], meshes_or_none[0])
    record("source_encoder", (state.image,))  # the portrait averaged down to R, as the backends feed them
    rendered = []
    for crop, mesh in zip(crops[1:], meshes_or_none[1:]):
        code = pipeline.encode(crop, mesh)
        if code is None:
            raise ExportError("the face prior cannot trust the mesh of the first driving frame (no code to drive "
                              "with); verify on another clip (--data)")
        if pipeline.anchor is None:
            pipeline.set_anchor(code)  # the first driving frame, as `render_tensor` would make it
        driving, expression = _generator_motion(pipeline, state, code)
        record("generator", generator_inputs(state, driving, specs, expression))
        rendered.append(pipeline.render_tensor(state, code))
    return Reference(output_size, crops, meshes, feeds, outputs, rendered)


def _generator_motion(pipeline: TalkingHeadPipeline, state, code) -> tuple[Keypoints, torch.Tensor | None]:
    """(driving keypoints, expression or None) the generator gets for `code` (a graph-level check:
    a hybrid model's learned keypoints go in as the encoder gave them)."""
    if not pipeline.is_semantic:
        return pipeline.driving_keypoints(state, code), None
    semantic, learned = (code.semantic, code.learned) if isinstance(code, HybridCode) else (code, None)
    keypoints, expression = driven_keypoints(state.rigs, [pipeline.driving_motion(state, semantic)],
                                             pipeline.cfg.semantic, state.keypoints.value)
    return concat_keypoints(keypoints, learned), expression


def verify_group(directory: Path, fmt: str, precision: str, entries: list[ExportEntry], model: TalkingHeadModel,
                 manifest: ExportManifest, reference: Reference) -> GroupResult:
    result = GroupResult(fmt, precision, "error")
    problem = incomplete(entries, manifest.graphs)
    if problem:
        result.status, result.note = "incomplete", problem
        return result
    problem = damaged(directory, [*entries, *([manifest.face_prior] if manifest.face_prior else [])])
    if problem:
        result.status, result.note = "corrupt", problem
        return result
    files = {entry.graph: directory / entry.path for entry in entries}
    specs = graph_specs(model.cfg, reference.output_size)
    expected = {graph: graph_metadata(model, specs[graph], precision, manifest.model_sha256) for graph in files}
    if fmt == "coreml":
        return _check_coreml_group(result, files, expected)
    whole = set(files) == set(graph_names(model.cfg))
    try:
        runner = graph_runner(fmt, files)
        problems = [f"{graph}: {problem}" for graph in files
                    for problem in runner.metadata[graph].mismatches(expected[graph])]
        if problems:
            result.status, result.note = "fail", "; ".join(problems)
            return result
        for graph in files:
            for feeds, outputs in zip(reference.feeds[graph], reference.outputs[graph]):
                got = runner.run(graph, feeds)
                for name, value in outputs.items():
                    key = f"{graph}.{name}"
                    error = float(np.abs(got[name] - value).max())
                    result.max_abs_error[key] = max(result.max_abs_error.get(key, 0.0), error)
        if whole:
            backend = GraphBackend(runner, f"{fmt}-{precision}", export_folder_prior(directory, None))
            psnrs = _end_to_end_psnr(backend, reference)
        elif "generator" in files:
            psnrs = [psnr_db(runner.run("generator", feeds)["image"], outputs["image"])
                     for feeds, outputs in zip(reference.feeds["generator"], reference.outputs["generator"])]
        else:
            psnrs = []
    except SdkError as exc:
        result.note = str(exc)
        return result
    if psnrs:
        result.psnr_mean_db, result.psnr_min_db = float(np.mean(psnrs)), float(np.min(psnrs))
    passed, result.note = within_tolerance(result.max_abs_error, result.psnr_min_db, precision)
    if not whole:
        result.note += f"; {', '.join(files)} only: " + (
            "generator PSNR on torch's inputs, no end to end" if "generator" in files else "no frames rendered")
    result.status = "pass" if passed else "fail"
    return result


def within_tolerance(max_abs_error: dict[str, float], psnr_min_db: float | None, precision: str) -> tuple[bool, str]:
    """Whether the worst keypoint / Jacobian error and the lowest PSNR pass `TOLERANCES[precision]`, and a note
    (a group without keypoint outputs, e.g. a face-prior model's receiver, or without frames is judged on the rest)."""
    tolerance = TOLERANCES[precision]
    keypoint_errors = [error for key, error in max_abs_error.items() if key.split(".")[1] in KEYPOINT_OUTPUTS]
    notes, passed = [], True
    if keypoint_errors:
        worst_keypoint = max(keypoint_errors)
        passed = worst_keypoint <= tolerance.keypoint_error
        notes.append(f"keypoint error {worst_keypoint:.2g} (limit {tolerance.keypoint_error:g})")
    if psnr_min_db is not None:
        passed = passed and psnr_min_db >= tolerance.min_psnr_db
        notes.append(f"min PSNR {psnr_min_db:.1f} dB (limit {tolerance.min_psnr_db:g})")
    return passed, ", ".join(notes) or "nothing to compare"


def psnr_db(rendered: np.ndarray | torch.Tensor, expected: np.ndarray | torch.Tensor) -> float:
    """PSNR of two frames in [0, 1], capped at `PSNR_CAP_DB` (identical frames); 0 dB when either
    has NaN or infinite pixels (`min` would otherwise take the cap over a NaN)."""
    mse = float(((torch.as_tensor(rendered).float() - torch.as_tensor(expected).float()) ** 2).mean())
    if not math.isfinite(mse):
        return 0.0
    return PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10 * math.log10(1.0 / mse))


def graph_runner(fmt: str, files: dict[str, Path], threads: int | None = None) -> GraphRunner:
    """The runtime that runs `fmt` graph files here: ONNX Runtime or LiteRT (CPU)."""
    if fmt == "onnx":
        from sdk.runtime.onnx_backend import OrtRunner, OrtSettings

        return OrtRunner(files, OrtSettings(threads=threads))
    if fmt == "tflite":
        from sdk.runtime.tflite_backend import TfliteRunner

        return TfliteRunner(files, threads)
    raise ExportError(f"no runner for format {fmt!r}")


def _end_to_end_psnr(backend: GraphBackend, reference: Reference) -> list[float]:
    pipeline = TalkingHeadPipeline(backend)
    meshes = reference.meshes or [None] * len(reference.frames)
    state = pipeline.prepare_source(reference.frames[0], meshes[0])
    return [psnr_db(pipeline.render_tensor(state, pipeline.encode(crop, mesh)), expected)
            for crop, mesh, expected in zip(reference.frames[1:], meshes[1:], reference.rendered)]


def _check_coreml_group(result: GroupResult, files: dict[str, Path], expected: dict[str, GraphMetadata]
                        ) -> GroupResult:
    from .coreml_writer import check_coreml

    problems = []
    ops = 0
    for graph, path in files.items():
        try:
            structure, found = check_coreml(path, expected[graph])
        except ValueError as exc:
            result.status, result.note = "corrupt", str(exc)
            return result
        except ImportError as exc:
            result.note = f"coremltools is not installed here ({exc})"
            return result
        ops += sum(structure.ops.values())
        problems += [f"{graph}: {problem}" for problem in found]
    result.status = "fail" if problems else "checked"
    result.note = "; ".join(problems) if problems else (
        f"structure, shapes, metadata and precision checked ({ops} MIL ops); Core ML cannot predict on "
        "Linux: run `python -m export.check_coreml_macos DIR` on a Mac")
    return result


def report_table(report: VerifyReport) -> str:
    rows = []
    for group in report.groups:
        errors = group.max_abs_error
        rows.append([group.format, group.precision, group.status.upper(),
                     _worst(errors, "keypoint_encoder"), _worst(errors, "source_encoder"), _worst(errors, "generator"),
                     "-" if group.psnr_mean_db is None else f"{group.psnr_mean_db:.1f} / {group.psnr_min_db:.1f}",
                     group.note])
    return format_table(["format", "precision", "status", "max err kp-enc", "max err src-enc", "max err gen",
                         "PSNR mean/min dB", "note"], rows)


def _worst(errors: dict[str, float], graph: str) -> str:
    values = [error for key, error in errors.items() if key.startswith(graph + ".")]
    return f"{max(values):.2e}" if values else "-"

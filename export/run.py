"""`python -m export`: every requested format × precision × graph written into one folder, with a summary.

All graphs of a folder are for one output size (`--size`, default the model's): the generator
renders frames at it. `--graphs sender|receiver|all` picks which of the model's graphs
(`graph_names`): the sender's keypoint encoder (a face-prior "prior" model has none: its sender
needs only the prior file), the receiver's source encoder and generator, or all. Models driven
by the face prior get their prior file copied into the folder (`files.PRIOR_PATH`, checked
against the sha256 their graphs' metadata names). A failed conversion is recorded (status
"failed" and the error) and the others go on; the exit status says whether all succeeded.
Exporting again into the same folder (same model, bitstream version and output size) replaces
the entries it writes and keeps the others, so formats (and graph sets) can be added one run at
a time. `--bundle android|ios` then lays the files out for an app (`export.bundle`).
"""
from __future__ import annotations

import logging
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from sdk.checkpoint import load_model
from sdk.errors import SdkError
from sdk.files import atomic_file, file_sha256
from sdk.models import ModelConfig, TalkingHeadModel
from sdk.runtime.graphs import GRAPH_NAMES, RECEIVER_GRAPHS, SENDER_GRAPHS, graph_names, graph_specs
from sdk.runtime.metadata import GraphMetadata, bitstream_version, face_prior_sha256, graph_metadata, model_sha256
from sdk.runtime.onnx_export import write_onnx_graph

from .files import PRIOR_PATH, graph_path, path_sha256, path_size
from .int8 import int8_hook, write_int8
from .manifest import ExportEntry, ExportManifest, PriorEntry
from .request import FORMATS, PRECISIONS, ExportError, ExportRequest
from .table import format_table, megabytes

log = logging.getLogger(__name__)

Writer = Callable[[TalkingHeadModel, str, str, Path, GraphMetadata], Path]


def float_writer(fmt: str) -> Writer:
    """The fp32/fp16 writer of a format (imported on use: each pulls in its converter)."""
    if fmt == "onnx":
        return write_onnx_graph
    if fmt == "tflite":
        from .tflite_writer import write_tflite
        return write_tflite
    if fmt == "coreml":
        from .coreml_writer import write_coreml
        return write_coreml
    raise ExportError(f"unknown format {fmt!r}")


def write_graph(model: TalkingHeadModel, fmt: str, precision: str, graph: str, path: Path,
                metadata: GraphMetadata, calibration: Path | None = None) -> Path:
    if precision == "int8":
        return write_int8(model, fmt, graph, path, metadata, calibration)
    return float_writer(fmt)(model, graph, precision, path, metadata)


def selected_graphs(cfg: ModelConfig, which: str) -> tuple[str, ...]:
    """The model's graphs in a `--graphs` set ("all", "sender", "receiver"), in `GRAPH_NAMES` order."""
    chosen = {"all": GRAPH_NAMES, "sender": SENDER_GRAPHS, "receiver": RECEIVER_GRAPHS}[which]
    return tuple(name for name in graph_names(cfg) if name in chosen)


def run_export(request: ExportRequest, show_progress: bool = True) -> ExportManifest:
    """Load the model, write every graph [and the face prior], save `export.json` [, lay out the
    app bundle]; returns the manifest."""
    from tqdm import tqdm

    from sdk import __version__

    if "int8" in request.precisions:
        int8_hook()  # fail before any conversion when int8 cannot be made here
    model = load_model(request.model)
    size = model.cfg.default_output_size if request.output_size is None else request.output_size
    try:
        specs = graph_specs(model.cfg, size)
    except ValueError as exc:
        raise ExportError(f"--size {size}: {exc}") from None
    sha256 = model_sha256(model)
    out = Path(request.out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: exists and is not a folder")
    graphs = selected_graphs(model.cfg, request.graphs)
    manifest = _start_manifest(out, request.model, model, sha256, __version__, size)
    if model.cfg.semantic is not None:
        manifest.face_prior = copy_prior(model, out)
    jobs = [(fmt, precision, graph) for fmt in request.formats for precision in request.precisions
            for graph in graphs]
    written: list[ExportEntry] = []
    with tqdm(jobs, disable=not show_progress, unit="graph", dynamic_ncols=True) as progress:
        for fmt, precision, graph in progress:
            progress.set_description(f"{fmt} {precision} {graph}")
            path = graph_path(out, fmt, precision, graph)
            relative = str(path.relative_to(out))
            started = time.perf_counter()
            try:
                write_graph(model, fmt, precision, graph, path, graph_metadata(model, specs[graph], precision, sha256),
                            request.calibration)
            except Exception as exc:  # noqa: BLE001 - any converter failure goes in the table; the others go on
                log.debug("%s %s %s failed:\n%s", fmt, precision, graph, traceback.format_exc())
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                written.append(ExportEntry(fmt, precision, graph, relative, "failed",
                                           seconds=time.perf_counter() - started, error=message[:300]))
                continue
            written.append(ExportEntry(fmt, precision, graph, relative, "ok", path_size(path),
                                       round(time.perf_counter() - started, 2), path_sha256(path)))
    replaced = {(entry.format, entry.precision, entry.graph) for entry in written}
    kept = [entry for entry in manifest.entries if (entry.format, entry.precision, entry.graph) not in replaced]
    manifest.entries = sorted(kept + written, key=lambda entry: (
        FORMATS.index(entry.format), PRECISIONS.index(entry.precision), GRAPH_NAMES.index(entry.graph)))
    manifest.graphs = [name for name in GRAPH_NAMES if name in manifest.graphs or name in graphs]
    manifest.save(out)
    if request.bundle is not None:
        from .bundle import write_bundle

        write_bundle(model, out, manifest, request.bundle, request.precisions[0], graphs, request.bundle_root)
    return manifest


def copy_prior(model: TalkingHeadModel, out: Path) -> PriorEntry:
    """Copy the face prior file `model` is driven by (with its `.sha256`) to ``out/prior/``;
    ExportError when the file of that prior is not the shipped one (nothing else to copy from)."""
    from sdk.prior.prior_file import resolve_prior_path

    try:
        expected = face_prior_sha256(model)
    except (ValueError, SdkError) as exc:
        raise ExportError(f"{model.cfg.name}: {exc}") from None
    source = resolve_prior_path("default")
    if file_sha256(source) != expected:
        raise ExportError(f"{model.cfg.name} is driven by face prior {expected[:12]}, but the shipped prior file "
                          f"{source} is another; install that prior to export it")
    target = out / PRIOR_PATH
    for path, name in ((source, target), (source.with_suffix(".sha256"), target.with_suffix(".sha256"))):
        with atomic_file(name) as partial:
            shutil.copyfile(path, partial)
    return PriorEntry(str(PRIOR_PATH), expected, target.stat().st_size)


def _start_manifest(out: Path, source: str, model: TalkingHeadModel, sha256: str, version: str,
                    output_size: int) -> ExportManifest:
    version_of_stream = bitstream_version(model.cfg)
    fresh = ExportManifest(source, model.cfg.name, sha256, version_of_stream, version, output_size, graphs=[])
    if not (out / "export.json").is_file():
        out.mkdir(parents=True, exist_ok=True)
        return fresh
    previous = ExportManifest.load(out)
    if previous.model_sha256 != sha256:
        raise ExportError(f"--out {out}: holds graphs of another model ({previous.model_id}, "
                          f"{previous.model_sha256[:12]}); choose a new folder")
    if previous.bitstream_version != version_of_stream:
        # Its graphs carry the old version in their metadata: listing them under this one would be wrong.
        raise ExportError(f"--out {out}: holds graphs for bitstream v{previous.bitstream_version}, this SDK "
                          f"writes v{version_of_stream}; choose a new folder")
    if previous.output_size != output_size:
        raise ExportError(f"--out {out}: holds graphs at output size {previous.output_size}², not {output_size}²; "
                          f"choose a new folder (or --size {previous.output_size})")
    fresh.entries, fresh.graphs = previous.entries, previous.graphs
    return fresh


def summary_table(manifest: ExportManifest) -> str:
    rows = [[entry.format, entry.precision, entry.graph, entry.path if entry.status == "ok" else "-",
             megabytes(entry.bytes) if entry.status == "ok" else "-", f"{entry.seconds:.1f} s",
             entry.status if entry.status == "ok" else f"FAILED: {entry.error}"]
            for entry in manifest.entries]
    return format_table(["format", "precision", "graph", "file", "size", "export time", "status"], rows)

"""The TFLite (LiteRT) backend: a model's exported ``.tflite`` graphs in `ai_edge_litert` interpreters.

This is how Android runs the graphs; here it serves `python -m export verify` and speed checks
(XNNPACK on CPU). Files come from an export folder, ``DIR/tflite/<precision>/<graph>.tflite``,
each carrying `GraphMetadata` as JSON in the flatbuffer's metadata entry `TFLITE_METADATA_NAME`.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .base import BackendError
from .graph_backend import GraphBackend, check_precision, export_folder_prior, missing_runner_files, present_graph_files
from .graphs import GRAPH_NAMES
from .metadata import GraphMetadata
from .threads import Threads, graph_threads

if TYPE_CHECKING:
    from ..prior import FacePrior

TFLITE_METADATA_NAME = "talking_head_sdk"


def tflite_graph_path(directory: str | Path, precision: str, graph: str) -> Path:
    """Where `graph` at `precision` lives in an export folder."""
    return Path(directory) / "tflite" / precision / f"{graph}.tflite"


def _litert():
    """`ai_edge_litert`; BackendError when LiteRT is not installed."""
    try:
        import ai_edge_litert.interpreter
        import ai_edge_litert.schema_py_generated  # noqa: F401
    except ImportError as exc:
        raise BackendError(f"LiteRT is not installed here ({exc}); install ai-edge-litert") from exc
    return ai_edge_litert


def read_tflite_strings(path: Path) -> dict[str, str]:
    """The metadata strings stored in a .tflite file; BackendError if unreadable or absent."""
    schema = _litert().schema_py_generated
    data = path.read_bytes()
    try:
        if data[4:8] != b"TFL3":
            raise ValueError("no TFL3 file identifier")
        model = schema.Model.GetRootAsModel(data, 0)
        for index in range(model.MetadataLength()):
            entry = model.Metadata(index)
            if entry.Name().decode() == TFLITE_METADATA_NAME:
                return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes())
    except (ValueError, IndexError, AttributeError, TypeError, UnicodeDecodeError, struct.error) as exc:
        # TypeError, struct.error: what flatbuffers raises on a damaged or truncated buffer
        raise BackendError(f"{path}: not a readable .tflite graph of this SDK ({exc})") from exc
    raise BackendError(f"{path}: has no {TFLITE_METADATA_NAME!r} metadata; not a graph written by `python -m export`")


def read_tflite_metadata(path: Path) -> GraphMetadata:
    """The `GraphMetadata` stored in a .tflite file; BackendError if unreadable or absent."""
    try:
        return GraphMetadata.from_strings(read_tflite_strings(path), str(path))
    except ValueError as exc:
        raise BackendError(f"{path}: not a readable .tflite graph of this SDK ({exc})") from exc


class TfliteRunner:
    """A model's graphs (by graph name) in LiteRT interpreters (XNNPACK on CPU), run through their signatures.

    threads: per graph (one count, a `ThreadBudget`, or None: LiteRT's default)."""

    provider = "xnnpack"

    def __init__(self, files: dict[str, Path], threads: Threads = None):
        Interpreter = _litert().interpreter.Interpreter
        missing_runner_files(files, "TFLite")
        self.files = {name: Path(files[name]) for name in GRAPH_NAMES if name in files}
        self.metadata = {name: read_tflite_metadata(path) for name, path in self.files.items()}
        self.runners = {}
        for name, path in self.files.items():
            try:
                interpreter = Interpreter(model_path=str(path), num_threads=graph_threads(threads, name))
                self.runners[name] = interpreter.get_signature_runner("serving_default")
            except (ValueError, RuntimeError, KeyError) as exc:
                raise BackendError(f"{path}: LiteRT cannot load it ({exc})") from exc

    def io_shapes(self, graph: str) -> tuple[dict[str, tuple], dict[str, tuple]]:
        runner = self.runners[graph]
        return ({name: tuple(int(d) for d in detail["shape"]) for name, detail in runner.get_input_details().items()},
                {name: tuple(int(d) for d in detail["shape"]) for name, detail in runner.get_output_details().items()})

    def run(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return self.runners[graph](**feeds)
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"{self.files[graph]}: LiteRT failed to run it ({exc})") from exc


class TfliteBackend(GraphBackend):
    """The exported .tflite graphs of an export folder, in LiteRT. `prior`: as for `GraphBackend`."""

    def __init__(self, graph_files: dict[str, Path], threads: Threads = None, kind: str = "tflite",
                 prior: FacePrior | str | Path | None = None):
        super().__init__(TfliteRunner(graph_files, threads), kind, prior)

    @classmethod
    def from_export_dir(cls, directory: str | Path, precision: str = "fp32", threads: Threads = None,
                        prior: FacePrior | str | Path | None = None) -> TfliteBackend:
        """Load ``directory/tflite/<precision>/*.tflite``; the prior as `OnnxBackend.from_export_dir`."""
        files = present_graph_files({name: tflite_graph_path(directory, precision, name) for name in GRAPH_NAMES})
        if "generator" not in files:
            raise BackendError(f"{directory}: no TFLite {precision} graphs (expected "
                               f"{tflite_graph_path(directory, precision, 'generator').parent}/); "
                               f"run `python -m export --format tflite --precision {precision}`")
        return check_precision(cls(files, threads, "tflite" if precision == "fp32" else f"tflite-{precision}",
                                   export_folder_prior(directory, prior)), precision)

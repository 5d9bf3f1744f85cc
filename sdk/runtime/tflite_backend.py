"""The TFLite (LiteRT) backend: the three exported ``.tflite`` graphs in `ai_edge_litert` interpreters.

This is how Android runs the graphs; here it serves `python -m export verify` and speed checks
(XNNPACK on CPU). Files come from an export folder, ``DIR/tflite/<precision>/<graph>.tflite``,
each carrying `GraphMetadata` as JSON in the flatbuffer's metadata entry `TFLITE_METADATA_NAME`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .base import BackendError
from .graph_backend import GraphBackend
from .graphs import GRAPH_NAMES
from .metadata import GraphMetadata

TFLITE_METADATA_NAME = "talking_head_sdk"


def tflite_graph_path(directory: str | Path, precision: str, graph: str) -> Path:
    """Where `graph` at `precision` lives in an export folder."""
    return Path(directory) / "tflite" / precision / f"{graph}.tflite"


def read_tflite_metadata(path: Path) -> GraphMetadata:
    """The `GraphMetadata` stored in a .tflite file; BackendError if unreadable or absent."""
    from ai_edge_litert import schema_py_generated as schema

    data = path.read_bytes()
    try:
        if data[4:8] != b"TFL3":
            raise ValueError("no TFL3 file identifier")
        model = schema.Model.GetRootAsModel(data, 0)
        for index in range(model.MetadataLength()):
            entry = model.Metadata(index)
            if entry.Name().decode() == TFLITE_METADATA_NAME:
                payload = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
                return GraphMetadata.from_strings(json.loads(payload), str(path))
    except (ValueError, IndexError, AttributeError, UnicodeDecodeError) as exc:
        raise BackendError(f"{path}: not a readable .tflite graph of this SDK ({exc})") from exc
    raise BackendError(f"{path}: has no {TFLITE_METADATA_NAME!r} metadata; not a graph written by `python -m export`")


class TfliteRunner:
    """The three graphs in LiteRT interpreters (XNNPACK on CPU), run through their signatures."""

    provider = "xnnpack"

    def __init__(self, files: dict[str, Path], threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.files = {name: Path(files[name]) for name in GRAPH_NAMES}
        missing = [str(path) for path in self.files.values() if not path.is_file()]
        if missing:
            raise BackendError("missing TFLite graph files: " + ", ".join(missing))
        self.metadata = {name: read_tflite_metadata(path) for name, path in self.files.items()}
        self.runners = {}
        self.signatures = {}
        for name, path in self.files.items():
            try:
                interpreter = Interpreter(model_path=str(path), num_threads=threads)
                signature = interpreter.get_signature_list()["serving_default"]
                self.runners[name] = interpreter.get_signature_runner("serving_default")
            except (ValueError, RuntimeError, KeyError) as exc:
                raise BackendError(f"{path}: LiteRT cannot load it ({exc})") from exc
            self.signatures[name] = (list(signature["inputs"]), list(signature["outputs"]))

    def io_names(self, graph: str) -> tuple[list[str], list[str]]:
        return self.signatures[graph]

    def run(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.runners[graph](**feeds)


class TfliteBackend(GraphBackend):
    """The exported .tflite graphs of an export folder, in LiteRT."""

    def __init__(self, graph_files: dict[str, Path], threads: int | None = None, kind: str = "tflite"):
        super().__init__(TfliteRunner(graph_files, threads), kind)

    @classmethod
    def from_export_dir(cls, directory: str | Path, precision: str = "fp32", threads: int | None = None
                        ) -> TfliteBackend:
        files = {name: tflite_graph_path(directory, precision, name) for name in GRAPH_NAMES}
        if not any(path.is_file() for path in files.values()):
            raise BackendError(f"{directory}: no TFLite {precision} graphs (expected {files['generator'].parent}/); "
                               f"run `python -m export --format tflite --precision {precision}`")
        return cls(files, threads, "tflite" if precision == "fp32" else f"tflite-{precision}")

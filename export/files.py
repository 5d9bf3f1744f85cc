"""Where each exported graph (and a face-prior model's prior file) lives in an export folder, and
its size and digest (files are written with `sdk.files`, so a reader never sees half of one)."""
from __future__ import annotations

import hashlib
from pathlib import Path

from sdk.prior.prior_file import PRIOR_FILE
from sdk.runtime.graph_backend import PRIOR_FOLDER
from sdk.runtime.onnx_export import onnx_graph_path
from sdk.runtime.tflite_backend import tflite_graph_path

EXTENSIONS = {"onnx": ".onnx", "tflite": ".tflite", "coreml": ".mlpackage"}
# The face prior a face-prior model's graphs are driven by, copied into the folder (`load_prior` reads it).
PRIOR_PATH = Path(PRIOR_FOLDER) / PRIOR_FILE


def graph_path(directory: Path, fmt: str, precision: str, graph: str) -> Path:
    """``DIR/<format>/<precision>/<graph><ext>`` (the backends read the same layout)."""
    if fmt == "onnx":
        return onnx_graph_path(directory, precision, graph)
    if fmt == "tflite":
        return tflite_graph_path(directory, precision, graph)
    return Path(directory) / fmt / precision / f"{graph}{EXTENSIONS[fmt]}"


def path_size(path: Path) -> int:
    """Bytes of a file, or of every file under a directory."""
    if path.is_dir():
        return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())
    return path.stat().st_size


def path_sha256(path: Path) -> str:
    """sha256 of a file, or of a directory's files (relative names and contents, in name order)."""
    digest = hashlib.sha256()
    items = sorted(item for item in path.rglob("*") if item.is_file()) if path.is_dir() else [path]
    for item in items:
        if path.is_dir():
            digest.update(str(item.relative_to(path)).encode())
        with item.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()

"""The ONNX Runtime backend: the three exported graphs in ORT sessions (CPU; CUDA / TensorRT when present).

Graph files come from an export folder (`python -m export`, layout ``DIR/onnx/<precision>/``) or,
for a model in memory, from a cache folder keyed by `model_sha256`, the output size (and
`GRAPHS_VERSION`) that is filled on first use (`OnnxBackend.from_model`). Every file's metadata
must name the same model and output size; its input and output names must match
`sdk.runtime.graphs.graph_specs`.

Desktop GPU settings (`OrtSettings(device="cuda")`): the CUDA execution provider with exhaustive
cuDNN algorithm search (shapes are fixed, so the search runs once), optionally TensorRT first
with fp16 and an engine cache. A GPU provider that ORT cannot initialise (missing CUDA / cuDNN
libraries) is a BackendError, not a silent run on the CPU. Not measured on these CPU-only machines.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..models import TalkingHeadModel
from .base import BackendError, check_output_size
from .graph_backend import GraphBackend, check_precision
from .graphs import GRAPH_NAMES, GRAPHS_VERSION
from .metadata import GraphMetadata, model_sha256
from .onnx_export import export_onnx, onnx_graph_path

log = logging.getLogger(__name__)

CACHE_ENV = "SDK_CACHE_DIR"


def default_cache_dir() -> Path:
    """$SDK_CACHE_DIR, else ~/.cache/talking-head-sdk."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "talking-head-sdk")


@dataclass(frozen=True)
class OrtSettings:
    """How ONNX Runtime runs the graphs.

    device: "cpu" or "cuda" (needs the onnxruntime-gpu build).
    threads: intra-op threads; None leaves ORT's default (one per physical core).
    tensorrt: on "cuda", put the TensorRT provider first (builds an engine per graph on first run).
    tensorrt_fp16: let TensorRT run layers in fp16.
    tensorrt_cache_dir: where TensorRT engines are cached (None: the backend cache dir).
    """
    device: Literal["cpu", "cuda"] = "cpu"
    threads: int | None = None
    tensorrt: bool = False
    tensorrt_fp16: bool = True
    tensorrt_cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise BackendError(f"ONNX Runtime device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.threads is not None and self.threads < 1:
            raise BackendError(f"ONNX Runtime threads must be >= 1, got {self.threads}")


def execution_providers(settings: OrtSettings, available: list[str]) -> list[str | tuple[str, dict]]:
    """The provider list for `settings`, given ORT's available providers; CPU is always the fallback."""
    if settings.device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in available:
        raise BackendError("ONNX Runtime has no CUDA execution provider here (install onnxruntime-gpu "
                           f"instead of onnxruntime); available: {', '.join(available)}")
    providers: list[str | tuple[str, dict]] = []
    if settings.tensorrt:
        if "TensorrtExecutionProvider" not in available:
            raise BackendError("TensorRT requested but ONNX Runtime has no TensorRT execution provider here")
        cache = settings.tensorrt_cache_dir or str(default_cache_dir() / "tensorrt")
        providers.append(("TensorrtExecutionProvider", {"trt_fp16_enable": settings.tensorrt_fp16,
                                                        "trt_engine_cache_enable": True,
                                                        "trt_engine_cache_path": cache}))
    providers.append(("CUDAExecutionProvider", {"cudnn_conv_algo_search": "EXHAUSTIVE",
                                                "do_copy_in_default_stream": True}))
    providers.append("CPUExecutionProvider")
    return providers


def check_active_providers(settings: OrtSettings, active: list[str], path: Path) -> None:
    """BackendError when ORT left out a GPU provider `settings` asked for (it falls back to CPU with only a log line)."""
    wanted = ["CUDAExecutionProvider"] if settings.device == "cuda" else []
    if settings.device == "cuda" and settings.tensorrt:
        wanted.append("TensorrtExecutionProvider")
    dropped = [provider for provider in wanted if provider not in active]
    if dropped:
        raise BackendError(f"{path}: ONNX Runtime could not use {', '.join(dropped)} (CUDA / cuDNN / TensorRT "
                           f"libraries missing or mismatched?); it would run on {', '.join(active)}")


class OrtRunner:
    """The three graph files in ONNX Runtime sessions (a `GraphRunner`)."""

    def __init__(self, files: dict[str, Path], settings: OrtSettings = OrtSettings()):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError(f"ONNX Runtime is not installed here ({exc}); install onnxruntime") from exc
        missing = [str(files.get(name, name)) for name in GRAPH_NAMES
                   if name not in files or not Path(files[name]).is_file()]
        if missing:
            raise BackendError("missing ONNX graph files: " + ", ".join(missing))
        providers = execution_providers(settings, ort.get_available_providers())
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if settings.threads is not None:
            options.intra_op_num_threads = settings.threads
            options.inter_op_num_threads = 1
        self.files = {name: Path(files[name]) for name in GRAPH_NAMES}
        self.sessions: dict[str, ort.InferenceSession] = {}
        self.metadata: dict[str, GraphMetadata] = {}
        for name, path in self.files.items():
            try:
                session = ort.InferenceSession(str(path), options, providers=providers)
            except Exception as exc:  # ORT raises its own exception types for corrupt or unloadable files
                raise BackendError(f"{path}: ONNX Runtime cannot load it ({exc})") from exc
            check_active_providers(settings, session.get_providers(), path)
            self.sessions[name] = session
            try:
                self.metadata[name] = GraphMetadata.from_strings(session.get_modelmeta().custom_metadata_map, str(path))
            except ValueError as exc:
                raise BackendError(str(exc)) from exc
        self.outputs = {name: [node.name for node in session.get_outputs()] for name, session in self.sessions.items()}
        self.provider = self.sessions["generator"].get_providers()[0].removesuffix("ExecutionProvider").lower()

    def io_shapes(self, graph: str) -> tuple[dict[str, tuple], dict[str, tuple]]:
        session = self.sessions[graph]
        return ({node.name: tuple(node.shape) for node in session.get_inputs()},
                {node.name: tuple(node.shape) for node in session.get_outputs()})

    def run(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = self.outputs[graph]
        try:
            return dict(zip(names, self.sessions[graph].run(names, feeds)))
        except Exception as exc:  # ORT's own exception types (bad feeds, kernel failures)
            raise BackendError(f"{self.files[graph]}: ONNX Runtime failed to run it ({exc})") from exc


class OnnxBackend(GraphBackend):
    """The three graphs in ONNX Runtime; see the module docstring."""

    def __init__(self, graph_files: dict[str, Path], settings: OrtSettings = OrtSettings(), kind: str = "onnx"):
        super().__init__(OrtRunner(graph_files, settings), kind)
        self.settings = settings

    @classmethod
    def from_export_dir(cls, directory: str | Path, precision: str = "fp32", settings: OrtSettings = OrtSettings(),
                        kind: str | None = None) -> OnnxBackend:
        """Load ``directory/onnx/<precision>/*.onnx`` (a `python -m export` output folder)."""
        files = {name: onnx_graph_path(directory, precision, name) for name in GRAPH_NAMES}
        if not any(path.is_file() for path in files.values()):
            raise BackendError(f"{directory}: no ONNX {precision} graphs (expected {files['generator'].parent}/); "
                               f"run `python -m export --format onnx --precision {precision}`"
                               + (" after `python -m quantization`" if precision == "int8" else ""))
        return check_precision(cls(files, settings, kind or ("onnx" if precision == "fp32" else f"onnx-{precision}")),
                               precision)

    @classmethod
    def from_model(cls, model: TalkingHeadModel, settings: OrtSettings = OrtSettings(),
                   cache_dir: str | Path | None = None, precision: str = "fp32",
                   output_size: int | None = None) -> OnnxBackend:
        """Export `model`'s graphs at `output_size` (None: the model's default) once into
        ``cache_dir/onnx-graphs/v<GRAPHS_VERSION>-<sha256>-<size>/`` and load them."""
        size = check_output_size(model.cfg, output_size)
        sha256 = model_sha256(model)
        directory = Path(cache_dir or default_cache_dir()) / "onnx-graphs" / f"v{GRAPHS_VERSION}-{sha256}-{size}"
        missing = tuple(name for name in GRAPH_NAMES if not onnx_graph_path(directory, precision, name).is_file())
        if missing:
            log.info("exporting ONNX graphs %s of %s at %d² to %s", ", ".join(missing), model.cfg.name, size,
                     directory)
            export_onnx(model, directory, precision, missing, sha256=sha256, output_size=size)
        return cls.from_export_dir(directory, precision, settings)

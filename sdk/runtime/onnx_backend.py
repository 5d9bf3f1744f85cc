"""The ONNX Runtime backend: a model's exported graphs in ORT sessions (CPU; CUDA / TensorRT when present).

Graph files come from an export folder (`python -m export`, layout ``DIR/onnx/<precision>/``) or,
for a model in memory, from a cache folder keyed by `model_sha256`, the output size (and
`GRAPHS_VERSION`) that is filled on first use (`OnnxBackend.from_model`, with a progress bar):
fp32 / fp16 by `onnx_export`, INT8 by the quantization extra (`quantization.quantize_onnx_int8`,
a few minutes once per model). Every file's metadata must name the same model and output size;
its input and output names must match `sdk.runtime.graphs.graph_specs`.

Threads: intra-op threads per graph (`OrtSettings.threads`: one count or a `ThreadBudget`), and
ORT's worker threads block instead of spinning between ops unless `OrtSettings.spinning`: on a
CPU shared with other stages or programs, spinning threads take the cores the others need.

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
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..errors import SdkError
from ..models import TalkingHeadModel
from .base import BackendError, check_output_size
from .graph_backend import GraphBackend, check_precision, export_folder_prior, missing_runner_files, present_graph_files
from .graphs import GRAPH_NAMES, GRAPHS_VERSION, graph_names
from .metadata import GraphMetadata, model_sha256
from .onnx_export import export_onnx, onnx_graph_path
from .threads import Threads, graph_threads

if TYPE_CHECKING:
    from quantization.onnx_int8 import Int8Config

    from ..prior import FacePrior

log = logging.getLogger(__name__)

CACHE_ENV = "SDK_CACHE_DIR"


def default_cache_dir() -> Path:
    """$SDK_CACHE_DIR, else ~/.cache/talking-head-sdk."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "talking-head-sdk")


@dataclass(frozen=True)
class OrtSettings:
    """How ONNX Runtime runs the graphs.

    device: "cpu" or "cuda" (needs the onnxruntime-gpu build).
    threads: intra-op threads: one count for every graph, a `ThreadBudget` (per graph), or None
        (ORT's default: one per physical core).
    spinning: let ORT's idle worker threads spin-wait (a little faster on an idle machine; on a
        busy one they take the cores the other stages need). Off by default.
    tensorrt: on "cuda", put the TensorRT provider first (builds an engine per graph on first run).
    tensorrt_fp16: let TensorRT run layers in fp16.
    tensorrt_cache_dir: where TensorRT engines are cached (None: the backend cache dir).
    """
    device: Literal["cpu", "cuda"] = "cpu"
    threads: Threads = None
    spinning: bool = False
    tensorrt: bool = False
    tensorrt_fp16: bool = True
    tensorrt_cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise BackendError(f"ONNX Runtime device must be 'cpu' or 'cuda', got {self.device!r}")
        if isinstance(self.threads, int) and self.threads < 1:
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


def session_options(settings: OrtSettings, graph: str):
    """ORT session options for `graph`: full graph optimisation, its intra-op threads, one
    inter-op thread (the graphs run sequentially), spinning as `settings` says."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    threads = graph_threads(settings.threads, graph)
    if threads is not None:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    spin = "1" if settings.spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.add_session_config_entry("session.inter_op.allow_spinning", spin)
    return options


class OrtRunner:
    """A model's graph files (by graph name) in ONNX Runtime sessions (a `GraphRunner`)."""

    def __init__(self, files: dict[str, Path], settings: OrtSettings = OrtSettings()):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError(f"ONNX Runtime is not installed here ({exc}); install onnxruntime") from exc
        missing_runner_files(files, "ONNX")
        providers = execution_providers(settings, ort.get_available_providers())
        self.files = {name: Path(files[name]) for name in GRAPH_NAMES if name in files}
        self.sessions: dict[str, ort.InferenceSession] = {}
        self.metadata: dict[str, GraphMetadata] = {}
        for name, path in self.files.items():
            try:
                session = ort.InferenceSession(str(path), session_options(settings, name), providers=providers)
            except Exception as exc:  # ORT raises its own exception types for corrupt or unloadable files
                raise BackendError(f"{path}: ONNX Runtime cannot load it ({exc})") from exc
            check_active_providers(settings, session.get_providers(), path)
            self.sessions[name] = session
            try:
                self.metadata[name] = GraphMetadata.from_strings(session.get_modelmeta().custom_metadata_map, str(path))
            except ValueError as exc:
                raise BackendError(str(exc)) from exc
        self.outputs = {name: [node.name for node in session.get_outputs()] for name, session in self.sessions.items()}
        self.provider = next(iter(self.sessions.values())).get_providers()[0].removesuffix("ExecutionProvider").lower()

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
    """A model's graphs in ONNX Runtime; see the module docstring. `prior`: as for `GraphBackend`."""

    def __init__(self, graph_files: dict[str, Path], settings: OrtSettings = OrtSettings(), kind: str = "onnx",
                 prior: FacePrior | str | Path | None = None):
        super().__init__(OrtRunner(graph_files, settings), kind, prior)
        self.settings = settings

    @classmethod
    def from_export_dir(cls, directory: str | Path, precision: str = "fp32", settings: OrtSettings = OrtSettings(),
                        kind: str | None = None, prior: FacePrior | str | Path | None = None) -> OnnxBackend:
        """Load ``directory/onnx/<precision>/*.onnx`` (a `python -m export` output folder); face-prior
        graphs are driven by `prior`, else the folder's copy of their prior (``directory/prior/``), else
        the shipped one."""
        files = present_graph_files({name: onnx_graph_path(directory, precision, name) for name in GRAPH_NAMES})
        if "generator" not in files:
            raise BackendError(f"{directory}: no ONNX {precision} graphs (expected "
                               f"{onnx_graph_path(directory, precision, 'generator').parent}/); "
                               f"run `python -m export --format onnx --precision {precision}`"
                               + (" after `python -m quantization`" if precision == "int8" else ""))
        return check_precision(cls(files, settings, kind or ("onnx" if precision == "fp32" else f"onnx-{precision}"),
                                   export_folder_prior(directory, prior)), precision)

    @classmethod
    def from_model(cls, model: TalkingHeadModel, settings: OrtSettings = OrtSettings(),
                   cache_dir: str | Path | None = None, precision: str = "fp32",
                   output_size: int | None = None, int8_config: Int8Config | None = None,
                   show_progress: bool = True) -> OnnxBackend:
        """Export `model`'s graphs at `output_size` (None: the model's default) once into
        ``cache_dir/onnx-graphs/v<GRAPHS_VERSION>-<sha256>-<size>/`` and load them.

        precision: "fp32" / "fp16" (traced here, seconds) or "int8" (made by the quantization
        extra with `int8_config`, None: its defaults; minutes; the cache keeps the first set made
        for a model and size). A progress bar shows on stderr unless `show_progress` is False.
        """
        size = check_output_size(model.cfg, output_size)
        sha256 = model_sha256(model)
        directory = cached_graphs_dir(cache_dir, sha256, size)
        missing = tuple(name for name in graph_names(model.cfg)
                        if not onnx_graph_path(directory, precision, name).is_file())
        if missing and precision == "int8":
            export_int8_graphs(model, directory, size, int8_config, show_progress)
        elif missing:
            from tqdm import tqdm

            log.info("exporting ONNX graphs %s of %s at %d² to %s", ", ".join(missing), model.cfg.name, size,
                     directory)
            for name in tqdm(missing, desc=f"ONNX {precision} graphs of {model.cfg.name} at {size}²", unit="graph",
                             disable=not show_progress, leave=False):
                export_onnx(model, directory, precision, (name,), sha256=sha256, output_size=size)
        return cls.from_export_dir(directory, precision, settings,
                                   prior=None if model.cfg.semantic is None else model.prior())


def cached_graphs_dir(cache_dir: str | Path | None, sha256: str, size: int) -> Path:
    """The cache folder of a model's graphs at one output size (an export folder's layout inside)."""
    return Path(cache_dir or default_cache_dir()) / "onnx-graphs" / f"v{GRAPHS_VERSION}-{sha256}-{size}"


def has_onnx_graphs(directory: str | Path, precision: str, graphs: tuple[str, ...] = GRAPH_NAMES) -> bool:
    """Whether `directory` (an export or cache folder) holds every ONNX graph of `graphs` (a
    model's `graph_names`) at `precision`."""
    return all(onnx_graph_path(directory, precision, name).is_file() for name in graphs)


def export_int8_graphs(model: TalkingHeadModel, directory: Path, size: int, int8_config: Int8Config | None,
                       show_progress: bool) -> None:
    """INT8 graphs of `model` at `size` into ``directory/onnx/int8/`` through the quantization extra
    (`quantize_onnx_int8`), with a progress bar; BackendError saying why when it cannot."""
    try:
        from quantization.onnx_int8 import Int8Config, quantize_onnx_int8
    except ImportError as exc:
        raise BackendError(f"INT8 graphs are made by the quantization extra, which is not installed here ({exc}): "
                           "pip install 'talking-head-sdk[quantization]', or pass an export folder written by "
                           "`python -m export --precision int8`") from None
    from tqdm import tqdm

    log.info("making INT8 ONNX graphs of %s at %d² in %s (once per model, a few minutes)", model.cfg.name, size,
             directory)
    with tqdm(desc=f"INT8 graphs of {model.cfg.name} at {size}²", unit="step", disable=not show_progress,
              leave=False) as bar:
        def progress(message: str) -> None:
            bar.set_postfix_str(message, refresh=False)
            bar.update()

        try:
            quantize_onnx_int8(model, directory, int8_config or Int8Config(), progress=progress, output_size=size)
        except BackendError:
            raise
        except SdkError as exc:  # QuantizationError, NoFaceError: no calibration frames, no NNCF, ...
            raise BackendError(f"could not make INT8 graphs in {directory}: {exc}") from exc

"""`create_backend(model, kind, device)`: the one place that picks and builds a runtime backend.

Kinds: "torch", "onnx" (fp32 graphs, exported to the cache on first use or read from an export
folder), "onnx-int8" (INT8 graphs: an export folder's, written with `python -m export --precision
int8`, or made into the cache on first use by the quantization extra), "tflite" (the fp32 .tflite
graphs of an export folder, in LiteRT, CPU only), and "auto": the fastest of the candidates
available here, decided by timing them at creation: each candidate encodes a frame and renders
the same avatar `AUTO_WARMUP_FRAMES` times untimed (lazy initialisation, caches), then
`AUTO_TIMING_RUNS` times timed, and the lowest median wins. The candidates are torch, onnx when
ONNX Runtime is installed, onnx-int8 when INT8 graphs are in the export folder or the cache or
can be made (the quantization extra is installed; `export_int8`), and tflite when the export
folder has them. The timings are logged; `choose_backend` returns them too (`BackendChoice`).
Pass the same `threads` the backend will run with (a `ThreadBudget`: per stage) for a fair
comparison. Every backend renders at one `output_size` (None: the model's default); an export
folder's graphs must have been exported at it. Models driven by the face prior run on every kind
alike; their graph backends are driven by the model's own prior (`TalkingHeadModel.prior`), which
must be the one their graphs' metadata names.
"""
from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..models import Keypoints, TalkingHeadModel
from ..models.semantic_inputs import concat_keypoints
from ..timing import median_ms
from .base import Backend, BackendError, check_output_size
from .graph_backend import GraphBackend, check_graph_output_size
from .metadata import model_sha256
from .graphs import graph_names
from .onnx_backend import OnnxBackend, OrtSettings, cached_graphs_dir, has_onnx_graphs
from .tflite_backend import TfliteBackend
from .threads import Threads
from .torch_backend import TorchBackend

if TYPE_CHECKING:
    from quantization.onnx_int8 import Int8Config

    from ..prior import FacePrior

log = logging.getLogger(__name__)

BACKEND_KINDS: tuple[str, ...] = ("auto", "torch", "onnx", "onnx-int8", "tflite")
AUTO_TIMING_RUNS = 5
AUTO_WARMUP_FRAMES = 2


@dataclass(frozen=True)
class BackendChoice:
    """What "auto" measured: the winner, median ms per frame (encode + render) by kind, and skipped kinds."""
    backend: Backend
    chosen: str
    frame_ms: dict[str, float]
    skipped: dict[str, str]  # candidate kind -> why it could not be built

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for stats: the kind chosen, what it runs on, and the timings."""
        return {"chosen": self.chosen, "backend": self.backend.name, "frame_ms": dict(self.frame_ms),
                "skipped": dict(self.skipped)}


@dataclass(frozen=True)
class _Request:
    """Everything a builder needs besides the kind."""
    model: TalkingHeadModel
    device: torch.device
    graphs: Path | None
    threads: Threads
    cache_dir: str | Path | None
    tensorrt: bool
    output_size: int
    int8_config: Int8Config | None
    export_int8: bool
    show_progress: bool

    @property
    def ort_settings(self) -> OrtSettings:
        return OrtSettings(device="cuda" if self.device.type == "cuda" else "cpu", threads=self.threads,
                           tensorrt=self.tensorrt)


def onnx_runtime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def int8_export_available() -> bool:
    """Whether INT8 graphs can be made here (the quantization package and NNCF are installed)."""
    return all(importlib.util.find_spec(name) is not None for name in ("quantization", "nncf"))


def create_backend(model: TalkingHeadModel, kind: str = "auto", device: str | torch.device = "cpu", *,
                   graphs: str | Path | None = None, threads: Threads = None,
                   cache_dir: str | Path | None = None, tensorrt: bool = False,
                   output_size: int | None = None, int8_config: Int8Config | None = None,
                   export_int8: bool = True, show_progress: bool = True) -> Backend:
    """A backend running `model`.

    kind: see `BACKEND_KINDS`. device: "cpu" or "cuda" (torch device; ORT's CUDA provider).
    graphs: an export folder to load graphs from (required for "tflite"; optional for "onnx" and
        "onnx-int8", which otherwise use the cache). Its graphs must be of `model`.
    threads: intra-op threads: one count for every graph, a `ThreadBudget` (per stage), or None
        (each runtime's default; torch: the calling thread's setting).
    cache_dir: where graphs exported on first use are kept (default `default_cache_dir()`).
    tensorrt: on CUDA, try ONNX Runtime's TensorRT provider first.
    output_size: the side of portraits and frames (None: the model's default output size); the
        graphs of `graphs` must have been exported at it.
    int8_config: how INT8 graphs made into the cache are made (a `quantization.Int8Config`;
        None: its defaults). export_int8: False never makes them (only graphs already there count).
    show_progress: a progress bar on stderr while graphs are exported into the cache.
    """
    if kind not in BACKEND_KINDS:
        raise BackendError(f"unknown backend kind {kind!r}; expected one of {', '.join(BACKEND_KINDS)}")
    if kind == "auto":
        return choose_backend(model, device, graphs=graphs, threads=threads, cache_dir=cache_dir, tensorrt=tensorrt,
                              output_size=output_size, int8_config=int8_config, export_int8=export_int8,
                              show_progress=show_progress).backend
    request = _Request(model, torch.device(device), Path(graphs) if graphs is not None else None, threads, cache_dir,
                       tensorrt, check_output_size(model.cfg, output_size), int8_config, export_int8, show_progress)
    return _BUILDERS[kind](request)


def choose_backend(model: TalkingHeadModel, device: str | torch.device = "cpu", *, graphs: str | Path | None = None,
                   threads: Threads = None, cache_dir: str | Path | None = None, tensorrt: bool = False,
                   runs: int = AUTO_TIMING_RUNS, warmup: int = AUTO_WARMUP_FRAMES, output_size: int | None = None,
                   int8_config: Int8Config | None = None, export_int8: bool = True,
                   show_progress: bool = True) -> BackendChoice:
    """The "auto" choice with its timings (arguments as for `create_backend`; see the module docstring)."""
    request = _Request(model, torch.device(device), Path(graphs) if graphs is not None else None, threads, cache_dir,
                       tensorrt, check_output_size(model.cfg, output_size), int8_config, export_int8, show_progress)
    builders = {kind: (lambda kind=kind: _auto_builder(kind)(request)) for kind in auto_candidates(request)}
    choice = choose_fastest(builders, model, runs, request.output_size, warmup)
    log.info("auto backend: %s (median ms per frame: %s%s)", choice.chosen,
             ", ".join(f"{name} {ms:.1f}" for name, ms in choice.frame_ms.items()),
             "".join(f"; skipped {name}: {why}" for name, why in choice.skipped.items()))
    return choice


def auto_candidates(request: _Request) -> list[str]:
    """The kinds "auto" times for `request`, in order."""
    kinds = ["torch"]
    if onnx_runtime_available():
        kinds.append("onnx")
        cached = cached_graphs_dir(request.cache_dir, model_sha256(request.model), request.output_size)
        names = graph_names(request.model.cfg)
        if ((request.graphs is not None and has_onnx_graphs(request.graphs, "int8", names))
                or has_onnx_graphs(cached, "int8", names)
                or (request.export_int8 and int8_export_available())):
            kinds.append("onnx-int8")
    if (request.graphs is not None and (request.graphs / "tflite" / "fp32").is_dir()
            and request.device.type == "cpu"):
        kinds.append("tflite")
    return kinds


def _auto_builder(kind: str) -> Callable[[_Request], Backend]:
    """The builder "auto" uses: an export folder without graphs of a kind falls back to the cache."""
    precision = {"onnx": "fp32", "onnx-int8": "int8"}.get(kind)
    if precision is None:
        return _BUILDERS[kind]

    def build(request: _Request) -> Backend:
        names = graph_names(request.model.cfg)
        if request.graphs is not None and not has_onnx_graphs(request.graphs, precision, names):
            request = replace(request, graphs=None)
        return _BUILDERS[kind](request)
    return build


def _torch(request: _Request) -> Backend:
    return TorchBackend(request.model, request.device, request.output_size, request.threads, frozen=True)


def _onnx(request: _Request, precision: str = "fp32") -> GraphBackend:
    settings = request.ort_settings
    if request.graphs is None:
        if precision == "int8" and not request.export_int8:
            directory = cached_graphs_dir(request.cache_dir, model_sha256(request.model), request.output_size)
            if not has_onnx_graphs(directory, "int8", graph_names(request.model.cfg)):
                raise BackendError(f"no INT8 graphs of this model in the cache ({directory}) and making them is off: "
                                   "pass graphs=DIR written by `python -m export --precision int8`")
        return OnnxBackend.from_model(request.model, settings, request.cache_dir, precision, request.output_size,
                                      request.int8_config, request.show_progress)
    return _same_model(OnnxBackend.from_export_dir(request.graphs, precision, settings, prior=_prior(request.model)),
                       request.model,
                       request.graphs, request.output_size)


def _tflite(request: _Request) -> TfliteBackend:
    if request.device.type != "cpu":
        raise BackendError(f"the tflite backend runs on the CPU (LiteRT with XNNPACK), not {request.device.type}; "
                           "use the onnx backend on a GPU")
    if request.graphs is None:
        raise BackendError("the tflite backend loads an export folder: pass graphs=DIR written by "
                           "`python -m export --format tflite`")
    return _same_model(TfliteBackend.from_export_dir(request.graphs, "fp32", request.threads, _prior(request.model)),
                       request.model,
                       request.graphs, request.output_size)


_BUILDERS: dict[str, Callable[[_Request], Backend]] = {
    "torch": _torch,
    "onnx": _onnx,
    "onnx-int8": lambda request: _onnx(request, "int8"),
    "tflite": _tflite,
}


def _same_model(backend: GraphBackend, model: TalkingHeadModel, graphs: str | Path, output_size: int) -> GraphBackend:
    """`backend`, unless its graphs are of another model than `model` or at another output size."""
    if backend.model_sha256 != model_sha256(model):
        raise BackendError(f"{graphs}: its graphs are of model {backend.model_sha256[:12]} ({backend.cfg.name}), "
                           f"not of the given {model.cfg.name} ({model_sha256(model)[:12]})")
    return check_graph_output_size(backend, output_size, graphs)


def choose_fastest(builders: dict[str, Callable[[], Backend]], model: TalkingHeadModel,
                   runs: int = AUTO_TIMING_RUNS, output_size: int | None = None,
                   warmup: int = AUTO_WARMUP_FRAMES) -> BackendChoice:
    """Build each candidate and time encode + render on one avatar (a portrait at `output_size`,
    None: the model's default) after `warmup` untimed frames; the fastest with the timings.
    Face-prior models: the avatar's mesh is the prior's neutral face in the middle of the portrait,
    rendered at its own keypoints with a zero expression (the numpy rig costs every backend alike),
    and "prior" models time render alone (their sender runs no network).

    A candidate that fails to build is skipped (and reported); if all fail, BackendError.
    """
    generator = torch.Generator().manual_seed(0)
    size, side = check_output_size(model.cfg, output_size), model.cfg.resolution
    portrait = torch.rand((1, 3, size, size), generator=generator)
    frame = torch.rand((1, 3, side, side), generator=generator)
    mesh = None if model.cfg.semantic is None else neutral_avatar_mesh(model.prior(), size)
    timings: dict[str, float] = {}
    skipped: dict[str, str] = {}
    built: dict[str, Backend] = {}
    for name, build in builders.items():
        try:
            backend = build()
        except BackendError as exc:
            skipped[name] = str(exc)
            continue
        built[name] = backend
        timings[name] = _median_frame_ms(backend, portrait, frame, mesh, runs, warmup)
    if not built:
        raise BackendError("no runtime backend could be built: " + "; ".join(f"{n}: {w}" for n, w in skipped.items()))
    chosen = min(timings, key=timings.__getitem__)
    return BackendChoice(built[chosen], chosen, timings, skipped)


def neutral_avatar_mesh(prior: FacePrior, size: int) -> np.ndarray:
    """(478, 3) the prior's neutral face, frontal, centred, half the side of a size² portrait."""
    from ..prior import similarity_from_pose

    return similarity_from_pose(np.array([0.0, 0.0, 0.0, 0.0, 0.0, np.log(0.5)]), size).apply(prior.canonical)


def _median_frame_ms(backend: Backend, portrait: torch.Tensor, frame: torch.Tensor, mesh: np.ndarray | None,
                     runs: int, warmup: int) -> float:
    frame = frame.to(backend.device)
    if mesh is None:
        state = backend.prepare_source(portrait.to(backend.device))

        def one_frame() -> None:
            backend.render(state, backend.encode(frame))
            _synchronize(backend)
    else:
        state = backend.prepare_source(portrait.to(backend.device), mesh)
        expression = torch.zeros((1, backend.cfg.semantic.expression_dims), device=backend.device)
        prior_count = backend.cfg.semantic.prior_keypoints

        def one_frame() -> None:
            driving = state.keypoints
            if backend.cfg.num_kp:  # hybrid: the driver's learned keypoints after the prior's
                own = Keypoints(driving.value[:, :prior_count], driving.jacobian[:, :prior_count])
                driving = concat_keypoints(own, backend.encode(frame))
            backend.render(state, driving, expression)
            _synchronize(backend)

    return median_ms(one_frame, runs, warmup)  # the warm-up frames pay for lazy initialisation


def _synchronize(backend: Backend) -> None:
    if backend.device.type == "cuda":
        torch.cuda.synchronize(backend.device)


def _prior(model: TalkingHeadModel) -> FacePrior | None:
    """The face prior a face-prior model's graphs must be driven by (the model's own), None for learned keypoints."""
    return None if model.cfg.semantic is None else model.prior()

"""`create_backend(model, kind, device)`: the one place that picks and builds a runtime backend.

Kinds: "torch", "onnx" (fp32 graphs, exported to the cache on first use or read from an export
folder), "onnx-int8" (the INT8 graphs of an export folder written with `python -m quantization`),
"tflite" (the fp32 .tflite graphs of an export folder, in LiteRT, CPU only), and "auto": the fastest of the
candidates available here, decided by timing them at creation — each candidate renders the same
avatar a few times (encoder + generator per frame, after one warm-up) and the lowest median wins.
The timings are logged; `choose_backend` returns them too. Pass `threads` and set torch's threads
alike (`torch.set_num_threads`) for a fair comparison. Every backend renders at one `output_size`
(None: the model's default); an export folder's graphs must have been exported at it.
"""
from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..models import TalkingHeadModel
from .base import Backend, BackendError, check_output_size
from .graph_backend import GraphBackend, check_graph_output_size
from .metadata import model_sha256
from .onnx_backend import OnnxBackend, OrtSettings
from .tflite_backend import TfliteBackend
from .torch_backend import TorchBackend

log = logging.getLogger(__name__)

BACKEND_KINDS: tuple[str, ...] = ("auto", "torch", "onnx", "onnx-int8", "tflite")
AUTO_TIMING_RUNS = 5


@dataclass(frozen=True)
class BackendChoice:
    """What "auto" measured: the winner, median ms per frame (encode + render) by kind, and skipped kinds."""
    backend: Backend
    chosen: str
    frame_ms: dict[str, float]
    skipped: dict[str, str]  # candidate kind -> why it could not be built


def onnx_runtime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def create_backend(model: TalkingHeadModel, kind: str = "auto", device: str | torch.device = "cpu", *,
                   graphs: str | Path | None = None, threads: int | None = None,
                   cache_dir: str | Path | None = None, tensorrt: bool = False,
                   output_size: int | None = None) -> Backend:
    """A backend running `model`.

    kind: see `BACKEND_KINDS`. device: "cpu" or "cuda" (torch device; ORT's CUDA provider).
    graphs: an export folder to load graphs from (required for "onnx-int8" and "tflite"; optional
        for "onnx", which otherwise exports `model` into the cache). Its graphs must be of `model`.
    threads: threads for ONNX Runtime / LiteRT (None: their default); torch uses torch's setting.
    cache_dir: where "onnx" caches exported graphs (default `default_cache_dir()`).
    tensorrt: on CUDA, try ONNX Runtime's TensorRT provider first.
    output_size: the side of portraits and frames (None: the model's default output size); the
        graphs of `graphs` must have been exported at it.
    """
    if kind not in BACKEND_KINDS:
        raise BackendError(f"unknown backend kind {kind!r}; expected one of {', '.join(BACKEND_KINDS)}")
    if kind != "auto":
        size = check_output_size(model.cfg, output_size)
        return _builders(model, torch.device(device), graphs, threads, cache_dir, tensorrt, size)[kind]()
    return choose_backend(model, device, graphs=graphs, threads=threads, cache_dir=cache_dir,
                          tensorrt=tensorrt, output_size=output_size).backend


def choose_backend(model: TalkingHeadModel, device: str | torch.device = "cpu", *, graphs: str | Path | None = None,
                   threads: int | None = None, cache_dir: str | Path | None = None, tensorrt: bool = False,
                   runs: int = AUTO_TIMING_RUNS, output_size: int | None = None) -> BackendChoice:
    """The "auto" choice with its timings: torch, ONNX Runtime when installed, and the INT8 ONNX and
    TFLite graphs when `graphs` holds them (arguments as for `create_backend`)."""
    size = check_output_size(model.cfg, output_size)
    builders = _builders(model, torch.device(device), graphs, threads, cache_dir, tensorrt, size)
    if graphs is not None and not (Path(graphs) / "onnx" / "fp32").is_dir():
        # The folder has no fp32 ONNX graphs: the onnx candidate uses the cache instead.
        builders["onnx"] = _builders(model, torch.device(device), None, threads, cache_dir, tensorrt, size)["onnx"]
    candidates = ["torch"] + (["onnx"] if onnx_runtime_available() else [])
    if graphs is not None and (Path(graphs) / "onnx" / "int8").is_dir():
        candidates.append("onnx-int8")
    if graphs is not None and (Path(graphs) / "tflite" / "fp32").is_dir() and torch.device(device).type == "cpu":
        candidates.append("tflite")
    choice = choose_fastest({name: builders[name] for name in candidates}, model, runs, size)
    log.info("auto backend: %s (median ms per frame: %s%s)", choice.chosen,
             ", ".join(f"{name} {ms:.1f}" for name, ms in choice.frame_ms.items()),
             "".join(f"; skipped {name}: {why}" for name, why in choice.skipped.items()))
    return choice


def _builders(model: TalkingHeadModel, device: torch.device, graphs: str | Path | None, threads: int | None,
              cache_dir: str | Path | None, tensorrt: bool, output_size: int) -> dict[str, Callable[[], Backend]]:
    settings = OrtSettings(device="cuda" if device.type == "cuda" else "cpu", threads=threads, tensorrt=tensorrt)
    return {"torch": lambda: TorchBackend(model, device, output_size),
            "onnx": lambda: _onnx(model, settings, graphs, cache_dir, "fp32", output_size),
            "onnx-int8": lambda: _onnx(model, settings, graphs, cache_dir, "int8", output_size),
            "tflite": lambda: _tflite(model, device, graphs, threads, output_size)}


def _onnx(model: TalkingHeadModel, settings: OrtSettings, graphs: str | Path | None, cache_dir: str | Path | None,
          precision: str, output_size: int) -> GraphBackend:
    if graphs is None:
        if precision == "int8":
            raise BackendError("the onnx-int8 backend loads an export folder: pass graphs=DIR written by "
                               "`python -m export --precision int8` (which runs `python -m quantization`)")
        return OnnxBackend.from_model(model, settings, cache_dir, output_size=output_size)
    return _same_model(OnnxBackend.from_export_dir(graphs, precision, settings), model, graphs, output_size)


def _tflite(model: TalkingHeadModel, device: torch.device, graphs: str | Path | None, threads: int | None,
            output_size: int) -> TfliteBackend:
    if device.type != "cpu":
        raise BackendError(f"the tflite backend runs on the CPU (LiteRT with XNNPACK), not {device.type}; "
                           "use the onnx backend on a GPU")
    if graphs is None:
        raise BackendError("the tflite backend loads an export folder: pass graphs=DIR written by "
                           "`python -m export --format tflite`")
    return _same_model(TfliteBackend.from_export_dir(graphs, "fp32", threads), model, graphs, output_size)


def _same_model(backend: GraphBackend, model: TalkingHeadModel, graphs: str | Path, output_size: int) -> GraphBackend:
    """`backend`, unless its graphs are of another model than `model` or at another output size."""
    if backend.model_sha256 != model_sha256(model):
        raise BackendError(f"{graphs}: its graphs are of model {backend.model_sha256[:12]} ({backend.cfg.name}), "
                           f"not of the given {model.cfg.name} ({model_sha256(model)[:12]})")
    return check_graph_output_size(backend, output_size, graphs)


def choose_fastest(builders: dict[str, Callable[[], Backend]], model: TalkingHeadModel,
                   runs: int = AUTO_TIMING_RUNS, output_size: int | None = None) -> BackendChoice:
    """Build each candidate and time encode + render on one avatar (a portrait at `output_size`,
    None: the model's default); the fastest with the timings.

    A candidate that fails to build is skipped (and reported); if all fail, BackendError.
    """
    generator = torch.Generator().manual_seed(0)
    size, side = check_output_size(model.cfg, output_size), model.cfg.resolution
    portrait = torch.rand((1, 3, size, size), generator=generator)
    frame = torch.rand((1, 3, side, side), generator=generator)
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
        timings[name] = _median_frame_ms(backend, portrait, frame, runs)
    if not built:
        raise BackendError("no runtime backend could be built: " + "; ".join(f"{n}: {w}" for n, w in skipped.items()))
    chosen = min(timings, key=timings.__getitem__)
    return BackendChoice(built[chosen], chosen, timings, skipped)


def _median_frame_ms(backend: Backend, portrait: torch.Tensor, frame: torch.Tensor, runs: int) -> float:
    state = backend.prepare_source(portrait.to(backend.device))
    frame = frame.to(backend.device)
    samples = []
    for index in range(runs + 1):
        started = time.perf_counter()
        backend.render(state, backend.encode(frame))
        if backend.device.type == "cuda":
            torch.cuda.synchronize(backend.device)
        if index:  # the first run pays for lazy initialisation
            samples.append(1000 * (time.perf_counter() - started))
    return statistics.median(samples)

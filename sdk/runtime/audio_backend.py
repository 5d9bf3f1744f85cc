"""Audio backends: the audio-to-code graphs (`sdk.runtime.audio_graphs`) run by torch, ONNX Runtime or LiteRT.

    backend.expression(samples (N_e,))               -> (L, E) expression deltas of the live window
    backend.motion(samples (N_m,), state (6,), offset (C,)) -> (T, 6) normalised pose path of a clip

Kinds (`AUDIO_BACKEND_KINDS`): "torch" (the graph modules in torch), "onnx" (fp32 graphs),
"onnx-int8" (INT8: NNCF on the float graphs, the quantization extra, `quantization.audio_int8`)
and "tflite" (fp32 .tflite, LiteRT on CPU). Graph files come from an export folder (`python -m
export --audio`, layout ``DIR/audio/<format>/<precision>/<graph>.<ext>``) or, for ONNX, from a
cache folder keyed by the audio model's sha256 and `AUDIO_GRAPHS_VERSION`, filled on first use
(fp32: seconds; INT8: calibrated on shared speech, under a minute) as the video ONNX backend does.
Every file's metadata must name the same audio model and precision, with the spec's inputs.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..models.audio_to_code import AudioModelConfig, AudioToCodeModel
from .audio_graphs import (AUDIO_GRAPH_NAMES, AUDIO_GRAPHS_VERSION, AudioGraphMetadata, audio_example_inputs,
                           audio_graph_metadata, audio_model_sha256, build_audio_graphs)
from .base import BackendError
from .threads import torch_threads

log = logging.getLogger(__name__)

AUDIO_BACKEND_KINDS: tuple[str, ...] = ("torch", "onnx", "onnx-int8", "tflite")
AUDIO_FOLDER = "audio"  # where an export folder keeps the audio graphs
EXTENSIONS = {"onnx": ".onnx", "tflite": ".tflite", "coreml": ".mlpackage"}
KIND_FILES = {"onnx": ("onnx", "fp32"), "onnx-int8": ("onnx", "int8"), "tflite": ("tflite", "fp32")}  # kind -> files


def audio_graph_path(directory: str | Path, fmt: str, precision: str, graph: str) -> Path:
    """``DIR/audio/<format>/<precision>/<graph><ext>`` (export folders and the cache alike)."""
    return Path(directory) / AUDIO_FOLDER / fmt / precision / f"{graph}{EXTENSIONS[fmt]}"


class AudioBackend(Protocol):
    """name: what runs ("torch", "onnx-cpu", "onnx-int8-cpu", "tflite-xnnpack"); config: the audio
    model's; radius, pose_std: the motion space's; prior_sha256: the face prior its codes are of."""

    name: str
    config: AudioModelConfig
    radius: float
    pose_std: np.ndarray
    prior_sha256: str

    def expression(self, samples: np.ndarray) -> np.ndarray:
        ...

    def motion(self, samples: np.ndarray, state: np.ndarray, offset: np.ndarray) -> np.ndarray:
        ...


class TorchAudioBackend:
    """The graph modules in torch (eval mode, no gradients), `threads` intra-op threads per call."""

    def __init__(self, model: AudioToCodeModel, threads: int | None = 1):
        self.model = model.eval()
        self.graphs = build_audio_graphs(self.model)
        self.config = model.config
        self.radius = float(model.motion_space.radius)
        self.pose_std = model.motion_space.pose_std.double().numpy()
        self.prior_sha256 = str(getattr(model, "metadata", {}).get("prior_sha256") or "")
        self.threads = threads
        self.name = "torch"

    def _run(self, graph: str, *arrays: np.ndarray) -> np.ndarray:
        tensors = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None] for a in arrays]
        with torch_threads(self.threads), torch.inference_mode():
            return self.graphs[graph](*tensors)[0].double().numpy()

    def expression(self, samples: np.ndarray) -> np.ndarray:
        return self._run("audio_expression", samples)

    def motion(self, samples: np.ndarray, state: np.ndarray, offset: np.ndarray) -> np.ndarray:
        return self._run("audio_motion", samples, state, offset)


class OrtAudioRunner:
    """Audio graph files (by name) in ONNX Runtime CPU sessions with `threads` intra-op threads."""

    provider = "cpu"

    def __init__(self, files: dict[str, Path], threads: int | None = 1):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError(f"ONNX Runtime is not installed here ({exc}); install onnxruntime") from exc
        from .onnx_backend import OrtSettings, session_options

        self.files = dict(files)
        self.sessions, self.metadata = {}, {}
        for name, path in self.files.items():
            try:
                session = ort.InferenceSession(str(path), session_options(OrtSettings(threads=threads), name),
                                               providers=["CPUExecutionProvider"])
                self.metadata[name] = AudioGraphMetadata.from_strings(session.get_modelmeta().custom_metadata_map,
                                                                      str(path))
            except ValueError as exc:
                raise BackendError(str(exc)) from exc
            except Exception as exc:  # ORT's own exception types for corrupt or unloadable files
                raise BackendError(f"{path}: ONNX Runtime cannot load it ({exc})") from exc
            self.sessions[name] = session

    def run(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        session = self.sessions[graph]
        names = [node.name for node in session.get_outputs()]
        try:
            return dict(zip(names, session.run(names, feeds)))
        except Exception as exc:  # ORT's own exception types (bad feeds, kernel failures)
            raise BackendError(f"{self.files[graph]}: ONNX Runtime failed to run it ({exc})") from exc


class TfliteAudioRunner:
    """Audio .tflite files (by name) in LiteRT interpreters (XNNPACK), through their signatures."""

    provider = "xnnpack"

    def __init__(self, files: dict[str, Path], threads: int | None = 1):
        from .tflite_backend import _litert, read_tflite_strings

        interpreter = _litert().interpreter.Interpreter
        self.files = dict(files)
        self.runners, self.metadata = {}, {}
        for name, path in self.files.items():
            try:
                self.metadata[name] = AudioGraphMetadata.from_strings(read_tflite_strings(path), str(path))
                self.runners[name] = interpreter(model_path=str(path), num_threads=threads
                                                 ).get_signature_runner("serving_default")
            except (ValueError, RuntimeError, KeyError) as exc:
                raise BackendError(f"{path}: not a loadable audio graph ({exc})") from exc

    def run(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return self.runners[graph](**feeds)
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"{self.files[graph]}: LiteRT failed to run it ({exc})") from exc


class GraphAudioBackend:
    """Exported audio graphs behind the `AudioBackend` methods; checks that the files are both
    graphs of one audio model at one precision."""

    def __init__(self, runner: OrtAudioRunner | TfliteAudioRunner, kind: str):
        missing = [name for name in AUDIO_GRAPH_NAMES if name not in runner.files]
        if missing:
            raise BackendError(f"missing audio graph files: {', '.join(missing)}")
        first = runner.metadata[AUDIO_GRAPH_NAMES[0]]
        for name in AUDIO_GRAPH_NAMES:
            metadata, path = runner.metadata[name], runner.files[name]
            if metadata.graph != name:
                raise BackendError(f"{path}: holds the {metadata.graph} graph, expected {name}")
            if (metadata.audio_model_sha256, metadata.precision) != (first.audio_model_sha256, first.precision):
                raise BackendError(f"{path}: a {metadata.precision} graph of audio model "
                                   f"{metadata.audio_model_sha256[:12]}, but {runner.files[first.graph]} is a "
                                   f"{first.precision} one of {first.audio_model_sha256[:12]}")
        self.runner = runner
        self.metadata = first
        self.config = first.config
        self.radius = first.radius
        self.pose_std = np.asarray(first.pose_std, dtype=np.float64)
        self.prior_sha256 = first.prior_sha256
        self.audio_model_sha256 = first.audio_model_sha256
        self.precision = first.precision
        self.name = f"{kind}-{runner.provider}"

    def expression(self, samples: np.ndarray) -> np.ndarray:
        feeds = {"samples": np.ascontiguousarray(samples, dtype=np.float32)[None]}
        return self.runner.run("audio_expression", feeds)["expression"][0].astype(np.float64)

    def motion(self, samples: np.ndarray, state: np.ndarray, offset: np.ndarray) -> np.ndarray:
        feeds = {name: np.ascontiguousarray(value, dtype=np.float32)[None]
                 for name, value in (("samples", samples), ("previous_pose", state), ("offset", offset))}
        return self.runner.run("audio_motion", feeds)["path"][0].astype(np.float64)


def export_audio_onnx(model: AudioToCodeModel, graph: str, precision: str, path: Path,
                      metadata: AudioGraphMetadata) -> Path:
    """One audio graph as checked, simplified ONNX (fp32 or fp16, float32 I/O) with `metadata`."""
    from .onnx_export import ONNX_FLOAT_PRECISIONS, save_onnx, set_onnx_metadata, simplify_onnx, to_float16, \
        trace_to_onnx

    if precision not in ONNX_FLOAT_PRECISIONS:
        raise BackendError(f"ONNX export writes {' or '.join(ONNX_FLOAT_PRECISIONS)}, not {precision!r} "
                           "(int8: quantization.audio_int8)")
    spec = metadata.spec
    inputs = audio_example_inputs(model.config, frames=metadata.frames)[graph]
    proto = trace_to_onnx(build_audio_graphs(model)[graph], inputs, spec.input_names, spec.output_names)
    proto = simplify_onnx(proto, graph)
    if precision == "fp16":
        proto = to_float16(proto)
    set_onnx_metadata(proto, metadata.to_strings())
    return save_onnx(proto, Path(path))


def cached_audio_graphs_dir(cache_dir: str | Path | None, sha256: str) -> Path:
    """The cache folder of an audio model's graphs (an export folder's layout inside)."""
    from .onnx_backend import default_cache_dir

    return Path(cache_dir or default_cache_dir()) / "audio-graphs" / f"v{AUDIO_GRAPHS_VERSION}-{sha256}"


def _fill_cache(model: AudioToCodeModel, directory: Path, precision: str, sha256: str) -> None:
    """Write the missing ONNX graphs of `model` at `precision` into the cache folder `directory`."""
    missing = [name for name in AUDIO_GRAPH_NAMES if not audio_graph_path(directory, "onnx", precision, name).is_file()]
    if not missing:
        return
    log.info("making %s ONNX audio graphs in %s (once per audio model)", precision, directory)
    if precision == "int8":
        try:
            from quantization.audio_int8 import write_audio_int8_onnx
        except ImportError as exc:
            raise BackendError(f"INT8 audio graphs are made by the quantization extra, not installed here ({exc}); "
                               "or pass an export folder written by `python -m export --audio --precision int8`"
                               ) from None
        for name in missing:
            write_audio_int8_onnx(model, name, audio_graph_path(directory, "onnx", "int8", name),
                                  audio_graph_metadata(model, name, "int8", sha256))
        return
    for name in missing:
        export_audio_onnx(model, name, precision, audio_graph_path(directory, "onnx", precision, name),
                          audio_graph_metadata(model, name, precision, sha256))


def load_audio_graphs(directory: str | Path, fmt: str, precision: str, threads: int | None = 1) -> GraphAudioBackend:
    """The `fmt` ("onnx" | "tflite") audio graphs at `precision` of an export (or cache) folder."""
    files = {name: audio_graph_path(directory, fmt, precision, name) for name in AUDIO_GRAPH_NAMES}
    absent = [str(path) for path in files.values() if not path.is_file()]
    if absent:
        raise BackendError(f"{directory}: no {fmt} {precision} audio graphs ({', '.join(absent)} missing); run "
                           f"`python -m export --audio --format {fmt} --precision {precision} --out {directory}`")
    runner = OrtAudioRunner(files, threads) if fmt == "onnx" else TfliteAudioRunner(files, threads)
    backend = GraphAudioBackend(runner, fmt if precision == "fp32" else f"{fmt}-{precision}")
    if backend.precision != precision:
        raise BackendError(f"{directory}: its {fmt}/{precision} audio graphs say precision {backend.precision}")
    return backend


def audio_backend_from_folder(directory: str | Path, kind: str, threads: int | None = 1) -> GraphAudioBackend:
    """The audio graphs of an export (or cache) folder: kind "onnx", "onnx-int8" or "tflite"."""
    return load_audio_graphs(directory, *KIND_FILES[kind], threads)


def create_audio_backend(model: AudioToCodeModel, kind: str = "torch", *, graphs: str | Path | None = None,
                         cache_dir: str | Path | None = None, threads: int | None = 1) -> AudioBackend:
    """A backend running `model`'s audio graphs (see the module docstring); `graphs`: an export
    folder (required for "tflite"), whose graphs must be of `model`."""
    if kind not in AUDIO_BACKEND_KINDS:
        raise BackendError(f"unknown audio backend kind {kind!r}; expected one of {', '.join(AUDIO_BACKEND_KINDS)}")
    if kind == "torch":
        return TorchAudioBackend(model, threads)
    sha256 = audio_model_sha256(model)
    if graphs is None:
        if kind == "tflite":
            raise BackendError("the tflite audio backend loads an export folder: pass graphs=DIR written by "
                               "`python -m export --audio --format tflite`")
        directory = cached_audio_graphs_dir(cache_dir, sha256)
        _fill_cache(model, directory, "int8" if kind == "onnx-int8" else "fp32", sha256)
    else:
        directory = Path(graphs)
    backend = audio_backend_from_folder(directory, kind, threads)
    if backend.audio_model_sha256 != sha256:
        raise BackendError(f"{directory}: its audio graphs are of audio model {backend.audio_model_sha256[:12]}, "
                           f"not of the given one ({sha256[:12]})")
    return backend

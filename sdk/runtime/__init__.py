"""Runtime backends: the model's graphs run by torch, ONNX Runtime or LiteRT behind one interface.

- `graphs`: the export units (`keypoint_encoder`, `source_encoder`, `generator`; a face-prior
  "prior" model has no keypoint encoder, `graph_names`) as nn.Modules with fixed shapes and flat
  named tensors (`graph_specs(cfg, output_size)`).
- `base`: the `Backend` protocol (`name`, `cfg`, `device`, `output_size`, `encode`, `prepare_source`, `render`),
  `BackendError`.
- `torch_backend.TorchBackend`; `graph_backend.GraphBackend` over exported files, with
  `onnx_backend.OnnxBackend` (+ `OrtSettings` for threads, CUDA, TensorRT) and `tflite_backend.TfliteBackend`.
- `factory.create_backend(model, kind="auto"|"torch"|"onnx"|"onnx-int8"|"tflite", device, output_size=S,
  threads=...)`; `choose_backend` for the "auto" timings.
- `threads`: `ThreadBudget` (intra-op threads per stage, `ThreadBudget.auto()` from the cores
  available), `torch_threads` (a context for torch's per-thread count), `available_cores`.
- `metadata`: `model_sha256`, `BITSTREAM_VERSION`, `GraphMetadata` (what exported files carry, output size included).
- `onnx_export.export_onnx`: writes the ONNX graphs (used by the ONNX backend's cache and `python -m export`).
"""
from __future__ import annotations

from .base import Backend, BackendError, SourceHandle
from .factory import BACKEND_KINDS, BackendChoice, choose_backend, create_backend
from .graph_backend import GraphBackend, GraphRunner, GraphSourceState
from .graphs import GRAPH_NAMES, GraphSpec, TensorSpec, build_graphs, graph_specs
from .metadata import BITSTREAM_VERSION, GraphMetadata, model_sha256
from .onnx_backend import OnnxBackend, OrtSettings
from .tflite_backend import TfliteBackend
from .threads import ThreadBudget, available_cores, torch_threads
from .torch_backend import TorchBackend

__all__ = [
           "BACKEND_KINDS",
           "BITSTREAM_VERSION",
           "GRAPH_NAMES",
           "Backend",
           "BackendChoice",
           "BackendError",
           "GraphBackend",
           "GraphMetadata",
           "GraphRunner",
           "GraphSourceState",
           "GraphSpec",
           "OnnxBackend",
           "OrtSettings",
           "SourceHandle",
           "TensorSpec",
           "TfliteBackend",
           "ThreadBudget",
           "TorchBackend",
           "available_cores",
           "build_graphs",
           "choose_backend",
           "create_backend",
           "graph_specs",
           "model_sha256",
           "torch_threads",
]

"""Compression of the talking-head model: INT8 post-training quantization, pruning, and the accuracy report.

- `calibration`: calibration frames (face crops, checked by the face detector) -> graph inputs
- `nncf_backend`: NNCF 3.4 imported with its ONNX backend usable on Python 3.11
- `qdq`: QDQ ONNX graph edits (uint8 activations, output quantizers for ORT's INT8 kernels, single-layer models)
- `sensitivity`: per-layer sensitivity on rendered frames, and the layers kept float
- `onnx_int8`: `quantize_onnx_int8` -> ``DIR/onnx/int8/<graph>.onnx`` (what `create_backend(model, "onnx-int8")` loads)
- `export_hook`: `write_int8_graph`, the INT8 writer `python -m export --precision int8` calls (ONNX, TFLite, Core ML W8)
- `pruning`: structured channel pruning with least-squares reconstruction; NNCF unstructured pruning
- `finetune`: short fine-tuning of a compressed generator with the training losses (+ distillation)
- `evaluation`, `latency`: quality on the test identities, interleaved latency medians
- `report`: `python -m quantization report` (Markdown, HTML, JSON, plots)
- `cli`: `python -m quantization int8|prune|report`

Names load lazily, so `import quantization` does not import torch, NNCF or ONNX.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "CalibrationConfig": "quantization.calibration",
    "Int8Config": "quantization.onnx_int8",
    "Int8Result": "quantization.onnx_int8",
    "quantize_onnx_int8": "quantization.onnx_int8",
    "write_int8_graph": "quantization.export_hook",
    "PruneConfig": "quantization.pruning",
    "prune_channels": "quantization.pruning",
    "prune_unstructured": "quantization.pruning",
    "save_pruned": "quantization.pruning",
    "load_pruned": "quantization.pruning",
    "FinetuneConfig": "quantization.finetune",
    "finetune_generator": "quantization.finetune",
    "QuantizationError": "quantization.errors",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'quantization' has no attribute {name!r}")


__all__ = list(_LAZY)

"""The int8 hook: INT8 graphs are made by the `quantization` package (calibration, ignored scopes).

Contract for `quantization` to fill in: a function
``quantization.write_int8_graph(model, fmt, graph, path, metadata) -> Path`` that writes one graph
of `model` in format `fmt` ("onnx", "tflite" or "coreml") at `path`, with float32 inputs and
outputs named as in `sdk.runtime.graphs.graph_specs` and `metadata` (a `GraphMetadata` with
precision "int8", the float model's sha256 and the output size the graph is made for, so the
calibration frames are at that size) embedded as the float exports do, and optionally `config`
(a `quantization.Int8Config`; the exporter passes one naming the calibration source).

Calibration: `--calibration` (a prepared folder, a folder of portraits or a video), else
`cache/prepared` when it is prepared, else the bundled driving clip, so that a fresh checkout
exports int8 too; `calibration_note` is the line the CLI prints about it.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from sdk.models import TalkingHeadModel
from sdk.runtime.metadata import GraphMetadata

from .request import ExportError

HOOK = "write_int8_graph"


def int8_hook() -> Callable[[TalkingHeadModel, str, str, Path, GraphMetadata], Path]:
    """`quantization.write_int8_graph`; ExportError saying what to run when it is not there."""
    try:
        quantization = importlib.import_module("quantization")
    except ModuleNotFoundError as exc:
        if exc.name != "quantization":
            raise
        quantization = None
    hook = getattr(quantization, HOOK, None)
    if hook is None:
        raise ExportError(f"int8 needs `python -m quantization ...` (quantization.{HOOK} is not available "
                          "here); export fp32/fp16 now")
    return hook


def _int8_config(calibration: Path | None):
    from quantization import CalibrationConfig, Int8Config

    return Int8Config(CalibrationConfig(calibration))


def calibration_note(calibration: Path | None) -> str:
    """What the int8 graphs will be calibrated on (ExportError when int8 cannot be made here)."""
    int8_hook()
    from quantization.calibration import calibration_source

    return calibration_source(_int8_config(calibration).calibration)[1]


def write_int8(model: TalkingHeadModel, fmt: str, graph: str, path: Path, metadata: GraphMetadata,
               calibration: Path | None = None) -> Path:
    return int8_hook()(model, fmt, graph, path, metadata, config=_int8_config(calibration))

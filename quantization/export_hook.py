"""`write_int8_graph`: the INT8 writer behind `python -m export --precision int8`, one graph per call,
at the output size its metadata names (calibration frames at that size).

- onnx: the graphs of `onnx_int8.quantize_onnx_int8` (NNCF on the float graphs, float layers
  chosen by the sensitivity pass), made once per model and calibration in a process; each call
  writes one of them with the exporter's metadata, and the run's record (`quantization.json`) beside it.
- tflite: the exporter's fp32 conversion (`export.tflite_writer.write_tflite`), then
  ai-edge-quantizer's static INT8 for CONV_2D (int8 weights and activations, calibrated on the
  same frames). Every other op stays float, as in the ONNX graphs.
- coreml: the exporter's fp32 mlprogram (`export.coreml_writer.write_coreml`), then coremltools'
  `linear_quantize_weights` (W8: per-channel symmetric int8 weights, float compute). W8A8 would
  need activation statistics from Core ML predictions, which run only on macOS.
"""
from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

from sdk.models import TalkingHeadModel
from sdk.runtime.graphs import GRAPH_NAMES
from sdk.runtime.metadata import GraphMetadata, model_sha256

from .calibration import CalibrationConfig, Feeds, graph_feeds, load_calibration
from .errors import QuantizationError
from .onnx_int8 import METADATA_KEY, RECORD_FILE, Int8Config

INT8_FORMATS: tuple[str, ...] = ("onnx", "tflite", "coreml")
TFLITE_INT8_OPS = ("CONV_2D",)

_feeds_cache: dict[tuple[str, CalibrationConfig, int], dict[str, list[Feeds]]] = {}
_onnx_cache: dict[tuple[str, Int8Config, int], tuple[dict, dict]] = {}  # -> (graphs by name, run record)


def calibration_feeds(model: TalkingHeadModel, calibration: CalibrationConfig, output_size: int
                      ) -> dict[str, list[Feeds]]:
    """Every graph's calibration inputs for `model`'s graphs at `output_size`, computed once per process."""
    key = (model_sha256(model), calibration, output_size)
    if key not in _feeds_cache:
        _feeds_cache[key] = graph_feeds(model, load_calibration(calibration, output_size))
    return _feeds_cache[key]


def write_int8_graph(model: TalkingHeadModel, fmt: str, graph: str, path: Path, metadata: GraphMetadata,
                     config: Int8Config = Int8Config()) -> Path:
    """Write one INT8 graph of `model` in `fmt` at `path` with `metadata` (precision "int8")."""
    if fmt not in INT8_FORMATS:
        raise QuantizationError(f"unknown format {fmt!r} for int8; expected one of {', '.join(INT8_FORMATS)}")
    if graph not in GRAPH_NAMES:
        raise QuantizationError(f"unknown graph {graph!r}; expected one of {', '.join(GRAPH_NAMES)}")
    if metadata.graph != graph:
        raise QuantizationError(f"metadata describes graph {metadata.graph!r}, not {graph!r}")
    if metadata.precision != "int8":
        raise QuantizationError(f"int8 graphs carry precision 'int8' metadata, got {metadata.precision!r}")
    path = Path(path)
    if fmt == "onnx":
        return _write_onnx(model, graph, path, metadata, config)
    if fmt == "tflite":
        feeds = calibration_feeds(model, config.calibration, metadata.output_size)[graph]
        return write_tflite_int8(model, graph, path, metadata, feeds)
    return write_coreml_w8(model, graph, path, metadata)


def _write_onnx(model: TalkingHeadModel, graph: str, path: Path, metadata: GraphMetadata, config: Int8Config) -> Path:
    import onnx

    from sdk.runtime.onnx_export import save_onnx, set_onnx_metadata

    from .onnx_int8 import quantize_onnx_int8

    key = (model_sha256(model), config, metadata.output_size)
    if key not in _onnx_cache:
        with tempfile.TemporaryDirectory() as folder:
            result = quantize_onnx_int8(model, folder, config, output_size=metadata.output_size)
            _onnx_cache[key] = ({name: onnx.load(str(file)) for name, file in result.paths.items()}, result.record())
    graphs, record = _onnx_cache[key]
    proto = graphs[graph]
    strings = {entry.key: entry.value for entry in proto.metadata_props}
    set_onnx_metadata(proto, {**metadata.to_strings(), METADATA_KEY: strings[METADATA_KEY]})
    saved = save_onnx(proto, path)
    record = {key: value for key, value in record.items() if key != "paths"}
    (path.parent / RECORD_FILE).write_text(json.dumps(record, indent=1) + "\n")
    return saved


def write_tflite_int8(model: TalkingHeadModel, graph: str, path: Path, metadata: GraphMetadata,
                      feeds: list[Feeds]) -> Path:
    """The exporter's fp32 .tflite of `graph` (at `metadata`'s output size), CONV_2D quantized to
    static INT8 on `feeds` (calibration inputs at that size), with `metadata`."""
    from ai_edge_quantizer import qtyping, quantizer, recipe_manager

    from sdk.files import write_bytes_atomic
    from export.tflite_writer import add_metadata, write_tflite

    with tempfile.TemporaryDirectory() as folder:
        float_path = write_tflite(model, graph, "fp32", Path(folder) / "float.tflite",
                                  _with_precision(metadata, "fp32"))
        content = float_path.read_bytes()
    converter = quantizer.Quantizer(bytearray(content))
    recipes = recipe_manager.RecipeManager()
    for op in TFLITE_INT8_OPS:
        recipes.add_static_config(regex=".*", operation_name=getattr(qtyping.TFLOperationName, op),
                                  activation_num_bits=8, weight_num_bits=8)
    converter.load_quantization_recipe(recipes.get_quantization_recipe())
    calibration = converter.calibrate({"serving_default": feeds})
    quantized = bytes(converter.quantize(calibration, enable_progress_report=False).quantized_model)
    strings = metadata.to_strings()
    strings[METADATA_KEY] = json.dumps({"tool": "ai-edge-quantizer static int8", "ops": list(TFLITE_INT8_OPS),
                                        "calibration_pairs": len(feeds)})
    return write_bytes_atomic(path, add_metadata(quantized, strings))


def write_coreml_w8(model: TalkingHeadModel, graph: str, path: Path, metadata: GraphMetadata) -> Path:
    """The exporter's fp32 mlprogram of `graph` with int8 per-channel weights (W8), with `metadata`."""
    import coremltools as ct

    from export.coreml_writer import write_coreml
    from sdk.files import replace_directory

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=path.name, suffix=".partial", dir=path.parent) as folder:
        float_path = write_coreml(model, graph, "fp32", Path(folder) / "float.mlpackage",
                                  _with_precision(metadata, "fp32"))
        mlmodel = ct.models.MLModel(str(float_path), skip_model_load=True)
        config = ct.optimize.coreml.OptimizationConfig(
            global_config=ct.optimize.coreml.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8",
                                                                     granularity="per_channel"))
        with contextlib.redirect_stderr(io.StringIO()):  # its progress bars would break the exporter's
            quantized = ct.optimize.coreml.linear_quantize_weights(mlmodel, config=config)
        quantized.user_defined_metadata.update(metadata.to_strings())
        quantized.user_defined_metadata[METADATA_KEY] = json.dumps(
            {"tool": f"coremltools {ct.__version__} linear_quantize_weights", "weights": "int8 per-channel",
             "activations": "float (W8A8 needs Core ML predictions: macOS only)"})
        return replace_directory(path, lambda partial: quantized.save(str(partial)))


def _with_precision(metadata: GraphMetadata, precision: str) -> GraphMetadata:
    from dataclasses import replace

    return replace(metadata, precision=precision)

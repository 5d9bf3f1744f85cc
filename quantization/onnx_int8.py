"""INT8 ONNX graphs: NNCF post-training quantization of the float graphs, completed for ONNX Runtime.

`quantize_onnx_int8(model, out_dir, config, output_size=S)`:
1. The three graphs of `sdk.runtime.graphs` at output size S are traced to float ONNX (the
   runtime's own exporter, checked and simplified).
2. Calibration pairs (train-split face crops at S, `calibration`) give every graph's inputs, the
   composite head's ``portrait`` included.
3. NNCF's ONNX backend quantizes each graph's Conv and MatMul layers (per-channel int8 weights,
   int8 activations, fast bias correction). Every other op stays float: there are no INT8
   kernels for GridSample, and the motion maths (keypoint Gaussians, flows, softmax blending)
   are coordinates, which 8 bits cannot hold to a fraction of a pixel.
4. `qdq.activations_to_uint8` and `qdq.add_output_quantizers` complete the QDQ patterns, so ORT
   runs QLinearConv.
5. The per-layer sensitivity pass (on a copy with every layer quantized) picks the layers to keep
   float (`config.target_psnr_db`); NNCF then quantizes with them in its ignored scope, and
   `qdq.byte_concats` moves the decoder's upsample-and-concatenate joins to uint8.
6. Files go to ``DIR/onnx/int8/<graph>.onnx`` with the runtime's metadata (precision "int8") and
   a ``sdk.quantization`` entry, plus ``DIR/onnx/int8/quantization.json``: the layout
   `sdk.runtime.create_backend(model, "onnx-int8", graphs=DIR)` loads.

The standard-QDQ route: NNCF's torch backend quantizes the model too, but its ONNX export emits
OpenVINO FakeQuantize nodes that ORT cannot load; the ONNX backend on the float graphs writes
standard QuantizeLinear/DequantizeLinear (`nncf_backend` explains the one import fix it needs).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from sdk.models import TalkingHeadModel

from .calibration import CalibrationConfig, Feeds, calibration_source, graph_feeds, load_calibration
from .errors import QuantizationError
from .nncf_backend import load_nncf
from .qdq import (QUANTIZABLE_OP_TYPES, KernelCount, activations_to_uint8, add_output_quantizers, byte_concats,
                  int8_kernels, layer_names, ort_session)
from .sensitivity import FrameRenderer, LayerSensitivity, choose_float_layers, layer_sensitivity, psnr_from_mse

WARPS: tuple[str, ...] = ("grid_sample", "row_gather")
PRESETS: tuple[str, ...] = ("performance", "mixed")
RECORD_FILE = "quantization.json"
METADATA_KEY = "sdk.quantization"

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class Int8Config:
    """How the INT8 graphs are made.

    calibration: the calibration frames.
    target_psnr_db: PSNR of INT8 frames against float frames (on calibration pairs) that the
        sensitivity pass keeps layers float for; 0 quantizes every Conv/MatMul (no pass).
    sensitivity_pairs: calibration pairs rendered per layer in the sensitivity pass.
    warp: how the generator warps features: "grid_sample" (ONNX GridSample) or "row_gather"
        (one Gather of NHWC rows and a blend; the same result, faster in ONNX Runtime).
    preset: NNCF preset: "performance" (symmetric activations) or "mixed" (asymmetric activations).
    float_layers: (graph, layer) pairs to keep float, chosen by hand or by an earlier run; when
        given, the sensitivity pass is skipped.
    """
    calibration: CalibrationConfig = CalibrationConfig()
    target_psnr_db: float = 40.0
    sensitivity_pairs: int = 8
    warp: str = "row_gather"
    preset: str = "performance"
    float_layers: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        if self.warp not in WARPS:
            raise QuantizationError(f"unknown warp {self.warp!r}; expected one of {', '.join(WARPS)}")
        if self.preset not in PRESETS:
            raise QuantizationError(f"unknown NNCF preset {self.preset!r}; expected one of {', '.join(PRESETS)}")
        if self.target_psnr_db < 0:
            raise QuantizationError(f"target_psnr_db must be >= 0, got {self.target_psnr_db}")
        if self.sensitivity_pairs < 1:
            raise QuantizationError(f"sensitivity_pairs must be >= 1, got {self.sensitivity_pairs}")
        if self.float_layers is not None:
            object.__setattr__(self, "float_layers", tuple((str(g), str(layer)) for g, layer in self.float_layers))


@dataclass
class Int8Result:
    """What `quantize_onnx_int8` wrote and measured."""
    paths: dict[str, Path]
    config: Int8Config
    calibration_origin: str
    calibration_pairs: int
    frames_without_face: int
    float_layers: list[tuple[str, str]]  # (graph, layer) kept float
    sensitivity: list[LayerSensitivity]
    kernels: dict[str, KernelCount]  # per graph, what ORT runs
    psnr_vs_float_db: float  # all three graphs INT8 vs float, on the sensitivity pairs
    seconds: float
    versions: dict[str, str] = field(default_factory=dict)

    def record(self) -> dict:
        """JSON-ready summary (also stored next to the graphs)."""
        return {"paths": {name: str(path) for name, path in self.paths.items()},
                "config": json.loads(json.dumps(asdict(self.config), default=str)),
                "calibration": {"origin": self.calibration_origin, "pairs": self.calibration_pairs,
                                "frames_without_face": self.frames_without_face},
                "float_layers": [list(item) for item in self.float_layers],
                "sensitivity": [asdict(item) for item in self.sensitivity],
                "kernels": {name: asdict(count) for name, count in self.kernels.items()},
                "psnr_vs_float_db": self.psnr_vs_float_db, "seconds": self.seconds, "versions": self.versions}


def float_onnx_graphs(model: TalkingHeadModel, warp: str = "grid_sample", output_size: int | None = None) -> dict:
    """The three graphs at `output_size` (None: the model's default) as float ONNX ModelProtos
    (traced, checked, simplified by `sdk.runtime`)."""
    from sdk.runtime.graphs import build_graphs, example_inputs, graph_specs, grid_sample_warp, row_gather_warp
    from sdk.runtime.onnx_export import simplify_onnx, trace_to_onnx

    if warp not in WARPS:
        raise QuantizationError(f"unknown warp {warp!r}; expected one of {', '.join(WARPS)}")
    modules = build_graphs(model.to("cpu").eval(), warp=row_gather_warp if warp == "row_gather" else grid_sample_warp,
                           output_size=output_size)
    specs = graph_specs(model.cfg, output_size)
    inputs = example_inputs(model.cfg, output_size=output_size)
    return {name: simplify_onnx(trace_to_onnx(module, inputs[name], specs[name].input_names,
                                              specs[name].output_names), name)
            for name, module in modules.items()}


def nncf_quantize(float_model, feeds: list[Feeds], float_layers: list[str], preset: str = "performance"):
    """NNCF post-training quantization of one float graph's Conv/MatMul layers except `float_layers` (QDQ ONNX)."""
    if preset not in PRESETS:
        raise QuantizationError(f"unknown NNCF preset {preset!r}; expected one of {', '.join(PRESETS)}")
    nncf = load_nncf()
    nncf.set_log_level(logging.WARNING)
    other_ops = sorted({node.op_type for node in float_model.graph.node} - set(QUANTIZABLE_OP_TYPES))
    scope = nncf.IgnoredScope(names=list(float_layers), types=other_ops, validate=False)
    preset_value = nncf.QuantizationPreset.MIXED if preset == "mixed" else nncf.QuantizationPreset.PERFORMANCE
    return nncf.quantize(float_model, nncf.Dataset(feeds), preset=preset_value, subset_size=len(feeds),
                         ignored_scope=scope)


def quantize_graphs(float_models: dict, feeds: dict[str, list[Feeds]], float_layers: dict[str, list[str]],
                    preset: str) -> dict:
    """NNCF + completed output quantizers for every graph; `float_layers[graph]` stay float."""
    unknown_graphs = sorted(set(float_layers) - set(float_models))
    if unknown_graphs:
        raise QuantizationError(f"float layers given for unknown graphs {unknown_graphs}; "
                                f"the graphs are {', '.join(float_models)}")
    quantized = {}
    for name, float_model in float_models.items():
        layers = layer_names(float_model)
        unknown = sorted(set(float_layers.get(name, [])) - set(layers))
        if unknown:
            raise QuantizationError(f"{name}: no layers named {unknown}")
        raw = nncf_quantize(float_model, feeds[name], float_layers.get(name, []), preset)
        activations_to_uint8(raw)
        quantized[name] = add_output_quantizers(raw, feeds[name])
    return quantized


def quantize_onnx_int8(model: TalkingHeadModel, out_dir: str | Path, config: Int8Config = Int8Config(),
                       progress: ProgressFn | None = None, output_size: int | None = None) -> Int8Result:
    """Write INT8 ONNX graphs of `model` at `output_size` (None: the model's default) to
    ``out_dir/onnx/int8/`` (see the module docstring)."""
    from sdk.runtime.metadata import graph_metadata, model_sha256
    from sdk.runtime.graphs import graph_specs
    from sdk.runtime.onnx_export import onnx_graph_path, save_onnx, set_onnx_metadata

    started = time.perf_counter()
    say = progress or (lambda message: None)
    size = resolve_output_size(model, output_size)
    say(f"tracing the float graphs at {size}²")
    float_models = float_onnx_graphs(model, config.warp, size)
    say(calibration_source(config.calibration)[1])
    calibration = load_calibration(config.calibration, size)
    feeds = graph_feeds(model, calibration)
    probe = {name: items[:config.sensitivity_pairs] for name, items in feeds.items()}
    renderer = FrameRenderer(probe, float_models)
    sensitivity: list[LayerSensitivity] = []
    chosen: list[tuple[str, str]] = list(config.float_layers or ())
    if config.float_layers is None and config.target_psnr_db > 0:
        say(f"NNCF quantization of every layer on {len(calibration)} pairs, for the sensitivity pass")
        everything = quantize_graphs(float_models, feeds, {}, config.preset)
        sensitivity = layer_sensitivity(renderer, everything, float_models, say)
        chosen = [(item.graph, item.layer) for item in choose_float_layers(sensitivity, config.target_psnr_db)]
    say(f"NNCF quantization on {len(calibration)} pairs, {len(chosen)} layers kept float")
    by_graph: dict[str, list[str]] = {}
    for graph, layer in chosen:
        by_graph.setdefault(graph, []).append(layer)
    quantized = quantize_graphs(float_models, feeds, by_graph, config.preset)
    for proto in quantized.values():  # after the sensitivity pass, which needs every join in float
        byte_concats(proto)
    mse = renderer.mse(renderer.render({name: ort_session(proto) for name, proto in quantized.items()}))
    sha256 = model_sha256(model)
    specs = graph_specs(model.cfg, size)
    result = Int8Result({}, config, calibration.origin, len(calibration), calibration.frames_without_face, chosen,
                        sensitivity, {name: int8_kernels(proto) for name, proto in quantized.items()},
                        psnr_from_mse(mse), 0.0, _versions())
    for name, proto in quantized.items():
        metadata = graph_metadata(model, specs[name], "int8", sha256).to_strings()
        metadata[METADATA_KEY] = json.dumps({"tool": f"nncf {result.versions['nncf']} (onnx backend)",
                                             "warp": config.warp, "preset": config.preset,
                                             "calibration_pairs": len(calibration),
                                             "float_layers": [layer for graph, layer in chosen if graph == name]})
        set_onnx_metadata(proto, metadata)
        result.paths[name] = save_onnx(proto, onnx_graph_path(out_dir, "int8", name))
    result.seconds = time.perf_counter() - started
    record = Path(out_dir) / "onnx" / "int8" / RECORD_FILE
    record.write_text(json.dumps(result.record(), indent=1) + "\n")
    return result


def resolve_output_size(model: TalkingHeadModel, output_size: int | None) -> int:
    """`output_size` (None: the model's default) if the model renders at it, else QuantizationError."""
    size = model.cfg.default_output_size if output_size is None else output_size
    try:
        return model.cfg.check_output_size(size)
    except ValueError as exc:
        raise QuantizationError(str(exc)) from None


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    nncf = load_nncf()
    return {"nncf": nncf.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__}

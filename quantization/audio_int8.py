"""INT8 audio graphs (issue 13): NNCF post-training quantization of the float ONNX audio graphs, calibrated on speech.

`write_audio_int8_onnx(model, graph, path, metadata, source)`:
1. the graph (`sdk.runtime.audio_graphs`) traced to float ONNX by the runtime's exporter;
2. calibration inputs from real speech (`calibration_speech`: an audio file or folder, else the
   shared data's train-split speech clips): the expression graph's live windows every
   `FRAME_STRIDE` frames, and the motion graph's clip windows with the states and offsets the
   torch graphs chain to (`sdk.audio.live.MotionChain`), as the live path feeds them;
3. NNCF quantizes the nets' Conv / MatMul layers (int8 weights per channel, int8 activations),
   `qdq.activations_to_uint8` and `qdq.add_output_quantizers` complete the QDQ patterns for ORT.
   Kept float (`FLOAT_SCOPES`): the front end (`SampleLogMel`: the DFT convolution and the mel
   filter product; power spectra span ten orders of magnitude before the log, which 8 bits cannot
   hold) and the expression net's smoother (four residual 3-tap convolutions over <= 9 frames, a
   small share of the compute): quantized too, the deltas on the verification clip were off by up
   to 0.33 of their peak (PSNR 36 dB); float, 0.029 (54 dB); measured here, shipped model.

`write_audio_int8_tflite`: ai-edge-quantizer static INT8 of the other CONV_2D ops, calibrated on
the same inputs (with FULLY_CONNECTED too: relative error 0.45, 29 dB; CONV_2D only: 0.09, 45 dB).
`write_audio_coreml_w8`: int8 weights of the nets (the front end's float).
"""
from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from sdk.models.audio_to_code import AudioToCodeModel
from sdk.runtime.audio_graphs import AudioGraphMetadata

from .errors import QuantizationError

METADATA_KEY = "sdk.audio.quantization"
FLOAT_SCOPES = ("front_end", "smoother")  # layers kept float (module docstring)
FRAME_STRIDE = 3  # calibration windows every 3rd frame (120 ms): neighbours overlap almost entirely
MAX_CLIPS = 8
MAX_SECONDS = 20.0  # per calibration clip
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".m4a", ".ogg", ".mp4")


def calibration_speech(source: Path | None = None) -> tuple[list[np.ndarray], str]:
    """16 kHz mono speech clips to calibrate on, and where they came from: `source` (an audio file
    or a folder of them), else the first `MAX_CLIPS` train-split speech clips of the shared data."""
    from sdk.audio.source import load_audio

    if source is not None:
        source = Path(source)
        paths = sorted(p for p in source.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES) if source.is_dir() \
            else [source]
        origin = str(source)
    else:
        from export.frames import shared_data_dir

        manifest = shared_data_dir() / "manifest.csv"
        if not manifest.is_file():
            raise QuantizationError(f"no calibration speech: {manifest} not found (set SDK_SHARED_DATA or pass "
                                    "an audio file or folder)")
        with manifest.open(newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row["kind"] == "audio" and row["split"] == "train"]
        paths = [shared_data_dir() / row["path"] for row in rows[:MAX_CLIPS]]
        origin = f"{len(paths)} train-split speech clips of {manifest.parent}"
    if not paths:
        raise QuantizationError(f"no calibration speech in {source}")
    clips = [load_audio(path).samples[:int(MAX_SECONDS * 16000)] for path in paths[:MAX_CLIPS]]
    return clips, origin


def calibration_feeds(model: AudioToCodeModel, graph: str, clips: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """The graph's inputs on the speech clips, as the live path makes them (torch for the chaining)."""
    from sdk.audio.driver import MotionSampling
    from sdk.audio.live import MotionChain, window_of
    from sdk.audio.features import frames_for_samples
    from sdk.runtime.audio_backend import TorchAudioBackend

    backend = TorchAudioBackend(model)
    config = model.config
    feeds = []
    for index, samples in enumerate(clips):
        frames = frames_for_samples(len(samples), config.mel)
        if graph == "audio_expression":
            for frame in range(0, frames, FRAME_STRIDE):
                feeds.append({"samples": window_of(samples, config.expression_live.window, frame, 1, config.mel)[None]})
            continue
        chain = MotionChain(backend, MotionSampling(seed=index))
        clip = config.motion_space.clip_frames
        for first in range(0, frames, clip):
            window = window_of(samples, config.motion.window, first - clip, clip, config.mel)  # causal, as live
            state, offset = chain.inputs()
            feeds.append({"samples": window[None], "previous_pose": state[None].astype(np.float32),
                          "offset": offset[None].astype(np.float32)})
            chain.advance(window, state, offset)
    if not feeds:
        raise QuantizationError("the calibration speech is too short for one window")
    return feeds


def write_audio_int8_onnx(model: AudioToCodeModel, graph: str, path: Path, metadata: AudioGraphMetadata,
                          source: Path | None = None) -> Path:
    """Write one INT8 ONNX audio graph at `path` with `metadata` (precision "int8")."""
    from sdk.runtime.audio_graphs import audio_example_inputs, build_audio_graphs
    from sdk.runtime.onnx_export import save_onnx, set_onnx_metadata, simplify_onnx, trace_to_onnx

    from .onnx_int8 import nncf_quantize
    from .qdq import activations_to_uint8, add_output_quantizers, int8_kernels, layer_names

    if metadata.precision != "int8" or metadata.graph != graph:
        raise QuantizationError(f"metadata describes {metadata.precision} {metadata.graph}, not int8 {graph}")
    spec = metadata.spec
    model = model.to("cpu").eval()
    proto = simplify_onnx(trace_to_onnx(build_audio_graphs(model)[graph],
                                        audio_example_inputs(model.config, frames=metadata.frames)[graph],
                                        spec.input_names, spec.output_names), graph)
    clips, origin = calibration_speech(source)
    feeds = calibration_feeds(model, graph, clips)
    float_layers = [name for name in layer_names(proto) if any(scope in name for scope in FLOAT_SCOPES)]
    quantized = nncf_quantize(proto, feeds, float_layers)
    activations_to_uint8(quantized)
    quantized = add_output_quantizers(quantized, feeds)
    kernels = int8_kernels(quantized)
    strings = metadata.to_strings()
    strings[METADATA_KEY] = json.dumps({"tool": "nncf (onnx backend)", "calibration": origin,
                                        "calibration_inputs": len(feeds), "float_layers": float_layers,
                                        "kernels": asdict(kernels)})
    set_onnx_metadata(quantized, strings)
    return save_onnx(quantized, Path(path))


# The nets' ops in litert-torch's tensor names but `FLOAT_SCOPES` (`..._front_end;`, `..._smoother/`): what
# TFLite INT8 quantizes.
TFLITE_NET_SCOPE = r"^(?!.*(front_end|smoother)).*_(net|space)[/;].*"
TFLITE_INT8_OPS = ("CONV_2D",)
COREML_FRONT_END_WEIGHTS = ("front_end_kernels", "front_end_filters")  # Core ML's names of the front end's weights


def write_audio_int8_tflite(model: AudioToCodeModel, graph: str, path: Path, metadata: AudioGraphMetadata,
                            source: Path | None = None) -> Path:
    """The fp32 .tflite of `graph` with the nets' CONV_2D / FULLY_CONNECTED in static INT8
    (ai-edge-quantizer, calibrated on speech), the front end float, with `metadata`."""
    import tempfile
    from dataclasses import replace

    from ai_edge_quantizer import qtyping, quantizer, recipe_manager

    from export.audio import write_audio_tflite
    from export.tflite_writer import add_metadata
    from sdk.files import write_bytes_atomic

    with tempfile.TemporaryDirectory() as folder:
        content = write_audio_tflite(model, graph, "fp32", Path(folder) / "float.tflite",
                                     replace(metadata, precision="fp32")).read_bytes()
    converter = quantizer.Quantizer(bytearray(content))
    recipes = recipe_manager.RecipeManager()
    for op in TFLITE_INT8_OPS:
        recipes.add_static_config(regex=TFLITE_NET_SCOPE, operation_name=getattr(qtyping.TFLOperationName, op),
                                  activation_num_bits=8, weight_num_bits=8)
    converter.load_quantization_recipe(recipes.get_quantization_recipe())
    clips, origin = calibration_speech(source)
    feeds = calibration_feeds(model, graph, clips)
    calibration = converter.calibrate({"serving_default": feeds})
    quantized = bytes(converter.quantize(calibration, enable_progress_report=False).quantized_model)
    strings = metadata.to_strings()
    strings[METADATA_KEY] = json.dumps({"tool": "ai-edge-quantizer static int8", "ops": list(TFLITE_INT8_OPS),
                                        "scope": TFLITE_NET_SCOPE, "calibration": origin,
                                        "calibration_inputs": len(feeds)})
    return write_bytes_atomic(path, add_metadata(quantized, strings))


def write_audio_coreml_w8(model: AudioToCodeModel, graph: str, path: Path, metadata: AudioGraphMetadata,
                          source: Path | None = None) -> Path:
    """The fp32 mlprogram of `graph` with the nets' weights int8 per channel (W8, float compute;
    W8A8 needs Core ML predictions, macOS only), the front end's weights float. `source` is unused:
    weight quantization needs no calibration."""
    import contextlib
    import io
    import tempfile
    from dataclasses import replace

    import coremltools as ct

    from export.audio import write_audio_coreml
    from sdk.files import replace_directory

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=path.name, suffix=".partial", dir=path.parent) as folder:
        float_path = write_audio_coreml(model, graph, "fp32", Path(folder) / "float.mlpackage",
                                        replace(metadata, precision="fp32"))
        mlmodel = ct.models.MLModel(str(float_path), skip_model_load=True)
        weights = ct.optimize.coreml.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8",
                                                             granularity="per_channel")
        config = ct.optimize.coreml.OptimizationConfig(
            global_config=weights, op_name_configs={name: None for name in COREML_FRONT_END_WEIGHTS})
        with contextlib.redirect_stderr(io.StringIO()):
            quantized = ct.optimize.coreml.linear_quantize_weights(mlmodel, config=config)
        quantized.user_defined_metadata.update(metadata.to_strings())
        quantized.user_defined_metadata[METADATA_KEY] = json.dumps(
            {"tool": f"coremltools {ct.__version__} linear_quantize_weights", "weights": "int8 per-channel (nets)",
             "front_end": "float", "activations": "float"})
        return replace_directory(path, lambda partial: quantized.save(str(partial)))

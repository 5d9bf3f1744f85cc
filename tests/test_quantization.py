"""Compression (issue 5): calibration, INT8 ONNX through NNCF, QDQ edits, sensitivity, pruning, fine-tuning,
the export hook, the report and the CLI, on the tiny model and two short real clips."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from quantization.calibration import CalibrationConfig, graph_feeds, load_calibration
from quantization.errors import QuantizationError
from sdk.errors import ModelLoadError, NoFaceError, SdkError
from sdk.models import TalkingHeadModel, get_config

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def tiny() -> TalkingHeadModel:
    torch.manual_seed(0)
    model = TalkingHeadModel(get_config("dagan++-tiny")).eval()
    for block in model.generator.attention:  # an untrained block is the identity; make it count
        block.gamma.data.fill_(0.5)
    torch.nn.init.normal_(model.generator.composite_head.weight, std=0.3)  # and the composite mask an even blend
    return model


SIZE = 128  # the tiny model's default output size (2R): calibration frames are portraits at it


@pytest.fixture(scope="module")
def calibration(prepared_small) -> CalibrationConfig:
    return CalibrationConfig(prepared_small, "train", pairs=3, seed=0)


@pytest.fixture(scope="module")
def int8_dir(tiny, calibration, tmp_path_factory) -> Path:
    """INT8 ONNX graphs of the tiny model written through the exporter's hook (the path `python -m export` takes)."""
    from quantization import write_int8_graph
    from quantization.onnx_int8 import Int8Config
    from sdk.runtime.graphs import GRAPH_NAMES, graph_specs
    from sdk.runtime.metadata import graph_metadata
    from sdk.runtime.onnx_export import onnx_graph_path

    out = tmp_path_factory.mktemp("int8")
    config = Int8Config(calibration, target_psnr_db=0.0, sensitivity_pairs=2)
    for name in GRAPH_NAMES:
        metadata = graph_metadata(tiny, graph_specs(tiny.cfg)[name], "int8")
        write_int8_graph(tiny, "onnx", name, onnx_graph_path(out, "int8", name), metadata, config)
    return out


def _fake_prepared(root: Path, frames: list[np.ndarray]) -> Path:
    """A prepared folder with one train clip made of `frames` (RGB uint8)."""
    import cv2

    clip = root / "clips" / "noface" / "frames"
    clip.mkdir(parents=True)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(clip / f"{index:06d}.jpg"), frame[:, :, ::-1])
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["id", "split", "identity", "frames", "fps", "has_audio", "status", "size"])
        writer.writeheader()
        writer.writerow({"id": "noface", "split": "train", "identity": "x", "frames": len(frames), "fps": 25,
                         "has_audio": "no", "status": "ok", "size": frames[0].shape[0]})
    return root


# ----------------------------------------------------------------------------------------------
# Calibration


def test_calibration_pairs_are_face_crops_of_the_train_split(calibration, tiny):
    pairs = load_calibration(calibration, SIZE)
    assert len(pairs) == 3 and pairs.frames_without_face == 0
    assert all(crop.shape == (SIZE, SIZE, 3) and crop.dtype == np.uint8 for crop in pairs.sources + pairs.drivers)
    feeds = graph_feeds(tiny, pairs)
    assert [len(items) for items in feeds.values()] == [3, 3, 3]
    from sdk.runtime.graphs import graph_specs

    assert sorted(feeds["generator"][0]) == sorted(graph_specs(tiny.cfg, SIZE)["generator"].input_names)
    # The portrait at the output size, the encoders' frames averaged down to R (as the backends feed them).
    assert feeds["generator"][0]["portrait"].shape == (1, 3, SIZE, SIZE)
    assert feeds["source_encoder"][0]["image"].shape == feeds["keypoint_encoder"][0]["image"].shape == (1, 3, 64, 64)
    assert np.allclose(feeds["generator"][0]["source_image"], feeds["source_encoder"][0]["image"])


def test_calibration_without_faces_is_a_clear_error(tmp_path):
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(4)]
    prepared = _fake_prepared(tmp_path / "prepared", noise)
    with pytest.raises(NoFaceError, match="no face found in any calibration frame"):
        load_calibration(CalibrationConfig(prepared, pairs=2), 64)
    images = tmp_path / "images"
    images.mkdir()
    import cv2

    for index, frame in enumerate(noise):
        cv2.imwrite(str(images / f"{index}.png"), frame)
    with pytest.raises(NoFaceError, match=str(images)):
        load_calibration(CalibrationConfig(images, pairs=4), 64)


def test_calibration_bad_sources(tmp_path):
    with pytest.raises(QuantizationError, match="neither a folder nor a video"):
        load_calibration(CalibrationConfig(tmp_path / "missing"), 64)
    with pytest.raises(QuantizationError, match="no manifest.csv and no images"):
        load_calibration(CalibrationConfig(tmp_path), 64)
    with pytest.raises(QuantizationError, match="at least 1"):
        CalibrationConfig(tmp_path, pairs=0)


def test_calibration_on_a_fresh_checkout_tracks_the_bundled_clip(tmp_path, monkeypatch):
    """No source and no cache/prepared: the bundled driving clip, tracked and cropped, and the note says so."""
    from quantization import calibration as module
    from sdk.media import write_video

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(module, "MAX_VIDEO_FRAMES", 6)
    source, note = module.calibration_source(CalibrationConfig())
    assert source.name == "driving.mp4" and source.is_file() and "bundled driving clip" in note
    pairs = load_calibration(CalibrationConfig(pairs=3), 64)
    assert len(pairs) == 3 and pairs.frames_without_face == 0 and "driving.mp4 (video, 6 tracked" in pairs.origin
    assert all(crop.shape == (64, 64, 3) for crop in pairs.sources + pairs.drivers)
    assert not all(np.array_equal(a, b) for a, b in zip(pairs.sources, pairs.drivers))  # two frames per pair
    rng = np.random.default_rng(0)
    write_video(tmp_path / "noise.mp4", [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(3)], 25)
    with pytest.raises(NoFaceError, match="noise.mp4: no face found"):
        load_calibration(CalibrationConfig(tmp_path / "noise.mp4", pairs=2), 64)


def test_calibration_default_prefers_the_prepared_folder(prepared_small, tmp_path, monkeypatch):
    from quantization.calibration import DEFAULT_PREPARED, calibration_source

    monkeypatch.chdir(tmp_path)
    (tmp_path / "cache").mkdir()
    (tmp_path / DEFAULT_PREPARED).symlink_to(prepared_small)
    source, note = calibration_source(CalibrationConfig())
    assert source == DEFAULT_PREPARED and "prepared folder" in note and "train split" in note


# ----------------------------------------------------------------------------------------------
# INT8 ONNX


def test_int8_graphs_load_in_the_onnx_int8_backend_and_track_fp32(int8_dir, tiny):
    from sdk.runtime import create_backend
    from sdk.runtime.graphs import example_inputs

    backend = create_backend(tiny, "onnx-int8", graphs=int8_dir, threads=1)
    assert backend.name.startswith("onnx-int8") and backend.precision == "int8" and backend.output_size == SIZE
    image = example_inputs(tiny.cfg)["keypoint_encoder"][0]
    portrait = torch.nn.functional.interpolate(image, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    state = backend.prepare_source(portrait)
    frame = backend.render(state, backend.encode(image))
    with torch.no_grad():
        reference = tiny.render(tiny.prepare_source(portrait), tiny.encode(image)).prediction
    assert frame.shape == reference.shape == (1, 3, SIZE, SIZE)
    assert float(-10 * torch.log10(((frame - reference) ** 2).mean())) > 30.0
    record = json.loads((int8_dir / "onnx" / "int8" / "quantization.json").read_text())
    assert record["versions"]["nncf"] == "3.4.0"
    # NNCF left standard QDQ: ORT runs INT8 convolutions (no OpenVINO FakeQuantize anywhere).
    import onnx

    ops = {node.op_type for node in onnx.load(str(int8_dir / "onnx" / "int8" / "generator.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and "FakeQuantize" not in ops
    assert record["kernels"]["keypoint_encoder"]["int8"]["QLinearConv"] > 0
    assert record["kernels"]["keypoint_encoder"]["float"] == {}
    assert record["kernels"]["generator"]["float"] == {}


def test_qdq_edits(tiny, calibration):
    """uint8 activations are exact, output quantizers complete every conv, one layer can be isolated."""
    from quantization.onnx_int8 import float_onnx_graphs, nncf_quantize
    from quantization.qdq import (activations_to_uint8, add_output_quantizers, dequantize_except, int8_kernels,
                                  ort_session, quantized_layers)

    float_model = float_onnx_graphs(tiny)["keypoint_encoder"]
    feeds = graph_feeds(tiny, load_calibration(calibration, 64))["keypoint_encoder"]
    raw = nncf_quantize(float_model, feeds, [])
    before = ort_session(raw).run(None, feeds[0])
    activations_to_uint8(raw)
    after = ort_session(raw).run(None, feeds[0])
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    completed = add_output_quantizers(raw, feeds)
    counts = int8_kernels(completed)
    assert counts.float_total == 0 and counts.int8["QLinearConv"] == len(quantized_layers(completed))
    layer = quantized_layers(completed)[3]
    single = dequantize_except(completed, float_model, layer)
    assert quantized_layers(single) == [layer]
    reference = ort_session(float_model).run(None, feeds[0])
    single_out = ort_session(single).run(None, feeds[0])
    full_out = ort_session(completed).run(None, feeds[0])
    assert np.abs(single_out[0] - reference[0]).max() <= np.abs(full_out[0] - reference[0]).max()
    with pytest.raises(QuantizationError, match="no layer named"):
        dequantize_except(completed, float_model, "/nope")


def test_byte_concats_move_the_decoder_joins_to_uint8_with_the_same_output(tiny, calibration):
    """The upsample-and-concatenate joins run on uint8; every conv stays INT8; the frame barely moves."""
    import onnx

    from quantization.onnx_int8 import float_onnx_graphs, quantize_graphs
    from quantization.qdq import _producers, byte_concats, int8_kernels, ort_session

    float_models = float_onnx_graphs(tiny, "row_gather")
    feeds = {name: items[:2] for name, items in graph_feeds(tiny, load_calibration(calibration, SIZE)).items()}
    quantized = quantize_graphs({"generator": float_models["generator"]}, feeds, {}, "performance")["generator"]
    before = ort_session(quantized).run(None, feeds["generator"][1])[0]
    kernels_before = int8_kernels(quantized)
    joins = byte_concats(quantized)
    onnx.checker.check_model(quantized)
    after = ort_session(quantized).run(None, feeds["generator"][1])[0]
    assert joins >= tiny.cfg.generator.num_down_blocks  # at least every decoder join
    assert int8_kernels(quantized) == kernels_before and kernels_before.float_total == 0
    producers = _producers(quantized.graph)
    for concat in (node for node in quantized.graph.node if node.op_type == "Concat"):
        feeds_concat = [producers[name] for name in concat.input if name in producers]
        if any(node.op_type == "Resize" for node in feeds_concat):  # a join: uint8 in, DequantizeLinear out
            assert all(node.op_type in ("Resize", "QuantizeLinear") for node in feeds_concat)
    # Only rounding moves: the re-targeted quantizers and one rounding instead of two.
    assert np.abs(after - before).max() < 0.05 and np.abs(after - before).mean() < 2e-3


def test_byte_concats_on_a_hand_made_graph_keep_the_bytes():
    """A quantizer re-targeted, a float input quantized per join (one tensor feeding two joins, one of
    them twice): the same uint8 tensors as quantizing each float Concat, and a valid graph."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from quantization.qdq import byte_concats, ort_session

    def scalar(name, value, dtype):
        return numpy_helper.from_array(np.array(value, dtype), name)

    initializers = [scalar("s_a", 0.02, np.float32), scalar("z_a", 128, np.uint8),
                    scalar("s_1", 0.03, np.float32), scalar("z_1", 128, np.uint8),
                    scalar("s_2", 0.05, np.float32), scalar("z_2", 128, np.uint8),
                    numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")]
    nodes = [helper.make_node("QuantizeLinear", ["a", "s_a", "z_a"], ["a_q"]),
             helper.make_node("DequantizeLinear", ["a_q", "s_a", "z_a"], ["a_dq"]),
             helper.make_node("Resize", ["a_dq", "", "scales"], ["a_up"], mode="nearest",
                              coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             helper.make_node("Concat", ["a_up", "b"], ["join_1"], axis=1),
             helper.make_node("QuantizeLinear", ["join_1", "s_1", "z_1"], ["join_1_q"]),
             helper.make_node("Concat", ["b", "b"], ["join_2"], axis=1),
             helper.make_node("QuantizeLinear", ["join_2", "s_2", "z_2"], ["join_2_q"])]
    graph = helper.make_graph(nodes, "joins",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 2, 4, 4]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 2, 8, 8])],
                              [helper.make_tensor_value_info("join_1_q", TensorProto.UINT8, [1, 4, 8, 8]),
                               helper.make_tensor_value_info("join_2_q", TensorProto.UINT8, [1, 4, 8, 8])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    rng = np.random.default_rng(0)
    feeds = {"a": rng.normal(0, 1, (1, 2, 4, 4)).astype(np.float32),
             "b": rng.normal(0, 2, (1, 2, 8, 8)).astype(np.float32)}
    expected = ort_session(model).run(None, feeds)
    assert byte_concats(model) == 2
    onnx.checker.check_model(model, full_check=True)
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("DequantizeLinear") == 0 and ops.count("QuantizeLinear") == 4  # a's re-targeted, b three times
    got = ort_session(model).run(None, feeds)
    # join 1: a re-targeted from 0.02 to 0.03 (one rounding instead of two); join 2 bit-exact.
    assert np.abs(got[0].astype(int) - expected[0].astype(int)).max() <= 1
    assert np.array_equal(got[1], expected[1])


def test_sensitivity_keeps_the_costliest_layers_float(tiny, calibration):
    from quantization.onnx_int8 import float_onnx_graphs, quantize_graphs
    from quantization.sensitivity import FrameRenderer, LayerSensitivity, choose_float_layers, layer_sensitivity

    float_models = float_onnx_graphs(tiny, "row_gather")
    feeds = {name: items[:2] for name, items in graph_feeds(tiny, load_calibration(calibration, SIZE)).items()}
    quantized = quantize_graphs({"generator": float_models["generator"]}, feeds, {}, "performance")
    renderer = FrameRenderer(feeds, float_models)
    costs = layer_sensitivity(renderer, quantized, float_models)
    assert {item.graph for item in costs} == {"generator"} and len(costs) > 10
    assert all(item.mse >= 0 and np.isfinite(item.psnr_db) for item in costs)
    items = [LayerSensitivity("g", f"l{i}", "Conv", mse, 0.0) for i, mse in enumerate([1e-3, 1e-5, 1e-6, 1e-2])]
    assert [item.layer for item in choose_float_layers(items, 40.0)] == ["l3", "l0"]
    assert choose_float_layers(items, 0.0) == []


def test_int8_options_and_hook_inputs_are_checked(tiny, calibration, tmp_path):
    from quantization import write_int8_graph
    from quantization.onnx_int8 import Int8Config, quantize_graphs
    from sdk.runtime.graphs import graph_specs
    from sdk.runtime.metadata import graph_metadata

    with pytest.raises(QuantizationError, match="unknown warp"):
        Int8Config(warp="nearest")
    with pytest.raises(QuantizationError, match="unknown NNCF preset"):
        Int8Config(preset="fast")
    metadata = graph_metadata(tiny, graph_specs(tiny.cfg)["generator"], "int8")
    with pytest.raises(QuantizationError, match="unknown format"):
        write_int8_graph(tiny, "openvino", "generator", tmp_path / "g", metadata)
    with pytest.raises(QuantizationError, match="precision 'int8'"):
        write_int8_graph(tiny, "onnx", "generator", tmp_path / "g.onnx",
                         graph_metadata(tiny, graph_specs(tiny.cfg)["generator"], "fp32"))
    with pytest.raises(QuantizationError, match="unknown graph"):
        write_int8_graph(tiny, "onnx", "decoder", tmp_path / "g.onnx", metadata)
    with pytest.raises(QuantizationError, match="metadata describes graph 'generator'"):
        write_int8_graph(tiny, "onnx", "keypoint_encoder", tmp_path / "g.onnx", metadata)
    from quantization.onnx_int8 import float_onnx_graphs, nncf_quantize

    with pytest.raises(QuantizationError, match="unknown warp"):
        float_onnx_graphs(tiny, "nearest")
    generator = float_onnx_graphs(tiny)["generator"]
    with pytest.raises(QuantizationError, match="unknown NNCF preset"):
        nncf_quantize(generator, [], [], "fast")
    with pytest.raises(QuantizationError, match="no layers named"):
        quantize_graphs({"generator": generator}, {"generator": []}, {"generator": ["/nope"]}, "performance")
    with pytest.raises(QuantizationError, match="unknown graphs"):
        quantize_graphs({"generator": generator}, {"generator": []}, {"genrator": ["/up"]}, "performance")


# ----------------------------------------------------------------------------------------------
# Pruning and fine-tuning


def _generator_frame(model: TalkingHeadModel) -> torch.Tensor:
    from sdk.runtime.graphs import build_graphs, example_inputs

    with torch.no_grad():
        return build_graphs(model)["generator"](*example_inputs(model.cfg)["generator"])


def test_structured_pruning_rebuilds_smaller_convolutions(tiny, tmp_path):
    from quantization.pruning import PruneConfig, channel_groups, load_pruned, prune_channels, save_pruned
    from quantization.structured import generator_macs

    same, _ = prune_channels(tiny, PruneConfig(ratio=0.0))
    assert torch.allclose(_generator_frame(same), _generator_frame(tiny), atol=1e-6)
    pruned, plan = prune_channels(tiny, PruneConfig(ratio=0.5, channel_multiple=2, min_channels=2))
    assert len(plan.groups) == len(channel_groups(tiny))
    assert generator_macs(pruned) < 0.75 * generator_macs(tiny)
    assert pruned.generator.up[1][0].out_channels < tiny.generator.up[1][0].out_channels
    assert pruned.generator.up[0][0].in_channels < tiny.generator.up[0][0].in_channels
    # The composite head reads the decoder's last features, as the final conv does: pruned alike.
    kept = pruned.generator.up[0][0].out_channels
    assert kept < tiny.generator.up[0][0].out_channels
    assert pruned.generator.final.in_channels == pruned.generator.composite_head.in_channels == kept
    frame = _generator_frame(pruned)
    assert frame.shape == _generator_frame(tiny).shape and torch.isfinite(frame).all()
    save_pruned(pruned, plan, tmp_path / "pruned")
    assert torch.equal(_generator_frame(load_pruned(tmp_path / "pruned")), frame)
    (tmp_path / "pruned" / "weights.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(QuantizationError, match="not a pruned model"):
        load_pruned(tmp_path / "pruned")
    document = json.loads((tmp_path / "pruned" / "pruning.json").read_text())
    document["groups"][0]["producer"] = "generator.no_such_conv"
    (tmp_path / "pruned" / "pruning.json").write_text(json.dumps(document))
    with pytest.raises(QuantizationError, match="not a pruned model"):
        load_pruned(tmp_path / "pruned")
    with pytest.raises(QuantizationError, match="ratio"):
        PruneConfig(ratio=1.0)
    with pytest.raises(QuantizationError, match="unknown pruning parts"):
        PruneConfig(parts=("encoder",))


def test_least_squares_refit_brings_the_pruned_generator_back(tiny, calibration):
    from quantization.pruning import PruneConfig, generator_inputs, prune_channels, reconstruct_readers
    from sdk.media import to_tensor

    pairs = load_calibration(calibration, 64)
    inputs = generator_inputs(tiny, to_tensor(np.stack(pairs.sources)), to_tensor(np.stack(pairs.drivers)))
    pruned, plan = prune_channels(tiny, PruneConfig(ratio=0.5, channel_multiple=2, min_channels=2))
    with torch.no_grad():
        target = tiny.generator(*inputs).prediction
        error_before = float((pruned.generator(*inputs).prediction - target).abs().mean())
        residuals = reconstruct_readers(pruned, tiny, plan, inputs)
        error_after = float((pruned.generator(*inputs).prediction - target).abs().mean())
    assert set(residuals) == {reader for group in plan.groups for reader, _ in group.consumers}
    assert error_after < error_before


def test_finetuning_trains_only_the_generator(tiny, prepared_small):
    import copy

    from quantization.finetune import FinetuneConfig, finetune_generator

    student = copy.deepcopy(tiny)
    depth_before = [p.clone() for p in student.depth_net.parameters()]
    generator_before = [p.clone() for p in student.generator.parameters()]
    result = finetune_generator(student, tiny, FinetuneConfig(prepared_small, steps=2, batch_size=2, log_every=1))
    assert [step for step, _ in result.losses] == [1, 2] and all(np.isfinite(loss) for _, loss in result.losses)
    assert all(torch.equal(a, b) for a, b in zip(depth_before, student.depth_net.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(generator_before, student.generator.parameters()))
    with pytest.raises(QuantizationError, match="invalid fine-tuning"):
        FinetuneConfig(steps=-1)
    with pytest.raises(QuantizationError, match="invalid fine-tuning"):
        FinetuneConfig(log_every=0)
    with pytest.raises(QuantizationError, match="device 'gpu'"):
        FinetuneConfig(device="gpu")


def test_unstructured_pruning_reports_sparsity_and_download_size(tiny):
    from quantization.pruning import prune_unstructured

    sparse, report = prune_unstructured(tiny, 0.5, "local")
    assert 0.4 < report.sparsity <= 0.5
    assert report.weights_gzip_bytes < report.dense_weights_gzip_bytes
    assert torch.isfinite(_generator_frame(sparse)).all()
    with pytest.raises(QuantizationError, match="mode"):
        prune_unstructured(tiny, 0.5, "random")


# ----------------------------------------------------------------------------------------------
# Mobile formats through the exporter's converters


@pytest.mark.slow
def test_coreml_w8_keeps_the_graph_and_stores_int8_weights(tiny, tmp_path):
    from export.coreml_writer import check_coreml
    from quantization.export_hook import write_coreml_w8
    from sdk.runtime.graphs import graph_specs
    from sdk.runtime.metadata import graph_metadata

    metadata = graph_metadata(tiny, graph_specs(tiny.cfg)["keypoint_encoder"], "int8")
    path = write_coreml_w8(tiny, "keypoint_encoder", tmp_path / "keypoint_encoder.mlpackage", metadata)
    structure, problems = check_coreml(path, metadata)
    assert problems == [] and structure.ops.get("constexpr_affine_dequantize", 0) > 0


@pytest.mark.slow
def test_tflite_int8_runs_in_litert(tiny, calibration, tmp_path):
    from quantization.export_hook import write_tflite_int8
    from sdk.runtime.graphs import graph_specs
    from sdk.runtime.metadata import graph_metadata
    from sdk.runtime.tflite_backend import read_tflite_metadata

    feeds = graph_feeds(tiny, load_calibration(calibration, 64))["keypoint_encoder"]
    metadata = graph_metadata(tiny, graph_specs(tiny.cfg)["keypoint_encoder"], "int8")
    path = write_tflite_int8(tiny, "keypoint_encoder", tmp_path / "keypoint_encoder.tflite", metadata, feeds)
    assert read_tflite_metadata(path).precision == "int8"
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    outputs = runner(**feeds[0])
    with torch.no_grad():
        code = tiny.encode(torch.from_numpy(feeds[0]["image"]))
    assert np.abs(outputs["keypoints"] - code.value.numpy()).max() < 0.1


# ----------------------------------------------------------------------------------------------
# Report and CLI


@pytest.mark.slow
def test_report_writes_markdown_html_json_and_plots(tiny, prepared_small, tmp_path):
    from quantization.evaluation import EvalConfig
    from quantization.finetune import FinetuneConfig
    from quantization.latency import LatencyConfig
    from quantization.onnx_int8 import Int8Config
    from quantization.pruning import PruneConfig
    from quantization.report import ReportConfig, build_report
    from sdk.checkpoint import save_model

    save_model(tiny, tmp_path / "tiny", half=False)
    config = ReportConfig(str(tmp_path / "tiny"), tmp_path / "report", prepared_small, ("onnx",), None,
                          Int8Config(CalibrationConfig(prepared_small, pairs=2), target_psnr_db=0.0),
                          PruneConfig(0.5, channel_multiple=2, min_channels=2), FinetuneConfig(steps=1, batch_size=2),
                          0.5, EvalConfig(prepared_small, stride=20, max_frames_per_clip=2),
                          LatencyConfig(runs=2, warmup=1, threads=(1,)))
    result = build_report(config)
    names = [row["name"] for row in result["rows"]]
    assert {"torch fp32", "onnx fp32", "onnx int8", "torch fp32 pruned", "onnx int8 pruned"} <= set(names)
    int8 = next(row for row in result["rows"] if row["name"] == "onnx int8")
    assert int8["quality"]["frames"] > 0 and int8["latency_ms"]["1"]["generator"]["runs"] == 2
    assert "pruning_mac_reduction" in result["targets"]
    out = tmp_path / "report"
    assert "Figures to reach" in (out / "report.md").read_text()
    assert "<table>" in (out / "report.html").read_text()
    assert json.loads((out / "report.json").read_text())["rows"]
    assert {p.name for p in (out / "figures").iterdir()} >= {"latency.png", "quality.png", "size_latency.png"}


def test_report_refuses_a_pruned_folder_of_another_model(tiny, prepared_small, tmp_path):
    from quantization.pruning import PruneConfig, prune_channels, save_pruned
    from quantization.report import ReportConfig, build_report
    from sdk.checkpoint import save_model
    from sdk.runtime.metadata import model_sha256

    save_model(tiny, tmp_path / "tiny", half=False)
    torch.manual_seed(1)
    other = TalkingHeadModel(get_config("dagan++-tiny")).eval()
    pruned, plan = prune_channels(other, PruneConfig(0.5, channel_multiple=2, min_channels=2))
    save_pruned(pruned, plan, tmp_path / "pruned", {"pruned_from_sha256": model_sha256(other)})
    config = ReportConfig(str(tmp_path / "tiny"), tmp_path / "report", prepared_small, ("onnx",), tmp_path / "pruned")
    with pytest.raises(QuantizationError, match="pruned from another model"):
        build_report(config)


def test_cli_rejects_bad_input(tmp_path, capsys):
    from quantization.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["int8", "--out", str(tmp_path), "--warp", "bicubic"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        main(["report", "--out", str(tmp_path), "--no-such-option"])
    assert main(["int8", "--model", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "missing config.json" in capsys.readouterr().err
    (tmp_path / "notours").mkdir()
    (tmp_path / "notours" / "pruning.json").write_text("{}")
    assert main(["report", "--model", str(tmp_path / "notours"), "--out", str(tmp_path / "r")]) == 2
    assert "not a pruned model" in capsys.readouterr().err
    assert main(["report", "--out", str(tmp_path / "r"), "--formats", "onnx,openvino"]) == 2
    assert "unknown report formats" in capsys.readouterr().err
    assert main(["prune", "--out", str(tmp_path / "p"), "--ratio", "1.5"]) == 2
    assert "pruning ratio" in capsys.readouterr().err
    assert main(["report", "--out", str(tmp_path / "r"), "--threads", "1,x"]) == 2
    assert "expected comma-separated integers" in capsys.readouterr().err


def test_errors_are_sdk_errors():
    assert issubclass(QuantizationError, SdkError) and issubclass(ModelLoadError, SdkError)

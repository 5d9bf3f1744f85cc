"""Runtime backends (torch, ONNX Runtime) behind one interface, and the pipeline on top of them, on tiny models."""
import numpy as np
import pytest
import torch

from sdk.models import TalkingHeadModel, get_config
from sdk.pipeline import TalkingHeadPipeline
from sdk.runtime import (
    BackendError,
    OnnxBackend,
    OrtSettings,
    TorchBackend,
    choose_backend,
    create_backend,
    graph_specs,
    model_sha256,
)
from sdk.runtime.graphs import (GeneratorGraph, build_graphs, example_inputs, grid_sample_warp, row_gather_warp,
                                source_state_tensors)
from sdk.runtime.graph_backend import check_graph_files
from sdk.runtime.metadata import GraphMetadata, graph_metadata
from sdk.runtime.onnx_backend import check_active_providers, execution_providers
from sdk.runtime.onnx_export import export_onnx, onnx_graph_path


def tiny_model(name: str = "dagan++-tiny", seed: int = 0) -> TalkingHeadModel:
    torch.manual_seed(seed)
    model = TalkingHeadModel(get_config(name)).eval()
    # Untrained attention starts as the identity (gamma = 0); make every path count.
    for attention in model.generator.attention:
        attention.gamma.data.fill_(0.5)
    return model


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def onnx_backend(model, tmp_path_factory):
    return create_backend(model, "onnx", cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def images():
    generator = torch.Generator().manual_seed(1)
    return [torch.rand((1, 3, 64, 64), generator=generator) for _ in range(3)]


@pytest.mark.parametrize("name", ["dagan++-tiny", "dagan-tiny", "fomm-tiny"])
def test_graphs_compute_what_the_model_computes(name, images):
    model = tiny_model(name)
    graphs = build_graphs(model)
    specs = graph_specs(model.cfg)
    with torch.no_grad():
        state = model.prepare_source(images[0])
        code = model.encode(images[1])
        source_outputs = graphs["source_encoder"](images[0])
        keypoints = graphs["keypoint_encoder"](images[1])
        flat = source_state_tensors(state, with_depth=False)
        expected = model.render(state, code).prediction
        for warp_graph in (graphs["generator"], GeneratorGraph(model, row_gather_warp)):
            rendered = warp_graph(images[0], flat[0], flat[1], code.value, code.jacobian, *flat[2:])
            assert torch.allclose(rendered, expected, atol=1e-5)
    assert torch.equal(keypoints[0], code.value) and torch.equal(keypoints[1], code.jacobian)
    assert [tuple(t.shape) for t in source_outputs] == [t.shape for t in specs["source_encoder"].outputs]
    assert [t.name for t in specs["generator"].inputs][5:] == [t.name for t in specs["source_encoder"].outputs
                                                               if t.name.startswith(("appearance", "depth_query"))]
    assert ("depth" in specs["source_encoder"].output_names) == model.cfg.uses_depth


@pytest.mark.parametrize("channels", [3, 16])  # channels-first columns and channels-last rows
def test_row_gather_warp_equals_grid_sample_with_padding_weights_and_batches(channels):
    generator = torch.Generator().manual_seed(2)
    features = torch.rand((3, channels, 12, 16), generator=generator)
    grid = torch.rand((3, 7, 9, 2), generator=generator) * 3.0 - 1.5  # a third of the points fall outside
    # Points on and just inside/outside the border pixel centres and the zero ring beyond them.
    edges = torch.tensor([-1.5, -1 - 1 / 15, -1.0, -1 + 1e-4, 1 - 1e-4, 1.0, 1 + 1 / 15, 1 + 1e-3, 2.0])
    grid[:, 0, :, 0], grid[:, 1, :, 1] = edges, edges
    weight = torch.rand((3, 1, 7, 9), generator=generator)
    expected = torch.nn.functional.grid_sample(features, grid, mode="bilinear", padding_mode="zeros",
                                               align_corners=True)
    x, y = grid[..., 0], grid[..., 1]
    assert torch.allclose(row_gather_warp(features, x, y), expected, atol=1e-6)
    assert torch.allclose(row_gather_warp(features, x, y, weight), expected * weight, atol=1e-6)
    assert torch.equal(grid_sample_warp(features, x, y, weight), expected * weight)
    # NaN coordinates (a singular Jacobian) give NaN, never a gather outside the table.
    assert row_gather_warp(features, torch.full_like(x, float("nan")), y).isnan().all()


def test_onnx_backend_matches_torch_and_reuses_its_cache(model, onnx_backend, images, tmp_path_factory):
    torch_backend = create_backend(model, "torch")
    assert isinstance(torch_backend, TorchBackend) and torch_backend.name == "torch-cpu"
    assert onnx_backend.name == "onnx-cpu" and onnx_backend.model_sha256 == model_sha256(model)
    code, expected_code = onnx_backend.encode(images[1]), torch_backend.encode(images[1])
    assert torch.allclose(code.value, expected_code.value, atol=1e-5)
    state, expected_state = onnx_backend.prepare_source(images[0]), torch_backend.prepare_source(images[0])
    assert torch.allclose(state.keypoints.jacobian, expected_state.keypoints.jacobian, atol=1e-5)
    assert torch.allclose(state.depth, expected_state.depth, atol=1e-5)
    rendered = onnx_backend.render(state, expected_code)
    assert rendered.shape == (1, 3, 64, 64)
    assert torch.allclose(rendered, torch_backend.render(expected_state, expected_code), atol=1e-5)
    # Same weights -> same cache folder, loaded without exporting again.
    cache = onnx_backend.runner.files["generator"].parents[3]
    stamp = onnx_backend.runner.files["generator"].stat().st_mtime_ns
    again = create_backend(model, "onnx", cache_dir=cache.parent)
    assert again.runner.files["generator"].stat().st_mtime_ns == stamp


def test_pipeline_runs_on_any_backend(model, onnx_backend):
    crop = (np.random.default_rng(0).random((96, 96, 3)) * 255).astype(np.uint8)
    frames = {}
    for backend in (model, onnx_backend):
        pipeline = TalkingHeadPipeline(backend)
        assert pipeline.cfg.name == "dagan++-tiny" and pipeline.resolution == 64
        state = pipeline.prepare_source(crop)
        frames[pipeline.backend.name] = pipeline.render(state, pipeline.encode(crop[::-1].copy()))
    assert frames["torch-cpu"].shape == (64, 64, 3) and frames["torch-cpu"].dtype == np.uint8
    assert np.abs(frames["torch-cpu"].astype(int) - frames["onnx-cpu"].astype(int)).max() <= 1
    assert TalkingHeadPipeline(model).model is model
    with pytest.raises(AttributeError, match="pipeline.cfg"):
        _ = TalkingHeadPipeline(onnx_backend).model


def test_auto_times_the_candidates_and_keeps_the_fastest(model, onnx_backend, tmp_path):
    cache = onnx_backend.runner.files["generator"].parents[4]
    choice = choose_backend(model, cache_dir=cache, runs=2)
    assert set(choice.frame_ms) == {"torch", "onnx"} and choice.skipped == {}
    assert choice.chosen == min(choice.frame_ms, key=choice.frame_ms.get)
    assert choice.backend.kind == choice.chosen
    # An export folder without INT8 or TFLite graphs adds no candidates.
    assert set(choose_backend(model, graphs=tmp_path, cache_dir=cache, runs=1).frame_ms) == {"torch", "onnx"}


def test_backend_bad_inputs(model, onnx_backend, tmp_path):
    with pytest.raises(BackendError, match="unknown backend kind 'tpu'"):
        create_backend(model, "tpu")
    with pytest.raises(BackendError, match="onnx-int8 backend loads an export folder"):
        create_backend(model, "onnx-int8")
    with pytest.raises(BackendError, match="tflite backend loads an export folder"):
        create_backend(model, "tflite")
    with pytest.raises(BackendError, match="no ONNX int8 graphs.*python -m quantization"):
        create_backend(model, "onnx-int8", graphs=tmp_path)
    with pytest.raises(BackendError, match=r"expected a float image of shape \(1, 3, 64, 64\)"):
        onnx_backend.encode(torch.rand(1, 3, 32, 32))
    with pytest.raises(BackendError, match="expected a float image"):
        TorchBackend(model).prepare_source(torch.zeros((1, 3, 64, 64), dtype=torch.uint8))
    with pytest.raises(BackendError, match="'cpu' or 'cuda'"):
        OrtSettings(device="tpu")
    with pytest.raises(BackendError, match="tflite backend runs on the CPU"):
        create_backend(model, "tflite", device="cuda", graphs=tmp_path)
    # Graphs of another model are refused when a model is given with them.
    export_dir = onnx_backend.runner.files["generator"].parents[2]
    with pytest.raises(BackendError, match="not of the given"):
        create_backend(tiny_model(seed=1), "onnx", graphs=export_dir)


def test_graph_files_must_be_intact_and_of_one_model(model, onnx_backend, tmp_path):
    files = dict(onnx_backend.runner.files)
    corrupt = tmp_path / "generator.onnx"
    corrupt.write_bytes(files["generator"].read_bytes()[:1000])
    with pytest.raises(BackendError, match="generator.onnx: ONNX Runtime cannot load it"):
        OnnxBackend({**files, "generator": corrupt})
    with pytest.raises(BackendError, match="missing ONNX graph files"):
        OnnxBackend({**files, "generator": tmp_path / "absent.onnx"})
    with pytest.raises(BackendError, match="holds the keypoint_encoder graph"):
        OnnxBackend({**files, "generator": files["keypoint_encoder"]})
    other = create_backend(tiny_model(seed=1), "onnx", cache_dir=tmp_path / "cache")
    with pytest.raises(BackendError, match="graph of model"):
        OnnxBackend({**files, "generator": other.runner.files["generator"]})
    assert onnx_graph_path(tmp_path, "fp16", "generator") == tmp_path / "onnx" / "fp16" / "generator.onnx"
    # One precision for all three graphs, and the one the folder says.
    fp16 = export_onnx(model, tmp_path / "fp16", "fp16", ("generator",))["generator"]
    with pytest.raises(BackendError, match="fp16 graph, but .* is fp32"):
        OnnxBackend({**files, "generator": fp16})
    int8_dir = onnx_graph_path(tmp_path / "mislabelled", "int8", "generator").parent
    int8_dir.mkdir(parents=True)
    for path in files.values():
        (int8_dir / path.name).write_bytes(path.read_bytes())
    with pytest.raises(BackendError, match="graphs of precision fp32, expected int8"):
        create_backend(model, "onnx-int8", graphs=tmp_path / "mislabelled")


def test_graph_io_shapes_and_metadata_shapes_are_checked(model, onnx_backend):
    runner = onnx_backend.runner

    class WrongShape:  # a runner whose generator declares another resolution
        files, metadata, provider = runner.files, runner.metadata, runner.provider

        def io_shapes(self, graph):
            inputs, outputs = runner.io_shapes(graph)
            return (inputs, {**outputs, "image": (1, 3, 32, 32)}) if graph == "generator" else (inputs, outputs)

    with pytest.raises(BackendError, match=r"generator.onnx: inputs .* do not match the generator spec"):
        check_graph_files(WrongShape())
    assert runner.io_shapes("keypoint_encoder")[0] == {"image": (1, 3, 64, 64)}
    strings = graph_metadata(model, graph_specs(model.cfg)["generator"], "fp32").to_strings()
    assert GraphMetadata.from_strings(strings, "g") == runner.metadata["generator"]
    with pytest.raises(ValueError, match="metadata outputs"):
        GraphMetadata.from_strings(
            {**strings, "sdk.outputs": strings["sdk.outputs"].replace("64", "32")}, "g")
    with pytest.raises(ValueError, match="metadata precision 'fp8'"):
        GraphMetadata.from_strings({**strings, "sdk.precision": "fp8"}, "g")
    # A run that ONNX Runtime refuses is a BackendError naming the file.
    with pytest.raises(BackendError, match="keypoint_encoder.onnx: ONNX Runtime failed to run it"):
        runner.run("keypoint_encoder", {"image": np.zeros((1, 3, 32, 32), np.float32)})


def test_gpu_execution_provider_settings():
    cpu_only = ["AzureExecutionProvider", "CPUExecutionProvider"]
    assert execution_providers(OrtSettings(), cpu_only) == ["CPUExecutionProvider"]
    with pytest.raises(BackendError, match="onnxruntime-gpu"):
        execution_providers(OrtSettings(device="cuda"), cpu_only)
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    providers = execution_providers(OrtSettings(device="cuda", tensorrt=True, tensorrt_cache_dir="/tmp/trt"), gpu)
    assert [p[0] if isinstance(p, tuple) else p for p in providers] == gpu
    assert providers[0][1]["trt_fp16_enable"] and providers[0][1]["trt_engine_cache_path"] == "/tmp/trt"
    with pytest.raises(BackendError, match="TensorRT"):
        execution_providers(OrtSettings(device="cuda", tensorrt=True), gpu[1:])
    # ORT drops a provider it cannot initialise and runs on the CPU: that is an error, not a fallback.
    check_active_providers(OrtSettings(device="cuda"), gpu[1:], "g.onnx")
    check_active_providers(OrtSettings(), ["CPUExecutionProvider"], "g.onnx")
    with pytest.raises(BackendError, match="g.onnx: ONNX Runtime could not use CUDAExecutionProvider"):
        check_active_providers(OrtSettings(device="cuda"), ["CPUExecutionProvider"], "g.onnx")
    with pytest.raises(BackendError, match="could not use TensorrtExecutionProvider"):
        check_active_providers(OrtSettings(device="cuda", tensorrt=True), gpu[1:], "g.onnx")


def test_example_inputs_follow_the_specs(model):
    specs = graph_specs(model.cfg)
    for name, inputs in example_inputs(model.cfg).items():
        assert [tuple(t.shape) for t in inputs] == [t.shape for t in specs[name].inputs]

"""Runtime backends (torch, ONNX Runtime) behind one interface, and the pipeline on top of them, on tiny models."""
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from sdk.models import TalkingHeadModel, get_config
from sdk.pipeline import TalkingHeadPipeline
from sdk.runtime import (
    BackendError,
    OnnxBackend,
    OrtSettings,
    ThreadBudget,
    TorchBackend,
    available_cores,
    choose_backend,
    create_backend,
    graph_specs,
    model_sha256,
    torch_threads,
)
from sdk.runtime.graphs import (GRAPHS_VERSION, GeneratorGraph, build_graphs, example_inputs, generator_inputs,
                                grid_sample_warp, row_gather_warp)
from sdk.runtime.graph_backend import check_graph_files
from sdk.runtime.metadata import GraphMetadata, graph_metadata
from sdk.runtime.onnx_backend import check_active_providers, execution_providers, session_options
from sdk.runtime.onnx_export import export_onnx, onnx_graph_path
from sdk.runtime.threads import graph_threads


def tiny_model(name: str = "dagan++-tiny", seed: int = 0, composite: bool = True) -> TalkingHeadModel:
    torch.manual_seed(seed)
    cfg = get_config(name)
    model = TalkingHeadModel(cfg if composite else replace(cfg, composite=None)).eval()
    # Untrained attention starts as the identity (gamma = 0), an untrained composite mask as an
    # even blend; make every path count.
    for attention in model.generator.attention:
        attention.gamma.data.fill_(0.5)
    if model.generator.composite_head is not None:
        torch.nn.init.normal_(model.generator.composite_head.weight, std=0.3)
    return model


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def onnx_backend(model, tmp_path_factory):
    return create_backend(model, "onnx", cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def onnx_backend_64(model, onnx_backend):
    """The same model's graphs at output size 64 (= R), in the same cache."""
    return create_backend(model, "onnx", cache_dir=onnx_backend.runner.files["generator"].parents[4], output_size=64)


@pytest.fixture(scope="module")
def images():
    """Driving frames at R = 64, and the portrait at the tiny model's default output size 128."""
    generator = torch.Generator().manual_seed(1)
    return {"driving": torch.rand((1, 3, 64, 64), generator=generator),
            "portrait": torch.rand((1, 3, 128, 128), generator=generator)}


@pytest.mark.parametrize("name,size,composite", [("dagan++-tiny", 64, True), ("dagan++-tiny", 128, True),
                                                 ("dagan-tiny", 64, True), ("dagan-tiny", 128, True),
                                                 ("fomm-tiny", 64, True), ("fomm-tiny", 128, True),
                                                 ("dagan++-tiny", 64, False)])
def test_graphs_compute_what_the_model_computes(name, size, composite):
    model = tiny_model(name, composite=composite)
    graphs = build_graphs(model, output_size=size)
    specs = graph_specs(model.cfg, size)
    generator = torch.Generator().manual_seed(3)
    portrait = torch.rand((1, 3, size, size), generator=generator)
    driving = torch.rand((1, 3, 64, 64), generator=generator)
    with torch.no_grad():
        state = model.prepare_source(portrait)
        code = model.encode(driving)
        source_outputs = graphs["source_encoder"](state.image)
        keypoints = graphs["keypoint_encoder"](driving)
        expected = model.render(state, code).prediction
        for warp_graph in (graphs["generator"], GeneratorGraph(model, row_gather_warp, size)):
            rendered = warp_graph(*generator_inputs(state, code, specs))
            assert rendered.shape == (1, 3, size, size) and torch.allclose(rendered, expected, atol=1e-5)
    assert torch.equal(keypoints[0], code.value) and torch.equal(keypoints[1], code.jacobian)
    assert [tuple(t.shape) for t in source_outputs] == [t.shape for t in specs["source_encoder"].outputs]
    names = specs["generator"].input_names
    assert names[:2] == (["source_image", "portrait"] if composite else ["source_image", "source_keypoints"])
    assert [name for name in names if name.startswith(("appearance", "depth_query"))] == [
        t.name for t in specs["source_encoder"].outputs if t.name.startswith(("appearance", "depth_query"))]
    assert ("depth" in specs["source_encoder"].output_names) == model.cfg.uses_depth
    assert specs["generator"].outputs[0].shape == (1, 3, size, size)
    assert {spec.output_size for spec in specs.values()} == {size}


def test_graph_specs_keep_the_old_graphs_without_the_composite_head():
    cfg = replace(get_config("dagan++-tiny"), composite=None)
    specs = graph_specs(cfg)
    assert "portrait" not in specs["generator"].input_names
    assert specs["generator"].outputs[0] == specs["keypoint_encoder"].inputs[0]  # the image at R
    with pytest.raises(ValueError, match="no composite head"):
        graph_specs(cfg, 128)
    with pytest.raises(ValueError, match="not a multiple"):
        graph_specs(get_config("dagan++-tiny"), 96)
    assert GRAPHS_VERSION == 3


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


def test_onnx_backend_matches_torch_and_reuses_its_cache(model, onnx_backend, onnx_backend_64, images):
    torch_backend = create_backend(model, "torch")
    assert isinstance(torch_backend, TorchBackend) and torch_backend.name == "torch-cpu"
    assert onnx_backend.name == "onnx-cpu" and onnx_backend.model_sha256 == model_sha256(model)
    assert onnx_backend.output_size == torch_backend.output_size == 128  # the tiny model's default, 2R
    code, expected_code = onnx_backend.encode(images["driving"]), torch_backend.encode(images["driving"])
    assert torch.allclose(code.value, expected_code.value, atol=1e-5)
    state = onnx_backend.prepare_source(images["portrait"])
    expected_state = torch_backend.prepare_source(images["portrait"])
    assert torch.allclose(state.keypoints.jacobian, expected_state.keypoints.jacobian, atol=1e-5)
    assert torch.allclose(state.depth, expected_state.depth, atol=1e-5)
    rendered = onnx_backend.render(state, expected_code)
    assert rendered.shape == (1, 3, 128, 128)
    assert torch.allclose(rendered, torch_backend.render(expected_state, expected_code), atol=1e-5)
    # At the internal resolution too: the portrait is the source image.
    small = torch.nn.functional.avg_pool2d(images["portrait"], 2)
    rendered = onnx_backend_64.render(onnx_backend_64.prepare_source(small), expected_code)
    expected = TorchBackend(model, output_size=64)
    assert rendered.shape == (1, 3, 64, 64)
    assert torch.allclose(rendered, expected.render(expected.prepare_source(small), expected_code), atol=1e-5)
    # Same weights and output size -> same cache folder, loaded without exporting again; another size, another.
    cache = onnx_backend.runner.files["generator"].parents[3]
    assert onnx_backend_64.runner.files["generator"].parents[3] == cache
    assert onnx_backend_64.runner.files["generator"].parents[2] != onnx_backend.runner.files["generator"].parents[2]
    stamp = onnx_backend.runner.files["generator"].stat().st_mtime_ns
    again = create_backend(model, "onnx", cache_dir=cache.parent)
    assert again.runner.files["generator"].stat().st_mtime_ns == stamp


def test_pipeline_runs_on_any_backend(model, onnx_backend):
    frames = {}
    crop = (np.random.default_rng(0).random((160, 160, 3)) * 255).astype(np.uint8)
    for backend in (model, onnx_backend):
        pipeline = TalkingHeadPipeline(backend)
        assert pipeline.cfg.name == "dagan++-tiny" and pipeline.resolution == 64 and pipeline.output_size == 128
        state = pipeline.prepare_source(crop)
        frames[pipeline.backend.name] = pipeline.render(state, pipeline.encode(crop[::-1].copy()))
    assert frames["torch-cpu"].shape == (128, 128, 3) and frames["torch-cpu"].dtype == np.uint8
    assert np.abs(frames["torch-cpu"].astype(int) - frames["onnx-cpu"].astype(int)).max() <= 1
    assert TalkingHeadPipeline(model).model is model
    with pytest.raises(AttributeError, match="pipeline.cfg"):
        _ = TalkingHeadPipeline(onnx_backend).model


def test_auto_times_the_candidates_and_keeps_the_fastest(model, onnx_backend, tmp_path):
    cache = onnx_backend.runner.files["generator"].parents[4]
    choice = choose_backend(model, cache_dir=cache, runs=2, export_int8=False)
    assert set(choice.frame_ms) == {"torch", "onnx"} and choice.skipped == {}
    assert choice.chosen == min(choice.frame_ms, key=choice.frame_ms.get)
    assert choice.backend.kind == choice.chosen
    assert choice.as_dict() == {"chosen": choice.chosen, "backend": choice.backend.name,
                                "frame_ms": choice.frame_ms, "skipped": {}}
    # An export folder without INT8 or TFLite graphs adds no candidates.
    assert set(choose_backend(model, graphs=tmp_path, cache_dir=cache, runs=1, warmup=0,
                              export_int8=False).frame_ms) == {"torch", "onnx"}


def test_int8_graphs_are_made_into_the_cache_on_first_use_and_auto_times_them(model, prepared_small, tmp_path):
    from quantization.calibration import CalibrationConfig
    from quantization.onnx_int8 import Int8Config

    int8 = Int8Config(CalibrationConfig(prepared_small, "train", pairs=2), target_psnr_db=0.0, sensitivity_pairs=1)
    cache = tmp_path / "cache"
    with pytest.raises(BackendError, match="no INT8 graphs of this model in the cache .* making them is off"):
        create_backend(model, "onnx-int8", cache_dir=cache, export_int8=False)
    choice = choose_backend(model, cache_dir=cache, runs=1, warmup=1, int8_config=int8, show_progress=False)
    assert set(choice.frame_ms) == {"torch", "onnx", "onnx-int8"} and choice.skipped == {}
    made = create_backend(model, "onnx-int8", cache_dir=cache, export_int8=False)  # now cached: no export
    assert made.precision == "int8" and made.name == "onnx-int8-cpu"
    assert made.runner.files["generator"].parents[2] == onnx_backend_dir(cache, model)
    stamp = made.runner.files["generator"].stat().st_mtime_ns
    again = create_backend(model, "onnx-int8", cache_dir=cache, int8_config=int8)
    assert again.runner.files["generator"].stat().st_mtime_ns == stamp
    # Without the graphs and without the means to make them, auto leaves INT8 out; a failed
    # export is a skipped candidate with its reason, not an error.
    assert "onnx-int8" not in choose_backend(model, cache_dir=tmp_path / "other", runs=1, warmup=0,
                                             export_int8=False).frame_ms
    missing = Int8Config(CalibrationConfig(tmp_path / "no-such-folder"), target_psnr_db=0.0)
    failed = choose_backend(model, cache_dir=tmp_path / "other", runs=1, warmup=0, int8_config=missing,
                            show_progress=False)
    assert "no-such-folder: calibration source" in failed.skipped["onnx-int8"] and failed.chosen in ("torch", "onnx")


def onnx_backend_dir(cache, model):
    from sdk.runtime.onnx_backend import cached_graphs_dir

    return cached_graphs_dir(cache, model_sha256(model), model.cfg.default_output_size)


def test_thread_budget_auto_rule_and_its_use_per_graph():
    assert ThreadBudget.auto(1) == ThreadBudget(encoder=1, generator=1, opencv=1, cores=1)
    assert ThreadBudget.auto(2) == ThreadBudget(encoder=1, generator=1, opencv=1, cores=2)
    assert ThreadBudget.auto(4) == ThreadBudget(encoder=1, generator=2, opencv=1, cores=4)
    assert ThreadBudget.auto(16) == ThreadBudget(encoder=2, generator=4, opencv=1, cores=16)
    assert ThreadBudget.auto().cores == available_cores() >= 1
    budget = ThreadBudget(encoder=1, generator=3)
    assert [budget.for_graph(name) for name in ("keypoint_encoder", "source_encoder", "generator")] == [1, 3, 3]
    assert graph_threads(budget, "generator") == 3 and graph_threads(2, "generator") == 2
    assert graph_threads(None, "generator") is None
    assert ThreadBudget.uniform(2).as_dict() == {"encoder": 2, "generator": 2, "opencv": 1, "cores": available_cores()}
    with pytest.raises(ValueError, match="generator must be >= 1"):
        ThreadBudget(generator=0)
    with pytest.raises(ValueError, match="cores must be >= 1"):
        ThreadBudget.auto(0)


def test_torch_threads_are_per_calling_thread_and_restored():
    outer = torch.get_num_threads()
    seen = {}

    def worker(name, count):
        with torch_threads(count):
            seen[name] = torch.get_num_threads()
            barrier.wait(5)  # both threads inside their blocks at once
            seen[name + " later"] = torch.get_num_threads()

    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=worker, args=("a", 1)), threading.Thread(target=worker, args=("b", 2))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"a": 1, "a later": 1, "b": 2, "b later": 2}
    with torch_threads(None):
        assert torch.get_num_threads() == outer
    assert torch.get_num_threads() == outer


def test_backends_run_each_stage_with_its_threads(model, onnx_backend, images):
    budget = ThreadBudget(encoder=1, generator=2)
    backend = TorchBackend(model, threads=budget)
    counts = {}
    for stage in ("encode", "render"):
        original = getattr(model, stage)

        def recording(*args, stage=stage, original=original):
            counts[stage] = torch.get_num_threads()
            return original(*args)
        setattr(model, stage, recording)
    try:
        state = backend.prepare_source(images["portrait"])
        backend.render(state, backend.encode(images["driving"]))
    finally:
        del model.encode, model.render  # the instance attributes; the methods are back
    assert counts == {"encode": 1, "render": 2}
    # ONNX Runtime: intra-op threads per graph, one inter-op thread, no spinning unless asked.
    files = onnx_backend.runner.files
    runner = OnnxBackend(files, OrtSettings(threads=budget)).runner
    for name, want in (("keypoint_encoder", 1), ("source_encoder", 2), ("generator", 2)):
        options = runner.sessions[name].get_session_options()
        assert (options.intra_op_num_threads, options.inter_op_num_threads) == (want, 1)
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    spinning = session_options(OrtSettings(spinning=True), "generator")
    assert spinning.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert session_options(OrtSettings(), "generator").intra_op_num_threads == 0  # ORT's default


def test_backend_bad_inputs(model, onnx_backend, tmp_path):
    with pytest.raises(BackendError, match="unknown backend kind 'tpu'"):
        create_backend(model, "tpu")
    with pytest.raises(BackendError, match="tflite backend loads an export folder"):
        create_backend(model, "tflite")
    with pytest.raises(BackendError, match="no ONNX int8 graphs.*python -m quantization"):
        create_backend(model, "onnx-int8", graphs=tmp_path)
    with pytest.raises(BackendError, match=r"expected a float image of shape \(1, 3, 64, 64\)"):
        onnx_backend.encode(torch.rand(1, 3, 32, 32))
    with pytest.raises(BackendError, match="expected a float image"):
        TorchBackend(model).prepare_source(torch.zeros((1, 3, 128, 128), dtype=torch.uint8))
    # Portraits come at the output size, driving frames at the internal resolution.
    with pytest.raises(BackendError, match=r"expected a float image of shape \(1, 3, 128, 128\)"):
        onnx_backend.prepare_source(torch.rand(1, 3, 64, 64))
    with pytest.raises(BackendError, match="not a multiple of dagan\+\+-tiny's internal resolution 64"):
        create_backend(model, "torch", output_size=96)
    with pytest.raises(BackendError, match="no composite head"):
        create_backend(tiny_model(composite=False), "onnx", output_size=128)
    with pytest.raises(BackendError, match="'cpu' or 'cuda'"):
        OrtSettings(device="tpu")
    with pytest.raises(BackendError, match="tflite backend runs on the CPU"):
        create_backend(model, "tflite", device="cuda", graphs=tmp_path)
    # Graphs of another model are refused when a model is given with them.
    export_dir = onnx_backend.runner.files["generator"].parents[2]
    with pytest.raises(BackendError, match="not of the given"):
        create_backend(tiny_model(seed=1), "onnx", graphs=export_dir)
    # An export folder at another output size than asked for.
    with pytest.raises(BackendError, match=r"graphs exported at output size 128², not the 64² asked for"):
        create_backend(model, "onnx", graphs=export_dir, output_size=64)
    assert create_backend(model, "onnx", graphs=export_dir, output_size=128).output_size == 128


def test_graph_files_must_be_intact_and_of_one_model(model, onnx_backend, onnx_backend_64, tmp_path):
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
    with pytest.raises(BackendError, match="generator.onnx: graph for output size 64², but .* is for 128²"):
        OnnxBackend({**files, "generator": onnx_backend_64.runner.files["generator"]})
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
    assert runner.io_shapes("generator")[0]["portrait"] == (1, 3, 128, 128)
    assert runner.io_shapes("generator")[1] == {"image": (1, 3, 128, 128)}
    strings = graph_metadata(model, graph_specs(model.cfg)["generator"], "fp32").to_strings()
    assert GraphMetadata.from_strings(strings, "g") == runner.metadata["generator"]
    assert strings["sdk.output_size"] == "128" and runner.metadata["generator"].output_size == 128
    with pytest.raises(ValueError, match="metadata outputs"):
        GraphMetadata.from_strings(
            {**strings, "sdk.outputs": strings["sdk.outputs"].replace("128", "256")}, "g")
    # The output size names the spec the declared tensors must match (files without one: R).
    legacy = {key: value for key, value in strings.items() if key != "sdk.output_size"}
    for changed in ({**strings, "sdk.output_size": "256"}, legacy):
        with pytest.raises(ValueError, match="metadata inputs"):
            GraphMetadata.from_strings(changed, "g")
    with pytest.raises(ValueError, match="invalid sdk metadata"):
        GraphMetadata.from_strings({**strings, "sdk.output_size": "96"}, "g")
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


@pytest.mark.parametrize("size", [None, 64, 256])
def test_example_inputs_follow_the_specs(model, size):
    specs = graph_specs(model.cfg, size)
    for name, inputs in example_inputs(model.cfg, output_size=size).items():
        assert [tuple(t.shape) for t in inputs] == [t.shape for t in specs[name].inputs]


# ----------------------------------------------------------------------------------------------
# Models driven by the face prior (issue 12): graphs, graph backends, their prior


@pytest.fixture(scope="module")
def face_prior():
    from sdk.prior import load_prior

    return load_prior("default")


def semantic_model(name: str, prior, seed: int = 0) -> TalkingHeadModel:
    """A tiny prior / hybrid model with every path counting (attention, composite mask, expression modulation)."""
    model = tiny_model(name, seed)
    torch.nn.init.normal_(model.generator.expression_modulation.mlp[-1].weight, std=0.1)
    model.face_prior = prior
    return model


def posed_mesh(prior, pose, expression=(), size: int = 128) -> np.ndarray:
    """(478, 3) pixels of a size² crop: the prior's neutral face with `expression`, posed by `pose` (6,)."""
    from sdk.prior import similarity_from_pose

    offsets = prior.basis.decode(np.asarray(expression, dtype=np.float64)) if len(expression) else 0.0
    return similarity_from_pose(np.asarray(pose, dtype=np.float64), size).apply(prior.canonical + offsets)


AVATAR_POSE = [8.0, -4.0, 3.0, 0.02, 0.04, np.log(0.5)]
DRIVER_POSE = [-12.0, 5.0, -2.0, 0.06, 0.0, np.log(0.53)]


def driver_motion(prior, state, size: int = 128):
    from sdk.prior import EncoderConfig, SemanticEncoder, relative_motion

    code = SemanticEncoder(prior, EncoderConfig(image_size=size)).encode(posed_mesh(prior, DRIVER_POSE, [0.5, -0.3]))
    return relative_motion(code.code, state.rigs[0].code)


@pytest.mark.parametrize("name", ["dagan++-tiny-prior", "dagan++-tiny-hybrid", "fomm-tiny-prior"])
def test_semantic_graphs_compute_what_the_model_computes(name, face_prior, images):
    model = semantic_model(name, face_prior)
    cfg, specs = model.cfg, graph_specs(model.cfg)
    graphs = build_graphs(model)
    # A prior model's sender runs no network; the generator takes the rig's keypoints and the expression.
    assert list(specs) == (["source_encoder", "generator"] if cfg.num_kp == 0 else
                           ["keypoint_encoder", "source_encoder", "generator"]) == list(graphs)
    outputs = specs["source_encoder"].output_names
    assert "source_keypoints" not in outputs
    assert ("learned_keypoints" in outputs) == (cfg.num_kp > 0) and ("depth" in outputs) == cfg.uses_depth
    inputs = {tensor.name: tensor.shape for tensor in specs["generator"].inputs}
    assert inputs["source_keypoints"] == inputs["driving_keypoints"] == (1, 15, 2)
    assert inputs["expression"] == (1, cfg.semantic.expression_dims)
    names = specs["generator"].input_names
    assert names.index("expression") == names.index("driving_jacobians") + 1
    with torch.no_grad():
        state = model.prepare_source(images["portrait"], posed_mesh(face_prior, AVATAR_POSE))
        learned = None if model.kp_detector is None else model.encode(images["driving"])
        driving = model.drive(state, [driver_motion(face_prior, state)], learned)
        expected = model.render_semantic(state, driving.keypoints, driving.expression).prediction
        source_outputs = graphs["source_encoder"](state.image)
        feeds = generator_inputs(state, driving.keypoints, specs, driving.expression)
        for generator in (graphs["generator"], GeneratorGraph(model, row_gather_warp)):
            assert torch.allclose(generator(*feeds), expected, atol=1e-5)
    assert [tuple(t.shape) for t in source_outputs] == [t.shape for t in specs["source_encoder"].outputs]
    if learned is not None:
        assert torch.equal(source_outputs[outputs.index("learned_keypoints")], state.learned.value)
    assert [tuple(t.shape) for t in example_inputs(cfg)["generator"]] == list(inputs.values())


@pytest.mark.parametrize("name", ["dagan++-tiny-prior", "dagan++-tiny-hybrid"])
def test_semantic_models_run_on_onnx_like_torch_with_their_prior(name, face_prior, images, tmp_path):
    from sdk.models.semantic_inputs import concat_keypoints, driven_keypoints

    model = semantic_model(name, face_prior)
    backend = create_backend(model, "onnx", cache_dir=tmp_path, show_progress=False)
    reference = create_backend(model, "torch")
    assert backend.prior() is face_prior and backend.cfg.motion_keypoints == 15
    metadata = backend.runner.metadata["generator"]
    assert metadata.face_prior_sha256 == face_prior.sha256 and metadata.bitstream_version == 2
    mesh = posed_mesh(face_prior, AVATAR_POSE)
    state, expected_state = backend.prepare_source(images["portrait"], mesh), reference.prepare_source(images["portrait"], mesh)
    assert torch.allclose(state.keypoints.value, expected_state.keypoints.value, atol=1e-5)
    assert torch.allclose(state.keypoints.jacobian, expected_state.keypoints.jacobian, atol=1e-5)
    assert len(state.rigs) == 1 and (state.learned is None) == (model.cfg.num_kp == 0)
    keypoints, expression = driven_keypoints(state.rigs, [driver_motion(face_prior, state)], model.cfg.semantic,
                                             state.keypoints.value)
    learned = None
    if model.cfg.num_kp:
        learned = backend.encode(images["driving"])
        assert torch.allclose(learned.value, reference.encode(images["driving"]).value, atol=1e-5)
    driving = concat_keypoints(keypoints, learned)
    rendered = backend.render(state, driving, expression)
    assert rendered.shape == (1, 3, 128, 128)
    assert torch.allclose(rendered, reference.render(expected_state, driving, expression), atol=1e-4)
    # The same through the pipeline, from crops and meshes, on both backends.
    crop = (images["portrait"][0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    frames = []
    for runner in (backend, reference):
        pipeline = TalkingHeadPipeline(runner)
        avatar = pipeline.prepare_source(crop, mesh)
        frames.append(pipeline.render(avatar, pipeline.encode(crop, posed_mesh(face_prior, DRIVER_POSE, [0.4]))))
    assert np.abs(frames[0].astype(int) - frames[1].astype(int)).max() <= 1
    # What a face-prior backend refuses.
    if model.cfg.num_kp == 0:
        with pytest.raises(BackendError, match="has no keypoint encoder"):
            backend.encode(images["driving"])
    with pytest.raises(BackendError, match="needs the avatar's face mesh"):
        backend.prepare_source(images["portrait"])
    with pytest.raises(BackendError, match="is driven by an expression code"):
        backend.render(state, driving)
    with pytest.raises(BackendError, match=r"expected an expression of shape \(1, 16\)"):
        backend.render(state, driving, expression[:, :4])


def test_graph_backends_refuse_another_face_prior(face_prior, tmp_path):
    from sdk.prior import load_prior, save_prior
    from sdk.runtime.onnx_backend import cached_graphs_dir

    model = semantic_model("fomm-tiny-prior", face_prior)
    backend = create_backend(model, "onnx", cache_dir=tmp_path / "cache", show_progress=False)
    directory = cached_graphs_dir(tmp_path / "cache", model_sha256(model), 128)
    save_prior(replace(face_prior, residual_limit=face_prior.residual_limit * 2), tmp_path / "other")
    other = load_prior(tmp_path / "other")
    mine, theirs = face_prior.sha256[:12], other.sha256[:12]
    with pytest.raises(BackendError, match=f"driven by face prior {mine}: .*{theirs} is not the one"):
        OnnxBackend.from_export_dir(directory, prior=tmp_path / "other")
    with pytest.raises(BackendError, match=f"driven by face prior {mine}, not the {theirs} given"):
        OnnxBackend(backend.runner.files, prior=other)
    # A model holding another prior than its graphs' is refused by the factory too.
    model.face_prior = other
    with pytest.raises(BackendError, match=f"driven by face prior {mine}, not the {theirs} given"):
        create_backend(model, "onnx", graphs=directory)
    # Learned-keypoint files carry no face prior at all: their metadata is what it was.
    learned = graph_metadata(tiny_model(), graph_specs(get_config("dagan++-tiny"))["generator"], "fp32")
    assert learned.face_prior_sha256 is None and "sdk.face_prior_sha256" not in learned.to_strings()
    strings = backend.runner.metadata["generator"].to_strings()
    with pytest.raises(ValueError, match="face prior's sha256 is recorded exactly"):
        GraphMetadata.from_strings({key: value for key, value in strings.items() if key != "sdk.face_prior_sha256"}, "g")
    # A folder without its keypoint encoder is refused for a model that has one.
    hybrid = create_backend(semantic_model("fomm-tiny-hybrid", face_prior), "onnx", cache_dir=tmp_path / "cache",
                            show_progress=False)
    files = {name: path for name, path in hybrid.runner.files.items() if name != "keypoint_encoder"}
    with pytest.raises(BackendError, match="missing graph files: keypoint_encoder of fomm-tiny-hybrid"):
        OnnxBackend(files)


def test_auto_times_semantic_models_on_their_avatar_mesh(face_prior, tmp_path):
    model = semantic_model("fomm-tiny-hybrid", face_prior)
    choice = choose_backend(model, cache_dir=tmp_path, runs=1, warmup=0, export_int8=False, show_progress=False)
    assert set(choice.frame_ms) == {"torch", "onnx"} and choice.skipped == {}
    assert choice.backend.cfg.name == "fomm-tiny-hybrid"

import dataclasses
import io
import json
import time

import pytest
import torch
from torch import nn

from sdk import checkpoint
from sdk.errors import ModelLoadError
from sdk.models import (CONFIG_NAMES, DenseMotion, DepthNet, Discriminator, Generator, KeypointDetector, Keypoints,
                        ModelConfig, PoseNet, SourceFeatures, TalkingHeadModel, count_macs, count_params, get_config,
                        keypoint_hull_area, make_coordinate_grid, relative_keypoints)

VARIANTS = ["fomm", "dagan", "dagan++"]


pytestmark = pytest.mark.usefixtures("single_thread")


def tiny(variant: str, seed: int = 0) -> TalkingHeadModel:
    torch.manual_seed(seed)
    return TalkingHeadModel(get_config(f"{variant}-tiny"))


def images(n: int = 2, size: int = 64, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def random_keypoints(n: int, k: int = 15, seed: int = 2) -> Keypoints:
    generator = torch.Generator().manual_seed(seed)
    value = torch.rand(n, k, 2, generator=generator) * 1.6 - 0.8
    jacobian = torch.eye(2) + 0.2 * torch.randn(n, k, 2, 2, generator=generator)
    return Keypoints(value, jacobian)


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_every_config_builds_and_round_trips(name):
    cfg = get_config(name)
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.resolution == {"tiny": 64, "mobile": 128, "paper": 256}[cfg.size]
    # Paper models are large; building them on the meta device checks structure without allocating.
    with torch.device("meta" if cfg.size == "paper" else "cpu"):
        model = TalkingHeadModel(cfg)
        Discriminator(cfg)
        if cfg.uses_depth:
            PoseNet(cfg)
    assert (model.depth_net is None) == (cfg.variant == "fomm")
    assert not any(isinstance(module, nn.Conv3d) for module in model.modules())
    for _, queries, keys in cfg.attention_sites():
        assert keys <= 256 and queries * keys <= queries * 256
    assert "attention" in cfg.describe()


def test_config_rejects_bad_values():
    cfg = get_config("dagan-tiny")
    with pytest.raises(ValueError, match="fomm"):
        dataclasses.replace(cfg, depth=None, pose=None)
    with pytest.raises(ValueError, match="unknown fields"):
        ModelConfig.from_dict({**cfg.to_dict(), "colour": "blue"})
    with pytest.raises(ValueError, match="unknown model config"):
        get_config("dagan-huge")


@pytest.mark.parametrize("variant", VARIANTS)
def test_tiny_output_shapes(variant):
    model = tiny(variant)
    cfg = model.cfg
    n, k, h = 2, cfg.num_kp, cfg.motion_resolution
    source, driving = images(n), images(n, seed=3)
    depth = model.estimate_depth(source)
    if variant == "fomm":
        assert depth is None
    else:
        raw = model.depth_net(source)
        assert [tuple(d.shape) for d in raw] == [(n, 1, 64 // 2 ** s, 64 // 2 ** s) for s in range(cfg.depth.num_scales)]
        assert all(((d >= cfg.depth.min_depth) & (d <= cfg.depth.max_depth)).all() for d in raw)
        assert depth.shape == (n, 1, 64, 64) and depth.max() <= 1 + 1e-6 and depth.min() > 0
        pose = PoseNet(cfg)(driving, source)
        assert pose.axisangle.shape == pose.translation.shape == (n, 3)
        assert pose.intrinsics.shape == (n, 3, 3) and (pose.intrinsics[:, 2] == torch.tensor([0.0, 0, 1])).all()
        if variant == "dagan++":
            assert pose.uncertainty.shape == (n, 1, 64, 64) and (pose.uncertainty > 0).all()
        else:
            assert pose.uncertainty is None

    kp_source = model.kp_detector(source, depth)
    assert kp_source.value.shape == (n, k, 2) and kp_source.jacobian.shape == (n, k, 2, 2)
    assert kp_source.value.abs().max() <= 1
    kp_driving = model.encode(driving)

    motion = model.generator.dense_motion(source, kp_driving, kp_source)
    assert motion.deformation.shape == (n, h, h, 2)
    assert motion.occlusion.shape == (n, 1, h, h)
    assert motion.mask.shape == (n, k + 1, h, h)
    assert motion.sparse_deformed.shape == (n, k + 1, 3, h, h)

    state = model.prepare_source(source)
    expected_scales = [0, 1, 2] if variant == "dagan++" else [2]
    assert [f.shape[2] for f in state.features.appearance] == [64 // 2 ** s for s in expected_scales]
    assert (state.features.depth_queries is None) == (variant == "fomm")
    out = model.render(state, kp_driving)
    assert out.prediction.shape == out.deformed.shape == (n, 3, 64, 64)
    assert out.prediction.min() >= 0 and out.prediction.max() <= 1
    assert out.deformation.shape == (n, h, h, 2) and out.mask.shape == (n, k + 1, h, h)

    disc_out = Discriminator(cfg)(out.prediction, kp_driving)
    assert len(disc_out) == len(cfg.discriminator.scales)
    assert disc_out[0].prediction.shape[:2] == (n, 1) and len(disc_out[0].features) == cfg.discriminator.num_blocks


def test_discriminator_multi_scale_with_keypoint_heatmaps():
    cfg = get_config("dagan-tiny")
    cfg = dataclasses.replace(cfg, discriminator=dataclasses.replace(cfg.discriminator, scales=(1.0, 0.5), num_blocks=2,
                                                                     use_kp=True, spectral_norm=False))
    outputs = Discriminator(cfg)(images(), random_keypoints(2))
    assert [o.prediction.shape[0] for o in outputs] == [2, 2]
    assert outputs[0].prediction.shape[-1] > outputs[1].prediction.shape[-1]
    with pytest.raises(ValueError, match="kp"):
        Discriminator(cfg)(images())


@pytest.mark.parametrize("variant", VARIANTS)
def test_tiny_forward_backward_is_fast(variant):
    model = tiny(variant).train()
    disc = Discriminator(model.cfg)
    source, driving = images(), images(seed=3)

    def step() -> float:
        model.zero_grad()
        start = time.perf_counter()
        state = model.prepare_source(source)
        out = model.render(state, model.encode(driving))
        loss = (out.prediction - driving).abs().mean() + sum(o.prediction.mean() for o in disc(out.prediction))
        loss.backward()
        return time.perf_counter() - start

    elapsed = min(step() for _ in range(3))  # the first call pays one-off allocations
    assert elapsed < 1.0, f"tiny {variant} forward+backward took {elapsed:.2f} s"
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is None or torch.isfinite(g).all() for g in grads)
    assert model.kp_detector.heatmap_head.weight.grad.abs().sum() > 0
    assert model.generator.final.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_jacobians_start_at_identity(variant):
    model = tiny(variant)
    kp = model.encode(images())
    assert torch.allclose(kp.jacobian, torch.eye(2).expand_as(kp.jacobian), atol=1e-5)
    assert model.kp_detector.temperature == pytest.approx(0.1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_encode_render_split_equals_full_forward(variant):
    model = tiny(variant).eval()
    source, driving = images(), images(seed=3)
    with torch.no_grad():
        state = model.prepare_source(source)
        kp_driving = model.encode(driving)
        split = model.render(state, kp_driving).prediction
        full = model.generator(source, model.estimate_depth(source), model.kp_detector(source, state.depth),
                               kp_driving).prediction
    assert torch.allclose(split, full, atol=1e-6)


@pytest.mark.parametrize("variant", VARIANTS)
def test_composite_head_renders_at_a_multiple_of_the_internal_resolution(variant):
    model = tiny(variant).eval()
    portrait = images(1, size=128)  # 2R for the tiny configs (R = 64)
    with torch.no_grad():
        state = model.prepare_source(portrait)
        out = model.render(state, model.encode(images(1, seed=3)))
    assert state.image.shape[-1] == 64 and state.output_size == 128
    assert torch.allclose(state.image, torch.nn.functional.avg_pool2d(portrait, 2))
    assert out.prediction.shape == (1, 3, 128, 128) and out.decoded.shape == (1, 3, 64, 64)
    assert out.composite_mask.shape == (1, 1, 128, 128)
    assert 0 <= float(out.composite_mask.min()) and float(out.composite_mask.max()) <= 1
    assert 0 <= float(out.prediction.min()) and float(out.prediction.max()) <= 1


def test_composite_blends_the_warped_portrait_and_the_upsampled_decoded_image():
    decoded, warped = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 8, 8)
    frame, mask = Generator.composite(decoded, torch.full((1, 1, 4, 4), 30.0), warped)
    assert torch.allclose(frame, warped, atol=1e-6) and mask.shape == (1, 1, 8, 8)
    frame, _ = Generator.composite(decoded, torch.full((1, 1, 4, 4), -30.0), warped)
    upsampled = torch.nn.functional.interpolate(decoded, size=(8, 8), mode="bilinear", align_corners=False)
    assert torch.allclose(frame, upsampled, atol=1e-6)
    # With identical keypoints the flow is the identity: a fully trusted warp gives the portrait back.
    model = tiny("fomm").eval()
    portrait = images(1, size=128)
    with torch.no_grad():
        model.generator.composite_head.bias.fill_(30.0)
        state = model.prepare_source(portrait)
        out = model.render(state, state.keypoints)
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))  # the flow is identity up to the border
    assert (out.prediction - portrait)[inner].abs().max() < 2e-2


def test_output_sizes_the_model_cannot_serve_are_refused():
    cfg = get_config("dagan++-mobile")
    assert cfg.default_output_size == 256 and cfg.check_output_size(512) == 512
    for size in (200, 64):
        with pytest.raises(ValueError, match="not a multiple of dagan\\+\\+-mobile's internal resolution 128"):
            cfg.check_output_size(size)
    old = dataclasses.replace(cfg, composite=None)
    assert old.default_output_size == 128 and old.check_output_size(128) == 128
    with pytest.raises(ValueError, match="no composite head: it renders at 128² only"):
        old.check_output_size(256)
    model = TalkingHeadModel(dataclasses.replace(get_config("fomm-tiny"), composite=None))
    with pytest.raises(ValueError, match="portrait of 128²: .* no composite head"):
        model.prepare_source(images(1, size=128))


def test_checkpoints_saved_before_the_composite_head_still_load(tmp_path):
    """An old checkpoint's config.json has no "composite" entry: it loads as a model without the
    head and renders as before; new weights lacking the head's tensors name them."""
    old_cfg = dataclasses.replace(get_config("fomm-tiny"), composite=None)
    old = TalkingHeadModel(old_cfg).eval()
    checkpoint.save_model(old, tmp_path / "old")
    document = json.loads((tmp_path / "old" / "config.json").read_text())
    del document["config"]["composite"]
    (tmp_path / "old" / "config.json").write_text(json.dumps(document))
    loaded = checkpoint.load_model(tmp_path / "old")
    assert loaded.cfg.composite is None and loaded.generator.composite_head is None
    with torch.no_grad():
        frame = loaded.render(loaded.prepare_source(images(1)), loaded.encode(images(1, seed=3))).prediction
    assert frame.shape == (1, 3, 64, 64)
    document["config"]["composite"] = {"mask_kernel_size": 3, "mask_bias": 0.0}
    (tmp_path / "old" / "config.json").write_text(json.dumps(document))
    with pytest.raises(ModelLoadError, match="missing keys: generator.composite_head.bias, "
                                             "generator.composite_head.weight"):
        checkpoint.load_model(tmp_path / "old")


def test_identical_keypoints_give_identity_motion():
    """With driving == source keypoints every local motion is the identity, so the flow is too."""
    model = tiny("fomm").eval()
    source = images()
    kp = random_keypoints(2)
    with torch.no_grad():
        motion = model.generator.dense_motion(source, kp, kp)
    grid = make_coordinate_grid(16, 16).expand_as(motion.deformation)
    assert torch.allclose(motion.deformation, grid, atol=1e-5)


def test_relative_keypoints():
    source, driving = random_keypoints(2, seed=4), random_keypoints(2, seed=5)
    same = relative_keypoints(driving, driving, source)
    assert torch.allclose(same.value, source.value) and torch.allclose(same.jacobian, source.jacobian, atol=1e-5)
    moved = Keypoints(driving.value + 0.1, driving.jacobian)
    result = relative_keypoints(moved, driving, source, use_jacobian=False)
    assert torch.allclose(result.value, source.value + 0.1) and result.jacobian is source.jacobian

    square = torch.tensor([[[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [0.0, 0.0]]])
    assert keypoint_hull_area(square).item() == pytest.approx(4.0)
    half = Keypoints(square * 0.5, torch.eye(2).expand(1, 5, 2, 2))
    full = Keypoints(square, half.jacobian)
    shifted = Keypoints(full.value + 0.2, full.jacobian)
    scaled = relative_keypoints(shifted, full, half, adapt_movement_scale=True,
                                source_area=keypoint_hull_area(half), driving_area=keypoint_hull_area(full))
    assert torch.allclose(scaled.value, half.value + 0.1)  # movement scaled by sqrt(1 / 4)


def test_save_load_round_trip_fp16(tmp_path):
    model = tiny("dagan++").eval()
    with torch.no_grad():  # non-trivial running statistics and attention, so the round trip checks them too
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        for attention in model.generator.attention:
            attention.gamma.fill_(0.5)
    checkpoint.save_model(model, tmp_path / "m", extra_metadata={"training_steps": 12})
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "weights.safetensors",
                                                                 "weights.sha256"]
    loaded = checkpoint.load_model(tmp_path / "m")
    assert loaded.cfg == model.cfg and not loaded.training
    assert loaded.metadata["training_steps"] == 12 and loaded.metadata["dtype"] == "float16"
    assert next(loaded.parameters()).dtype == torch.float32
    source, driving = images(), images(seed=3)
    with torch.no_grad():
        expected = model.render(model.prepare_source(source), model.encode(driving)).prediction
        actual = loaded.render(loaded.prepare_source(source), loaded.encode(driving)).prediction
    assert (expected - actual).abs().max() < 1e-2


def test_depth_stage_round_trip(tmp_path):
    cfg = get_config("dagan++-tiny")
    depth_net, pose_net = DepthNet(cfg), PoseNet(cfg)
    checkpoint.save_depth(depth_net, pose_net, cfg, tmp_path / "depth", extra_metadata={"epochs": 1})
    stage = checkpoint.load_depth(tmp_path / "depth")
    assert stage.config == cfg and stage.metadata["epochs"] == 1
    image = images()
    with torch.no_grad():
        assert torch.allclose(stage.depth_net.eval().depth(image), depth_net.eval().depth(image))
    with pytest.raises(ModelLoadError, match="depth"):
        checkpoint.load_model(tmp_path / "depth")


def test_tampered_weights_fail_the_checksum(tmp_path):
    directory = checkpoint.save_model(tiny("fomm"), tmp_path / "m")
    weights = directory / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="sha256"):
        checkpoint.load_model(directory)


def test_missing_files_and_unknown_names(tmp_path, monkeypatch):
    directory = checkpoint.save_model(tiny("fomm"), tmp_path / "m")
    (directory / "weights.sha256").unlink()
    with pytest.raises(ModelLoadError, match="weights.sha256"):
        checkpoint.load_model(directory)
    with pytest.raises(ModelLoadError, match="no such model directory"):
        checkpoint.load_model(str(tmp_path / "nowhere"))
    monkeypatch.setattr(checkpoint, "MODELS_DIR", tmp_path / "assets")
    with pytest.raises(ModelLoadError, match="no default model is installed"):
        checkpoint.load_model()
    with pytest.raises(ModelLoadError, match="no such model"):
        checkpoint.load_model("someone-else")


def test_config_and_weights_mismatch_names_the_keys(tmp_path):
    directory = checkpoint.save_model(tiny("dagan"), tmp_path / "m")
    document = json.loads((directory / "config.json").read_text())
    document["config"] = get_config("dagan++-tiny").to_dict()
    (directory / "config.json").write_text(json.dumps(document))
    with pytest.raises(ModelLoadError, match=r"missing keys: .*generator\.attention\.1"):
        checkpoint.load_model(directory)
    document["config"]["num_kp"] = 10
    (directory / "config.json").write_text(json.dumps(document))
    with pytest.raises(ModelLoadError, match="mis-shaped"):
        checkpoint.load_model(directory)
    (directory / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="invalid"):
        checkpoint.load_model(directory)


@pytest.mark.parametrize("variant", VARIANTS)
def test_mobile_budgets(variant):
    cfg = get_config(f"{variant}-mobile")
    model = TalkingHeadModel(cfg).eval()
    source, driving = images(1, 128), images(1, 128, seed=3)
    with torch.no_grad():
        state = model.prepare_source(source)
        kp_driving = model.encode(driving)
    render_macs = count_macs(model.generator.render, (state.features, state.keypoints, kp_driving, source))
    encoder_macs = count_macs(model.encode, (driving,))
    assert render_macs <= 0.8e9, f"render {render_macs / 1e9:.3f} GMAC"
    assert encoder_macs <= 0.3e9, f"keypoint encoder {encoder_macs / 1e9:.3f} GMAC"
    params = count_params(model.depth_net) + count_params(model.kp_detector) + count_params(model.generator)
    assert params < 10e6
    for _, queries, keys in cfg.attention_sites():
        assert queries * keys <= 1024 * 256


def test_count_macs_counts_convolutions_and_matmuls():
    conv = nn.Conv2d(4, 8, 3, padding=1)
    assert count_macs(conv, (torch.zeros(1, 4, 10, 10),)) == 10 * 10 * 8 * 4 * 9
    assert count_macs(lambda a, b: a @ b, (torch.zeros(2, 5, 7), torch.zeros(2, 7, 3))) == 2 * 5 * 3 * 7


class _EncoderGraph(nn.Module):
    """image -> (keypoints, jacobians): the sender's graph with tensors in and out."""

    def __init__(self, model: TalkingHeadModel):
        super().__init__()
        self.model = model

    def forward(self, image):
        kp = self.model.encode(image)
        return kp.value, kp.jacobian


class _RenderGraph(nn.Module):
    """(source, keypoints, source features...) -> prediction: the receiver's per-frame graph."""

    def __init__(self, generator: Generator, num_appearance: int):
        super().__init__()
        self.generator = generator
        self.num_appearance = num_appearance

    def forward(self, source, kp_source_value, kp_source_jacobian, kp_driving_value, kp_driving_jacobian, *features):
        source_features = SourceFeatures(tuple(features[:self.num_appearance]), tuple(features[self.num_appearance:]))
        return self.generator.render(source_features, Keypoints(kp_source_value, kp_source_jacobian),
                                     Keypoints(kp_driving_value, kp_driving_jacobian), source).prediction


def test_onnx_export_of_render_and_keypoint_encoder():
    onnx = pytest.importorskip("onnx")
    model = tiny("dagan++").eval()
    source, driving = images(1), images(1, seed=3)
    with torch.no_grad():
        state = model.prepare_source(source)
        kp_driving = model.encode(driving)
    features = state.features
    graphs = {
        "encoder": (_EncoderGraph(model).eval(), (driving,)),
        "render": (_RenderGraph(model.generator, len(features.appearance)).eval(),
                   (source, state.keypoints.value, state.keypoints.jacobian, kp_driving.value, kp_driving.jacobian,
                    *features.appearance, *features.depth_queries)),
    }
    for name, (graph, inputs) in graphs.items():
        buffer = io.BytesIO()
        torch.onnx.export(graph, inputs, buffer, dynamo=False, opset_version=17)
        exported = onnx.load_from_string(buffer.getvalue())
        onnx.checker.check_model(exported)
        ops = {node.op_type for node in exported.graph.node}
        assert not ops & {"Conv3d", "Loop", "If", "NonZero"}, f"{name}: {ops}"
        try:
            import onnxruntime
        except ImportError:
            continue
        session = onnxruntime.InferenceSession(buffer.getvalue())
        outputs = session.run(None, {arg.name: tensor.numpy() for arg, tensor in zip(session.get_inputs(), inputs)})
        with torch.no_grad():
            expected = graph(*inputs)
        expected = expected if isinstance(expected, tuple) else (expected,)
        for got, want in zip(outputs, expected):
            assert torch.allclose(torch.from_numpy(got), want, atol=1e-4), name


@pytest.mark.parametrize("cls", [DenseMotion, KeypointDetector, Generator])
def test_networks_need_no_depth_net_for_fomm(cls):
    cls(get_config("fomm-tiny"))
    with pytest.raises(ValueError, match="no depth"):
        DepthNet(get_config("fomm-tiny"))

"""Models driven by the face prior (issue 12 item 3): configs, old-checkpoint compatibility, mesh
mirroring, the batched self-reenactment inputs against the receiver's path, expression dropout,
the expression modulation and the render path's shapes.

Meshes are synthetic (the shipped prior's canonical face, expressed and posed), tiny models, CPU.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from sdk.checkpoint import MODELS_DIR, load_model, save_model
from sdk.data.mesh_mirror import default_mirror_permutation, flip_meshes, mirror_permutation
from sdk.errors import ModelLoadError, NoFaceError, SdkError
from sdk.models import (CONFIG_NAMES, MODEL_NAMES, SEMANTIC_CONFIG_NAMES, ExpressionModulation, Keypoints,
                        ModelConfig, TalkingHeadModel, get_config)
from sdk.prior import (AvatarRig, EncoderConfig, MotionDelta, RigConfig, SemanticEncoder, load_prior, relative_motion,
                       similarity_from_pose)
from sdk.prior.keypoints import KEYPOINT_PRIORITY
from sdk.training.run import model_config_key
from sdk.training.self_reenactment import SelfReenactment, expression_cuts

SIZE = 128


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def prior():
    return load_prior("default")


def posed(prior, pose, expression=(), size=SIZE) -> np.ndarray:
    """(478, 3) pixels: the canonical face with `expression` coefficients, posed by `pose` (6,)."""
    offsets = prior.basis.decode(np.asarray(expression, dtype=np.float64)) if len(expression) else 0.0
    return similarity_from_pose(np.asarray(pose, dtype=np.float64), size).apply(prior.canonical + offsets)


SOURCE_POSE = [8.0, -4.0, 3.0, 0.02, 0.04, np.log(0.5)]
DRIVING_POSE = [-12.0, 5.0, -2.0, 0.06, 0.0, np.log(0.53)]


# ----------------------------------------------------------------------------------------------
# Configs and compatibility


@pytest.mark.parametrize("name", SEMANTIC_CONFIG_NAMES)
def test_semantic_configs_build_and_round_trip(name):
    cfg = get_config(name)
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.keypoint_source in ("prior", "hybrid") and cfg.motion_keypoints == 15
    assert cfg.num_kp == (0 if cfg.keypoint_source == "prior" else 5)
    if cfg.size != "paper":
        model = TalkingHeadModel(cfg)
        assert (model.kp_detector is None) == (cfg.keypoint_source == "prior")
        assert model.generator.dense_motion.num_kp == 15
        assert "prior" in cfg.describe() and "expression code" in cfg.describe()


def test_learned_configs_serialise_and_build_as_before():
    assert MODEL_NAMES == CONFIG_NAMES + SEMANTIC_CONFIG_NAMES and "dagan++-mobile-prior" in MODEL_NAMES
    for name in CONFIG_NAMES:
        cfg = get_config(name)
        assert cfg.keypoint_source == "learned" and cfg.semantic is None and cfg.motion_keypoints == cfg.num_kp
        assert "keypoint_source" not in cfg.to_dict() and "semantic" not in cfg.to_dict()
    # The training checkpoints' config key of learned configs is what it was before the new fields.
    old_keys = json.loads(model_config_key(get_config("dagan++-mobile")))
    assert set(old_keys) == {field.name for field in dataclasses.fields(ModelConfig)} - {"keypoint_source", "semantic"}
    assert TalkingHeadModel(get_config("fomm-tiny")).generator.expression_modulation is None


@pytest.mark.skipif(not (MODELS_DIR / "default" / "config.json").is_file(), reason="no shipped default model installed")
def test_the_shipped_learned_model_loads_and_serialises_as_saved():
    document = json.loads((MODELS_DIR / "default" / "config.json").read_text())
    model = load_model("default")  # strict: every saved tensor, nothing new
    assert json.loads(json.dumps(model.cfg.to_dict())) == document["config"] and model.cfg.semantic is None
    assert model.kp_detector is not None and model.generator.expression_modulation is None


def test_config_rejects_inconsistent_keypoint_sources():
    learned, prior_cfg = get_config("fomm-tiny"), get_config("fomm-tiny-prior")
    with pytest.raises(ValueError, match="semantic must be given"):
        dataclasses.replace(learned, keypoint_source="prior")
    with pytest.raises(ValueError, match="semantic must be given"):
        dataclasses.replace(prior_cfg, keypoint_source="learned")
    with pytest.raises(ValueError, match="0 for keypoint_source 'prior'"):
        dataclasses.replace(prior_cfg, num_kp=3)
    with pytest.raises(ValueError, match="needs num_kp >= 1"):
        dataclasses.replace(get_config("fomm-tiny-hybrid"), num_kp=0)
    with pytest.raises(ValueError, match="prior_keypoints must be in"):
        dataclasses.replace(prior_cfg, semantic=dataclasses.replace(prior_cfg.semantic, prior_keypoints=41))
    with pytest.raises(ValueError, match="modulated_stages must be in"):
        dataclasses.replace(prior_cfg, semantic=dataclasses.replace(prior_cfg.semantic, modulated_stages=4))
    with pytest.raises(ValueError, match="jacobians must be one of"):
        dataclasses.replace(prior_cfg, semantic=dataclasses.replace(prior_cfg.semantic, jacobians="affine"))
    with pytest.raises(ValueError, match="use_kp"):
        dataclasses.replace(prior_cfg, discriminator=dataclasses.replace(prior_cfg.discriminator, use_kp=True))
    with pytest.raises(ValueError, match="unknown model config"):
        get_config("fomm-tiny-semantic")


# ----------------------------------------------------------------------------------------------
# Mesh mirroring


def test_mirror_permutation_swaps_left_and_right_points(prior):
    permutation = default_mirror_permutation()
    assert np.array_equal(permutation[permutation], np.arange(len(permutation)))
    for right, left in [(33, 263), (133, 362), (61, 291), (159, 386), (145, 374), (234, 454), (105, 334)]:
        assert permutation[right] == left and permutation[left] == right
    assert all(permutation[i] == i for i in (0, 1, 10, 13, 14, 17, 152, 168))  # the midline stays
    # The irises swap: centre to centre, top to top, bottom to bottom; a point on an iris' outer
    # side goes to the other iris' outer side, which is the other end of its ring.
    assert permutation[468:473].tolist() == [473, 476, 475, 474, 477]
    # The keypoint priority list holds left/right pairs: mirrored, the keypoints map onto each other.
    indices = {index for index, _ in KEYPOINT_PRIORITY}
    assert {int(permutation[i]) for i in indices} == indices
    lopsided = prior.canonical.copy()
    lopsided[prior.canonical[:, 0] > 0.1, 0] += 0.2
    with pytest.raises(SdkError, match="not left-right symmetric"):
        mirror_permutation(lopsided)


def test_flipped_mesh_is_the_mirrored_face(prior):
    mesh = posed(prior, SOURCE_POSE, [0.4, -0.3, 0.2])
    flipped = flip_meshes(mesh, SIZE)
    assert np.allclose(flip_meshes(flipped, SIZE), mesh)  # an involution
    encoder = SemanticEncoder(prior, EncoderConfig(image_size=SIZE))
    code, mirrored = encoder.encode(mesh).code, encoder.encode(flipped).code
    assert mirrored.pose[[0, 2]] == pytest.approx(-code.pose[[0, 2]], abs=0.5)  # yaw and roll change sign
    assert mirrored.pose[1] == pytest.approx(code.pose[1], abs=0.5)
    assert mirrored.pose[3] == pytest.approx(-code.pose[3], abs=0.02)  # x position mirrored about the centre
    assert np.isnan(flip_meshes(np.full_like(mesh, np.nan), SIZE)).all()


# ----------------------------------------------------------------------------------------------
# Self-reenactment inputs: batched training path == the receiver's path


def test_self_reenactment_matches_the_receiver_path(prior):
    cfg = get_config("fomm-tiny-prior")
    inputs = SelfReenactment(prior, cfg.semantic, SIZE)
    sources = np.stack([posed(prior, SOURCE_POSE, [0.2, 0.1]), posed(prior, DRIVING_POSE, [-0.1])])
    drivings = np.stack([posed(prior, DRIVING_POSE, [0.6, -0.4, 0.3]), posed(prior, SOURCE_POSE, [0.5, 0.2])])
    cuts = np.array([16, 2])
    out = inputs(sources, drivings, cuts)
    encoder = SemanticEncoder(prior, EncoderConfig(image_size=SIZE))
    for i in range(2):
        rig = AvatarRig(prior, sources[i], SIZE, RigConfig(num_keypoints=15))
        motion = relative_motion(encoder.encode(drivings[i]).code, rig.code)
        truncated = dataclasses.replace(motion, expression=motion.expression[:cuts[i]])
        driven, own = rig.drive(truncated), rig.drive()
        assert np.allclose(out.kp_driving.value[i].numpy(), driven.value, atol=1e-5)
        assert np.allclose(out.kp_driving.jacobian[i].numpy(), driven.jacobian, atol=1e-4)
        assert np.allclose(out.kp_source.value[i].numpy(), own.value, atol=1e-5)
        assert np.allclose(out.kp_source.jacobian[i].numpy(), own.jacobian, atol=1e-4)
        expected = np.zeros(16)
        expected[:cuts[i]] = motion.expression[:cuts[i]]
        assert np.allclose(out.expression[i].numpy(), expected, atol=1e-5)
    assert out.valid.tolist() == [1.0, 1.0] and out.expression.shape == (2, 16)


def test_self_reenactment_flags_pairs_the_encoder_would_flag(prior):
    semantic = get_config("fomm-tiny-prior").semantic
    good = posed(prior, SOURCE_POSE)
    missing = good.copy()
    missing[5] = np.nan
    profile = posed(prior, [75.0, 0, 0, 0, 0, np.log(0.5)])
    distorted = good + np.random.default_rng(0).normal(0, 8, good.shape)
    out = SelfReenactment(prior, semantic, SIZE)(np.stack([good, missing, good, good]),
                                                 np.stack([good, good, profile, distorted]))
    assert out.valid.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert torch.isfinite(out.kp_driving.value).all() and torch.isfinite(out.kp_source.jacobian).all()
    # A flagged pair gets no motion and no expression.
    assert torch.equal(out.kp_driving.value[1:], out.kp_source.value[1:]) and not out.expression[1:].any()
    for status, mesh in [("missing", missing), ("out_of_range", profile), ("poor_fit", distorted)]:
        assert SemanticEncoder(prior, EncoderConfig(image_size=SIZE)).encode(mesh).status == status
    with pytest.raises(ValueError, match="face prior has 32"):
        SelfReenactment(prior, dataclasses.replace(semantic, expression_dims=33), SIZE)


def test_identity_jacobians_replace_the_mesh_ones(prior):
    cfg = get_config("fomm-tiny-prior")
    semantic = dataclasses.replace(cfg.semantic, jacobians="identity")
    mesh = posed(prior, SOURCE_POSE)
    out = SelfReenactment(prior, semantic, SIZE)(mesh[None], posed(prior, DRIVING_POSE)[None])
    assert torch.equal(out.kp_driving.jacobian, torch.eye(2).expand(1, 15, 2, 2))
    assert not torch.allclose(SelfReenactment(prior, cfg.semantic, SIZE)(mesh[None], posed(prior, DRIVING_POSE)[None])
                              .kp_driving.jacobian, torch.eye(2).expand(1, 15, 2, 2), atol=0.05)


def test_expression_dropout_cuts_the_last_dimensions():
    assert expression_cuts(4, 16, 0.0) is None
    generator = torch.Generator().manual_seed(0)
    cuts = expression_cuts(2000, 16, 1.0, generator)
    assert cuts.min() == 0 and cuts.max() == 15 and len(np.unique(cuts)) == 16  # every cut in [0, E)
    some = expression_cuts(2000, 16, 0.25, torch.Generator().manual_seed(1))
    assert 0.7 < float((some == 16).mean()) < 0.8  # 3 in 4 pairs keep every dimension
    again = expression_cuts(2000, 16, 0.25, torch.Generator().manual_seed(1))
    assert np.array_equal(some, again)  # seeded: a resumed run draws the same cuts


# ----------------------------------------------------------------------------------------------
# The model: prepare_source with the mesh, drive, render_semantic


@pytest.mark.parametrize("name", ["fomm-tiny-prior", "dagan++-tiny-hybrid"])
def test_render_semantic_shapes_and_truncated_codes(prior, name):
    torch.manual_seed(0)
    model = TalkingHeadModel(get_config(name)).eval()
    model.face_prior = prior
    cfg, size, n = model.cfg, 2 * model.cfg.resolution, 2
    portrait = torch.rand(n, 3, size, size)
    meshes = np.stack([posed(prior, SOURCE_POSE, size=size), posed(prior, DRIVING_POSE, size=size)])
    encoder = SemanticEncoder(prior, EncoderConfig(image_size=size))
    with torch.no_grad():
        state = model.prepare_source(portrait, meshes)
        assert len(state.rigs) == n and state.keypoints.value.shape == (n, cfg.motion_keypoints, 2)
        assert (state.learned is None) == (cfg.num_kp == 0)
        if state.learned is not None:
            assert torch.equal(state.learned.value, state.keypoints.value[:, cfg.semantic.prior_keypoints:])
        motion = relative_motion(encoder.encode(posed(prior, DRIVING_POSE, [0.5, -0.3], size)).code, state.rigs[0].code)
        learned = None if model.kp_detector is None else model.encode(torch.rand(n, 3, cfg.resolution, cfg.resolution))
        inputs = model.drive(state, [motion, MotionDelta.identity(3)], learned)
        assert inputs.keypoints.value.shape == (n, 15, 2) and inputs.keypoints.jacobian.shape == (n, 15, 2, 2)
        assert inputs.expression.shape == (n, cfg.semantic.expression_dims) and not inputs.expression[1].any()
        out = model.render_semantic(state, inputs.keypoints, inputs.expression)
        assert out.prediction.shape == (n, 3, size, size) and out.decoded.shape == (n, 3, cfg.resolution, cfg.resolution)
        assert out.mask.shape == (n, 16, cfg.motion_resolution, cfg.motion_resolution)
        # No motion: the avatar's own keypoints.
        assert torch.allclose(inputs.keypoints.value[1, :cfg.semantic.prior_keypoints],
                              state.keypoints.value[1, :cfg.semantic.prior_keypoints], atol=1e-5)
        # Fewer dimensions sent = the rest zero, in the code and in the keypoints alike.
        short = model.drive(state, [dataclasses.replace(motion, expression=motion.expression[:4])] * 2, learned)
        padded = np.zeros(32)
        padded[:4] = motion.expression[:4]
        same = model.drive(state, [dataclasses.replace(motion, expression=padded)] * 2, learned)
        assert torch.allclose(short.expression, same.expression) and short.expression[:, 4:].abs().max() == 0
        assert torch.allclose(short.keypoints.value, same.keypoints.value, atol=1e-6)


def test_expression_modulation_starts_as_the_identity_and_then_acts(prior):
    torch.manual_seed(0)
    model = TalkingHeadModel(get_config("fomm-tiny-prior")).eval()
    model.face_prior = prior
    mesh = posed(prior, SOURCE_POSE)
    with torch.no_grad():
        state = model.prepare_source(torch.rand(1, 3, SIZE, SIZE), mesh)
        kp = model.drive(state, [MotionDelta.identity(0)]).keypoints
        zero, code = torch.zeros(1, 16), torch.randn(1, 16)
        assert torch.equal(model.render_semantic(state, kp, zero).decoded, model.render_semantic(state, kp, code).decoded)
        torch.nn.init.normal_(model.generator.expression_modulation.mlp[-1].weight, std=0.1)
        assert not torch.allclose(model.render_semantic(state, kp, zero).decoded,
                                  model.render_semantic(state, kp, code).decoded)
    modulation = ExpressionModulation(4, 8, (6, 3))
    pairs = modulation(torch.randn(2, 4))
    assert [tuple(scale.shape) for scale, _ in pairs] == [(2, 6, 1, 1), (2, 3, 1, 1)]
    modulation.set_input_scale(torch.full((4,), 0.5))
    assert torch.equal(modulation.input_scale, torch.full((4,), 2.0))
    with pytest.raises(ValueError, match=r"expression must be \(N, 4\)"):
        modulation(torch.randn(2, 5))


def test_model_api_refuses_the_wrong_inputs(prior, tmp_path):
    learned = TalkingHeadModel(get_config("fomm-tiny")).eval()
    model = TalkingHeadModel(get_config("fomm-tiny-prior")).eval()
    model.face_prior = prior
    portrait, mesh = torch.rand(1, 3, SIZE, SIZE), posed(prior, SOURCE_POSE)
    with pytest.raises(ValueError, match="takes no face mesh"):
        learned.prepare_source(portrait, mesh)
    with pytest.raises(ValueError, match="needs the avatar's face mesh"):
        model.prepare_source(portrait)
    with pytest.raises(ValueError, match="no keypoint detector"):
        model.encode(torch.rand(1, 3, 64, 64))
    with pytest.raises(NoFaceError):
        model.prepare_source(portrait, np.full_like(mesh, np.nan))
    with torch.no_grad():
        state = model.prepare_source(portrait, mesh)
        with pytest.raises(ValueError, match="2 motions for 1 avatars"):
            model.drive(state, [MotionDelta.identity(0)] * 2)
        with pytest.raises(ValueError, match="has no learned keypoints"):
            model.drive(state, [MotionDelta.identity(0)], Keypoints(torch.zeros(1, 5, 2), torch.eye(2).repeat(1, 5, 1, 1)))
        with pytest.raises(ValueError, match="driven by an expression code"):
            model.render(state, state.keypoints)
        with pytest.raises(ValueError, match="prepared without a face mesh"):
            model.drive(learned.prepare_source(portrait), [MotionDelta.identity(0)])
    # A saved prior model loads the prior it was trained with, and refuses another.
    save_model(model, tmp_path / "m", half=False, extra_metadata={"face_prior": {"sha256": "0" * 64}})
    with pytest.raises(ModelLoadError, match="not the one the model was trained with"):
        load_model(tmp_path / "m").prior()
    save_model(model, tmp_path / "ok", half=False, extra_metadata={"face_prior": {"sha256": prior.sha256}})
    assert load_model(tmp_path / "ok").prior().sha256 == prior.sha256
    mismatched = load_model(tmp_path / "m")
    mismatched.face_prior = prior  # set by hand: still checked against the one it was trained with
    with pytest.raises(ModelLoadError, match="not the one fomm-tiny-prior was trained with"):
        mismatched.prior()
    with pytest.raises(ValueError, match="learned keypoints, not the face prior"):
        learned.prior()

"""The face-prior path of the pipeline (issue 12 items 2 and 5): semantic codes from meshes, the
avatar's rig, edits (parse, clamp, apply), `python -m sdk edit`, `animate --edit`.

Meshes are synthetic (the shipped prior's canonical face, expressed and posed) or tracked on the
bundled clip; tiny untrained models on CPU, so images are only checked for shape and change.
"""
from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from sdk import media
from sdk.checkpoint import save_model
from sdk.cli import main
from sdk.errors import NoFaceError, SdkError
from sdk.models import TalkingHeadModel, get_config
from sdk.pipeline import HybridCode, MotionConfig, TalkingHeadPipeline
from sdk.prior import (ANGLE_LIMITS, AvatarRig, EditError, Edits, EncoderConfig, MotionDelta, SemanticCode,
                       SemanticEncoder, load_prior, similarity_from_pose)
from sdk.prior.controls import ControlRangeWarning
from sdk.prior.features import feature_index, measure_features

pytestmark = pytest.mark.usefixtures("single_thread")

NEUTRAL_POSE = [0.0, 0.0, 0.0, 0.0, 0.02, np.log(0.5)]


@pytest.fixture(scope="module")
def prior():
    return load_prior("default")


def posed(prior, pose, expression=(), size=128) -> np.ndarray:
    offsets = prior.basis.decode(np.asarray(expression, dtype=np.float64)) if len(expression) else 0.0
    return similarity_from_pose(np.asarray(pose, dtype=np.float64), size).apply(prior.canonical + offsets)


@pytest.fixture(scope="module")
def prior_model():
    torch.manual_seed(0)
    return TalkingHeadModel(get_config("fomm-tiny-prior")).eval()


@pytest.fixture(scope="module")
def crop():
    return np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------------------------
# Edits


def test_edits_parse_clamp_and_refuse_what_they_cannot_understand():
    edits = Edits.parse(" yaw=15, smile=0.5,freeze=pose ")
    assert (edits.yaw, edits.controls, edits.freeze_pose, edits.freeze_expression) == (15.0, (("smile", 0.5),), True, False)
    assert Edits.parse("").is_identity and Edits.parse("freeze=none").is_identity
    assert Edits.parse("freeze=all").freeze_pose and Edits.parse("freeze=all").freeze_expression
    with pytest.warns(ControlRangeWarning, match="yaw=90 is outside"):
        assert Edits.parse("yaw=90").yaw == ANGLE_LIMITS["yaw"]
    with pytest.warns(ControlRangeWarning, match="mouth_open=3 is outside"):
        assert Edits.parse("mouth_open=3").controls == (("mouth_open", 1.0),)
    for bad, message in [("wink=1", "unknown edit 'wink'"), ("yaw", "not NAME=VALUE"), ("yaw=left", "not a number"),
                         ("freeze=head", "freeze='head'"), ("pitch=nan", "not a finite")]:
        with pytest.raises(EditError, match=message):
            Edits.parse(bad)
    assert issubclass(EditError, SdkError)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nudged = Edits().nudged(yaw=50, smile=-0.25).nudged(smile=-1)
    assert nudged.yaw == ANGLE_LIMITS["yaw"] and dict(nudged.controls) == {"smile": -1.0}


def test_edits_turn_the_head_open_the_mouth_and_freeze_on_the_avatars_rig(prior):
    avatar = AvatarRig(prior, posed(prior, NEUTRAL_POSE), 128)
    encoder = SemanticEncoder(prior, EncoderConfig(image_size=128))
    driver = MotionDelta(np.eye(3), np.array([0.1, 0.0]), 0.05, np.zeros(prior.components))
    assert Edits().apply(driver, prior) is driver

    turned = avatar.driven_mesh(Edits(yaw=15).apply(driver, prior))
    assert encoder.encode(turned).code.pose[0] == pytest.approx(15.0, abs=0.5)
    frozen = Edits(yaw=-10, freeze_pose=True).apply(driver, prior)
    assert np.allclose(frozen.translation, 0) and frozen.log_scale == 0
    assert encoder.encode(avatar.driven_mesh(frozen)).code.pose[0] == pytest.approx(-10.0, abs=0.5)

    lip_gap = feature_index("lip_gap")
    neutral_gap = measure_features(avatar.normalized)[lip_gap]
    opened = Edits.parse("mouth_open=1").apply(MotionDelta.identity(8), prior)  # a stream of 8 dims: padded to E
    assert len(opened.expression) == prior.components
    opened_gap = measure_features(avatar.normalized + prior.basis.decode(opened.expression))[lip_gap]
    assert opened_gap - neutral_gap > 2 * max(neutral_gap, 1e-3)
    still = Edits(freeze_expression=True).apply(MotionDelta(np.eye(3), np.zeros(2), 0.0, np.ones(4)), prior)
    assert not still.expression.any()


# ----------------------------------------------------------------------------------------------
# The pipeline's semantic path


def test_a_prior_model_is_driven_by_meshes_and_repeats_the_last_good_code(prior, prior_model, crop):
    pipeline = TalkingHeadPipeline(prior_model)
    assert pipeline.is_semantic and pipeline.output_size == 128
    state = pipeline.prepare_source(crop, posed(prior, NEUTRAL_POSE))
    assert pipeline.encode(crop, None) is None  # no good mesh yet: nothing to send
    first = pipeline.encode(crop, posed(prior, [5.0, 0, 0, 0, 0.02, np.log(0.5)]))
    assert isinstance(first, SemanticCode)
    # Meshes are measured in the crop they come with: the same face in a 256² crop is the same code
    # (up to the keypoint units' edge-pixel convention, which is not quite scale-free: 0.4 %).
    big = pipeline.encode(np.zeros((256, 256, 3), np.uint8), posed(prior, [5.0, 0, 0, 0, 0.02, np.log(0.5)], size=256))
    assert np.allclose(big.pose, first.pose, atol=5e-3) and np.allclose(big.expression, first.expression, atol=1e-6)
    broken = posed(prior, NEUTRAL_POSE)
    broken[13] = np.nan
    assert pipeline.encode(crop, broken) is big  # flagged: the last good code again, counted
    stats = pipeline.encoder_stats
    assert (stats.frames, stats.ok, stats.missing) == (4, 2, 2)

    anchor_frame = pipeline.render(state, first)  # the first code is the anchor: no motion
    assert anchor_frame.shape == (128, 128, 3) and anchor_frame.dtype == np.uint8
    moved = pipeline.encode(crop, posed(prior, [20.0, 5.0, 0, 0.05, 0.02, np.log(0.5)], [0.6, -0.4]))
    assert np.abs(pipeline.render(state, moved).astype(int) - anchor_frame).mean() > 0
    # Relative motion from the anchor = the same frame as rendering that motion directly.
    direct = pipeline.render_motion(state, pipeline.driving_motion(state, moved))
    assert np.array_equal(direct, pipeline.render(state, moved))
    pipeline.edits = Edits.parse("yaw=20,mouth_open=1")
    assert np.abs(pipeline.render(state, moved).astype(int) - direct).mean() > 0
    pipeline.reset_encoder()
    assert pipeline.encode(crop, broken) is None

    absolute = TalkingHeadPipeline(prior_model, MotionConfig(mode="absolute"))
    state = absolute.prepare_source(crop, posed(prior, NEUTRAL_POSE))
    own = absolute.encode(crop, posed(prior, NEUTRAL_POSE))
    assert np.allclose(absolute.driving_motion(state, own).rotation, np.eye(3), atol=1e-6)


def test_a_hybrid_model_sends_its_learned_keypoints_too(prior, crop):
    torch.manual_seed(0)
    pipeline = TalkingHeadPipeline(TalkingHeadModel(get_config("fomm-tiny-hybrid")).eval())
    state = pipeline.prepare_source(crop, posed(prior, NEUTRAL_POSE))
    code = pipeline.encode(crop, posed(prior, [10.0, 0, 0, 0, 0.02, np.log(0.5)]))
    assert isinstance(code, HybridCode) and code.learned.value.shape == (1, 5, 2)
    assert pipeline.render(state, code).shape == (128, 128, 3)
    with pytest.raises(ValueError, match="learned keypoints too"):
        pipeline.render_motion(state, MotionDelta.identity(0))
    assert pipeline.render_motion(state, MotionDelta.identity(0), state.learned).shape == (128, 128, 3)


def test_learned_models_refuse_edits_and_face_prior_ones_need_a_face(prior_model, tiny_model, crop):
    with pytest.raises(SdkError, match="need a face-prior model"):
        TalkingHeadPipeline(tiny_model, edits=Edits(yaw=5))
    pipeline = TalkingHeadPipeline(tiny_model)
    with pytest.raises(SdkError, match="need a face-prior model"):
        pipeline.edits = Edits(yaw=5)
    pipeline.reset_encoder()  # nothing to forget: no error
    with pytest.raises(NoFaceError, match="no face mesh found"):
        TalkingHeadPipeline(prior_model).prepare_source(np.zeros((128, 128, 3), np.uint8))


# ----------------------------------------------------------------------------------------------
# CLI: edit, animate --edit


@pytest.fixture(scope="module")
def prior_model_dir(prior_model, tmp_path_factory):
    directory = tmp_path_factory.mktemp("models") / "prior"
    save_model(prior_model, directory, half=False)
    return directory


def test_edit_cli_writes_the_edited_portrait_and_refuses_bad_edits(prior_model_dir, tmp_path, capsys):
    out = tmp_path / "edited.png"
    assert main(["edit", "--portrait", "sdk/assets/portrait.jpg", "--out", str(out), "--edit", "yaw=-20,mouth_open=1",
                 "--model", str(prior_model_dir)]) == 0
    assert media.read_image(out).shape == (128, 128, 3)
    assert json.loads(capsys.readouterr().out)["model"] == "fomm-tiny-prior"
    pasted = tmp_path / "pasted.png"
    assert main(["edit", "--portrait", "sdk/assets/portrait.jpg", "--out", str(pasted), "--edit", "smile=1",
                 "--model", str(prior_model_dir), "--paste-back"]) == 0
    assert media.read_image(pasted).shape[0] > 128
    capsys.readouterr()
    assert main(["edit", "--portrait", "sdk/assets/portrait.jpg", "--out", str(out), "--edit", "wink=1"]) == 2
    assert main(["edit", "--portrait", "sdk/assets/portrait.jpg", "--out", str(out), "--edit", "freeze=none",
                 "--model", str(prior_model_dir)]) == 2
    assert main(["edit", "--portrait", "sdk/assets/portrait.jpg", "--out", str(out), "--edit", "yaw=10",
                 "--model", "default"]) == 2
    errors = capsys.readouterr().err
    assert "unknown edit 'wink'" in errors and "changes nothing" in errors and "learned keypoints" in errors


def test_animate_drives_a_prior_model_from_the_tracked_mesh_with_edits(prior_model_dir, clip, tmp_path, capsys):
    out = tmp_path / "animated.mp4"
    assert main(["animate", "--driving", str(clip), "--out", str(out), "--model", str(prior_model_dir),
                 "--edit", "yaw=10,smile=0.5"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["model"] == "fomm-tiny-prior" and stats["frames"] == 10 and stats["flagged_mesh_frames"] == 0
    assert media.probe_video(out).frame_count == 10
    assert main(["animate", "--driving", str(clip), "--out", str(out), "--model", str(prior_model_dir),
                 "--crop", "none"]) == 2
    assert main(["animate", "--driving", str(clip), "--out", str(out), "--edit", "yaw=10"]) == 2
    errors = capsys.readouterr().err
    assert "needs crop 'auto'" in errors and "learned keypoints" in errors


def test_the_editing_bench_measures_turns_and_lip_gaps_on_the_renders(prior_model_dir, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("editing", Path(__file__).resolve().parents[1] / "bench" / "editing.py")
    editing = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(editing)
    out = tmp_path / "editing.json"
    assert editing.main(["--model", str(prior_model_dir), "--portraits", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["edits"]) == {"none", "yaw=+15", "yaw=-15", "mouth_open=1", "smile=1", "eyes_closed=1"}
    assert report["portraits"] + report["edits"]["none"]["missed"] == 1  # an untrained model may lose the face
    assert "yaw ±15° turns the head" in capsys.readouterr().out

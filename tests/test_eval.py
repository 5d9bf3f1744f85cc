"""`sdk.eval`: the frame metrics on known inputs, then `python -m sdk eval` end to end on a
synthetic prepared folder (the bundled portrait, shifted) with a tiny untrained model."""
from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sdk.animate import DEFAULT_SOURCE
from sdk.checkpoint import save_model
from sdk.cli import main
from sdk.data.prepare import PREPARED_COLUMNS
from sdk.eval.metrics import AKD_RESOLUTION, KeypointDistance, laplacian_variance, mesh_regions
from sdk.eval.reenactment import MetricSums, clip_scores, evaluate, versus_still
from sdk.face import crop_portrait
from sdk.media import resize_image
from sdk.models import TalkingHeadModel, get_config
from sdk.pipeline import TalkingHeadPipeline

PREPARED_SIZE = 128


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return crop_portrait(DEFAULT_SOURCE, size=PREPARED_SIZE)[0]


# ----------------------------------------------------------------------------------------------
# Metrics on known inputs


def test_sharpness_ratio_of_the_same_image_is_one_and_of_a_blurred_one_below(portrait):
    blurred = cv2.GaussianBlur(portrait, (0, 0), 2.0)
    assert laplacian_variance(blurred) < 0.5 * laplacian_variance(portrait)
    same, blur = MetricSums(), MetricSums()
    same.add(portrait, portrait, None, None)
    blur.add(blurred, portrait, None, None)
    assert same.summary()["sharpness"] == pytest.approx(1.0)
    assert blur.summary()["sharpness"] < 0.5
    flat = np.full_like(portrait, 128)
    blur.add(portrait, flat, None, None)  # a flat real frame has no ratio: counted apart, not averaged in
    assert blur.summary()["sharpness_frames"] == 1 and blur.pixel_frames == 2


def test_landmark_distances_over_the_mouth_and_eye_points():
    regions = mesh_regions()
    assert len(regions["mouth"]) == 40 and len(regions["eyes"]) == 32
    assert not set(regions["mouth"]) & set(regions["eyes"])
    points = np.random.default_rng(0).uniform(0, AKD_RESOLUTION, (478, 2))
    assert KeypointDistance.distance(points, points, regions["mouth"]) == 0.0
    opened = points.copy()
    opened[regions["mouth"], 1] += 3.0  # the mouth alone moves 3 px
    assert KeypointDistance.distance(opened, points, regions["mouth"]) == pytest.approx(3.0)
    assert KeypointDistance.distance(opened, points, regions["eyes"]) == 0.0
    assert KeypointDistance.distance(opened, points) == pytest.approx(3.0 * 40 / 478)


def test_identity_descriptor_of_a_rendered_frame_layout(portrait):
    """Rendered frames are (H, W, 3) views of CHW tensors; at 256² and above they reach dlib unresized."""
    from sdk.eval.metrics import IdentityDistance

    crop = cv2.resize(portrait, (256, 256), interpolation=cv2.INTER_LINEAR)
    view = np.ascontiguousarray(crop.transpose(2, 0, 1)).transpose(1, 2, 0)
    assert not view.flags.c_contiguous
    identity = IdentityDistance()
    assert identity.distance(identity.descriptor(view), identity.descriptor(crop)) == pytest.approx(0.0, abs=1e-5)


def test_metric_sums_add_up_and_refuse_frames_of_two_sizes(portrait):
    a, b = MetricSums(), MetricSums()
    a.add(portrait, portrait, None, None)
    b.add(cv2.GaussianBlur(portrait, (0, 0), 1.0), portrait, None, None)
    total = a + b
    assert total.frames == 2 and total.psnr == pytest.approx(a.psnr + b.psnr)
    with pytest.raises(ValueError, match="one size"):
        a.add(portrait[:64, :64], portrait, None, None)


def test_per_clip_scores_and_the_comparison_with_the_still_frame(portrait):
    blurred = cv2.GaussianBlur(portrait, (0, 0), 2.0)
    rows = []
    for clip, (model_frame, still_frame) in {"better": (portrait, blurred), "worse": (blurred, portrait)}.items():
        model, still = MetricSums(), MetricSums()
        model.add(model_frame, portrait, None, None)
        still.add(still_frame, portrait, None, None)
        rows.append(clip_scores(clip, model, still))
    rows.append(clip_scores("empty", MetricSums(), MetricSums()))
    assert [(row.clip, row.frames, row.ssim_above_still) for row in rows] == [
        ("better", 1, True), ("worse", 1, False), ("empty", 0, None)]
    assert rows[2].model_psnr is None
    model = {"psnr": 30.0, "akd": 2.0, "mouth_lmd": 3.0, "eye_lmd": None, "sharpness": 0.9}
    still = {"psnr": 28.5, "akd": 4.0, "mouth_lmd": 2.0, "eye_lmd": 1.0, "sharpness": 1.0}
    assert versus_still(model, still, rows) == {
        "psnr_gain_db": 1.5, "akd_ratio": 0.5, "mouth_lmd_ratio": 1.5, "eye_lmd_ratio": None, "sharpness": 0.9,
        "ssim_above_still_clips": 1, "scored_clips": 2}


# ----------------------------------------------------------------------------------------------
# `eval` end to end on a synthetic prepared folder


@pytest.fixture(scope="module")
def prepared(portrait, tmp_path_factory) -> Path:
    """Two 4-frame test clips of two 'identities' (the portrait, and its mirror image, shifting by
    a few pixels per frame) with their face meshes, in the prepared layout at 128², and one train
    clip (the portrait upside down) for the ablation's training run."""
    root = tmp_path_factory.mktemp("prepared")
    akd = KeypointDistance()
    rows = []
    faces = {"synthetic-0": portrait, "synthetic-1": np.ascontiguousarray(portrait[:, ::-1]),
             "synthetic-train": np.ascontiguousarray(portrait[::-1])}
    try:
        for index, (name, face) in enumerate(faces.items()):
            clip = root / "clips" / name
            (clip / "frames").mkdir(parents=True)
            landmarks = np.full((4, 478, 3), np.nan, np.float32)
            for t in range(4):
                shift = np.float32([[1, 0, 2 * t], [0, 1, t]])
                frame = cv2.warpAffine(face, shift, face.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
                cv2.imwrite(str(clip / "frames" / f"{t:06d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                # The whole mesh (x, y and z, as `data prepare` writes it) in crop pixels.
                found = akd.landmarker.from_image(resize_image(frame, AKD_RESOLUTION, AKD_RESOLUTION))
                if found is not None:
                    landmarks[t] = found * (PREPARED_SIZE / AKD_RESOLUTION)
            np.save(clip / "landmarks.npy", landmarks)
            rows.append({**{column: "" for column in PREPARED_COLUMNS}, "id": name,
                         "split": "train" if name.endswith("train") else "test",
                         "identity": f"person-{index}", "status": "ok", "fps": 25, "frames": 4, "face_frames": 4,
                         "size": PREPARED_SIZE, "has_audio": "no"})
    finally:
        akd.close()
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, PREPARED_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("model") / "fomm-tiny"
    save_model(TalkingHeadModel(get_config("fomm-tiny")), directory, half=False)
    return directory


def test_eval_cli_scores_at_the_output_size_per_clip_and_against_the_still_frame(prepared, tiny_model_dir,
                                                                                   tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["eval", "--data", str(prepared), "--model", str(tiny_model_dir), "--json", str(out),
                 "--cross-stride", "2", "--no-identity"]) == 0
    printed = capsys.readouterr().out
    print(printed)
    report = json.loads(out.read_text())
    # fomm-tiny: internal 64², composite head, default output 128² = the prepared size
    assert report["output_size"] == 128 and report["prepared_size"] == 128 and report["frames_resized"] is None
    model, still = report["self_reenactment"]["model"], report["self_reenactment"]["still_frame"]
    assert model["frames"] == still["frames"] == 6  # 3 driven frames per clip
    assert still["akd"] is not None and still["mouth_lmd"] is not None and still["eye_lmd"] is not None
    assert still["sharpness"] == pytest.approx(1.0, abs=0.15)  # shifted copies of one real frame
    assert model["sharpness"] is not None and model["sharpness_frames"] == 6
    assert [row["clip"] for row in report["per_clip"]] == ["synthetic-0", "synthetic-1"]
    assert all(row["frames"] == 3 and isinstance(row["ssim_above_still"], bool) for row in report["per_clip"])
    ratios = report["versus_still"]
    assert ratios["scored_clips"] == 2 and ratios["psnr_gain_db"] == pytest.approx(model["psnr"] - still["psnr"])
    assert f"SSIM above still on {ratios['ssim_above_still_clips']} of 2 clips" in printed
    assert "synthetic-1" in printed and "sharp" in printed and "mouth" in printed
    cross = report["cross_identity"]["model"]
    assert cross["frames"] == 4 and "identity" in cross  # each clip driven by the other's frames 0 and 2


def test_eval_resizes_the_prepared_frames_to_another_output_size(prepared, tiny_model_dir):
    from sdk.checkpoint import load_model

    model = load_model(str(tiny_model_dir))
    report = evaluate(TalkingHeadPipeline(model, output_size=64), prepared, frame_stride=3, cross_stride=4,
                      with_identity=False)
    assert report.output_size == 64 and report.frames_resized.startswith("downscaled from 128² to 64²")
    assert report.self_reenactment["model"]["frames"] == 2
    headless = TalkingHeadModel(dataclasses.replace(model.cfg, composite=None))  # renders at 64² only
    report = evaluate(TalkingHeadPipeline(headless), prepared, frame_stride=3, cross_stride=4, with_identity=False)
    assert report.output_size == 64
    assert main(["eval", "--data", str(prepared), "--model", str(tiny_model_dir), "--size", "96"]) == 2


def test_eval_drives_a_face_prior_model_from_the_prepared_meshes_and_scores_the_transferred_expression(
        prepared, tiny_model_dir):
    torch.manual_seed(0)
    pipeline = TalkingHeadPipeline(TalkingHeadModel(get_config("fomm-tiny-prior")).eval())
    report = evaluate(pipeline, prepared, frame_stride=1, cross_stride=1, with_identity=False)
    assert report.model == "fomm-tiny-prior" and report.self_reenactment["model"]["frames"] == 6
    assert pipeline.encoder_stats.ok > 0  # the meshes drove it
    cross = report.cross_identity
    assert set(cross) == {"model", "still_frame", "model_vs_transferred", "still_vs_transferred"}
    assert cross["model"]["frames"] == 8 and cross["model_vs_transferred"]["frames"] > 0
    # The still frame against the driver's motion moving the source's own mesh: the source does not
    # move, the target does (a few pixels per frame), so the distance is small but not zero.
    assert 0 < cross["still_vs_transferred"]["akd"] < cross["still_frame"]["akd"]
    # Learned models are scored against the same transferred targets.
    from sdk.checkpoint import load_model

    learned = evaluate(TalkingHeadPipeline(load_model(str(tiny_model_dir))), prepared, frame_stride=3,
                       cross_stride=1, with_identity=False)
    assert learned.cross_identity["model_vs_transferred"]["frames"] == cross["model_vs_transferred"]["frames"]


# ----------------------------------------------------------------------------------------------
# bench/ablation.py: the arms (the ablation itself trains for an hour)


@pytest.fixture(scope="module")
def ablation():
    """bench/ablation.py as a module (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("ablation", Path(__file__).resolve().parents[1] / "bench" / "ablation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["ablation"] = module  # its dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    yield module
    del sys.modules["ablation"]


def test_ablation_arms_are_the_configs_without_the_head_and_the_composite_arm(ablation, tmp_path, capsys):
    arms = {arm.name: arm for arm in ablation.ARMS}
    assert list(arms) == ["fomm", "dagan", "dagan++", "dagan++ flat depth", "composite", "prior keypoints",
                          "prior + expression", "hybrid"]
    assert arms["prior keypoints"].model_config().semantic.modulated_stages == 0
    assert arms["prior + expression"].model_config() == get_config("dagan++-mobile-prior")
    assert arms["hybrid"].model_config() == get_config("dagan++-mobile-hybrid")
    for name in ("fomm", "dagan", "dagan++", "dagan++ flat depth"):
        cfg = arms[name].model_config()
        assert cfg.composite is None and cfg.default_output_size == cfg.resolution == 128
        assert cfg == dataclasses.replace(get_config(arms[name].config), composite=None)
    composite = arms["composite"]
    assert composite.model_config() == get_config("dagan++-mobile") and composite.eval_sizes == (256, 128)
    args = argparse.Namespace(data=tmp_path, steps=600, batch_size=8, seed=0, val_every=200)
    train_cfg = ablation.training_config(composite, tmp_path / "composite", tmp_path / "depth", args)
    assert train_cfg.output_size == 256 and train_cfg.depth == tmp_path / "depth"
    assert train_cfg.gan_warmup_steps == train_cfg.steps == 600
    assert ablation.training_config(arms["fomm"], tmp_path / "fomm", None, args).output_size is None
    ablation.main(["--dry-run", "--out", str(tmp_path / "runs"), "--arms", "fomm", "composite"])
    plan = capsys.readouterr().out.splitlines()
    assert plan[1].split()[:5] == ["fomm", "fomm-mobile", "no", "128", "128"]
    assert plan[2].split()[:6] == ["composite", "dagan++-mobile", "yes", "256", "256,", "128"]
    assert not (tmp_path / "runs").exists()


def test_ablation_trains_an_arm_without_the_head(ablation, prepared, tmp_path):
    """One step of a tiny arm through the ablation's `train`: the exported model has no head."""
    arm = ablation.Arm("tiny", "fomm-tiny", None)
    args = argparse.Namespace(data=prepared, steps=1, batch_size=1, seed=0, val_every=0)
    with torch.enable_grad():  # the `eval` CLI test above turned it off for the process
        ablation.train(arm, dataclasses.replace(ablation.training_config(arm, tmp_path / "run", None, args),
                                                device="cpu", val_items=1))
    from sdk.checkpoint import load_model

    model = load_model(tmp_path / "run" / "model")
    assert model.cfg.composite is None and model.cfg.name == "fomm-tiny" and model.metadata["step"] == 1

"""Training: every loss on known inputs, then a few `tiny` steps of each stage on a synthetic
prepared dataset (checkpoints, resume, samples, exports, validation, a 2-process DDP run)."""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sdk.checkpoint import load_depth, load_model, save_depth, save_model
from sdk.data.datasets import FramePairDataset
from sdk.data.prepare import PREPARED_COLUMNS
from sdk.errors import ModelLoadError, SdkError
from sdk.face import MESH_REGIONS, NUM_LANDMARKS
from sdk.models import DepthNet, Keypoints, PoseNet, TalkingHeadModel, get_config
from sdk.models.pose_net import PoseOutput
from sdk.training.cli import add_train_verb, generator_config
from sdk.training.losses import (DepthLossWeights, RandomTransform, depth_loss, depth_warp,
                                 discriminator_adversarial_loss, equivariance_losses, feature_matching_loss,
                                 generator_adversarial_loss, image_pyramid, keypoint_distance_loss, mask_decisiveness_loss,
                                 photometric_error,
                                 pose_matrix, psnr, reconstruction_loss, rotation_from_axisangle, smoothness_loss, ssim)
from sdk.training.state import load_checkpoint
from sdk.training.config import DepthTrainConfig, GeneratorTrainConfig
from sdk.training.trainer import train_depth, train_generator

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("single_thread")

# ----------------------------------------------------------------------------------------------
# Losses on known inputs


def test_reconstruction_loss_ignores_pixels_of_zero_weight():
    target = torch.rand(2, 3, 32, 32)
    prediction = target.clone()
    prediction[..., 16:] = 1 - prediction[..., 16:]  # wrong only in the right half
    weight = torch.zeros(2, 1, 32, 32)
    weight[..., :16] = 1
    assert float(reconstruction_loss(prediction, target, (1.0,), weight)) < 0.05  # SSIM windows touch the seam
    assert float(reconstruction_loss(prediction, target, (1.0,))) > 0.2


def test_mask_decisiveness_is_zero_for_a_binary_mask():
    binary = (torch.rand(2, 1, 8, 8) > 0.5).float()
    assert float(mask_decisiveness_loss(binary)) == 0.0
    assert float(mask_decisiveness_loss(torch.full((1, 1, 4, 4), 0.5))) == pytest.approx(1.0)
    weight = torch.zeros(1, 1, 4, 4)
    weight[..., :2] = 1
    half = torch.cat([torch.zeros(1, 1, 4, 2), torch.full((1, 1, 4, 2), 0.5)], dim=-1)
    assert float(mask_decisiveness_loss(half, weight)) == 0.0  # the soft half lies outside the weight


def test_ssim_and_reconstruction_of_identical_images():
    image = torch.rand(2, 3, 64, 64)
    assert torch.allclose(ssim(image, image), torch.ones_like(image))
    assert float(reconstruction_loss(image, image)) == pytest.approx(0.0, abs=1e-6)
    assert float(reconstruction_loss(image, 1 - image)) > 0.5
    assert [level.shape[-1] for level in image_pyramid(image)] == [64, 32, 16, 8]
    assert float(psnr(image, (image + 0.1).clamp(0, 1)).min()) > 19.0


def test_least_squares_gan_and_feature_matching():
    ones, zeros = [torch.ones(2, 1, 5, 5)] * 2, [torch.zeros(2, 1, 5, 5)] * 2
    assert float(generator_adversarial_loss(ones)) == 0.0
    assert float(generator_adversarial_loss(zeros)) == 2.0  # (1 - 0)² per scale
    assert float(discriminator_adversarial_loss(ones, zeros)) == 0.0
    assert float(discriminator_adversarial_loss(zeros, ones)) == 4.0
    features = [[torch.rand(2, 4, 8, 8), torch.rand(2, 8, 4, 4)]]
    assert float(feature_matching_loss(features, features)) == 0.0
    shifted = [[f + 0.5 for f in features[0]]]
    assert float(feature_matching_loss(features, shifted)) == pytest.approx(1.0)


def test_keypoint_distance_loss():
    far = torch.tensor([[[-0.5, -0.5], [0.5, -0.5], [0.0, 0.5]]])
    assert float(keypoint_distance_loss(far, 0.2)) == 0.0
    close = torch.tensor([[[0.0, 0.0], [0.1, 0.0]]])  # one pair, 0.1 apart
    assert float(keypoint_distance_loss(close, 0.2)) == pytest.approx(0.1, abs=1e-5)
    same = torch.zeros(1, 2, 2, requires_grad=True)
    loss = keypoint_distance_loss(same, 0.2)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(0.2, abs=1e-5) and torch.isfinite(same.grad).all()


def test_random_transform_jacobian_matches_autograd():
    transform = RandomTransform(3, sigma_affine=0.1, sigma_tps=0.05, generator=torch.Generator().manual_seed(1))
    points = (torch.rand(3, 10, 2) * 2 - 1).requires_grad_(True)
    warped = transform.warp_coordinates(points)
    rows = [torch.autograd.grad(warped[..., i].sum(), points, retain_graph=True)[0] for i in range(2)]
    assert torch.allclose(transform.jacobian(points), torch.stack(rows, dim=-2), atol=1e-5)


def test_warp_image_samples_at_the_warped_coordinates():
    # A linear image f(x, y) = 0.3 + 0.2x + 0.1y is reproduced exactly by bilinear sampling.
    transform = RandomTransform(2, sigma_affine=0.05, sigma_tps=0.005, generator=torch.Generator().manual_seed(2))
    side = 32
    xs = torch.linspace(-1, 1, side)
    image = (0.3 + 0.2 * xs.view(1, side) + 0.1 * xs.view(side, 1)).expand(2, 1, side, side)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="xy"), dim=-1).view(1, -1, 2).expand(2, -1, -1)
    moved = transform.warp_coordinates(grid)
    expected = (0.3 + 0.2 * moved[..., 0] + 0.1 * moved[..., 1]).view(2, 1, side, side)
    inside = (moved.abs() <= 1).all(-1).view(2, 1, side, side)
    assert torch.allclose(transform.warp_image(image)[inside], expected[inside], atol=1e-5)


def test_equivariance_losses_vanish_for_an_equivariant_detector():
    # With an affine T(z) = A z + b, an equivariant detector finds kp_T = T⁻¹(kp), J_T = A⁻¹ J.
    transform = RandomTransform(2, sigma_affine=0.1, sigma_tps=0.0, generator=torch.Generator().manual_seed(3))
    a, b = transform.theta[:, :, :2], transform.theta[:, :, 2]
    kp = Keypoints(torch.rand(2, 5, 2) - 0.5, torch.eye(2) + 0.1 * torch.randn(2, 5, 2, 2))
    a_inv = torch.linalg.inv(a)[:, None]
    kp_transformed = Keypoints((a_inv @ (kp.value - b[:, None]).unsqueeze(-1)).squeeze(-1), a_inv @ kp.jacobian)
    value, jacobian = equivariance_losses(kp, kp_transformed, transform)
    assert float(value) < 1e-6 and float(jacobian) < 1e-5
    value, jacobian = equivariance_losses(kp, kp, transform)  # a detector that ignores the warp
    assert float(value) > 1e-3 and float(jacobian) > 1e-3


def _pinhole(n: int, focal: float, h: int, w: int) -> torch.Tensor:
    return torch.tensor([[focal, 0, (w - 1) / 2], [0, focal, (h - 1) / 2], [0, 0, 1.0]]).expand(n, 3, 3)


def test_depth_warp_identity_and_translation():
    reference = torch.rand(2, 3, 16, 20)
    depth = torch.rand(2, 1, 16, 20) + 1
    identity = pose_matrix(torch.zeros(2, 3), torch.zeros(2, 3))
    assert torch.allclose(depth_warp(reference, depth, identity, _pinhole(2, 20, 16, 20)), reference, atol=1e-5)
    # Constant depth 2, focal 10, translation 0.2 along x: every pixel moves by 10·0.2/2 = 1 pixel.
    shift = pose_matrix(torch.zeros(2, 3), torch.tensor([[0.2, 0.0, 0.0]] * 2))
    warped = depth_warp(reference, torch.full_like(depth, 2.0), shift, _pinhole(2, 10, 16, 20))
    assert torch.allclose(warped[..., :-1], reference[..., 1:], atol=1e-5)
    quarter_turn = rotation_from_axisangle(torch.tensor([[0.0, 0.0, math.pi / 2]]))
    assert torch.allclose(quarter_turn[0] @ torch.tensor([1.0, 0, 0]), torch.tensor([0.0, 1, 0]), atol=1e-6)


def test_photometric_error_and_smoothness():
    image = torch.rand(2, 3, 16, 16)
    assert float(photometric_error(image, image).abs().max()) < 1e-6
    assert float(photometric_error(image, 1 - image).mean()) > 0.1
    assert float(smoothness_loss(torch.full((2, 1, 16, 16), 3.0), image)) == 0.0
    disparity = torch.rand(2, 1, 16, 16) + 0.1
    # Mean-normalised: scaling the whole disparity map changes nothing.
    assert float(smoothness_loss(5 * disparity, image)) == pytest.approx(float(smoothness_loss(disparity, image)), rel=1e-5)


def _still_poses(n: int, h: int, w: int, uncertainty: torch.Tensor | None) -> list[PoseOutput]:
    return [PoseOutput(torch.zeros(n, 3), torch.zeros(n, 3), _pinhole(n, 20, h, w), uncertainty) for _ in range(2)]


def test_depth_loss_uncertainty_weighting_and_auto_mask():
    target = torch.rand(2, 3, 16, 16)
    references = torch.rand(2, 2, 3, 16, 16)
    depths = [torch.full((2, 1, 16, 16), 5.0), torch.full((2, 1, 8, 8), 5.0)]
    u = 0.3
    weights = DepthLossWeights(auto_mask=False)
    out = depth_loss(target, references, depths, _still_poses(2, 16, 16, torch.full((2, 1, 16, 16), u)), weights)
    error = torch.cat([photometric_error(references[:, r], target) for r in range(2)], 1).amin(1)
    # Identity pose: the warped references are the references; constant depth: no smoothness.
    assert float(out.total) == pytest.approx(float(error.mean()) / u + math.log(u), rel=1e-4)
    assert float(out.terms["log_uncertainty"]) == pytest.approx(math.log(u), rel=1e-5)
    plain = depth_loss(target, references, depths, _still_poses(2, 16, 16, None), weights)
    assert float(plain.total) == pytest.approx(float(error.mean()), rel=1e-4) and "log_uncertainty" not in plain.terms
    # A static scene: warping cannot beat the unwarped references, every pixel is auto-masked.
    still = depth_loss(target, target[:, None].expand(-1, 2, -1, -1, -1), depths, _still_poses(2, 16, 16, None))
    assert float(still.auto_mask.max()) == 0.0 and float(still.total) == 0.0


def test_depth_loss_trains_depth_and_pose_nets():
    cfg = get_config("dagan++-tiny")
    depth_net, pose_net = DepthNet(cfg), PoseNet(cfg)
    target, references = torch.rand(2, 3, 64, 64), torch.rand(2, 2, 3, 64, 64)
    poses = [pose_net(target, references[:, r]) for r in range(2)]
    out = depth_loss(target, references, depth_net(target), poses)
    out.total.backward()
    assert torch.isfinite(out.total)
    assert all(p.grad is not None for p in pose_net.uncertainty_head.parameters())
    assert all(torch.isfinite(v) for v in out.terms.values())


# ----------------------------------------------------------------------------------------------
# Training runs on a synthetic prepared dataset


def _write_clip(directory: Path, seed: int, frames: int, size: int) -> None:
    """A drawn face moving over a still background, as JPEG frames."""
    rng = np.random.default_rng(seed)
    background = [int(v) for v in rng.integers(30, 120, 3)]
    skin = [int(v) for v in rng.integers(140, 230, 3)]
    directory.mkdir(parents=True)
    for t in range(frames):
        image = np.full((size, size, 3), background, np.uint8)
        cx, cy = size / 2 + 5 * math.sin(t / 2 + seed), size / 2 + 3 * math.cos(t / 3)
        cv2.ellipse(image, (round(cx), round(cy)), (size // 4, size // 3), 4 * t, 0, 360, skin, -1)
        for side in (-1, 1):
            cv2.circle(image, (round(cx + side * size / 10), round(cy - size / 12)), 2, (20, 20, 20), -1)
        cv2.ellipse(image, (round(cx), round(cy + size / 8)), (size // 10, 1 + t % 3), 0, 0, 360, (40, 20, 90), -1)
        cv2.imwrite(str(directory / f"{t:06d}.jpg"), image)


@pytest.fixture(scope="module")
def synthetic_data(tmp_path_factory) -> Path:
    """Four 8-frame 64² clips in the prepared layout: two train identities, two test. Meshes:
    clip 0 scattered points (lips and eyes in its left half; no face the prior accepts), clips 1
    and 3 the face prior's face (frame 5 of clip 1 without a face), clip 2 none (no landmarks.npy)."""
    root = tmp_path_factory.mktemp("prepared")
    rows = []
    for index, split in enumerate(["train", "train", "test", "test"]):
        clip = f"synthetic-{index}"
        _write_clip(root / "clips" / clip / "frames", index, 8, 64)
        if index == 0:  # a crop whose right half ran past the source frame (coverage.png, 0 there)
            coverage = np.zeros((64, 64), np.uint8)
            coverage[:, :32] = 255
            cv2.imwrite(str(root / "clips" / clip / "coverage.png"), coverage)
            # a face mesh in the covered left half, in pixels of the 64² frames
            np.save(root / "clips" / clip / "landmarks.npy", _left_half_mesh(8, 64))
        if index in (1, 3):
            np.save(root / "clips" / clip / "landmarks.npy", _face_meshes(index, 8, 64, missing=(5,) if index == 1 else ()))
        rows.append({**{column: "" for column in PREPARED_COLUMNS}, "id": clip, "split": split,
                     "identity": f"person-{index}", "status": "ok", "fps": 25, "frames": 8, "face_frames": 8,
                     "size": 64, "has_audio": "no"})
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, PREPARED_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return root


def _left_half_mesh(frames: int, size: int) -> np.ndarray:
    """(frames, 478, 3) meshes whose lips and eyes sit in the left half of a size² crop."""
    rng = np.random.default_rng(0)
    points = rng.uniform(0, size, (frames, NUM_LANDMARKS, 3)).astype(np.float32)
    for name, centre in (("lips", (0.25, 0.7)), ("left_eye", (0.3, 0.35)), ("right_eye", (0.15, 0.35))):
        index = MESH_REGIONS[name]
        points[:, index, :2] = np.array(centre) * size + rng.normal(0, size / 40, (frames, len(index), 2))
    return points


def _face_meshes(seed: int, frames: int, size: int, missing: tuple[int, ...] = ()) -> np.ndarray:
    """(frames, 478, 3) meshes of the face prior's canonical face roughly where `_write_clip`
    draws the face (at `size`), turning a little and opening its mouth; NaN at frames `missing`."""
    from sdk.prior import load_prior, similarity_from_pose

    prior = load_prior("default")
    meshes = np.full((frames, NUM_LANDMARKS, 3), np.nan, np.float32)
    for t in range(frames):
        if t in missing:
            continue
        cx, cy = size / 2 + 5 * math.sin(t / 2 + seed) * size / 64, size / 2 + 3 * math.cos(t / 3) * size / 64
        centre = (np.array([cx, cy - size / 12]) - 0.5) * 2 / (size - 1) - 1  # keypoint coordinates
        pose = np.array([6 * math.sin(t), 3 * math.cos(t), 4 * t / frames, *centre, math.log(0.5)])
        expression = prior.basis.decode(np.array([0.3 * (t % 3), -0.1 * (t % 2)]))
        meshes[t] = similarity_from_pose(pose, size).apply(prior.canonical + expression)
    return meshes


def _quick(**overrides) -> dict:
    return {"batch_size": 2, "num_workers": 0, "log_interval": 1, "checkpoint_interval": 1, "sample_interval": 2,
            "val_interval": 2, "val_items": 2, "device": "cpu", **overrides}


@pytest.fixture(scope="module")
def depth_run(synthetic_data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "depth"
    result = train_depth(DepthTrainConfig(model="dagan++-tiny", data=synthetic_data, out=run, steps=2, **_quick()))
    assert result.step == 2 and all(math.isfinite(v) for v in result.losses.values())
    assert {"photometric", "smoothness", "log_uncertainty", "auto_mask", "total"} <= set(result.losses)
    return run


def test_depth_stage_writes_checkpoint_exports_and_samples_then_resumes(depth_run, synthetic_data):
    assert (depth_run / "samples" / "depth_0000002.png").is_file()
    assert list((depth_run / "logs").glob("events.out.tfevents.*"))
    stage = load_depth(depth_run / "model")
    assert stage.metadata["step"] == 2 and stage.config.name == "dagan++-tiny"
    assert load_depth(depth_run / "best_model").metadata["validation"]["photometric"] > 0
    assert int(load_checkpoint(depth_run / "checkpoint.pt")["step"]) == 2
    resumed = train_depth(DepthTrainConfig(model="dagan++-tiny", data=synthetic_data, out=depth_run, steps=3,
                                           **_quick()))
    assert resumed.step == 3 and int(load_checkpoint(depth_run / "checkpoint.pt")["step"]) == 3
    assert load_depth(depth_run / "model").metadata["step"] == 3


def test_generator_stage_resumes_exactly_where_it_stopped(depth_run, synthetic_data, tmp_path):
    common = dict(model="dagan++-tiny", data=synthetic_data, depth=depth_run, gan_warmup_steps=1)
    straight = train_generator(GeneratorTrainConfig(out=tmp_path / "straight", steps=3, **common, **_quick()))
    assert {"reconstruction", "generator_gan", "feature_matching", "discriminator_gan", "equivariance_value",
            "equivariance_jacobian", "keypoint_distance", "total"} <= set(straight.losses)
    assert all(math.isfinite(v) for v in straight.losses.values())
    run = tmp_path / "interrupted"
    train_generator(GeneratorTrainConfig(out=run, steps=2, **common, **_quick()))
    # The resumed run needs no --depth (the frozen depth net is in the checkpoint) and may use workers.
    resumed = train_generator(GeneratorTrainConfig(out=run, steps=3, **{**common, "depth": None},
                                                   **_quick(num_workers=1)))
    assert resumed.step == 3 and resumed.losses == straight.losses

    assert (run / "samples" / "generator_0000002.png").is_file()
    model = load_model(run / "model")
    assert model.metadata["step"] == 3 and model.metadata["dtype"] == "float32"
    assert load_model(run / "model-fp16").metadata["dtype"] == "float16"
    assert load_model(run / "best_model").metadata["validation"]["psnr"] == pytest.approx(resumed.best)
    trained_depth = load_depth(depth_run / "best_model").depth_net.state_dict()
    assert all(torch.equal(model.depth_net.state_dict()[k], v) for k, v in trained_depth.items())


def test_generator_starts_from_a_model_export_with_init(depth_run, synthetic_data, tmp_path):
    common = dict(model="dagan++-tiny", data=synthetic_data, **_quick(val_interval=0, sample_interval=0))
    train_generator(GeneratorTrainConfig(out=tmp_path / "first", steps=1, depth=depth_run, **common))
    start = load_model(tmp_path / "first" / "model")
    # A negligible lr: one Adam step moves each weight by about lr, so the continued run's weights
    # are the initial ones, depth net included (BatchNorm statistics do move with the forward pass).
    train_generator(GeneratorTrainConfig(out=tmp_path / "continued", steps=1, init=tmp_path / "first" / "model",
                                         lr=1e-9, **common))
    continued = dict(load_model(tmp_path / "continued" / "model").named_parameters())
    assert all(torch.allclose(continued[k], v, atol=1e-6) for k, v in start.named_parameters())
    with pytest.raises(ModelLoadError, match="differs from the run's dagan-tiny"):
        train_generator(GeneratorTrainConfig(**{**common, "model": "dagan-tiny"}, out=tmp_path / "other", steps=1,
                                             init=tmp_path / "first" / "model"))
    with pytest.raises(SdkError, match="drop --depth"):
        GeneratorTrainConfig(out=tmp_path / "both", steps=1, init="default", depth=depth_run, **common)


def test_frame_pairs_carry_the_coverage_flipped_with_the_frames(synthetic_data):
    dataset = FramePairDataset(synthetic_data, "train", size=64, augment=True)
    flips = set()
    for seed in range(8):
        torch.manual_seed(seed)
        item = dataset[0]  # clip 0: left half covered
        coverage = item["coverage"]
        assert coverage.shape == (1, 64, 64)
        flips.add(bool(coverage[0, 0, -1] > 0.5))
        assert bool(coverage[0, 0, 0] > 0.5) != bool(coverage[0, 0, -1] > 0.5)
    assert flips == {True, False}
    assert torch.equal(FramePairDataset(synthetic_data, "test", size=64)[0]["coverage"], torch.ones(1, 64, 64))


def test_frame_pairs_carry_the_driving_mouth_and_eyes_flipped_with_the_frames(synthetic_data):
    dataset = FramePairDataset(synthetic_data, "train", size=64, augment=True)
    for seed in range(6):
        torch.manual_seed(seed)
        item = dataset[0]
        regions, coverage = item["regions"], item["coverage"]
        assert regions.shape == (1, 64, 64) and 0 < float(regions.mean()) < 0.3
        assert float((regions * (1 - coverage)).sum()) == 0  # both on the same side after any flip
    no_mesh = FramePairDataset(synthetic_data, "test", size=64, augment=False)[0]["regions"]
    assert torch.equal(no_mesh, torch.zeros(1, 64, 64))  # a folder without landmarks.npy: no regions


def test_init_from_weights_without_the_composite_head_adds_one(synthetic_data, tmp_path):
    old = TalkingHeadModel(dataclasses.replace(get_config("fomm-tiny"), composite=None))
    save_model(old, tmp_path / "old", half=False)
    train_generator(GeneratorTrainConfig(model="fomm-tiny", data=synthetic_data, out=tmp_path / "run", steps=1,
                                         init=tmp_path / "old", lr=1e-9, **_quick(val_interval=0, sample_interval=0)))
    upgraded = load_model(tmp_path / "run" / "model")
    assert upgraded.cfg.composite is not None and upgraded.cfg.default_output_size == 128
    parameters = dict(upgraded.named_parameters())
    assert all(torch.allclose(parameters[k], v, atol=1e-6) for k, v in old.named_parameters())
    assert "generator.composite_head.weight" in parameters


def test_training_fails_loudly_on_bad_inputs(synthetic_data, depth_run, tmp_path):
    with pytest.raises(SdkError, match="no manifest.csv"):
        train_depth(DepthTrainConfig(model="dagan-tiny", data=tmp_path, out=tmp_path / "run", steps=1))
    with pytest.raises(SdkError, match="needs a trained depth net"):
        train_generator(GeneratorTrainConfig(model="dagan-tiny", data=synthetic_data, out=tmp_path / "g", steps=1))
    with pytest.raises(SdkError, match="no depth net"):
        train_generator(GeneratorTrainConfig(model="fomm-tiny", data=synthetic_data, out=tmp_path / "f", steps=1,
                                             depth=depth_run))
    mobile = get_config("dagan-mobile")
    save_depth(DepthNet(mobile), PoseNet(mobile), mobile, tmp_path / "mobile-depth")
    with pytest.raises(ModelLoadError, match="does not match dagan-tiny"):
        train_generator(GeneratorTrainConfig(model="dagan-tiny", data=synthetic_data, out=tmp_path / "m", steps=1,
                                             depth=tmp_path / "mobile-depth"))
    with pytest.raises(SdkError, match="not a depth run of dagan-tiny"):
        train_depth(DepthTrainConfig(model="dagan-tiny", data=synthetic_data, out=depth_run, steps=5))
    with pytest.raises(SdkError, match="steps must be at least 1"):
        DepthTrainConfig(model="dagan-tiny", data=synthetic_data, out=tmp_path, steps=0)
    with pytest.raises(SdkError, match="not a multiple of fomm-tiny's internal resolution 64"):
        train_generator(GeneratorTrainConfig(model="fomm-tiny", data=synthetic_data, out=tmp_path / "s", steps=1,
                                             output_size=96, **_quick(val_interval=0)))
    with pytest.raises(SdkError, match="patch_size 256 exceeds the output size 128"):
        train_generator(GeneratorTrainConfig(model="fomm-tiny", data=synthetic_data, out=tmp_path / "p", steps=1,
                                             patch_size=256, **_quick(val_interval=0)))


def test_cli_maps_flags_to_the_config(tmp_path):
    parser = argparse.ArgumentParser()
    add_train_verb(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(["train", "generator", "--config", "fomm-tiny", "--data", str(tmp_path), "--out",
                              str(tmp_path / "run"), "--steps", "7", "--batch-size", "3", "--gan-warmup", "0",
                              "--val-every", "0", "--no-amp"])
    cfg = generator_config(args)
    assert (cfg.steps, cfg.batch_size, cfg.gan_warmup_steps, cfg.val_interval, cfg.amp) == (7, 3, 0, 0, False)
    assert cfg.lr == 2e-4 and cfg.betas == (0.5, 0.999) and cfg.depth is None
    assert cfg.weights.composite_mask == 1.0
    args = parser.parse_args(["train", "generator", "--config", "fomm-tiny", "--data", str(tmp_path), "--out",
                              str(tmp_path / "run"), "--mask-weight", "0", "--size", "128", "--time-limit", "5"])
    cfg = generator_config(args)
    assert (cfg.weights.composite_mask, cfg.output_size, cfg.time_limit_minutes) == (0.0, 128, 5.0)
    assert (cfg.prior, cfg.expression_dropout) == ("default", 0.5)
    args = parser.parse_args(["train", "generator", "--config", "dagan++-mobile-prior", "--init", "default", "--data",
                              str(tmp_path), "--out", str(tmp_path / "run"), "--prior", str(tmp_path / "prior"),
                              "--expression-dropout", "0.25"])
    cfg = generator_config(args)
    assert (cfg.model, cfg.prior, cfg.expression_dropout) == ("dagan++-mobile-prior", str(tmp_path / "prior"), 0.25)


def test_fomm_trains_without_a_depth_net(synthetic_data, tmp_path):
    result = train_generator(GeneratorTrainConfig(model="fomm-tiny", data=synthetic_data, out=tmp_path / "fomm",
                                                  steps=1, **_quick(val_interval=0, sample_interval=1)))
    assert result.step == 1 and math.isfinite(result.losses["total"]) and result.best is None
    assert load_model(tmp_path / "fomm" / "model").depth_net is None
    assert not (tmp_path / "fomm" / "best_model").exists()


def test_two_process_ddp_run_with_torchrun(synthetic_data, depth_run, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "sdk", "train", "generator", "--config", "dagan++-tiny", "--depth", str(depth_run),
               "--data", str(synthetic_data), "--out", str(run), "--steps", "2", "--batch-size", "2", "--num-workers", "0", "--gan-warmup", "1",
               "--checkpoint-every", "2", "--sample-every", "2", "--val-every", "2", "--val-items", "2",
               "--device", "cpu"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoint = load_checkpoint(run / "checkpoint.pt")
    assert int(checkpoint["step"]) == 2 and len(checkpoint["rng"]) == 2  # both ranks' random states
    assert (run / "samples" / "generator_0000002.png").is_file() and (run / "best_model").is_dir()
    assert "step 2" in done.stdout


def test_device_training_script_packs_trains_and_brings_weights_back(synthetic_data, tmp_path):
    """bench/device_train.py, as the lent GPU runs it, on the CPU with a tiny model."""
    script = REPO / "bench" / "device_train.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    pack = tmp_path / "pack"
    done = subprocess.run([sys.executable, str(script), "pack", "--data", str(synthetic_data), "--out", str(pack),
                           "--budget-mib", "1", "--size", "64"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((pack / "pack.json").read_text())
    assert summary["clips"] == 4 and summary["mib"] <= 1 and (pack / "clips" / "synthetic-0" / "coverage.png").is_file()
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(script), "train", "--pack", str(pack), "--init", "none",
                           "--config", "fomm-tiny", "--out", str(out), "--minutes", "0.001", "--steps", "30",
                           "--batch-size", "2", "--num-workers", "0", "--checkpoint-every", "10",
                           "--run", str(tmp_path / "run"), "--device", "cpu"], env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 2 and "error: none: no such model" in done.stderr  # a bad --init is one error line
    save_model(TalkingHeadModel(get_config("fomm-tiny")), tmp_path / "start")
    done = subprocess.run([sys.executable, str(script), "train", "--pack", str(pack), "--init", str(tmp_path / "start"),
                           "--config", "fomm-tiny", "--out", str(out), "--minutes", "0.001", "--steps", "30",
                           "--batch-size", "2", "--num-workers", "0", "--checkpoint-every", "10",
                           "--run", str(tmp_path / "run"), "--device", "cpu"], env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    trained = json.loads((out / "train_summary.json").read_text())
    assert trained["steps"] == 10  # the time limit stopped it at the first log step, checkpointed
    assert load_model(out / "best_model-fp16").metadata["dtype"] == "float16"


# ----------------------------------------------------------------------------------------------
# Models driven by the face prior (issue 12): meshes in the pairs, 2-step runs, --init upgrade


def _plain_and_flipped(dataset_args: dict, index: int, seed: int = 0) -> tuple[dict, dict]:
    """The same pair without and with a flip (no colour jitter, so the frames compare exactly)."""
    from sdk.data.datasets import AugmentConfig

    items = []
    for probability in (0.0, 1.0):
        config = AugmentConfig(flip_probability=probability, brightness=0, contrast=0, saturation=0, hue=0)
        torch.manual_seed(seed)
        items.append(FramePairDataset(**dataset_args, augment=True, augment_config=config, meshes=True)[index])
    return items[0], items[1]


def test_frame_pairs_carry_meshes_flipped_with_the_frames(synthetic_data):
    from sdk.data.mesh_mirror import flip_meshes
    from sdk.face.regions import region_mask
    from sdk.prior import EncoderConfig, SemanticEncoder, load_prior

    args = dict(root=synthetic_data, split="train", size=64)
    plain, flipped = _plain_and_flipped(args, index=8 + 1)  # clip 1, frame 1: a face mesh
    assert torch.allclose(flipped["driving"], plain["driving"].flip(-1))
    for key in ("source_mesh", "driving_mesh"):
        assert plain[key].shape == (NUM_LANDMARKS, 3) and plain[key].dtype == torch.float32
        assert torch.allclose(flipped[key], torch.from_numpy(flip_meshes(plain[key].numpy(), 64)), equal_nan=True)
    # The flipped mesh is the face of the flipped frame: its regions are the flipped regions (within
    # the pixel that region_mask's rounding of continuous coordinates shifts them by), and the
    # encoder sees the same face turned the other way (yaw and roll negated, as good a fit).
    ys, xs = np.mgrid[:64, :64]
    centroid = lambda m: np.array([(m * xs).sum(), (m * ys).sum()]) / m.sum()  # noqa: E731
    offset = centroid(region_mask(flipped["driving_mesh"].numpy(), 64)) - centroid(flipped["regions"][0].numpy())
    assert abs(offset[0]) < 1.5 and abs(offset[1]) < 0.5
    encoder = SemanticEncoder(load_prior("default"), EncoderConfig(image_size=64))
    original = encoder.normalize(plain["driving_mesh"].numpy())
    mirrored = encoder.normalize(flipped["driving_mesh"].numpy())
    code, code_flipped = (encoder.code_of(fit.similarity, fit.mesh) for fit in (original, mirrored))
    assert code_flipped.pose[0] == pytest.approx(-code.pose[0], abs=0.5)
    assert code_flipped.pose[2] == pytest.approx(-code.pose[2], abs=0.5)
    assert mirrored.residual < 0.01 + original.residual
    unswapped = plain["driving_mesh"].numpy().copy()
    unswapped[:, 0] = 64 - unswapped[:, 0]  # mirrored x without swapping left and right points
    assert encoder.normalize(unswapped).residual > 10 * (original.residual + 0.01)
    # Without a face the meshes are NaN; without `meshes` the items are as before.
    assert torch.isnan(FramePairDataset(synthetic_data, "test", size=64, meshes=True)[0]["source_mesh"]).all()
    assert "source_mesh" not in FramePairDataset(synthetic_data, "train", size=64)[0]


def test_prior_model_trains_validates_and_exports(synthetic_data, tmp_path):
    from sdk.prior import load_prior

    run = tmp_path / "prior"
    result = train_generator(GeneratorTrainConfig(model="fomm-tiny-prior", data=synthetic_data, out=run, steps=2,
                                                  gan_warmup_steps=1, **_quick()))
    assert result.step == 2 and all(math.isfinite(v) for v in result.losses.values())
    assert {"reconstruction", "region_reconstruction", "composite_mask", "generator_gan", "flagged_pairs"} <= set(
        result.losses)
    assert not {"equivariance_value", "keypoint_distance"} & set(result.losses)  # no learned keypoints
    model = load_model(run / "model")
    assert model.kp_detector is None and model.generator.expression_modulation is not None
    prior = load_prior("default")
    assert model.metadata["face_prior"] == {"sha256": prior.sha256, "components": prior.components}
    assert model.prior().sha256 == prior.sha256 and isinstance(model.metadata["flagged_pairs"], int)
    scale = model.generator.expression_modulation.input_scale
    assert torch.allclose(scale, 1 / torch.as_tensor(prior.basis.energy[:16], dtype=torch.float32).sqrt())
    assert load_model(run / "best_model").metadata["validation"]["psnr"] > 0
    assert (run / "samples" / "generator_0000002.png").is_file()
    # Resuming with another prior is refused; with the same one it continues.
    from sdk.prior import save_prior

    save_prior(dataclasses.replace(prior, residual_limit=prior.residual_limit * 1.01), tmp_path / "other-prior")
    with pytest.raises(SdkError, match="resume with the same prior"):
        train_generator(GeneratorTrainConfig(model="fomm-tiny-prior", data=synthetic_data, out=run, steps=3,
                                             prior=tmp_path / "other-prior", **_quick()))
    assert train_generator(GeneratorTrainConfig(model="fomm-tiny-prior", data=synthetic_data, out=run, steps=3,
                                                **_quick())).step == 3


def test_hybrid_model_trains_with_its_learned_keypoints(depth_run, synthetic_data, tmp_path):
    result = train_generator(GeneratorTrainConfig(model="dagan++-tiny-hybrid", data=synthetic_data, depth=depth_run,
                                                  out=tmp_path / "hybrid", steps=2, gan_warmup_steps=1,
                                                  expression_dropout=1.0, **_quick()))
    assert result.step == 2 and all(math.isfinite(v) for v in result.losses.values())
    assert {"equivariance_value", "equivariance_jacobian", "keypoint_distance", "flagged_pairs"} <= set(result.losses)
    model = load_model(tmp_path / "hybrid" / "model")
    assert model.kp_detector.num_kp == 5 and model.generator.dense_motion.num_kp == 15


def test_init_upgrades_learned_weights_to_a_prior_model(synthetic_data, tmp_path):
    learned = TalkingHeadModel(get_config("fomm-tiny"))
    save_model(learned, tmp_path / "learned", half=False)
    common = dict(data=synthetic_data, steps=1, init=tmp_path / "learned", lr=1e-9,
                  **_quick(val_interval=0, sample_interval=0))
    for name in ("fomm-tiny-prior", "fomm-tiny-hybrid"):
        train_generator(GeneratorTrainConfig(model=name, out=tmp_path / name, **common))
        upgraded = dict(load_model(tmp_path / name / "model").named_parameters())
        shared = {k: v for k, v in learned.named_parameters() if k in upgraded and upgraded[k].shape == v.shape}
        assert all(torch.allclose(upgraded[k], v, atol=1e-6) for k, v in shared.items())
        generator = {k for k in upgraded if k.startswith("generator.") and "expression_modulation" not in k}
        assert generator <= set(shared)  # the whole generator (dense motion of K = 15 too) came along
        fresh = set(upgraded) - set(shared)
        assert {k.split(".")[0] + "." + k.split(".")[1] for k in fresh} <= {
            "generator.expression_modulation", "kp_detector.heatmap_head", "kp_detector.jacobian_head"}
    assert load_model(tmp_path / "fomm-tiny-prior" / "model").kp_detector is None
    save_model(TalkingHeadModel(get_config("dagan-tiny")), tmp_path / "dagan", half=False)
    with pytest.raises(ModelLoadError, match="differs from the run's fomm-tiny-prior"):
        train_generator(GeneratorTrainConfig(model="fomm-tiny-prior", out=tmp_path / "bad",
                                             **{**common, "init": tmp_path / "dagan"}))


def test_prior_training_fails_loudly_on_bad_inputs(synthetic_data, tmp_path):
    with pytest.raises(SdkError, match="expression_dropout must be in"):
        GeneratorTrainConfig(model="fomm-tiny-prior", data=synthetic_data, out=tmp_path, expression_dropout=1.5)
    with pytest.raises(ModelLoadError, match="no such face prior file"):
        train_generator(GeneratorTrainConfig(model="fomm-tiny-prior", data=synthetic_data, out=tmp_path / "p",
                                             steps=1, prior=tmp_path / "nowhere", **_quick(val_interval=0)))
    mesh_free = tmp_path / "mesh-free"
    (mesh_free / "clips").mkdir(parents=True)
    import shutil

    rows = list(csv.DictReader((synthetic_data / "manifest.csv").open()))
    for row in rows:
        shutil.copytree(synthetic_data / "clips" / row["id"] / "frames", mesh_free / "clips" / row["id"] / "frames")
    shutil.copy(synthetic_data / "manifest.csv", mesh_free / "manifest.csv")
    with pytest.raises(SdkError, match="validation needs held-out pairs with usable face meshes"):
        train_generator(GeneratorTrainConfig(model="fomm-tiny-prior", data=mesh_free, out=tmp_path / "v", steps=1,
                                             **_quick()))

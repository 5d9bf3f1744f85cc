"""The semantic face prior's math: Procrustes, basis, codes, flagged frames, controls, keypoints, receiver.

Meshes are synthetic (the shipped prior's canonical face, expressed and posed), so no mediapipe
and no prepared data are needed; the fit itself is tested in test_prior_file.py.
"""
from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pytest

from sdk.errors import NoFaceError, SdkError
from sdk.face.pose import rotation_angles, rotation_from_angles
from sdk.face.regions import MESH_REGIONS
from sdk.prior import (
    AvatarRig,
    ControlRangeWarning,
    EncoderConfig,
    MotionDelta,
    RigConfig,
    SemanticEncoder,
    Similarity,
    fit_basis,
    fit_similarity,
    keypoint_indices,
    load_prior,
    relative_motion,
    similarity_from_pose,
    to_keypoint_coords,
)
from sdk.prior.features import feature_index, measure_features
from sdk.prior.keypoints import KEYPOINT_PRIORITY, MAX_KEYPOINTS, from_keypoint_coords

SIZE = 256


@pytest.fixture(scope="module")
def prior():
    return load_prior("default")


def posed_mesh(prior, pose, expression=None, shape=None, size=SIZE) -> np.ndarray:
    """(478, 3) pixels: the canonical face (+ a face-shape offset) with `expression`, posed by `pose` (6,)."""
    normalized = prior.canonical + (0.0 if shape is None else shape)
    if expression is not None:
        normalized = normalized + prior.basis.decode(np.asarray(expression, dtype=np.float64))
    return similarity_from_pose(np.asarray(pose, dtype=np.float64), size).apply(normalized)


FRONTAL = [0.0, 0.0, 0.0, 0.02, 0.05, np.log(0.55)]


def test_rotation_angles_round_trip() -> None:
    for angles in [(0, 0, 0), (25, -12, 7), (-50, 30, -20)]:
        assert np.allclose(rotation_angles(rotation_from_angles(*angles)), angles)


def test_procrustes_recovers_a_known_similarity() -> None:
    rng = np.random.default_rng(0)
    source = rng.normal(size=(60, 3))
    truth = Similarity(rotation_from_angles(20, -10, 5), np.asarray(3.7), np.array([120.0, 90.0, -4.0]))
    target = truth.apply(source)
    weights = np.ones(60)
    weights[40:] = 0.0
    target[40:] += rng.normal(scale=30.0, size=(20, 3))  # outliers where the weight is zero change nothing
    fitted = fit_similarity(source, target, weights)
    assert np.allclose(fitted.rotation, truth.rotation)
    assert float(fitted.scale) == pytest.approx(3.7)
    assert np.allclose(fitted.translation, truth.translation)
    assert np.allclose(fitted.invert(fitted.apply(source)), source)
    # Batched over frames, and a mirrored target still gets a proper rotation.
    batched = fit_similarity(source, np.stack([target, target * [-1, 1, 1]]), weights)
    assert batched.rotation.shape == (2, 3, 3) and np.allclose(batched.rotation[0], truth.rotation)
    assert np.linalg.det(batched.rotation[1]) == pytest.approx(1.0)


def test_basis_round_trips() -> None:
    rng = np.random.default_rng(1)
    directions = np.linalg.qr(rng.normal(size=(478 * 3, 3)))[0].T  # 3 orthonormal directions
    coefficients = rng.normal(size=(200, 3)) * [3.0, 2.0, 1.0]
    offsets = (coefficients @ directions).reshape(200, 478, 3)
    basis = fit_basis(offsets, 3)
    assert np.all(np.diff(basis.energy) <= 0) and basis.explained() == pytest.approx(1.0)
    assert np.allclose(basis.decode(basis.encode(offsets)), offsets)
    assert np.allclose(basis.decode(basis.encode(offsets, 2)), basis.decode(basis.encode(offsets)[:, :2]))
    with pytest.raises(ValueError):
        basis.decode(np.zeros(4))


def test_shipped_basis_round_trips(prior) -> None:
    code = np.random.default_rng(2).normal(size=prior.components) * np.sqrt(prior.basis.energy)
    assert np.allclose(prior.basis.encode(prior.basis.decode(code)), code, atol=1e-3 * np.abs(code).max())


def test_encoder_recovers_pose_and_expression(prior) -> None:
    rng = np.random.default_rng(3)
    pose = np.array([18.0, -9.0, 6.0, -0.1, 0.08, np.log(0.5)])
    expression = rng.normal(size=prior.components) * np.sqrt(prior.basis.energy)
    frame = SemanticEncoder(prior).encode(posed_mesh(prior, pose, expression))
    assert frame.status == "ok"
    # Expression moves a few rigid points a little, so the pose is recovered to a fraction of a degree.
    assert np.allclose(frame.code.pose[:3], pose[:3], atol=0.5)
    assert np.allclose(frame.code.pose[3:], pose[3:], atol=5e-3)
    assert np.abs(frame.code.expression - expression).max() < 0.1 * np.abs(expression).max()
    short = SemanticEncoder(prior, EncoderConfig(components=8)).encode(posed_mesh(prior, pose, expression))
    assert short.code.expression.shape == (8,)


def test_flagged_frames_repeat_the_last_good_code(prior) -> None:
    encoder = SemanticEncoder(prior)
    nan_mesh = posed_mesh(prior, FRONTAL)
    nan_mesh[13] = np.nan
    first = encoder.encode(nan_mesh)
    assert first.flagged and first.status == "missing" and first.code is None
    good = encoder.encode(posed_mesh(prior, FRONTAL))
    assert not good.flagged
    profile = encoder.encode(posed_mesh(prior, [75.0, 0, 0, 0, 0, np.log(0.5)]))
    distorted = posed_mesh(prior, FRONTAL)
    rigid = prior.weights > 0
    distorted[rigid] += np.random.default_rng(4).normal(scale=15.0, size=(int(rigid.sum()), 3))
    for frame, status in [(encoder.encode(nan_mesh), "missing"), (encoder.encode(None), "missing"),
                          (profile, "out_of_range"), (encoder.encode(distorted), "poor_fit")]:
        assert frame.status == status and frame.code is good.code
    assert (encoder.stats.frames, encoder.stats.ok, encoder.stats.missing, encoder.stats.out_of_range,
            encoder.stats.poor_fit, encoder.stats.flagged) == (6, 1, 3, 1, 1, 5)
    with pytest.raises(SdkError, match="478, 3"):
        encoder.encode(np.zeros((468, 3)))
    with pytest.raises(SdkError):
        SemanticEncoder(prior, EncoderConfig(components=prior.components + 1))


def test_controls_set_levels_clamp_and_refuse_unknown_names(prior) -> None:
    controls = prior.controls
    start = np.random.default_rng(5).normal(size=prior.components) * 0.3 * np.sqrt(prior.basis.energy)
    edited = prior.apply_controls(start, {"mouth_open": 0.7})
    before, after = controls.read(start), controls.read(edited)
    assert after[0] == pytest.approx(0.7)
    assert np.allclose(after[1:], before[1:])
    both = controls.read(prior.apply_controls(start, {"eyes_closed": 0.5}))
    assert both[2] == pytest.approx(0.5) and both[3] == pytest.approx(0.5)
    with pytest.warns(ControlRangeWarning, match="smile=3"):
        clamped = prior.apply_controls(start, {"smile": 3.0})
    assert np.allclose(clamped, prior.apply_controls(start, {"smile": 1.0}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prior.apply_controls(start, {"smile": -1.0, "jaw_left_right": 0.2})
    with pytest.raises(SdkError, match="unknown expression control 'grin'"):
        prior.apply_controls(start, {"grin": 0.5})
    with pytest.raises(SdkError):
        prior.apply_controls(start, {"smile": float("nan")})
    # Fewer coefficients (the bitrate knob) still take edits.
    assert prior.apply_controls(start[:8], {"smile": 0.5}).shape == (8,)


def test_mouth_open_opens_the_mesh_mouth(prior) -> None:
    opened = prior.apply_controls(np.zeros(prior.components), {"mouth_open": 1.0})
    gap = feature_index("lip_gap")
    neutral = measure_features(prior.canonical)[gap]
    moved = measure_features(prior.canonical + prior.basis.decode(opened))[gap]
    # One unit of mouth_open is the train data's 99th percentile lip-gap increase.
    assert moved - neutral == pytest.approx(prior.controls.units[0], rel=0.3)


def test_keypoint_selection_order() -> None:
    assert MAX_KEYPOINTS == 40
    regions = {"mouth": ["lips"], "eyes": ["left_eye", "right_eye"], "nose": ["nose"],
               "brows": ["left_eyebrow", "right_eyebrow"], "contour": ["face_oval"]}
    for index, region in KEYPOINT_PRIORITY:
        assert any(index in MESH_REGIONS[name] for name in regions[region]), (index, region)
    order = ("mouth", "eyes", "nose", "brows", "contour")
    expected = {5: (2, 2, 1, 0, 0), 10: (4, 4, 1, 0, 1), 15: (6, 4, 2, 2, 1), 20: (6, 6, 2, 2, 4),
                30: (10, 8, 2, 4, 6)}
    for k, counts in expected.items():
        tally = Counter(region for _, region in KEYPOINT_PRIORITY[:k])
        assert tuple(tally[name] for name in order) == counts
        assert np.array_equal(keypoint_indices(k), keypoint_indices(MAX_KEYPOINTS)[:k])
    assert len(set(keypoint_indices(MAX_KEYPOINTS).tolist())) == MAX_KEYPOINTS
    for bad in (0, MAX_KEYPOINTS + 1):
        with pytest.raises(SdkError):
            keypoint_indices(bad)


def test_keypoint_coordinates_follow_the_model_grid() -> None:
    # Pixel centres of the edge pixels are -1 and 1 (make_coordinate_grid), x first.
    assert np.allclose(to_keypoint_coords(np.array([[0.5, SIZE - 0.5], [SIZE / 2, SIZE / 2]]), SIZE),
                       [[-1.0, 1.0], [0.0, 0.0]])
    points = np.random.default_rng(6).uniform(0, SIZE, size=(10, 2))
    assert np.allclose(from_keypoint_coords(to_keypoint_coords(points, SIZE), SIZE), points)


def test_unmoved_avatar_keypoints_are_its_own_mesh_points(prior) -> None:
    rng = np.random.default_rng(7)
    mesh = posed_mesh(prior, [12.0, 5.0, -4.0, 0.05, -0.02, np.log(0.6)],
                      rng.normal(size=prior.components) * 0.5 * np.sqrt(prior.basis.energy),
                      shape=rng.normal(scale=0.01, size=(478, 3)))
    rig = AvatarRig(prior, mesh, SIZE, RigConfig(num_keypoints=20))
    expected = to_keypoint_coords(mesh[keypoint_indices(20), :2], SIZE)
    for delta in (None, MotionDelta.identity(prior.components), relative_motion(rig.code, rig.code)):
        driven = rig.drive(delta)
        assert driven.value.shape == (20, 2) and driven.jacobian.shape == (20, 2, 2)
        assert np.allclose(driven.mesh, mesh, atol=1e-9)
        assert np.allclose(driven.value, expected, atol=1e-9)
    with pytest.raises(NoFaceError):
        AvatarRig(prior, np.full((478, 3), np.nan), SIZE)


def test_jacobians_follow_the_local_geometry(prior) -> None:
    frontal = AvatarRig(prior, posed_mesh(prior, FRONTAL), SIZE).drive()
    assert np.allclose(frontal.jacobian, np.eye(2), atol=1e-6)
    rolled = AvatarRig(prior, posed_mesh(prior, [0, 0, 30.0, 0, 0, FRONTAL[5]]), SIZE).drive()
    assert np.allclose(rolled.jacobian, rotation_from_angles(0, 0, 30.0)[:2, :2], atol=1e-6)


def test_receiver_transfers_the_drivers_motion_not_its_face(prior) -> None:
    rng = np.random.default_rng(8)
    energy = np.sqrt(prior.basis.energy)
    driver_shape = rng.normal(scale=0.02, size=(478, 3))
    anchor = posed_mesh(prior, [-5.0, 3.0, 0.0, 0.1, 0.0, np.log(0.4)], shape=driver_shape)
    expression = rng.normal(size=prior.components) * energy
    moved = posed_mesh(prior, [10.0, 3.0, 0.0, 0.2, 0.0, np.log(0.44)], expression, shape=driver_shape)
    encoder = SemanticEncoder(prior)
    delta = relative_motion(encoder.encode(moved).code, encoder.encode(anchor).code)
    avatar_pose = [2.0, -4.0, 3.0, -0.05, 0.1, np.log(0.6)]
    rig = AvatarRig(prior, posed_mesh(prior, avatar_pose), SIZE)
    driven = SemanticEncoder(prior).encode(rig.drive(delta).mesh).code
    assert driven.pose[0] - avatar_pose[0] == pytest.approx(15.0, abs=0.7)  # yaw delta transferred
    assert driven.pose[5] - avatar_pose[5] == pytest.approx(np.log(1.1), abs=0.01)
    # 0.1 of the driver's face units to the right -> 0.1 of the avatar's (which is 1.5x larger).
    assert driven.pose[3] - avatar_pose[3] == pytest.approx(0.1 * 0.6 / 0.4, abs=0.01)
    assert np.abs(driven.expression - rig.code.expression - expression).max() < 0.1 * np.abs(expression).max()


def test_edits_turn_the_head_about_the_neck_and_drivers_turns_stay_as_they_came(prior) -> None:
    from sdk.prior import Edits
    from sdk.prior.canonical import NECK_PIVOT

    avatar_pose = [8.0, -5.0, 3.0, 0.02, 0.05, np.log(0.55)]
    mesh = posed_mesh(prior, avatar_pose)
    at_neck, at_centroid = AvatarRig(prior, mesh, SIZE), AvatarRig(prior, mesh, SIZE, RigConfig(neck_pivot=(0, 0, 0)))
    encoder = SemanticEncoder(prior)
    for yaw in (15.0, -15.0):
        edit = Edits(yaw=yaw).apply(MotionDelta.identity(0), prior)
        assert np.allclose(edit.turn, rotation_from_angles(yaw, 0, 0)) and np.allclose(edit.rotation, edit.turn)
        turned = at_neck.drive(edit)
        code = encoder.encode(turned.mesh).code
        assert code.pose[0] == pytest.approx(avatar_pose[0] + yaw, abs=0.5)  # the same turn of the head
        # ... about the neck: the centroid moves by (I - turn) (pivot - centre), the pivot scale · R · NECK_PIVOT.
        scale = np.exp(avatar_pose[5])
        pivot = scale * at_neck.similarity.rotation @ np.array(NECK_PIVOT)
        assert np.allclose(code.pose[3:5] - avatar_pose[3:5], (pivot - edit.turn @ pivot)[:2], atol=2e-3)
        # About the centroid the face's front barely moves: what the dense motion could not follow.
        still = at_centroid.drive(edit)
        assert encoder.encode(still.mesh).code.pose[3:5] == pytest.approx(avatar_pose[3:5], abs=1e-6)
        rest = at_neck.drive().value
        assert (np.linalg.norm(turned.value - rest, axis=1).mean()
                > 3 * np.linalg.norm(still.value - rest, axis=1).mean())
    # A driver's own turn (no `turn`) already carries its translation: the pivot changes nothing.
    driver = relative_motion(encoder.encode(posed_mesh(prior, [20.0, 4.0, 0, 0.1, 0.0, np.log(0.5)])).code,
                             encoder.encode(posed_mesh(prior, [0.0, 0.0, 0, 0.0, 0.0, np.log(0.5)])).code)
    assert driver.turn is None
    assert np.allclose(at_neck.drive(driver).mesh, at_centroid.drive(driver).mesh)
    # An edit on top of a driver turns the driven head about its neck, frozen pose about the portrait's.
    both = Edits(yaw=10).apply(driver, prior)
    assert np.allclose(both.rotation, rotation_from_angles(10, 0, 0) @ driver.rotation)
    assert np.allclose(both.turn, rotation_from_angles(10, 0, 0))
    assert Edits(yaw=10, freeze_pose=True).apply(driver, prior).turn is not None
    assert Edits(freeze_pose=True).apply(driver, prior).turn is None

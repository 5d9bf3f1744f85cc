"""Audio-driven motion as semantic codes: pose deltas from a reference pose, and codes built back from them.

A pose delta (6,) is what `sdk.prior.relative_motion` measures between a code and its anchor,
written as numbers a network can predict:

    [yaw, pitch, roll] of R R_ref^T (degrees), (t - t_ref) / exp(log_scale_ref) (face units),
    log_scale - log_scale_ref

`apply_pose_delta(reference, delta)` inverts it, so codes built on the avatar's pose with
`speak_codes` give back exactly the predicted deltas under `relative_motion(code, neutral)`.
"""
from __future__ import annotations

import numpy as np

from ..face.pose import rotation_angles, rotation_from_angles
from ..prior.code import SemanticCode


def pose_delta(pose: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """pose (6,), reference (6,) (`sdk.prior.code.POSE_NAMES`) -> delta (6,)."""
    rotation = rotation_from_angles(*pose[:3]) @ rotation_from_angles(*reference[:3]).T
    translation = (pose[3:5] - reference[3:5]) / np.exp(reference[5])
    return np.array([*rotation_angles(rotation), *translation, pose[5] - reference[5]])


def apply_pose_delta(reference: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """The pose that is `delta` away from `reference` (the inverse of `pose_delta`)."""
    rotation = rotation_from_angles(*delta[:3]) @ rotation_from_angles(*reference[:3])
    translation = reference[3:5] + delta[3:5] * np.exp(reference[5])
    return np.array([*rotation_angles(rotation), *translation, reference[5] + delta[5]])


def neutral_code(pose: np.ndarray, dims: int) -> SemanticCode:
    """The avatar at rest: its own pose, expression zeros (the anchor of audio-driven codes)."""
    return SemanticCode(np.asarray(pose, dtype=np.float64), np.zeros(dims))


def speak_codes(pose: np.ndarray, expression: np.ndarray, pose_deltas: np.ndarray) -> list[SemanticCode]:
    """The avatar's pose (6,), expression deltas (J, E) and pose deltas (J, 6) -> J codes, each
    relative to `neutral_code(pose, E)` by exactly its deltas."""
    pose = np.asarray(pose, dtype=np.float64)
    return [SemanticCode(apply_pose_delta(pose, delta), np.asarray(coefficients, dtype=np.float64))
            for coefficients, delta in zip(expression, pose_deltas)]

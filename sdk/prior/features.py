"""Measured expression features of a pose-normalised mesh: the quantities the named controls are made of.

Pose-normalised meshes are in the canonical face's frame (see `sdk.prior.canonical`): x towards
the image's right (the subject's left), y down, z away from the camera, one unit = the distance
between the outer eye corners of the canonical face. Every feature is a length in those units,
so it compares across people and head poses.
"""
from __future__ import annotations

import numpy as np

from ..face.regions import MESH_REGIONS

UPPER_INNER_LIP, LOWER_INNER_LIP = 13, 14
RIGHT_MOUTH_CORNER, LEFT_MOUTH_CORNER = 61, 291
RIGHT_UPPER_LID, RIGHT_LOWER_LID = 159, 145
LEFT_UPPER_LID, LEFT_LOWER_LID = 386, 374
CHIN = 152
BROWS = np.concatenate([MESH_REGIONS["right_eyebrow"], MESH_REGIONS["left_eyebrow"]])

FEATURE_NAMES = ("lip_gap", "mouth_width", "right_eye_gap", "left_eye_gap", "brow_height", "jaw_x")
"""lip_gap: inner lower lip below inner upper lip (y); mouth_width: corner-to-corner distance (3D);
right/left_eye_gap: lower lid below upper lid (y), the subject's right and left; brow_height:
minus the mean y of both brows (larger = raised); jaw_x: the chin's x (the rigid frame's midline is
fixed, so it moves with the jaw: positive towards the image's right)."""


def measure_features(normalized: np.ndarray) -> np.ndarray:
    """normalized (..., 478, 3) pose-normalised meshes -> (..., 6) features in `FEATURE_NAMES` order."""
    y = normalized[..., 1]
    return np.stack([
        y[..., LOWER_INNER_LIP] - y[..., UPPER_INNER_LIP],
        np.linalg.norm(normalized[..., LEFT_MOUTH_CORNER, :] - normalized[..., RIGHT_MOUTH_CORNER, :], axis=-1),
        y[..., RIGHT_LOWER_LID] - y[..., RIGHT_UPPER_LID],
        y[..., LEFT_LOWER_LID] - y[..., LEFT_UPPER_LID],
        -y[..., BROWS].mean(-1),
        normalized[..., CHIN, 0],
    ], axis=-1)


def feature_index(name: str) -> int:
    return FEATURE_NAMES.index(name)

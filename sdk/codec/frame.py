"""One decoded frame of the code stream (each kind)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameCode:
    """A frame's code after decoding.

    keypoints: (K, 2) float32 in [-1, 1], x first.
    jacobians: (K, 2, 2) float32, or None when the stream carries none.
    extra: (D,) float32 extra code dims, or None when the header reserves none.
    """

    sequence: int
    timestamp_ms: int
    keyframe: bool
    keypoints: np.ndarray
    jacobians: np.ndarray | None
    extra: np.ndarray | None = None


@dataclass(frozen=True)
class SemanticFrameCode:
    """A frame of a semantic-code stream after decoding.

    pose: (6,) float64 yaw, pitch, roll (degrees), tx, ty (keypoint units), log_scale
        (`sdk.prior.code.POSE_NAMES`).
    expression: (E,) float64 coefficients of the face prior's basis; those the stream does not
        send are 0. `sdk.prior.SemanticCode(frame.pose, frame.expression)` is the code.
    """

    sequence: int
    timestamp_ms: int
    keyframe: bool
    pose: np.ndarray
    expression: np.ndarray


@dataclass(frozen=True)
class HybridFrameCode:
    """A frame of a hybrid stream after decoding: the semantic code, as in `SemanticFrameCode`,
    and the learned keypoints, as in `FrameCode`.

    pose (6,), expression (E,) float64 (coefficients not sent are 0); keypoints (K, 2) float32 in
    [-1, 1], x first; jacobians (K, 2, 2) float32, or None when the stream carries none.
    """

    sequence: int
    timestamp_ms: int
    keyframe: bool
    pose: np.ndarray
    expression: np.ndarray
    keypoints: np.ndarray
    jacobians: np.ndarray | None

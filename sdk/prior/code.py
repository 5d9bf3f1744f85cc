"""The semantic code of a frame (head pose + expression coefficients) and relative motion between codes.

Pose, 6 numbers, all independent of the crop's size in pixels:

    [yaw, pitch, roll, tx, ty, log_scale]

- yaw, pitch, roll: degrees, the rotation from the canonical (frontal) face to the observed one,
  decomposed as in `sdk.face.pose.head_pose` (Ry(yaw) Rx(pitch) Rz(roll) about camera axes;
  yaw > 0 turns towards the image's left, pitch > 0 tilts down, roll > 0 leans clockwise);
- tx, ty: where the rigid centroid (the canonical origin) is in the image, in the model's
  keypoint coordinates ([-1, 1], x first, y down, -1 and 1 the centres of the edge pixels);
- log_scale: natural log of one canonical unit (the outer-eye-corner distance) in those coordinates.

Expression: E coefficients of the prior's basis (`sdk.prior.basis`) of the pose-normalised mesh
minus the canonical neutral face. They hold the person's face shape too (as far as the basis
can express it), so animation uses relative motion: `relative_motion(code, anchor)` against the
driver's neutral code removes it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..face.pose import rotation_angles, rotation_from_angles
from .keypoints import from_keypoint_coords, to_keypoint_coords
from .procrustes import Similarity

POSE_NAMES = ("yaw", "pitch", "roll", "tx", "ty", "log_scale")


@dataclass(frozen=True)
class SemanticCode:
    """pose (6,) float64 as in `POSE_NAMES`; expression (E,) float64 basis coefficients."""

    pose: np.ndarray
    expression: np.ndarray

    def __post_init__(self) -> None:
        if self.pose.shape != (6,) or self.expression.ndim != 1:
            raise ValueError(f"a semantic code is pose (6,) + expression (E,), got {self.pose.shape}, "
                             f"{self.expression.shape}")

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) rotation from the canonical face to this frame's head."""
        return rotation_from_angles(*self.pose[:3])

    def truncated(self, dims: int) -> SemanticCode:
        """The same code with only the first `dims` expression coefficients (fewer bytes to send)."""
        return SemanticCode(self.pose, self.expression[:dims])


def pose_from_similarity(similarity: Similarity, image_size: int) -> np.ndarray:
    """A canonical-to-pixels `Similarity` (unbatched) of a size² crop -> pose (6,)."""
    yaw, pitch, roll = rotation_angles(similarity.rotation)
    tx, ty = to_keypoint_coords(similarity.translation[:2], image_size)
    log_scale = np.log(float(similarity.scale) * 2.0 / (image_size - 1))
    return np.array([yaw, pitch, roll, tx, ty, log_scale])


def similarity_from_pose(pose: np.ndarray, image_size: int, depth: float = 0.0) -> Similarity:
    """pose (6,) -> the canonical-to-pixels `Similarity` of a size² crop (z translation `depth`)."""
    x, y = from_keypoint_coords(np.asarray(pose[3:5], dtype=np.float64), image_size)
    scale = np.exp(pose[5]) * (image_size - 1) / 2.0
    return Similarity(rotation_from_angles(*pose[:3]), np.asarray(scale), np.array([x, y, depth]))


@dataclass(frozen=True)
class MotionDelta:
    """How a driver moved since an anchor code: applied to any face, it moves that face alike.

    rotation (3, 3): R_code R_anchor⁻¹ (camera axes); translation (2,): image motion of the rigid
    centroid in anchor face units (keypoint coordinates / exp(anchor log_scale)), so a face of a
    different size moves proportionally; log_scale: change of log_scale; expression (E,):
    coefficient change; turn (3, 3) | None: the part of `rotation` an edit added on top of the
    driver's (`rotation` = turn · the driver's), which the rig turns about the neck rather than
    the face's centroid (`sdk.prior.receiver`): a driver's own turns come with the translation
    they made, an edit's have none.
    """

    rotation: np.ndarray
    translation: np.ndarray
    log_scale: float
    expression: np.ndarray
    turn: np.ndarray | None = None

    @classmethod
    def identity(cls, dims: int) -> MotionDelta:
        """No motion: the avatar stays as in its portrait."""
        return cls(np.eye(3), np.zeros(2), 0.0, np.zeros(dims))


def relative_motion(code: SemanticCode, anchor: SemanticCode) -> MotionDelta:
    """The driver's motion from `anchor` (its neutral or first code) to `code`.

    Expressions of different lengths are compared over the shorter one.
    """
    dims = min(len(code.expression), len(anchor.expression))
    return MotionDelta(code.rotation @ anchor.rotation.T,
                       (code.pose[3:5] - anchor.pose[3:5]) / np.exp(anchor.pose[5]),
                       float(code.pose[5] - anchor.pose[5]),
                       code.expression[:dims] - anchor.expression[:dims])

"""The receiver's side: the avatar's own mesh, driven by a driver's motion, projected to K keypoints.

From the avatar's portrait mesh (once): its pose (similarity) and pose-normalised mesh. Per frame,
from a driver's `MotionDelta` (its code relative to its anchor, `sdk.prior.code.relative_motion`):

    normalised = avatar's normalised mesh + basis.decode(delta.expression)   (expression offsets)
    rotation   = delta.rotation @ avatar rotation                           (pose ⊕ pose delta)
    scale      = avatar scale · exp(delta.log_scale)
    centre     = avatar centre + delta.translation · avatar scale           (in the avatar's pixels)
                 + an edit's turn about the neck: (I - turn) · (pivot - centre)
    mesh       = scale · rotation · normalised + centre

where pivot - centre = scale · (driver rotation · avatar rotation) · `RigConfig.neck_pivot`: an
edit (`MotionDelta.turn`) turns the head about the neck, as a head turns, while a driver's own
turns already come with the translation they made.

so the avatar keeps its own face shape and only the driver's motion reaches it; with no motion
the driven mesh is the avatar's own mesh. Keypoints are the x, y of `keypoint_indices(K)` of that
mesh in the model's keypoint coordinates; Jacobians come from the mesh around each keypoint
(`sdk.prior.keypoints`). Projection is orthographic, as the mesh's own x, y are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import NoFaceError
from .canonical import NECK_PIVOT
from .code import MotionDelta, SemanticCode
from .encoder import EncoderConfig, SemanticEncoder, check_mesh
from .keypoints import NEIGHBOURS, JacobianFitter, keypoint_indices, neighbour_table, to_keypoint_coords
from .prior_file import FacePrior
from .procrustes import Similarity


@dataclass(frozen=True)
class RigConfig:
    """num_keypoints: K (see `sdk.prior.keypoints` for which points); neighbours: mesh points
    per keypoint that its Jacobian is fitted to; neck_pivot: where an edit turns the head about,
    canonical units from the rigid centroid (`canonical.NECK_PIVOT`; (0, 0, 0): the centroid)."""

    num_keypoints: int = 15
    neighbours: int = NEIGHBOURS
    neck_pivot: tuple[float, float, float] = NECK_PIVOT

    def __post_init__(self) -> None:
        if self.neighbours < 2:
            raise ValueError(f"a Jacobian needs at least 2 neighbours, got {self.neighbours}")


class DrivenKeypoints(NamedTuple):
    """value (K, 2) keypoint coordinates ([-1, 1], x first); jacobian (K, 2, 2); mesh (478, 3)
    the driven mesh in the avatar crop's pixels."""

    value: np.ndarray
    jacobian: np.ndarray
    mesh: np.ndarray


class AvatarRig:
    """One avatar's mesh, ready to be driven.

    mesh: (478, 3) the portrait's mesh in pixels of its size² crop (`image_size`). A mesh with
    NaN points is a NoFaceError: the portrait needs a face.
    """

    def __init__(self, prior: FacePrior, mesh: np.ndarray, image_size: int, config: RigConfig = RigConfig()):
        checked = check_mesh(mesh)
        if checked is None:
            raise NoFaceError("the avatar's mesh is missing or has NaN points: no face to drive")
        encoder = SemanticEncoder(prior, EncoderConfig(image_size=image_size))
        fitted = encoder.normalize(checked)
        self.prior = prior
        self.image_size = image_size
        self.similarity = fitted.similarity
        self.normalized = fitted.mesh
        self.code: SemanticCode = encoder.code_of(fitted.similarity, fitted.mesh)
        """The avatar's own code: the anchor that makes a driver's code absolute (self-reenactment)."""
        self.indices = keypoint_indices(config.num_keypoints)
        neighbours = neighbour_table(prior.canonical, self.indices, config.neighbours)
        self.jacobian_fitter = JacobianFitter(prior.canonical, self.indices, neighbours)
        self.keypoint_scale = float(self.similarity.scale) * 2.0 / (image_size - 1)
        self.neck_pivot = np.asarray(config.neck_pivot, dtype=np.float64)

    def driven_mesh(self, delta: MotionDelta | None = None) -> np.ndarray:
        """(478, 3) the avatar's mesh moved by `delta` (None: not moved), in its crop's pixels."""
        if delta is None:
            delta = MotionDelta.identity(0)
        normalized = self.normalized
        if len(delta.expression):
            normalized = normalized + self.prior.basis.decode(delta.expression)
        scale = float(self.similarity.scale) * np.exp(delta.log_scale)
        rotation = delta.rotation @ self.similarity.rotation
        translation = self.similarity.translation.copy()
        translation[:2] += delta.translation * float(self.similarity.scale)
        if delta.turn is not None:
            pivot = scale * (delta.turn.T @ rotation @ self.neck_pivot)  # the neck before the turn, from the centre
            translation += pivot - delta.turn @ pivot
        moved = Similarity(rotation, np.asarray(scale), translation)
        return moved.apply(normalized)

    def drive(self, delta: MotionDelta | None = None) -> DrivenKeypoints:
        """The K keypoints and Jacobians of the avatar moved by `delta` (None: its own)."""
        mesh = self.driven_mesh(delta)
        coords = to_keypoint_coords(mesh[:, :2], self.image_size)
        return DrivenKeypoints(coords[self.indices], self.jacobian_fitter(coords, self.keypoint_scale), mesh)

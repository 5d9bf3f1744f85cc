"""The sender's side: a tracked face mesh -> head pose + pose-normalised mesh -> `SemanticCode`, per frame.

Cost per frame: one weighted 3x3 Procrustes on the rigid points, one similarity applied to the
478 points and one (E x 1434) matrix-vector product; numpy only, no network.

A frame whose mesh cannot be trusted is flagged and the last good code is repeated (None before
the first good one), counted by status in `stats`:
- "missing": no mesh, or NaN / infinite points (no face, occlusion);
- "out_of_range": |yaw| or |pitch| beyond the config's limits (profiles the mesh gets wrong);
- "poor_fit": the rigid points are further from the canonical face than `prior.residual_limit`
  (a distorted or mis-tracked mesh).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import SdkError
from ..face.landmarks import NUM_LANDMARKS
from .code import SemanticCode, pose_from_similarity
from .prior_file import FacePrior
from .procrustes import Similarity, fit_similarity

STATUSES = ("ok", "missing", "out_of_range", "poor_fit")


@dataclass(frozen=True)
class EncoderConfig:
    """image_size: side in pixels of the square crop the meshes are in; components: expression
    coefficients to send (E' <= the prior's E; None: all); max_yaw / max_pitch: degrees beyond
    which a frame is flagged "out_of_range" (the train data reaches about 57 and 34)."""

    image_size: int = 256
    components: int | None = None
    max_yaw: float = 60.0
    max_pitch: float = 45.0

    def __post_init__(self) -> None:
        if self.image_size < 2:
            raise ValueError(f"image_size must be at least 2, got {self.image_size}")
        if self.components is not None and self.components < 1:
            raise ValueError(f"components must be >= 1, got {self.components}")


@dataclass
class EncoderStats:
    """Frames seen, by status (see the module docstring)."""

    frames: int = 0
    ok: int = 0
    missing: int = 0
    out_of_range: int = 0
    poor_fit: int = 0

    @property
    def flagged(self) -> int:
        return self.frames - self.ok


@dataclass(frozen=True)
class EncodedFrame:
    """code: this frame's code, or the last good code when flagged (None before the first good
    frame); status: one of STATUSES."""

    code: SemanticCode | None
    status: str

    @property
    def flagged(self) -> bool:
        return self.status != "ok"


class NormalizedMesh(NamedTuple):
    """similarity: canonical frame -> the mesh's pixels; mesh (478, 3) pose-normalised (canonical
    frame); residual: weighted RMS distance of its rigid points from the canonical face."""

    similarity: Similarity
    mesh: np.ndarray
    residual: float


def check_mesh(mesh: np.ndarray | None) -> np.ndarray | None:
    """A (478, 3) float64 copy of `mesh`, or None when it is missing or has non-finite points.
    A mesh of another shape is an SdkError (wrong landmark model or layout)."""
    if mesh is None:
        return None
    mesh = np.asarray(mesh, dtype=np.float64)
    if mesh.shape != (NUM_LANDMARKS, 3):
        raise SdkError(f"expected a face mesh of shape ({NUM_LANDMARKS}, 3) (x, y, z in pixels), got {mesh.shape}")
    return mesh if np.isfinite(mesh).all() else None


class SemanticEncoder:
    """Per-frame semantic codes of one stream of meshes (stateful: the last good code, stats)."""

    def __init__(self, prior: FacePrior, config: EncoderConfig = EncoderConfig()):
        if config.components is not None and config.components > prior.components:
            raise SdkError(f"{config.components} expression coefficients asked, the prior has {prior.components}")
        self.prior = prior
        self.config = config
        self.rigid = np.flatnonzero(prior.weights > 0)
        self.rigid_weights = prior.weights[self.rigid] / prior.weights[self.rigid].sum()
        self.rigid_canonical = prior.canonical[self.rigid]
        self.dims = config.components or prior.components
        self.stats = EncoderStats()
        self.last_good: SemanticCode | None = None

    def normalize(self, mesh: np.ndarray) -> NormalizedMesh:
        """mesh (478, 3) finite pixels -> its pose, pose-normalised mesh and rigid residual."""
        similarity = fit_similarity(self.rigid_canonical, mesh[self.rigid], self.rigid_weights)
        normalized = similarity.invert(mesh)
        offset = normalized[self.rigid] - self.rigid_canonical
        return NormalizedMesh(similarity, normalized, float(np.sqrt(self.rigid_weights @ (offset * offset).sum(-1))))

    def code_of(self, similarity: Similarity, normalized: np.ndarray) -> SemanticCode:
        """The code of a mesh already normalised (for callers that also need the mesh)."""
        pose = pose_from_similarity(similarity, self.config.image_size)
        return SemanticCode(pose, self.prior.basis.encode(normalized - self.prior.canonical, self.dims))

    def encode(self, mesh: np.ndarray | None) -> EncodedFrame:
        """One frame: mesh (478, 3) in pixels of the config's crop, or None -> `EncodedFrame`."""
        self.stats.frames += 1
        checked = check_mesh(mesh)
        status = "missing"
        if checked is not None:
            fitted = self.normalize(checked)
            code = self.code_of(fitted.similarity, fitted.mesh)
            if abs(code.pose[0]) > self.config.max_yaw or abs(code.pose[1]) > self.config.max_pitch:
                status = "out_of_range"
            elif fitted.residual > self.prior.residual_limit:
                status = "poor_fit"
            else:
                status = "ok"
                self.last_good = code
        setattr(self.stats, status, getattr(self.stats, status) + 1)
        return EncodedFrame(self.last_good, status)

    def reset(self) -> None:
        """Forget the last good code (a new stream); the stats keep counting."""
        self.last_good = None

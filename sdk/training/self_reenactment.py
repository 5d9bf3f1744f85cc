"""Self-reenactment inputs of prior and hybrid models: what a receiver would compute, for a batch of mesh pairs.

Per (source frame, driving frame) pair of one clip, with the source frame as the avatar and its
own code as the anchor (batched numpy, no mediapipe: the meshes come from the prepared folder):

    code_s, code_d = the frames' semantic codes               (`sdk.prior.SemanticEncoder`)
    motion        = relative_motion(code_d, code_s)           (`sdk.prior.relative_motion`)
    keypoints     = AvatarRig(source mesh).drive(motion)      (`sdk.prior.AvatarRig`)

The rig keeps the source's face shape and takes the driver's pose and expression, so here the
driven mesh is the source's pose-normalised mesh plus the decoded expression change, at the
driving frame's rotation, scale and image position; `SelfReenactment` computes exactly that for the
whole batch at once (one batched Procrustes per side), and the tests check it against the
per-frame receiver path.

Expression dropout (seed 002 §3.4): each pair may get a cut c, and the expression change keeps
only its first c coefficients, both in the code the decoder sees and in the keypoints (the
receiver derives them from the dimensions it received), so a model trained this way can be sent
fewer dimensions.

Flagged pairs: a source or driving mesh that `SemanticEncoder` would flag (missing / NaN points,
|yaw| or |pitch| beyond `EncoderConfig`'s limits, rigid points beyond the prior's residual limit)
makes the pair invalid; its keypoints are the source's own (no motion) and the caller masks its
losses and counts it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..face.landmarks import NUM_LANDMARKS
from ..models.config import SemanticConfig
from ..models.motion import Keypoints
from ..models.semantic_inputs import prior_keypoints
from ..prior import EncoderConfig, FacePrior, Similarity, fit_similarity, keypoint_indices, to_keypoint_coords
from ..prior.keypoints import JacobianFitter, neighbour_table


@dataclass(frozen=True)
class SelfReenactmentInputs:
    """kp_source, kp_driving: the prior's K keypoints (N, K, 2) + Jacobians (N, K, 2, 2);
    expression (N, E) float32 relative to the source frame (zero beyond each pair's cut);
    valid (N,) float32, 1 where both meshes are usable."""

    kp_source: Keypoints
    kp_driving: Keypoints
    expression: Tensor
    valid: Tensor

    def to(self, device: torch.device) -> SelfReenactmentInputs:
        move = lambda kp: Keypoints(kp.value.to(device), kp.jacobian.to(device))  # noqa: E731
        return SelfReenactmentInputs(move(self.kp_source), move(self.kp_driving), self.expression.to(device),
                                     self.valid.to(device))


class SelfReenactment:
    """(source meshes, driving meshes) (N, 478, 3) in pixels of size² crops -> SelfReenactmentInputs."""

    def __init__(self, prior: FacePrior, semantic: SemanticConfig, image_size: int,
                 limits: EncoderConfig = EncoderConfig()):
        if semantic.expression_dims > prior.components:
            raise ValueError(f"the model takes {semantic.expression_dims} expression coefficients, the face "
                             f"prior has {prior.components}")
        self.prior = prior
        self.semantic = semantic
        self.image_size = image_size
        self.limits = limits
        self.rigid = np.flatnonzero(prior.weights > 0)
        self.rigid_weights = prior.weights[self.rigid] / prior.weights[self.rigid].sum()
        self.indices = keypoint_indices(semantic.prior_keypoints)
        self.jacobians = JacobianFitter(prior.canonical, self.indices, neighbour_table(prior.canonical, self.indices))
        # Stand-in for an unusable mesh, so the batch stays finite: the canonical face mid-crop.
        self.placeholder = prior.canonical * (image_size / 4) + image_size / 2

    def normalize(self, meshes: np.ndarray) -> tuple[Similarity, np.ndarray, np.ndarray]:
        """meshes (N, 478, 3) finite -> similarities (N), pose-normalised meshes, rigid residuals (N,)."""
        canonical = self.prior.canonical
        similarity = fit_similarity(canonical[self.rigid], meshes[:, self.rigid], self.rigid_weights)
        normalized = similarity.invert(meshes)
        offset = normalized[:, self.rigid] - canonical[self.rigid]
        return similarity, normalized, np.sqrt((offset * offset).sum(-1) @ self.rigid_weights)

    def usable(self, meshes: np.ndarray, similarity: Similarity, residual: np.ndarray, finite: np.ndarray) -> np.ndarray:
        """(N,) bool: the meshes `SemanticEncoder` would not flag."""
        rotation = similarity.rotation
        yaw = np.degrees(np.arctan2(rotation[:, 0, 2], rotation[:, 2, 2]))
        pitch = np.degrees(np.arcsin(np.clip(-rotation[:, 1, 2], -1.0, 1.0)))
        return (finite & (np.abs(yaw) <= self.limits.max_yaw) & (np.abs(pitch) <= self.limits.max_pitch)
                & (residual <= self.prior.residual_limit))

    def keypoints(self, meshes: np.ndarray, similarity_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """meshes (N, 478, 3) pixels, the avatar's scale (N,) -> values (N, K, 2), Jacobians (N, K, 2, 2)."""
        coords = to_keypoint_coords(meshes[..., :2], self.image_size)
        fitter = self.jacobians
        image = coords[:, fitter.neighbours] - coords[:, fitter.indices, None, :]  # (N, K, n, 2)
        scale = similarity_scale * 2.0 / (self.image_size - 1)
        jacobian = np.swapaxes(fitter.solve @ image, -1, -2) / scale[:, None, None, None]
        return coords[:, self.indices], jacobian

    def __call__(self, source: np.ndarray, driving: np.ndarray, cuts: np.ndarray | None = None,
                 like: Tensor | None = None) -> SelfReenactmentInputs:
        """source, driving (N, 478, 3) pixels (NaN where missing); cuts (N,) expression dimensions
        kept per pair (None: all E) -> inputs as float32 tensors on `like`'s device (CPU by default)."""
        source = np.asarray(source, dtype=np.float64)
        driving = np.asarray(driving, dtype=np.float64)
        if source.shape != driving.shape or source.shape[1:] != (NUM_LANDMARKS, 3):
            raise ValueError(f"expected two (N, {NUM_LANDMARKS}, 3) mesh batches, got {source.shape}, {driving.shape}")
        finite = [np.isfinite(m).all(axis=(1, 2)) for m in (source, driving)]
        source = np.where(finite[0][:, None, None], source, self.placeholder)
        driving = np.where(finite[1][:, None, None], driving, self.placeholder)
        sim_s, norm_s, residual_s = self.normalize(source)
        sim_d, norm_d, residual_d = self.normalize(driving)
        valid = (self.usable(source, sim_s, residual_s, finite[0]) & self.usable(driving, sim_d, residual_d, finite[1]))

        dims = self.semantic.expression_dims
        basis, canonical = self.prior.basis, self.prior.canonical
        expression = basis.encode(norm_d - canonical, dims) - basis.encode(norm_s - canonical, dims)
        if cuts is not None:
            expression = np.where(np.arange(dims)[None, :] < np.asarray(cuts)[:, None], expression, 0.0)
        expression[~valid] = 0.0
        # AvatarRig.driven_mesh for the source as avatar and motion = relative_motion(code_d, code_s):
        # rotation R_d, scale s_d, image position of the driving frame (depth of the source's).
        translation = np.concatenate([sim_d.translation[:, :2], sim_s.translation[:, 2:]], axis=1)
        driven = Similarity(sim_d.rotation, sim_d.scale, translation).apply(norm_s + basis.decode(expression))
        driven = np.where(valid[:, None, None], driven, source)

        like = torch.empty(0) if like is None else like
        value_s, jacobian_s = self.keypoints(source, sim_s.scale)
        value_d, jacobian_d = self.keypoints(driven, sim_s.scale)
        return SelfReenactmentInputs(prior_keypoints(value_s, jacobian_s, self.semantic, like),
                                     prior_keypoints(value_d, jacobian_d, self.semantic, like),
                                     torch.as_tensor(expression.astype(np.float32), device=like.device),
                                     torch.as_tensor(valid.astype(np.float32), device=like.device))


def expression_cuts(count: int, dims: int, probability: float, generator: torch.Generator | None = None
                    ) -> np.ndarray | None:
    """Expression dropout: per item, with `probability`, a cut c uniform in [0, dims) (keep the
    first c coefficients, zero the rest), else dims (keep all); None when `probability` is 0.
    Drawn from torch's generator, so a seeded run draws the same cuts."""
    if probability <= 0:
        return None
    dropped = torch.rand(count, generator=generator) < probability
    cuts = torch.randint(0, dims, (count,), generator=generator)
    return torch.where(dropped, cuts, torch.full_like(cuts, dims)).numpy()

"""The face prior's numpy outputs as the generator's tensors (prior and hybrid configs, issue 12).

One conversion for the receiver (every runtime backend, `TalkingHeadModel.drive`) and for training
(`sdk.training.self_reenactment`), so both feed the generator alike:

- rigs: one `sdk.prior.AvatarRig` per avatar from its mesh (`avatar_rigs`); its unmoved keypoints
  are the source keypoints (`rest_keypoints`), its driven ones the driving keypoints (`driven_keypoints`);

- keypoints: values (N, K, 2) in the model's coordinates and Jacobians (N, K, 2, 2) from
  `sdk.prior.AvatarRig`; with `SemanticConfig.jacobians == "identity"` the Jacobians are replaced
  by the identity (each prior keypoint moves by translation only);
- expression: the first E coefficients of each relative expression, zero-padded to E (a stream
  that sends fewer dimensions leaves the rest at "no change").
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..prior import AvatarRig, FacePrior, MotionDelta, RigConfig
from .config import SemanticConfig
from .motion import Keypoints


def prior_keypoints(values: np.ndarray, jacobians: np.ndarray, semantic: SemanticConfig, like: Tensor) -> Keypoints:
    """values (N, K, 2), jacobians (N, K, 2, 2) numpy -> Keypoints on `like`'s device and dtype."""
    value = torch.as_tensor(np.asarray(values, dtype=np.float32), device=like.device).to(like.dtype)
    if semantic.jacobians == "identity":
        jacobian = torch.eye(2, device=like.device, dtype=like.dtype).expand(*value.shape[:2], 2, 2)
    else:
        jacobian = torch.as_tensor(np.asarray(jacobians, dtype=np.float32), device=like.device).to(like.dtype)
    return Keypoints(value, jacobian)


def expression_array(expressions: Sequence[np.ndarray], dims: int) -> np.ndarray:
    """Per item a relative expression (E_i,) -> (N, dims) float32: truncated or zero-padded to `dims`."""
    out = np.zeros((len(expressions), dims), np.float32)
    for row, expression in zip(out, expressions):
        used = min(dims, len(expression))
        row[:used] = expression[:used]
    return out


def concat_keypoints(first: Keypoints, second: Keypoints | None) -> Keypoints:
    """The prior's keypoints, then the learned ones (hybrid), along K."""
    if second is None:
        return first
    return Keypoints(torch.cat([first.value, second.value], dim=1), torch.cat([first.jacobian, second.jacobian], dim=1))


def avatar_rigs(prior: FacePrior, avatar_mesh: np.ndarray, count: int, size: int, semantic: SemanticConfig
                ) -> tuple[AvatarRig, ...]:
    """Each avatar's mesh, (count, 478, 3) or (478, 3) in its size² portrait's pixels -> its rig
    (a mesh with NaN points is a NoFaceError)."""
    meshes = np.asarray(avatar_mesh, dtype=np.float64)
    meshes = meshes[None] if meshes.ndim == 2 else meshes
    if len(meshes) != count:
        raise ValueError(f"{len(meshes)} avatar meshes for {count} portraits")
    rig_config = RigConfig(num_keypoints=semantic.prior_keypoints)
    return tuple(AvatarRig(prior, mesh, size, rig_config) for mesh in meshes)


def rest_keypoints(rigs: Sequence[AvatarRig], semantic: SemanticConfig, like: Tensor) -> Keypoints:
    """The avatars' own prior keypoints (N, K, 2) + Jacobians: the source keypoints."""
    driven = [rig.drive() for rig in rigs]
    return prior_keypoints(np.stack([d.value for d in driven]), np.stack([d.jacobian for d in driven]), semantic, like)


def driven_keypoints(rigs: Sequence[AvatarRig], motions: Sequence[MotionDelta], semantic: SemanticConfig,
                     like: Tensor) -> tuple[Keypoints, Tensor]:
    """One driver motion per avatar (an expression of any length, used up to E) -> the prior
    keypoints (N, K, 2) + Jacobians and the expression (N, E) the decoder sees.

    The keypoints follow the expression the decoder sees: a stream of E' < E dimensions moves the
    avatar's mesh and modulates the decoder with the same E'.
    """
    if len(motions) != len(rigs):
        raise ValueError(f"{len(motions)} motions for {len(rigs)} avatars")
    dims = semantic.expression_dims
    motions = [dataclasses.replace(motion, expression=motion.expression[:dims]) for motion in motions]
    driven = [rig.drive(motion) for rig, motion in zip(rigs, motions)]
    keypoints = prior_keypoints(np.stack([d.value for d in driven]), np.stack([d.jacobian for d in driven]),
                                semantic, like)
    expression = torch.as_tensor(expression_array([m.expression for m in motions], dims), device=like.device)
    return keypoints, expression.to(like.dtype)

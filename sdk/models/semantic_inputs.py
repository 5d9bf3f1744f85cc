"""The face prior's numpy outputs as the generator's tensors (prior and hybrid configs, issue 12).

One conversion for the receiver (`TalkingHeadModel.drive`) and for training
(`sdk.training.self_reenactment`), so both feed the generator alike:

- keypoints: values (N, K, 2) in the model's coordinates and Jacobians (N, K, 2, 2) from
  `sdk.prior.AvatarRig`; with `SemanticConfig.jacobians == "identity"` the Jacobians are replaced
  by the identity (each prior keypoint moves by translation only);
- expression: the first E coefficients of each relative expression, zero-padded to E (a stream
  that sends fewer dimensions leaves the rest at "no change").
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

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

"""Keypoints and the motion maths shared by the networks: grids, Gaussians, warping, relative motion.

Coordinates follow `sdk.media`: [-1, 1], x first. -1 and 1 are the centres of the border pixels,
so every `grid_sample` here uses ``align_corners=True``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Keypoints:
    """K keypoints per image: `value` (N, K, 2) in [-1, 1], x first; `jacobian` (N, K, 2, 2)."""
    value: Tensor
    jacobian: Tensor

    def detach(self) -> Keypoints:
        return Keypoints(self.value.detach(), self.jacobian.detach())


def make_coordinate_grid(h: int, w: int, device: torch.device | None = None,
                         dtype: torch.dtype = torch.float32) -> Tensor:
    """Pixel-centre coordinates (h, w, 2) in [-1, 1], x first: the identity sampling grid."""
    xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=dtype)
    ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=dtype)
    return torch.stack([xs.view(1, w).expand(h, w), ys.view(h, 1).expand(h, w)], dim=-1)


def invert_2x2(matrix: Tensor) -> Tensor:
    """Closed-form inverse of (..., 2, 2) matrices (ONNX has no matrix inverse op)."""
    a, b = matrix[..., 0, 0], matrix[..., 0, 1]
    c, d = matrix[..., 1, 0], matrix[..., 1, 1]
    det = a * d - b * c
    row0 = torch.stack([d, -b], dim=-1)
    row1 = torch.stack([-c, a], dim=-1)
    return torch.stack([row0, row1], dim=-2) / det[..., None, None]


def keypoint_gaussians(value: Tensor, grid: Tensor, variance: float) -> Tensor:
    """Isotropic Gaussians around keypoints: value (N, K, 2), grid (h, w, 2) -> (N, K, h, w)."""
    offset = grid[None, None] - value[:, :, None, None, :]
    return torch.exp(-0.5 * (offset * offset).sum(-1) / variance)


def sparse_motions(grid: Tensor, kp_driving: Keypoints, kp_source: Keypoints) -> Tensor:
    """First-order motion per keypoint plus the identity for the background.

    For driving-frame coordinate z, keypoint k maps it to the source frame by
    kp_s + J_s J_d^-1 (z - kp_d). grid (h, w, 2) -> (N, K+1, h, w, 2), background first.
    """
    n, k = kp_driving.value.shape[:2]
    h, w = grid.shape[:2]
    jacobian = kp_source.jacobian @ invert_2x2(kp_driving.jacobian)  # (N, K, 2, 2)
    offset = grid[None, None] - kp_driving.value[:, :, None, None, :]  # (N, K, h, w, 2)
    mapped = (jacobian[:, :, None, None] @ offset.unsqueeze(-1)).squeeze(-1)
    mapped = mapped + kp_source.value[:, :, None, None, :]
    identity = grid[None, None].expand(n, 1, h, w, 2)
    return torch.cat([identity, mapped], dim=1)


def resize_deformation(deformation: Tensor, h: int, w: int) -> Tensor:
    """Resample a sampling grid (N, h0, w0, 2) to (N, h, w, 2).

    Bilinear with align_corners=True keeps an identity grid exactly the identity at the new size.
    """
    resized = F.interpolate(deformation.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=True)
    return resized.permute(0, 2, 3, 1)


def warp(features: Tensor, grid: Tensor) -> Tensor:
    """Backward-warp features (N, C, H, W) with a sampling grid (N, H, W, 2) -> (N, C, H, W)."""
    return F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def keypoint_hull_area(kp: Keypoints | Tensor) -> Tensor:
    """Area (N,) of the convex hull of each image's keypoints (N, K, 2), for movement-scale adaptation."""
    from scipy.spatial import ConvexHull

    value = kp.value if isinstance(kp, Keypoints) else kp
    points = value.detach().cpu().double().numpy()
    # In 2-D, scipy's hull "volume" is the enclosed area.
    areas = np.array([ConvexHull(image_points).volume for image_points in points])
    return torch.as_tensor(areas, dtype=value.dtype, device=value.device)


def relative_keypoints(kp_driving: Keypoints, kp_driving_initial: Keypoints, kp_source: Keypoints,
                       use_jacobian: bool = True, adapt_movement_scale: bool = False,
                       source_area: Tensor | float | None = None,
                       driving_area: Tensor | float | None = None) -> Keypoints:
    """FOMM's relative motion transfer: move the source keypoints as the driving ones moved.

    value = source + (driving - driving_initial) * scale, with scale = sqrt(source_area /
    driving_area) when `adapt_movement_scale` (areas from `keypoint_hull_area` of the source and
    the initial driving keypoints), else 1. jacobian = (J_d J_d0^-1) J_s when `use_jacobian`,
    else the source Jacobian.
    """
    scale: Tensor | float = 1.0
    if adapt_movement_scale:
        if source_area is None or driving_area is None:
            raise ValueError("adapt_movement_scale needs source_area and driving_area")
        scale = torch.sqrt(torch.as_tensor(source_area, dtype=kp_source.value.dtype, device=kp_source.value.device)
                           / torch.as_tensor(driving_area, dtype=kp_source.value.dtype, device=kp_source.value.device))
        scale = scale.reshape(-1, 1, 1)
    value = kp_source.value + (kp_driving.value - kp_driving_initial.value) * scale
    jacobian = kp_source.jacobian
    if use_jacobian:
        jacobian = kp_driving.jacobian @ invert_2x2(kp_driving_initial.jacobian) @ kp_source.jacobian
    return Keypoints(value, jacobian)

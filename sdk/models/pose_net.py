"""Pose network for self-supervised depth training (DaGAN §3.2, DaGAN++ §III-B).

Predicts the relative camera motion target -> reference, the camera intrinsics (face videos come
without calibration) and, for DaGAN++, a per-pixel uncertainty that down-weights non-rigid pixels
in the photometric loss. Training only: never exported.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import ResidualEncoder, UpBlock
from .config import ModelConfig


@dataclass(frozen=True)
class PoseOutput:
    axisangle: Tensor  # (N, 3) rotation target -> reference, axis * angle in radians
    translation: Tensor  # (N, 3)
    intrinsics: Tensor  # (N, 3, 3) in pixels of the input's H, W
    uncertainty: Tensor | None  # (N, 1, H, W) positive, or None without the DaGAN++ head


class PoseNet(nn.Module):
    """target (N, 3, H, W), reference (N, 3, H, W) -> PoseOutput.

    A residual encoder over the 6-channel pair; global-average-pooled heads give the 6-DoF motion
    and the intrinsics (focal lengths softplus × image size, principal point sigmoid × image size,
    after Gordon et al. 2019); the uncertainty head upsamples the deepest feature back to H × W.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.pose is None:
            raise ValueError(f"{cfg.name}: the {cfg.variant} variant has no pose network")
        channels = cfg.pose.channels
        self.encoder = ResidualEncoder(6, channels, cfg.pose.blocks_per_stage)
        self.motion_head = nn.Conv2d(channels[-1], 6, 1)
        self.intrinsics_head = nn.Conv2d(channels[-1], 4, 1)
        self.uncertainty_head: nn.Module | None = None
        if cfg.pose.uncertainty:
            widths = (*channels[::-1], max(channels[0] // 2, 8))
            self.uncertainty_head = nn.Sequential(
                *(UpBlock(widths[i], widths[i + 1]) for i in range(len(channels))),
                nn.Conv2d(widths[-1], 1, 3, padding=1))

    def forward(self, target: Tensor, reference: Tensor) -> PoseOutput:
        n, _, h, w = target.shape
        deepest = self.encoder(torch.cat([target, reference], dim=1))[-1]
        pooled = deepest.mean(dim=(2, 3), keepdim=True)
        # Small outputs at init (monodepth2's 0.01): the first warps stay near the identity.
        motion = 0.01 * self.motion_head(pooled).flatten(1)
        raw = self.intrinsics_head(pooled).flatten(1)
        size = torch.tensor([w, h], dtype=target.dtype, device=target.device)
        focal = F.softplus(raw[:, :2]) * size
        centre = torch.sigmoid(raw[:, 2:]) * size
        zero, one = torch.zeros_like(focal[:, 0]), torch.ones_like(focal[:, 0])
        intrinsics = torch.stack([
            torch.stack([focal[:, 0], zero, centre[:, 0]], dim=-1),
            torch.stack([zero, focal[:, 1], centre[:, 1]], dim=-1),
            torch.stack([zero, zero, one], dim=-1),
        ], dim=1)
        uncertainty = None
        if self.uncertainty_head is not None:
            raw_uncertainty = self.uncertainty_head(deepest)
            if raw_uncertainty.shape[2:] != (h, w):
                raw_uncertainty = F.interpolate(raw_uncertainty, size=(h, w), mode="bilinear", align_corners=False)
            uncertainty = F.softplus(raw_uncertainty) + 1e-3
        return PoseOutput(motion[:, :3], motion[:, 3:], intrinsics, uncertainty)

"""Dense motion network (FOMM §3.2): K first-order local motions blended into one dense flow."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import Hourglass, downsample
from .config import ModelConfig
from .motion import Keypoints, keypoint_gaussians, make_coordinate_grid, sparse_motions


@dataclass(frozen=True)
class MotionOutput:
    deformation: Tensor  # (N, h, w, 2) grid_sample grid: where each driving pixel samples the source
    occlusion: Tensor  # (N, 1, h, w) in [0, 1]; 0 where the source cannot show the driving pixel
    mask: Tensor  # (N, K+1, h, w) softmax weights of the background and the K local motions
    sparse_deformed: Tensor  # (N, K+1, 3, h, w) the source moved by each local motion (visualisation)


class DenseMotion(nn.Module):
    """source (N, 3, H, W), kp_driving, kp_source (N, K, ...) -> MotionOutput at the motion resolution
    h = H · motion_scale; K = cfg.motion_keypoints (learned ones, or the face prior's then any learned).

    The source is downsampled to h and warped by the background identity and each keypoint's
    first-order motion (K+1 copies); with the keypoint heatmap differences (driving Gaussian minus
    source Gaussian) they feed an hourglass whose heads predict the blending masks and the
    occlusion map.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        dm = cfg.dense_motion
        self.num_kp = cfg.motion_keypoints
        self.kp_variance = dm.kp_variance
        self.downsample_factor = cfg.motion_downsample
        in_channels = (self.num_kp + 1) * 4  # per motion: 1 heatmap + 3 colour channels
        self.hourglass = Hourglass(in_channels, dm.block_expansion, dm.num_blocks, dm.max_features)
        padding = dm.head_kernel_size // 2
        self.mask_head = nn.Conv2d(self.hourglass.out_channels, self.num_kp + 1, dm.head_kernel_size, padding=padding)
        self.occlusion_head = nn.Conv2d(self.hourglass.out_channels, 1, dm.head_kernel_size, padding=padding)
        side = cfg.motion_resolution
        self.register_buffer("grid", make_coordinate_grid(side, side), persistent=False)

    def forward(self, source: Tensor, kp_driving: Keypoints, kp_source: Keypoints) -> MotionOutput:
        small = downsample(source, self.downsample_factor)
        n, c, h, w = small.shape
        motions = self.num_kp + 1
        # Heatmaps say where each local motion applies; the background gets an empty map.
        heatmaps = (keypoint_gaussians(kp_driving.value, self.grid, self.kp_variance)
                    - keypoint_gaussians(kp_source.value, self.grid, self.kp_variance))
        heatmaps = torch.cat([torch.zeros_like(heatmaps[:, :1]), heatmaps], dim=1).unsqueeze(2)
        sparse = sparse_motions(self.grid, kp_driving, kp_source)  # (N, K+1, h, w, 2)
        copies = small.unsqueeze(1).expand(n, motions, c, h, w).reshape(n * motions, c, h, w)
        deformed = F.grid_sample(copies, sparse.reshape(n * motions, h, w, 2), mode="bilinear",
                                 padding_mode="zeros", align_corners=True).reshape(n, motions, c, h, w)
        features = self.hourglass(torch.cat([heatmaps, deformed], dim=2).reshape(n, motions * (c + 1), h, w))
        mask = torch.softmax(self.mask_head(features), dim=1)
        deformation = (mask.unsqueeze(-1) * sparse).sum(dim=1)
        occlusion = torch.sigmoid(self.occlusion_head(features))
        return MotionOutput(deformation, occlusion, mask, deformed)

"""Keypoint detector (FOMM §3, DaGAN §3.3): hourglass heatmaps, soft-argmax, first-order Jacobians."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .blocks import Hourglass, downsample
from .config import ModelConfig
from .motion import Keypoints, make_coordinate_grid


class KeypointDetector(nn.Module):
    """image (N, 3, H, W), depth (N, 1, H, W) | None -> Keypoints (value (N, K, 2), jacobian (N, K, 2, 2)).

    The input (RGB, plus the normalised depth for the dagan variants) is average-pooled to the
    motion resolution h = H · motion_scale. A heatmap head gives K maps, softmaxed over space with
    a temperature; keypoints are their expected coordinates. A second head gives 4 Jacobian
    entries per keypoint and pixel, averaged under the keypoint's heatmap.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        kp = cfg.keypoint
        self.uses_depth = cfg.uses_depth
        self.num_kp = cfg.num_kp
        self.temperature = kp.temperature
        self.downsample_factor = cfg.motion_downsample
        self.hourglass = Hourglass(4 if cfg.uses_depth else 3, kp.block_expansion, kp.num_blocks, kp.max_features)
        padding = kp.head_kernel_size // 2
        self.heatmap_head = nn.Conv2d(self.hourglass.out_channels, cfg.num_kp, kp.head_kernel_size, padding=padding)
        self.jacobian_head = nn.Conv2d(self.hourglass.out_channels, 4 * cfg.num_kp, kp.head_kernel_size,
                                       padding=padding)
        # Start from identity Jacobians (pure translation per keypoint), as FOMM does.
        nn.init.zeros_(self.jacobian_head.weight)
        with torch.no_grad():
            self.jacobian_head.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0]).repeat(cfg.num_kp))
        side = cfg.motion_resolution
        self.register_buffer("grid", make_coordinate_grid(side, side), persistent=False)

    def forward(self, image: Tensor, depth: Tensor | None = None) -> Keypoints:
        if self.uses_depth != (depth is not None):
            raise ValueError("this keypoint detector " + ("needs" if self.uses_depth else "takes no") + " depth")
        x = image if depth is None else torch.cat([image, depth], dim=1)
        features = self.hourglass(downsample(x, self.downsample_factor))
        n = features.shape[0]
        h, w = self.grid.shape[:2]
        logits = self.heatmap_head(features).reshape(n, self.num_kp, h * w)
        heatmap = torch.softmax(logits / self.temperature, dim=-1).reshape(n, self.num_kp, h, w, 1)
        value = (heatmap * self.grid).sum(dim=(2, 3))  # (N, K, 2)
        jacobian_map = self.jacobian_head(features).reshape(n, self.num_kp, 4, h, w)
        jacobian = (heatmap.squeeze(-1).unsqueeze(2) * jacobian_map).sum(dim=(3, 4))
        return Keypoints(value, jacobian.reshape(n, self.num_kp, 2, 2))

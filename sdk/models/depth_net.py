"""Self-supervised face depth network (DaGAN §3.2): residual encoder + U-Net disparity decoder."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import ConvNormAct, ResidualEncoder
from .config import ModelConfig


class DepthNet(nn.Module):
    """image (N, 3, H, W) -> depth maps at `num_scales` resolutions.

    The decoder climbs back from H/2^L to H one stage at a time, concatenating the encoder feature
    of each resolution; stages 0..num_scales-1 (H, H/2, ...) each predict a sigmoid disparity that
    becomes depth in [min_depth, max_depth] (monodepth2's parametrisation, so depth stays positive
    and bounded for the photometric warping loss).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.depth is None:
            raise ValueError(f"{cfg.name}: the {cfg.variant} variant has no depth network")
        depth = cfg.depth
        self.cfg = depth
        self.encoder = ResidualEncoder(3, depth.encoder_channels, depth.blocks_per_stage)
        enc, dec = depth.encoder_channels, depth.decoder_channels
        stages = len(enc)
        # Stage i ends at resolution H/2^i: reduce at H/2^(i+1), upsample, concatenate encoder feature
        # i-1 (at H/2^i; none at full resolution), fuse.
        self.reduce = nn.ModuleList(
            ConvNormAct(enc[-1] if i == stages - 1 else dec[i + 1], dec[i]) for i in range(stages))
        self.fuse = nn.ModuleList(
            ConvNormAct(dec[i] + (enc[i - 1] if i > 0 else 0), dec[i]) for i in range(stages))
        self.disparity_heads = nn.ModuleList(nn.Conv2d(dec[i], 1, 3, padding=1) for i in range(depth.num_scales))

    def forward(self, image: Tensor) -> list[Tensor]:
        """image (N, 3, H, W) -> [depth (N, 1, H/2^s, W/2^s) for s in 0..num_scales-1], finest first."""
        features = self.encoder(image)
        x = features[-1]
        depths: list[Tensor] = []
        for i in reversed(range(len(self.reduce))):
            x = F.interpolate(self.reduce[i](x), scale_factor=2.0, mode="nearest")
            if i > 0:
                x = torch.cat([x, features[i - 1]], dim=1)
            x = self.fuse[i](x)
            if i < len(self.disparity_heads):
                depths.append(self._to_depth(torch.sigmoid(self.disparity_heads[i](x))))
        return depths[::-1]

    def _to_depth(self, disparity: Tensor) -> Tensor:
        min_disparity = 1.0 / self.cfg.max_depth
        max_disparity = 1.0 / self.cfg.min_depth
        return 1.0 / (min_disparity + (max_disparity - min_disparity) * disparity)

    def depth(self, image: Tensor) -> Tensor:
        """image (N, 3, H, W) -> finest depth (N, 1, H, W) divided by its per-image max (in (0, 1]),
        the normalised map the keypoint detector and generator take (as DaGAN does)."""
        finest = self.forward(image)[0]
        return finest / finest.amax(dim=(1, 2, 3), keepdim=True)

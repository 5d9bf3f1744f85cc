"""Multi-scale patch discriminator (FOMM / pix2pixHD style), training only."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from .blocks import downsample
from .config import DiscriminatorConfig, ModelConfig
from .motion import Keypoints, keypoint_gaussians, make_coordinate_grid


@dataclass(frozen=True)
class DiscriminatorOutput:
    features: list[Tensor]  # every block's output, for the feature-matching loss
    prediction: Tensor  # (N, 1, h, w) patch realness scores (least-squares GAN)


class _PatchBlock(nn.Module):
    """4×4 conv (no padding) -> optional InstanceNorm -> LeakyReLU(0.2) -> optional 2×2 average pool."""

    def __init__(self, in_channels: int, out_channels: int, norm: bool, pool: bool, use_spectral_norm: bool):
        super().__init__()
        conv = nn.Conv2d(in_channels, out_channels, 4)
        self.conv = spectral_norm(conv) if use_spectral_norm else conv
        self.norm = nn.InstanceNorm2d(out_channels, affine=True) if norm else nn.Identity()
        self.pool = nn.AvgPool2d(2) if pool else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(F.leaky_relu(self.norm(self.conv(x)), 0.2))


class _PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int, cfg: DiscriminatorConfig):
        super().__init__()
        widths = [in_channels] + [min(cfg.max_features, cfg.block_expansion * 2 ** i) for i in range(cfg.num_blocks)]
        self.blocks = nn.ModuleList(
            _PatchBlock(widths[i], widths[i + 1], norm=i > 0, pool=i < cfg.num_blocks - 1,
                        use_spectral_norm=cfg.spectral_norm)
            for i in range(cfg.num_blocks))
        head = nn.Conv2d(widths[-1], 1, 1)
        self.head = spectral_norm(head) if cfg.spectral_norm else head

    def forward(self, x: Tensor) -> DiscriminatorOutput:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return DiscriminatorOutput(features, self.head(x))


class Discriminator(nn.Module):
    """image (N, 3, H, W), kp: Keypoints | None -> [DiscriminatorOutput per scale in cfg.scales].

    One patch discriminator per scale, each on the image average-pooled by 1/scale. With `use_kp`
    the keypoint Gaussians (N, K, H·scale, W·scale) are concatenated to the image (detach the
    keypoints in the caller when the discriminator must not train the detector).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        disc = cfg.discriminator
        self.use_kp = disc.use_kp
        self.kp_variance = disc.kp_variance
        self.factors = [round(1 / scale) for scale in disc.scales]
        in_channels = 3 + (cfg.num_kp if disc.use_kp else 0)
        self.scales = nn.ModuleList(_PatchDiscriminator(in_channels, disc) for _ in disc.scales)

    def forward(self, image: Tensor, kp: Keypoints | None = None) -> list[DiscriminatorOutput]:
        if self.use_kp and kp is None:
            raise ValueError("this discriminator takes keypoint heatmaps: pass kp")
        outputs = []
        for factor, network in zip(self.factors, self.scales):
            x = downsample(image, factor)
            if self.use_kp:
                grid = make_coordinate_grid(x.shape[2], x.shape[3], x.device, x.dtype)
                heatmaps = keypoint_gaussians(kp.value, grid, self.kp_variance)
                x = torch.cat([x, heatmaps], dim=1)
            outputs.append(network(x))
        return outputs

"""Building blocks shared by the networks.

Conv + BatchNorm + ReLU everywhere: BatchNorm folds into the conv at export and ReLU fuses with it
under INT8, so the blocks cost one quantised conv each on a phone.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConvNormAct(nn.Sequential):
    """conv k×k (stride s) -> BatchNorm -> ReLU. (N, C_in, H, W) -> (N, C_out, H/s, W/s)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class DownBlock(nn.Sequential):
    """ConvNormAct then 2×2 average pool. (N, C_in, H, W) -> (N, C_out, H/2, W/2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(ConvNormAct(in_channels, out_channels), nn.AvgPool2d(2))


class UpBlock(nn.Module):
    """Nearest 2× upsample then ConvNormAct. (N, C_in, H, W) -> (N, C_out, 2H, 2W)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = ConvNormAct(in_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ResBlock(nn.Module):
    """Pre-activation residual block (BN-ReLU-conv twice, plus identity). Shape preserving."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Hourglass(nn.Module):
    """U-Net used by FOMM's keypoint detector and dense motion.

    `num_blocks` down blocks (widths block_expansion·2^(i+1), capped at max_features), then as many
    up blocks, each concatenated with the encoder feature of its resolution.
    (N, C_in, H, W) -> (N, block_expansion + C_in, H, W); H, W divisible by 2**num_blocks.
    """

    def __init__(self, in_channels: int, block_expansion: int, num_blocks: int, max_features: int):
        super().__init__()

        def width(level: int) -> int:
            return min(max_features, block_expansion * 2 ** level)

        self.down = nn.ModuleList(
            DownBlock(in_channels if i == 0 else width(i), width(i + 1)) for i in range(num_blocks))
        # Up block i takes width(i+1) channels (twice that after a concatenation, except the deepest).
        self.up = nn.ModuleList(
            UpBlock(width(i + 1) * (1 if i == num_blocks - 1 else 2), width(i)) for i in range(num_blocks))
        self.out_channels = block_expansion + in_channels

    def forward(self, x: Tensor) -> Tensor:
        skips = [x]
        for block in self.down:
            skips.append(block(skips[-1]))
        out = skips.pop()
        for block in reversed(self.up):
            out = torch.cat([block(out), skips.pop()], dim=1)
        return out


class ResidualEncoder(nn.Module):
    """Stride-2 stages (ConvNormAct stride 2 + `blocks_per_stage` ResBlocks), ResNet-like.

    (N, C_in, H, W) -> list of (N, channels[i], H/2^(i+1), W/2^(i+1)), finest first.
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...], blocks_per_stage: int):
        super().__init__()
        widths = (in_channels, *channels)
        self.stages = nn.ModuleList(
            nn.Sequential(ConvNormAct(widths[i], widths[i + 1], stride=2),
                          *(ResBlock(widths[i + 1]) for _ in range(blocks_per_stage)))
            for i in range(len(channels)))

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def downsample(x: Tensor, factor: int) -> Tensor:
    """Average-pool by an integer factor (an anti-aliased resize that exports everywhere)."""
    return F.avg_pool2d(x, factor) if factor > 1 else x

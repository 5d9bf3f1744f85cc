"""Per-frame audio features: a mel segment -> one feature vector per 25 fps frame (both audio-to-code networks).

    mel (B, bins, M) normalised log-mel, M = 4 (F - 1) + W     ->     (B, features, F)

The segment is cut into F windows of W mel frames, one per video frame, each starting 4 mel frames
(40 ms) after the last (`sdk.audio.features.WindowSpec`); every window goes through the same small
1-D conv net over time (mel bins as channels): a conv-BN-ReLU, two stride-2 ones, flattened, a
linear layer. Windows overlap, so the frame encoder sees each stretch of audio several times;
that keeps every frame's feature a function of its own window only (what a live stream can
compute frame by frame).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class FrameEncoderConfig:
    """bins: mel bins in; window: mel frames per video frame (W, a multiple of 4); channels: conv
    width; features: output size per frame; dropout: on the output (training only)."""

    bins: int = 80
    window: int = 16
    channels: int = 128
    features: int = 256
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.window < 4 or self.window % 4:
            raise ValueError(f"the frame encoder's window must be a multiple of 4 mel frames, got {self.window}")


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None) -> nn.Sequential:
    """Conv1d -> BatchNorm1d -> ReLU; (N, C_in, L) -> (N, C_out, L'); 'same' padding by default."""
    return nn.Sequential(nn.Conv1d(in_channels, out_channels, kernel_size, stride,
                                   kernel_size // 2 if padding is None else padding, bias=False),
                         nn.BatchNorm1d(out_channels), nn.ReLU(inplace=True))


class MelFrameEncoder(nn.Module):
    """mel (B, bins, 4 (F - 1) + W) -> (B, features, F)."""

    hop = 4  # mel frames per video frame

    def __init__(self, config: FrameEncoderConfig = FrameEncoderConfig()):
        super().__init__()
        self.config = config
        width = config.channels
        self.convs = nn.Sequential(conv_bn_relu(config.bins, width), conv_bn_relu(width, width, stride=2),
                                   conv_bn_relu(width, width, stride=2))
        self.project = nn.Linear(width * (config.window // 4), config.features)
        self.dropout = nn.Dropout(config.dropout)

    def frames_of(self, mel_frames: int) -> int:
        """F for a segment of `mel_frames` mel frames."""
        return (mel_frames - self.config.window) // self.hop + 1

    def forward(self, mel: Tensor) -> Tensor:
        batch, bins, length = mel.shape
        frames = self.frames_of(length)
        # A gather rather than `unfold`, which Core ML cannot convert; the same copy in torch.
        index = (torch.arange(frames, device=mel.device)[:, None] * self.hop
                 + torch.arange(self.config.window, device=mel.device)[None])
        windows = mel[:, :, index]  # (B, bins, F, W)
        windows = windows.permute(0, 2, 1, 3).reshape(batch * frames, bins, self.config.window)
        features = self.project(self.convs(windows).flatten(1))  # (B F, features)
        return self.dropout(features).reshape(batch, frames, -1).transpose(1, 2)

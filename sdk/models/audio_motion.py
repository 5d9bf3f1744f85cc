"""Audio -> where in the motion space the next clip's head motion lies (OSM-Net's E_a, seed 004 §III-A2).

    mel (B, bins, window.mel_frames(T)) normalised log-mel of the clip's T frames
    state (B, 6) normalised pose of the head before the clip, relative to the speaker's rest pose
        -> (B, S) log-weights over the motion space's bases (log-softmax)

Per-frame `MelFrameEncoder` features of the clip's frames, pooled over time (mean and max), with
the start state appended, through a two-layer MLP. Trained with KL(w_visual || w_audio) (eq. 4)
against the weights of the clip's real motion. The start state is our addition to OSM-Net: with
it the encoder learns that a head turned far tends to come back, so chained clips do not drift
off as a random walk would.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..audio.features import WindowSpec
from .audio_frame_encoder import FrameEncoderConfig, MelFrameEncoder
from .audio_motion_space import POSE_DIMS

MOTION_WINDOW = WindowSpec(mel_before=8, mel_after=8, frames_before=0, frames_after=0)


@dataclass(frozen=True)
class AudioMotionConfig:
    """window: audio per clip frame; encoder: per-frame features; hidden: MLP width; bases: S
    (the motion space's)."""

    window: WindowSpec = MOTION_WINDOW
    encoder: FrameEncoderConfig = field(default_factory=lambda: FrameEncoderConfig(channels=64, features=128))
    hidden: int = 256
    bases: int = 32


class AudioMotionNet(nn.Module):
    """mel (B, bins, M), state (B, 6) -> log-weights (B, S)."""

    def __init__(self, config: AudioMotionConfig = AudioMotionConfig()):
        super().__init__()
        self.config = config
        self.encoder = MelFrameEncoder(config.encoder)
        self.mlp = nn.Sequential(nn.Linear(2 * config.encoder.features + POSE_DIMS, config.hidden),
                                 nn.ReLU(inplace=True), nn.Dropout(0.1), nn.Linear(config.hidden, config.bases))

    def forward(self, mel: Tensor, state: Tensor) -> Tensor:
        features = self.encoder(mel)  # (B, features, T)
        pooled = torch.cat([features.mean(-1), features.amax(-1), state], -1)
        return self.mlp(pooled).log_softmax(-1)

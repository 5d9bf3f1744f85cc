"""OSM-Net's clip-level head-motion space (seed 004 §III-A1): pose clips <-> features <-> S learned bases.

    clip (B, 6, T) normalised pose deltas of T frames from the clip's start state
        -> encode -> F (B, C)                       the clip's motion feature (norm sqrt(C))
        -> weights(F) -> w (B, S)                  softmax(kappa * cos(F, b_i)) over the S bases
        -> reconstruct(w) -> F~ = w B (B, C)        the feature the space can express
        -> decode(F or F~) -> (B, 6, T)             the pose deltas again

Pose deltas are the semantic code's pose relative to a state (yaw, pitch, roll in degrees; x, y
in face units; log scale), divided by their training std (`pose_std`, a buffer) so the six count
alike. Each frame of a clip is relative to the state before the clip (the last frame of the
previous clip), so clips chain (§III-A2): the head continues from where it was.

Training: L1 between F and F~ (`basis` loss, eq. 3), and L1 between the decoded poses of F and of
F~ and the real ones (the decoder stands in for OSM-Net's video generator, which trained F there).
F is rescaled to norm sqrt(C) so the basis loss cannot be won by shrinking features to zero.
`radius` (a buffer) is the RMS distance between visual features and the audio encoder's centre
on the training data: the unit of the sampling radius epsilon.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .audio_frame_encoder import conv_bn_relu

POSE_DIMS = 6


@dataclass(frozen=True)
class MotionSpaceConfig:
    """clip_frames: T (frames per clip, 25 fps); features: C; bases: S; kappa: the softmax's
    scaling of cosine similarities; channels: the encoder's width."""

    clip_frames: int = 10
    features: int = 128
    bases: int = 32
    kappa: float = 10.0
    channels: int = 64

    def __post_init__(self) -> None:
        if self.clip_frames < 2 or self.features < 2 or self.bases < 2 or self.kappa <= 0:
            raise ValueError(f"invalid motion space config {self}")


class MotionSpace(nn.Module):
    """Motion encoder E_m, the bases B_m and a pose decoder; see the module docstring for shapes."""

    def __init__(self, config: MotionSpaceConfig = MotionSpaceConfig()):
        super().__init__()
        self.config = config
        width, frames = config.channels, config.clip_frames
        self.encoder = nn.Sequential(conv_bn_relu(POSE_DIMS, width), conv_bn_relu(width, width), nn.Flatten(),
                                     nn.Linear(width * frames, config.features))
        self.bases = nn.Parameter(torch.randn(config.bases, config.features))
        self.decoder = nn.Sequential(nn.Linear(config.features, 256), nn.ReLU(inplace=True),
                                     nn.Linear(256, POSE_DIMS * frames))
        self.register_buffer("pose_std", torch.ones(POSE_DIMS))
        self.register_buffer("radius", torch.ones(()))

    def encode(self, clip: Tensor) -> Tensor:
        """clip (B, 6, T) -> F (B, C) of norm sqrt(C)."""
        return F.normalize(self.encoder(clip), dim=-1) * self.config.features ** 0.5

    def logits(self, feature: Tensor) -> Tensor:
        """F (B, C) -> (B, S) kappa * cosine similarity to each basis (eq. 1, 2 before the softmax)."""
        return self.config.kappa * F.normalize(feature, dim=-1) @ F.normalize(self.bases, dim=-1).T

    def weights(self, feature: Tensor) -> Tensor:
        return self.logits(feature).softmax(-1)

    def reconstruct(self, weights: Tensor) -> Tensor:
        """w (B, S) -> F~ (B, C)."""
        return weights @ self.bases

    def decode(self, feature: Tensor) -> Tensor:
        """F (B, C) -> normalised pose deltas (B, 6, T)."""
        return self.decoder(feature).reshape(feature.shape[0], POSE_DIMS, self.config.clip_frames)

"""Audio -> expression coefficients, one-to-one (OSM-Net's expression feature extractor, seed 004 §III-B).

    mel (B, bins, M) normalised log-mel [, speech (B, bins)]  ->  (B, L, E) expression deltas from the speaker's neutral

with M = `config.window.mel_frames(L)`: the segment of L output frames plus their context. Per
frame, `MelFrameEncoder` features; then the 2k+1 window smoother (OSM-Net's CenterCrop 1-D conv
encoder): `frames_before + frames_after` / 2 residual blocks, each a 3-tap convolution without
padding plus the input cropped by one frame at each end, so frame j's output is built from the
features of frames [j - frames_before, j + frames_after] with the middle weighted most. A
linear layer gives E coefficients, times a per-coefficient scale (a buffer: the training
targets' std) so that every output starts at the scale of its target.

With `utterance_norm` (the offline net), the input first loses the utterance's speech mean
(`sdk.audio.features.speech_mean`, computed by the caller over the whole utterance) and gains the
training clips' average of it (the `utterance_reference` buffer): the speaker's timbre and the
microphone's colouring are taken out, which unseen voices need (on the test clips, mouth-opening
r 0.39 -> 0.45 at 600 steps). A live stream has no whole utterance, so the live net goes without.

Offline (the default window): 8 + 8 mel frames per frame and k = 4 frames each side, 242.5 ms of
lookahead. Live (`LIVE_WINDOW`): 12 + 4 mel frames and 8 frames of the past only, 42.5 ms.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from ..audio.features import WindowSpec
from .audio_frame_encoder import FrameEncoderConfig, MelFrameEncoder

OFFLINE_WINDOW = WindowSpec(mel_before=8, mel_after=8, frames_before=4, frames_after=4)
LIVE_WINDOW = WindowSpec(mel_before=12, mel_after=4, frames_before=8, frames_after=0)


@dataclass(frozen=True)
class AudioExpressionConfig:
    """window: audio seen per output frame; encoder: the per-frame features; channels: the
    smoother's width; expression_dims: E (the face prior's coefficients predicted);
    front_end: "mel" (our log-mel + `MelFrameEncoder`), or "embedding" for the front-end
    ablation: the input is then already one `embedding_dims` vector per frame, (B, D, F) with
    F = L + frames_before + frames_after (`sdk.audio.openwakeword`), and there is no encoder;
    utterance_norm: the input's utterance speech mean is replaced by the training data's (module
    docstring), mel front end only."""

    window: WindowSpec = OFFLINE_WINDOW
    encoder: FrameEncoderConfig = field(default_factory=FrameEncoderConfig)
    channels: int = 128
    expression_dims: int = 32
    front_end: Literal["mel", "embedding"] = "mel"
    embedding_dims: int = 96
    utterance_norm: bool = False

    def __post_init__(self) -> None:
        if (self.window.frames_before + self.window.frames_after) % 2:
            raise ValueError("the smoother takes 2 frames per block: frames_before + frames_after must be even")
        if self.window.mel_window != self.encoder.window:
            raise ValueError(f"window has {self.window.mel_window} mel frames, the encoder takes {self.encoder.window}")
        if self.front_end not in ("mel", "embedding"):
            raise ValueError(f"front_end must be 'mel' or 'embedding', got {self.front_end!r}")
        if self.utterance_norm and self.front_end != "mel":
            raise ValueError("utterance_norm needs the mel front end")


class CenterCropBlock(nn.Module):
    """(B, C, F) -> (B, C, F - 2): 3-tap conv (no padding) -> BN -> ReLU, plus the input's middle F - 2."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv1d(channels, channels, 3, bias=False), nn.BatchNorm1d(channels),
                                  nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + x[..., 1:-1]


class AudioExpressionNet(nn.Module):
    """mel (B, bins, window.mel_frames(L)) [or embeddings (B, D, F)], with `utterance_norm` also
    speech (B, bins) the utterance's `speech_mean` -> expression (B, L, E)."""

    def __init__(self, config: AudioExpressionConfig = AudioExpressionConfig()):
        super().__init__()
        self.config = config
        mel = config.front_end == "mel"
        self.encoder = MelFrameEncoder(config.encoder) if mel else nn.Identity()
        self.inflow = nn.Conv1d(config.encoder.features if mel else config.embedding_dims, config.channels, 1)
        blocks = (config.window.frames_before + config.window.frames_after) // 2
        self.smoother = nn.Sequential(*[CenterCropBlock(config.channels) for _ in range(blocks)])
        self.head = nn.Linear(config.channels, config.expression_dims)
        self.register_buffer("scale", torch.ones(config.expression_dims))
        if config.utterance_norm:
            self.register_buffer("utterance_reference", torch.zeros(config.encoder.bins))

    def forward(self, mel: Tensor, speech: Tensor | None = None) -> Tensor:
        if self.config.utterance_norm:
            if speech is None:
                raise ValueError("this net normalises by the utterance: pass its speech_mean")
            mel = mel - (speech - self.utterance_reference)[:, :, None]
        features = self.smoother(self.inflow(self.encoder(mel)))  # (B, C, L)
        return self.head(features.transpose(1, 2)) * self.scale

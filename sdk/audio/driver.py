"""The audio-to-code wrapper: one method per stage, from speech samples to per-frame semantic deltas.

    features(samples)                 (N,) 16 kHz mono -> mel (1, 80, M), normalised       [log-mel]
    expression(mel, frames)           -> (J, E) expression deltas from the neutral face    [expression net;
                                         the offline one normalised by the whole utterance]
    motion(mel, frames, seed, ...)    -> (J, 6) pose deltas (`sdk.audio.codes`)              [motion nets]
    codes(pose, expression, motion)   -> J `SemanticCode`s on the avatar's pose              [numpy]

Head motion (OSM-Net §III-A2): the audio of each clip of T frames and the head's state before
it give weights over the motion space's bases; their combination is the clip's centre motion
feature, and the sample is a point drawn uniformly from the ball of radius `epsilon` x the
space's `radius` around it (a seeded generator picks it, so a seed is one motion). Each clip
is decoded to T pose deltas relative to the state before it and added to that state, so clips
chain. `motion_scale` multiplies the result (0: a still head); the state is held within
`max_state` training stds of the rest pose (a guard against drift on long audio).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import SdkError
from ..models.audio_to_code import AudioToCodeModel
from ..prior.code import SemanticCode
from .codes import speak_codes
from .features import frames_for_samples, slice_mel, speech_mean


@dataclass(frozen=True)
class MotionSampling:
    """seed: picks the sample; epsilon: the ball's radius in units of the space's radius (0.5:
    on the test clips the motion's spread then matches the real videos', 3.1 against 3.0 degrees;
    1.0 doubles it and drives the head to the `max_state` bound in a tenth of the frames);
    motion_scale: amplitude (0 = still); max_state: bound on the head's offset from rest, in
    training stds."""

    seed: int = 0
    epsilon: float = 0.5
    motion_scale: float = 1.0
    max_state: float = 3.0

    def __post_init__(self) -> None:
        if self.epsilon < 0 or self.motion_scale < 0 or self.max_state <= 0:
            raise ValueError(f"epsilon and motion_scale must be >= 0 and max_state > 0, got {self}")


def sample_offset(generator: torch.Generator, epsilon: float, radius: float, features: int) -> torch.Tensor:
    """(1, C) a point drawn uniformly from the ball of radius epsilon x radius (module docstring)."""
    direction = torch.randn((1, features), generator=generator)
    direction = direction / direction.norm().clamp_min(1e-8)
    return epsilon * radius * torch.rand((), generator=generator) ** (1 / features) * direction


class AudioDriver:
    """Stages of `AudioToCodeModel` on numpy audio (eval mode, no gradients)."""

    def __init__(self, model: AudioToCodeModel):
        self.model = model.eval()
        self.config = model.config

    @torch.inference_mode()
    def features(self, samples: np.ndarray) -> torch.Tensor:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if not len(samples):
            raise SdkError("no audio samples to drive the avatar with")
        return self.model.log_mel(torch.from_numpy(samples)[None])

    def frames_of(self, samples: np.ndarray) -> int:
        """25 fps frames for the audio: one per started 40 ms."""
        return frames_for_samples(len(samples), self.config.mel)

    @torch.inference_mode()
    def expression(self, mel: torch.Tensor, frames: int, live: bool = False) -> np.ndarray:
        """(J, E) deltas; `live`: the small-lookahead net (`LIVE_WINDOW`)."""
        net = self.model.expression_live if live else self.model.expression
        start, stop = net.config.window.mel_range(0, frames, self.config.mel)
        speech = speech_mean(mel) if net.config.utterance_norm else None
        return net(slice_mel(mel, start, stop, self.model.log_mel.silence), speech)[0].double().numpy()

    @torch.inference_mode()
    def motion(self, mel: torch.Tensor, frames: int, sampling: MotionSampling = MotionSampling()) -> np.ndarray:
        """(J, 6) pose deltas from the rest pose (module docstring)."""
        space, net = self.model.motion_space, self.model.motion
        clip = space.config.clip_frames
        generator = torch.Generator().manual_seed(sampling.seed)
        state = torch.zeros(1, 6)
        poses = []
        for first in range(0, frames, clip):
            start, stop = net.config.window.mel_range(first, clip, self.config.mel)
            log_weights = net(slice_mel(mel, start, stop, self.model.log_mel.silence), state)
            centre = space.reconstruct(log_weights.exp())
            offset = sample_offset(generator, sampling.epsilon, float(space.radius), centre.shape[-1])
            deltas = space.decode(centre + offset)[0].T  # (T, 6)
            path = (state + deltas).clamp(-sampling.max_state, sampling.max_state)
            poses.append(path)
            state = path[-1:]
        normalised = torch.cat(poses)[:frames]
        return (normalised * space.pose_std * sampling.motion_scale).double().numpy()

    def codes(self, pose: np.ndarray, expression: np.ndarray, motion: np.ndarray) -> list[SemanticCode]:
        """The avatar's pose (6,) and J frames of deltas -> J codes (`sdk.audio.codes.speak_codes`)."""
        return speak_codes(pose, expression, motion)

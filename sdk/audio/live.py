"""Streaming audio -> per-frame semantic deltas, on an audio backend (`sdk.runtime.audio_backend`).

    coder = LiveAudioCoder(backend, MotionSampling(seed=...))
    for frame in coder.push(block):      # any block size; 16 kHz mono float32
        frame.index, frame.expression (E,), frame.pose_delta (6,)
    coder.finish()                       # the frames the last samples still owe (silence after them)

One frame per 40 ms of audio (25 fps). Frame j's expression comes from the live net
(`expression_live`): its window ends `lookahead_ms` (42.5 ms) past the centre of frame j, so the
frame is emitted as soon as the audio up to there has arrived. Head motion is causal: clip c
(frames [cT, (c+1)T)) is sampled from the audio of clip c - 1 and the head's state after it
(`MotionChain`, the first clip from the silence before the audio), so it needs no audio beyond
what frame cT's expression needs. The random draws are the offline driver's (`sample_offset`,
one seeded generator, the same state bound and scaling), so a seed is one motion.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .driver import MotionSampling, sample_offset
from .features import FRAME_RATE, MelConfig, WindowSpec


def window_of(samples: np.ndarray, window: WindowSpec, first_frame: int, frames: int, mel: MelConfig = MelConfig(),
              offset: int = 0) -> np.ndarray:
    """The samples a graph over frames [first_frame, first_frame + frames) takes (float32), from
    `samples`, which start at audio sample `offset`; zeros where `samples` has none."""
    from ..runtime.audio_graphs import frame_samples

    start, stop = frame_samples(window, first_frame, frames, mel)
    out = np.zeros(stop - start, np.float32)
    lo, hi = max(start, offset), min(stop, offset + len(samples))
    if hi > lo:
        out[lo - start:hi - start] = samples[lo - offset:hi - offset]
    return out


class MotionChain:
    """Clip after clip of head motion on a backend: `inputs()` gives the next clip's state and
    offset, `advance(window, state, offset)` runs the motion graph and returns the clip's
    normalised path (T, 6), bounded, whose last frame is the next state."""

    def __init__(self, backend, sampling: MotionSampling = MotionSampling()):
        self.backend = backend
        self.sampling = sampling
        self.generator = torch.Generator().manual_seed(sampling.seed)
        self.state = np.zeros(6)
        self.features = backend.config.motion_space.features

    def inputs(self) -> tuple[np.ndarray, np.ndarray]:
        offset = sample_offset(self.generator, self.sampling.epsilon, self.backend.radius, self.features)
        return self.state, offset[0].double().numpy()

    def advance(self, window: np.ndarray, state: np.ndarray, offset: np.ndarray) -> np.ndarray:
        bound = self.sampling.max_state
        path = np.clip(self.backend.motion(window, state, offset), -bound, bound)
        self.state = path[-1]
        return path


@dataclass(frozen=True)
class CodedFrame:
    """Frame `index` (25 fps from the audio's start): expression deltas (E,), pose delta (6,)
    (`sdk.audio.codes`), and `ready_sample`: the audio sample whose arrival made it computable."""

    index: int
    expression: np.ndarray
    pose_delta: np.ndarray
    ready_sample: int


class LiveAudioCoder:
    """Audio blocks in, coded frames out as soon as their audio is there (module docstring)."""

    def __init__(self, backend, sampling: MotionSampling = MotionSampling()):
        config = backend.config
        self.backend = backend
        self.mel: MelConfig = config.mel
        self.expression_window = config.expression_live.window
        self.motion_window = config.motion.window
        self.clip = config.motion_space.clip_frames
        self.sampling = sampling
        self.chain = MotionChain(backend, sampling)
        self.scale = np.asarray(backend.pose_std, dtype=np.float64) * sampling.motion_scale
        # The Hann window is zero on the last (n_fft - window) / 2 samples of an FFT frame: no need to wait for them.
        self.unused_tail = (self.mel.n_fft - self.mel.window) // 2
        self.samples_per_frame = self.mel.sample_rate // FRAME_RATE
        self.history = max(self._span(self.expression_window, 1), self._span(self.motion_window, self.clip) * 2)
        self._buffer = np.zeros(0, np.float32)
        self._offset = 0  # audio sample index of _buffer[0]
        self._path = np.zeros((0, 6))  # the current clip's normalised path
        self.next_frame = 0

    def _span(self, window: WindowSpec, frames: int) -> int:
        from ..runtime.audio_graphs import window_samples

        return window_samples(window, frames, self.mel)

    @property
    def lookahead_ms(self) -> float:
        return self.expression_window.lookahead_ms(self.mel)

    @property
    def received(self) -> int:
        """Audio samples pushed so far."""
        return self._offset + len(self._buffer)

    def ready_at(self, frame: int) -> int:
        """The number of audio samples frame `frame` needs."""
        from ..runtime.audio_graphs import frame_samples

        return frame_samples(self.expression_window, frame, 1, self.mel)[1] - self.unused_tail

    def push(self, block: np.ndarray) -> list[CodedFrame]:
        """Add samples; the frames they complete, in order."""
        self._buffer = np.concatenate([self._buffer, np.asarray(block, dtype=np.float32).reshape(-1)])
        frames = []
        while self.ready_at(self.next_frame) <= self.received:
            frames.append(self._code(self.next_frame))
        drop = max(0, len(self._buffer) - self.history)
        if drop:
            self._buffer, self._offset = self._buffer[drop:], self._offset + drop
        return frames

    def finish(self) -> list[CodedFrame]:
        """The frames of the audio's last started 40 ms, their lookahead filled with silence."""
        total = self.received
        frames = []
        while self.next_frame * self.samples_per_frame < total:
            frames.append(self._code(self.next_frame))
        return frames

    def _code(self, frame: int) -> CodedFrame:
        window = window_of(self._buffer, self.expression_window, frame, 1, self.mel, self._offset)
        expression = self.backend.expression(window)[0]
        if frame % self.clip == 0:  # a new clip's motion, from the previous clip's audio
            motion_audio = window_of(self._buffer, self.motion_window, frame - self.clip, self.clip, self.mel,
                                     self._offset)
            self._path = self.chain.advance(motion_audio, *self.chain.inputs())
        delta = self._path[frame % self.clip] * self.scale
        self.next_frame = frame + 1
        return CodedFrame(frame, expression, delta, min(self.ready_at(frame), self.received))

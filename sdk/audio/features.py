"""Log-mel features as a torch module, and how audio time lines up with 25 fps video frames.

    samples (B, N) float32 16 kHz mono in [-1, 1]  ->  LogMel  ->  (B, 80, M) normalised log-mel

80 triangular mel filters (HTK mel scale, computed here, no table from elsewhere) over the power
spectrum of a 25 ms Hann window (400 samples, zero-padded to a 512-point FFT) every 10 ms (160
samples), `log(max(mel, floor))`, then a per-bin affine normalisation whose mean and std are
buffers measured on the training data (`set_normalisation`). `torch.stft` with `center=False`
and no data-dependent branch, so the front end and the audio encoders export as one graph.

Time alignment, the one rule every audio path uses: the waveform is left-padded with half an
FFT (256 samples; torch.stft centres the 400-sample window in it) before the STFT, so mel frame
m is centred on t = m x 10 ms of the original audio. Video frame j (25 fps) is shown from j x 40 ms to (j + 1) x 40 ms; its centre is
mel frame 4j + 2 (`frame_centre_mel`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..media import AUDIO_SAMPLE_RATE

FRAME_RATE = 25  # video frames per second of every audio-driven path (one frame per 40 ms)


@dataclass(frozen=True)
class MelConfig:
    """bins: mel filters; window / hop: samples (25 ms, 10 ms at 16 kHz); n_fft: FFT size
    (>= window); f_min / f_max: the filter bank's band in Hz; floor: smallest mel power before
    the log (digital silence lands on log(floor))."""

    sample_rate: int = AUDIO_SAMPLE_RATE
    bins: int = 80
    window: int = 400
    hop: int = 160
    n_fft: int = 512
    f_min: float = 20.0
    f_max: float = 7600.0
    floor: float = 1e-5

    def __post_init__(self) -> None:
        if self.n_fft < self.window or self.window < 2 or self.hop < 1 or self.bins < 1:
            raise ValueError(f"invalid mel config {self}")
        if not 0.0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError(f"mel band [{self.f_min}, {self.f_max}] Hz must lie in [0, {self.sample_rate / 2}]")
        if (self.sample_rate // FRAME_RATE) % self.hop:
            raise ValueError(f"a 25 fps frame ({self.sample_rate // FRAME_RATE} samples) must be a whole number "
                             f"of hops ({self.hop})")

    @property
    def mel_per_frame(self) -> int:
        """Mel frames per 25 fps video frame (4)."""
        return self.sample_rate // FRAME_RATE // self.hop

    @property
    def log_floor(self) -> float:
        return math.log(self.floor)


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filter_bank(config: MelConfig = MelConfig()) -> np.ndarray:
    """(bins, n_fft // 2 + 1) float32 triangular filters, equally spaced on the mel scale, each
    rising from its lower neighbour's centre to its own and falling to the next one's (peak 1)."""
    frequencies = np.linspace(0.0, config.sample_rate / 2, config.n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(config.f_min), hz_to_mel(config.f_max), config.bins + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (frequencies[None] - lower) / (centre - lower)
    falling = (upper - frequencies[None]) / (upper - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None).astype(np.float32)


def frame_centre_mel(frame: int | np.ndarray, config: MelConfig = MelConfig()) -> int | np.ndarray:
    """The mel frame centred on 25 fps video frame `frame` (module docstring)."""
    return config.mel_per_frame * frame + config.mel_per_frame // 2


def frames_for_samples(samples: int, config: MelConfig = MelConfig()) -> int:
    """25 fps video frames for `samples` of audio: one per started 40 ms."""
    per_frame = config.sample_rate // FRAME_RATE
    return -(-samples // per_frame)


class LogMel(nn.Module):
    """samples (B, N) -> (B, bins, M) normalised log-mel, M = N // hop + 1 (N >= 1).

    Buffers: `filters` and `window` are derived from the config (not saved: the config rebuilds
    them); `mean` and `std` (bins,) are the normalisation (saved with a model; identity until set).
    `raw(samples)` is the log-mel before normalisation (what the training cache stores).
    """

    def __init__(self, config: MelConfig = MelConfig()):
        super().__init__()
        self.config = config
        self.register_buffer("filters", torch.from_numpy(mel_filter_bank(config)), persistent=False)
        self.register_buffer("window", torch.hann_window(config.window, periodic=True), persistent=False)
        self.register_buffer("mean", torch.zeros(config.bins))
        self.register_buffer("std", torch.ones(config.bins))

    def raw(self, samples: torch.Tensor) -> torch.Tensor:
        config = self.config
        half = config.n_fft // 2
        # torch.stft centres the window in each n_fft frame: half an FFT of silence in front puts
        # frame m's centre on sample m x hop (the alignment rule), as much behind that the last
        # sample still has a frame.
        padded = nn.functional.pad(samples, (half, half))
        spectrum = torch.stft(padded, config.n_fft, hop_length=config.hop, win_length=config.window,
                              window=self.window, center=False, return_complex=True)
        power = torch.view_as_real(spectrum).pow(2).sum(-1)
        mel = torch.matmul(self.filters, power)
        return torch.log(mel.clamp_min(config.floor))

    def normalise(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(B, bins, M) raw log-mel -> normalised."""
        return (log_mel - self.mean[:, None]) / self.std[:, None]

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        return self.normalise(self.raw(samples))

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-bin statistics of raw log-mel on the training data (std clamped away from 0)."""
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-3))

    @property
    def silence(self) -> torch.Tensor:
        """(bins,) the normalised value of digital silence (what windows are padded with)."""
        return (self.config.log_floor - self.mean) / self.std


@dataclass(frozen=True)
class WindowSpec:
    """Which audio an audio-driven network sees for each output frame.

    Per frame j, a window of log-mel frames [c - mel_before, c + mel_after) around its centre
    c = `frame_centre_mel(j)`; a network then combines the per-frame features of frames
    [j - frames_before, j + frames_after] (a 2k+1 window when both are k) into frame j's output.
    """

    mel_before: int = 8
    mel_after: int = 8
    frames_before: int = 4
    frames_after: int = 4

    def __post_init__(self) -> None:
        if self.mel_before < 0 or self.mel_after < 0 or self.mel_before + self.mel_after < 4:
            raise ValueError(f"a mel window needs >= 4 frames, got {self.mel_before} + {self.mel_after}")
        if self.frames_before < 0 or self.frames_after < 0:
            raise ValueError("frames_before and frames_after must be >= 0")

    @property
    def mel_window(self) -> int:
        return self.mel_before + self.mel_after

    @property
    def context_frames(self) -> int:
        """Frames of features that make one output frame."""
        return self.frames_before + self.frames_after + 1

    def mel_range(self, first_frame: int, frames: int, config: MelConfig = MelConfig()) -> tuple[int, int]:
        """[start, stop) mel frames the outputs of frames [first_frame, first_frame + frames) need."""
        start = frame_centre_mel(first_frame - self.frames_before, config) - self.mel_before
        stop = frame_centre_mel(first_frame + frames - 1 + self.frames_after, config) + self.mel_after
        return int(start), int(stop)

    def mel_frames(self, frames: int, config: MelConfig = MelConfig()) -> int:
        """Length of the mel segment for `frames` outputs."""
        start, stop = self.mel_range(0, frames, config)
        return stop - start

    def lookahead_ms(self, config: MelConfig = MelConfig()) -> float:
        """How far past frame j's centre the newest audio sample it depends on lies, in ms."""
        last = config.mel_per_frame * self.frames_after + self.mel_after - 1  # mel frames past the centre
        hop_ms = 1000.0 * config.hop / config.sample_rate
        return last * hop_ms + 1000.0 * (config.window - config.window // 2) / config.sample_rate


SPEECH_SHARE = 0.7  # of an utterance's frames, the loudest, that `speech_mean` averages


def speech_mean(mel: torch.Tensor) -> torch.Tensor:
    """(B, bins, M) normalised log-mel -> (B, bins): per bin, the mean over the utterance's loudest
    70 % of frames (by their mean over bins), so pauses do not count: the utterance's long-term
    spectrum, what the speaker's voice and the microphone add to every frame (cepstral mean
    normalisation's statistic, on the mel scale)."""
    if mel.shape[-1] == 0:
        raise ValueError("speech_mean of an empty utterance")
    energy = mel.mean(1)  # (B, M)
    threshold = torch.quantile(energy, 1.0 - SPEECH_SHARE, dim=-1, keepdim=True)
    keep = (energy >= threshold).to(mel.dtype)[:, None]
    return (mel * keep).sum(-1) / keep.sum(-1).clamp_min(1.0)


def slice_mel(mel: torch.Tensor, start: int, stop: int, silence: torch.Tensor) -> torch.Tensor:
    """mel (B, bins, M)[..., start:stop] with frames outside [0, M) filled with `silence` (bins,)."""
    lo, hi = max(start, 0), min(stop, mel.shape[-1])
    core = mel[..., lo:hi] if hi > lo else mel[..., :0]
    left = min(max(-start, 0), stop - start)
    right = stop - start - left - core.shape[-1]
    pad = silence.to(mel)[None, :, None]
    return torch.cat([pad.expand(mel.shape[0], -1, left), core, pad.expand(mel.shape[0], -1, right)], -1)

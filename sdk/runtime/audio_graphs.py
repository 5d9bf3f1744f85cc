"""The audio-to-code model's on-device graphs (issue 13): 16 kHz samples in, semantic deltas out, fixed shapes.

- ``audio_expression`` (per frame): samples (1, N_e) of the live window of L frames -> expression
  (1, L, E): log-mel front end + the small-lookahead `expression_live` net (42.5 ms lookahead).
- ``audio_motion`` (per clip of T frames): samples (1, N_m) of a clip's audio, the head's state
  before the clip (1, 6) and a sample's offset in the motion space (1, C) -> path (1, T, 6), the
  clip's normalised pose deltas from the rest pose (`sdk.audio.driver`, before the state bound
  and the scaling by `pose_std` x motion scale, which stay outside with the random draws).

The front end is `SampleLogMel`: the STFT as a strided Conv1d whose kernels are the Hann window
times the DFT's cosines and sines (`torch.stft` has no TFLite or Core ML conversion), then the
same mel filters, log floor and normalisation as `sdk.audio.features.LogMel`. The samples a
graph takes are whole FFT frames: mel frames [a, b) need samples [a*hop - n_fft/2, (b-1)*hop +
n_fft/2) of the audio (zeros before its start), `sample_range`; the Hann window is zero on the
last (n_fft - window) / 2 of them, so a live caller may fill those with zeros (exact).

`AudioGraphMetadata` is what every exported audio graph carries (ONNX metadata_props, TFLite
metadata entry, Core ML user metadata): the audio model's sha256 and config, the face prior its
expression codes are of, the shapes, the motion constants a runtime needs (radius, pose_std).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..audio.features import MelConfig, WindowSpec
from ..models.audio_to_code import AudioModelConfig, AudioToCodeModel
from .graphs import TensorSpec

AUDIO_GRAPH_NAMES: tuple[str, ...] = ("audio_expression", "audio_motion")
# Bumped whenever the audio graphs' I/O or ops change, so caches of exported graphs are not reused across.
AUDIO_GRAPHS_VERSION = 1
LIVE_FRAMES = 1  # frames of expression per call of the live graph (one per 40 ms)
METADATA_PREFIX = "sdk.audio."

SAMPLES_NORMALISATION = "16 kHz mono float32 in [-1, 1]; zeros before the audio's start"
EXPRESSION_DELTAS = "face prior expression coefficients relative to the speaker's neutral face"
STATE_NORMALISATION = "pose deltas (yaw, pitch, roll deg, tx, ty, log scale) from rest / pose_std, before the clip"
OFFSET_NORMALISATION = "the sample's offset from the audio's centre in the motion space (seeded draw)"
PATH_NORMALISATION = "normalised pose deltas from rest per clip frame (times pose_std: sdk.audio.codes deltas)"


def sample_range(mel_start: int, mel_stop: int, mel: MelConfig = MelConfig()) -> tuple[int, int]:
    """[start, stop) audio samples whose STFT frames are mel frames [mel_start, mel_stop)."""
    half = mel.n_fft // 2
    return mel_start * mel.hop - half, (mel_stop - 1) * mel.hop + half


def window_samples(window: WindowSpec, frames: int, mel: MelConfig = MelConfig()) -> int:
    """N: samples a graph over `frames` output frames with `window` takes."""
    start, stop = sample_range(0, window.mel_frames(frames, mel), mel)
    return stop - start


def frame_samples(window: WindowSpec, first_frame: int, frames: int, mel: MelConfig = MelConfig()) -> tuple[int, int]:
    """[start, stop) samples of the audio that frames [first_frame, first_frame + frames) need."""
    return sample_range(*window.mel_range(first_frame, frames, mel), mel)


class SampleLogMel(nn.Module):
    """samples (B, N) -> (B, bins, (N - n_fft) // hop + 1) normalised log-mel, the same numbers as
    `LogMel` (up to float rounding) on the frames both compute; copies `log_mel`'s buffers."""

    def __init__(self, log_mel: nn.Module):
        super().__init__()
        config: MelConfig = log_mel.config
        self.config = config
        bins = config.n_fft // 2 + 1
        left = (config.n_fft - config.window) // 2  # where torch.stft places the shorter window
        window = torch.zeros(config.n_fft, dtype=torch.float64)
        window[left:left + config.window] = torch.hann_window(config.window, periodic=True, dtype=torch.float64)
        phase = 2 * np.pi * torch.outer(torch.arange(bins, dtype=torch.float64),
                                        torch.arange(config.n_fft, dtype=torch.float64)) / config.n_fft
        kernels = torch.cat([torch.cos(phase), -torch.sin(phase)]) * window  # (2 bins, n_fft)
        self.register_buffer("kernels", kernels.float()[:, None], persistent=False)
        self.register_buffer("filters", log_mel.filters.clone(), persistent=False)
        self.register_buffer("mean", log_mel.mean.clone()[:, None], persistent=False)
        self.register_buffer("std", log_mel.std.clone()[:, None], persistent=False)

    def forward(self, samples: Tensor) -> Tensor:
        parts = nn.functional.conv1d(samples[:, None], self.kernels, stride=self.config.hop)  # (B, 2 bins, M)
        real, imaginary = parts.chunk(2, dim=1)
        mel = torch.matmul(self.filters, real * real + imaginary * imaginary)
        return (torch.log(mel.clamp_min(self.config.floor)) - self.mean) / self.std


class AudioExpressionGraph(nn.Module):
    """samples (1, N_e) -> expression (1, L, E): the live expression net on its window's log-mel."""

    def __init__(self, model: AudioToCodeModel):
        super().__init__()
        self.front_end = SampleLogMel(model.log_mel)
        self.net = model.expression_live

    def forward(self, samples: Tensor) -> Tensor:
        return self.net(self.front_end(samples))


class AudioMotionGraph(nn.Module):
    """samples (1, N_m), state (1, 6), offset (1, C) -> path (1, T, 6): one clip of head motion
    (`sdk.audio.driver` module docstring), before the state bound."""

    def __init__(self, model: AudioToCodeModel):
        super().__init__()
        self.front_end = SampleLogMel(model.log_mel)
        self.net = model.motion
        self.space = model.motion_space

    def forward(self, samples: Tensor, state: Tensor, offset: Tensor) -> Tensor:
        weights = self.net(self.front_end(samples), state).exp()
        # `MotionSpace.reconstruct` as a weighted sum: its MatMul followed by the offset's Add becomes
        # (onnxsim) a Gemm whose bias is a graph input, which NNCF's bias correction cannot read.
        centre = (weights[:, :, None] * self.space.bases[None]).sum(1)
        return state[:, None] + self.space.decode(centre + offset).transpose(1, 2)


@dataclass(frozen=True)
class AudioGraphSpec:
    """A graph's name and its inputs and outputs in positional order."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [spec.name for spec in self.outputs]


def audio_graph_specs(config: AudioModelConfig, frames: int = LIVE_FRAMES) -> dict[str, AudioGraphSpec]:
    """The two graphs' specs; the expression graph makes `frames` frames per call."""
    live, motion = config.expression_live, config.motion
    clip = config.motion_space.clip_frames
    n_e = window_samples(live.window, frames, config.mel)
    n_m = window_samples(motion.window, clip, config.mel)
    return {
        "audio_expression": AudioGraphSpec(
            "audio_expression", (TensorSpec("samples", (1, n_e), SAMPLES_NORMALISATION),),
            (TensorSpec("expression", (1, frames, config.expression_dims), EXPRESSION_DELTAS),)),
        "audio_motion": AudioGraphSpec(
            "audio_motion", (TensorSpec("samples", (1, n_m), SAMPLES_NORMALISATION),
                             TensorSpec("previous_pose", (1, 6), STATE_NORMALISATION),
                             TensorSpec("offset", (1, config.motion_space.features), OFFSET_NORMALISATION)),
            (TensorSpec("path", (1, clip, 6), PATH_NORMALISATION),)),
    }


def build_audio_graphs(model: AudioToCodeModel) -> dict[str, nn.Module]:
    """The graph modules, sharing `model`'s weights, in eval mode."""
    model.eval()
    return {"audio_expression": AudioExpressionGraph(model).eval(), "audio_motion": AudioMotionGraph(model).eval()}


def audio_example_inputs(config: AudioModelConfig, seed: int = 0, frames: int = LIVE_FRAMES
                         ) -> dict[str, tuple[Tensor, ...]]:
    """Plausible inputs for tracing: noise at speech level, a rest state, a small offset."""
    generator = torch.Generator().manual_seed(seed)
    inputs = {}
    for name, spec in audio_graph_specs(config, frames).items():
        tensors = []
        for tensor in spec.inputs:
            scale = 0.1 if tensor.name == "samples" else 0.5
            tensors.append(torch.randn(tensor.shape, generator=generator) * scale)
        inputs[name] = tuple(tensors)
    return inputs


def audio_model_sha256(model: AudioToCodeModel) -> str:
    """Hex sha256 of the audio model's config (JSON) and fp32 weights in name order (its identity for
    caches and exported files, the same whether loaded from fp16 or built in memory)."""
    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        value = tensor.detach().to("cpu")
        digest.update((value.float() if value.is_floating_point() else value).contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class AudioGraphMetadata:
    """The metadata written into (and read back from) every exported audio graph file.

    prior_sha256: the face prior the expression targets were coded with ("" when unknown);
    radius, pose_std: the motion space's (`MotionSpace` buffers), which the sampling outside the
    graph needs; frames: L of the expression graph."""

    graph: str
    precision: str
    audio_model_sha256: str
    prior_sha256: str
    config: AudioModelConfig
    frames: int
    radius: float
    pose_std: tuple[float, ...]
    sdk_version: str

    @property
    def spec(self) -> AudioGraphSpec:
        return audio_graph_specs(self.config, self.frames)[self.graph]

    def to_strings(self) -> dict[str, str]:
        values = {"graph": self.graph, "precision": self.precision, "audio_model_sha256": self.audio_model_sha256,
                  "prior_sha256": self.prior_sha256, "config": json.dumps(self.config.to_dict(), sort_keys=True),
                  "frames": str(self.frames), "radius": repr(self.radius),
                  "pose_std": json.dumps(list(self.pose_std)), "sdk_version": self.sdk_version,
                  "graphs_version": str(AUDIO_GRAPHS_VERSION),
                  "inputs": json.dumps([[t.name, list(t.shape)] for t in self.spec.inputs]),
                  "outputs": json.dumps([[t.name, list(t.shape)] for t in self.spec.outputs])}
        return {METADATA_PREFIX + key: value for key, value in values.items()}

    @classmethod
    def from_strings(cls, values: dict[str, str], where: str) -> AudioGraphMetadata:
        """Inverse of `to_strings`; ValueError naming `where` when a key is missing or wrong."""
        try:
            def get(key: str) -> str:
                return values[METADATA_PREFIX + key]

            if int(get("graphs_version")) != AUDIO_GRAPHS_VERSION:
                raise ValueError(f"audio graphs version {get('graphs_version')}, this SDK reads {AUDIO_GRAPHS_VERSION}")
            metadata = cls(get("graph"), get("precision"), get("audio_model_sha256"), get("prior_sha256"),
                           AudioModelConfig.from_dict(json.loads(get("config"))), int(get("frames")),
                           float(get("radius")), tuple(float(v) for v in json.loads(get("pose_std"))),
                           get("sdk_version"))
            if metadata.graph not in AUDIO_GRAPH_NAMES:
                raise ValueError(f"graph {metadata.graph!r} is none of {', '.join(AUDIO_GRAPH_NAMES)}")
            declared = [[name, tuple(shape)] for name, shape in json.loads(get("inputs"))]
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"{where}: missing or invalid audio graph metadata ({exc!r}); not an audio graph "
                             "written by `python -m export --audio`") from exc
        expected = [[tensor.name, tensor.shape] for tensor in metadata.spec.inputs]
        if declared != expected:
            raise ValueError(f"{where}: metadata inputs {declared} do not match the {metadata.graph} spec {expected}")
        return metadata


def audio_graph_metadata(model: AudioToCodeModel, graph: str, precision: str, sha256: str | None = None,
                         frames: int = LIVE_FRAMES) -> AudioGraphMetadata:
    """Metadata for one graph of `model` (pass `sha256` when already computed)."""
    from .. import __version__

    space = model.motion_space
    return AudioGraphMetadata(graph, precision, sha256 or audio_model_sha256(model),
                              str(getattr(model, "metadata", {}).get("prior_sha256") or ""), model.config, frames,
                              float(space.radius), tuple(float(v) for v in space.pose_std), __version__)

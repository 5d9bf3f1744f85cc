"""Quality of compressed variants on the test identities: against fp32 torch frames and against the real frames.

Protocol (self-reenactment, as `python -m sdk eval`): for each test clip the first frame is the
source and every `stride`-th later frame drives it with absolute motion; frames are loaded at the
output size S the variants render at (the keypoint encoder sees the driving frame averaged down
to the internal resolution). Every variant (any
`sdk.runtime.Backend`: torch, ONNX Runtime fp32/INT8, TFLite, a pruned torch model) renders the
same pairs. Scores per variant: PSNR and SSIM against the fp32 torch frames (what compression
changed) and PSNR, SSIM and AKD against the real frames (what the user sees); AKD is the mean
distance of the 478 face-mesh points at 256² (`sdk.eval.metrics.KeypointDistance`), over frames
where the mesh finds a face (misses are counted).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sdk.data.datasets import load_frame, read_prepared_manifest
from sdk.eval.metrics import AKD_RESOLUTION, KeypointDistance, ssim
from sdk.media import to_image, to_tensor
from sdk.models.talking_head import to_internal
from sdk.training.losses import psnr

from .errors import QuantizationError


@dataclass(frozen=True)
class EvalConfig:
    """Which test frames score the variants.

    data: a prepared folder; split: its held-out split; stride: every N-th frame drives;
    max_frames_per_clip: cap per clip (None: all); akd: also score AKD (runs the face mesh).
    """
    data: Path = Path("cache/prepared")
    split: str = "test"
    stride: int = 10
    max_frames_per_clip: int | None = None
    akd: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", Path(self.data))
        if self.stride < 1:
            raise QuantizationError(f"evaluation stride must be >= 1, got {self.stride}")


@dataclass(frozen=True)
class TestPair:
    clip: str
    source: torch.Tensor  # (1, 3, S, S)
    driving: torch.Tensor  # (1, 3, S, S)
    real: np.ndarray  # RGB uint8 (S, S, 3), the driving frame
    landmarks: np.ndarray  # (478, 2) of the real frame, pixels at 256²


@dataclass
class Quality:
    """Mean scores of one variant over the test pairs."""
    frames: int
    psnr_vs_fp32: float
    ssim_vs_fp32: float
    psnr_vs_real: float
    ssim_vs_real: float
    akd: float | None
    akd_missed: int


def load_test_pairs(config: EvalConfig, size: int) -> list[TestPair]:
    """The self-reenactment pairs of the test split, frames of side `size` (the output size)."""
    import csv

    clips = read_prepared_manifest(config.data, config.split, min_frames=2)
    with (config.data / "manifest.csv").open(newline="") as handle:
        sizes = {row["id"]: int(row["size"]) for row in csv.DictReader(handle) if row["status"] == "ok"}
    pairs = []
    for clip in clips:
        landmarks = np.load(clip.directory / "landmarks.npy")[:, :, :2] * (AKD_RESOLUTION / sizes[clip.id])
        source = to_tensor(load_frame(clip.frame_path(0), size))
        indices = list(range(config.stride, clip.frames, config.stride))[:config.max_frames_per_clip]
        for index in indices:
            real = load_frame(clip.frame_path(index), size)
            pairs.append(TestPair(clip.id, source, to_tensor(real), real, landmarks[index]))
    if not pairs:
        raise QuantizationError(f"{config.data}: no {config.split} frames at stride {config.stride}")
    return pairs


@torch.inference_mode()
def render_pairs(backend, pairs: list[TestPair]) -> list[torch.Tensor]:
    """(1, 3, S, S) predictions of a `Backend` (at the pairs' size) for every pair; the source state
    is made once per clip."""
    frames, state, state_clip = [], None, None
    for pair in pairs:
        if pair.clip != state_clip:
            state, state_clip = backend.prepare_source(pair.source), pair.clip
        code = backend.encode(to_internal(pair.driving, backend.cfg.resolution))
        frames.append(backend.render(state, code).float().clamp(0, 1))
    return frames


class QualityScorer:
    """Scores variants' frames against the fp32 reference frames and the real frames of `pairs`."""

    def __init__(self, pairs: list[TestPair], reference: list[torch.Tensor], akd: bool = True):
        self.pairs = pairs
        self.reference = reference
        self.distance = KeypointDistance() if akd else None

    def score(self, frames: list[torch.Tensor]) -> Quality:
        if len(frames) != len(self.pairs):
            raise QuantizationError(f"{len(frames)} frames for {len(self.pairs)} test pairs")
        psnr_ref, ssim_ref, psnr_real, ssim_real, akd = [], [], [], [], []
        missed = 0
        for frame, reference, pair in zip(frames, self.reference, self.pairs):
            psnr_ref.append(float(psnr(frame, reference)))
            ssim_ref.append(float(ssim(frame, reference)))
            psnr_real.append(float(psnr(frame, pair.driving)))
            ssim_real.append(float(ssim(frame, pair.driving)))
            if self.distance is not None and np.isfinite(pair.landmarks).all():
                found = self.distance.landmarks(to_image(frame))
                if found is None:
                    missed += 1
                else:
                    akd.append(KeypointDistance.distance(found, pair.landmarks))
        # Identical frames give PSNR 100 dB (the clamp in `psnr`); the mean says so plainly.
        return Quality(len(frames), float(np.mean(psnr_ref)), float(np.mean(ssim_ref)), float(np.mean(psnr_real)),
                       float(np.mean(ssim_real)), float(np.mean(akd)) if akd else None, missed)

    def close(self) -> None:
        if self.distance is not None:
            self.distance.close()

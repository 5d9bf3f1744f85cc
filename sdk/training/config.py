"""Training configurations (frozen dataclasses) and what a run reports.

- `TrainConfig`: what both stages share (data, run directory, steps, batch, optimiser, intervals).
- `DepthTrainConfig`, `GeneratorTrainConfig`: the two stages' own settings and loss weights.
- `TrainResult`: what `train_depth` / `train_generator` return.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SdkError
from ..models.config import MODEL_NAMES
from .distributed import DEVICES
from .losses import DepthLossWeights, LossWeights

@dataclass(frozen=True)
class TrainConfig:
    """Settings shared by both stages. Intervals count optimisation steps; 0 disables samples
    (`sample_interval`) or validation (`val_interval`). `batch_size` is per process."""
    model: str  # a config name, e.g. "dagan-mobile" or "dagan++-mobile-prior" (see sdk.models.config.MODEL_NAMES)
    data: Path  # a prepared data folder (python -m sdk data prepare)
    out: Path  # the run directory
    steps: int = 100_000
    batch_size: int = 8
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lr_decay_steps: tuple[int, ...] = ()  # multiply the learning rates by lr_decay at each of these steps
    lr_decay: float = 0.1
    num_workers: int = 2
    seed: int = 0
    augment: bool = True
    log_interval: int = 20
    sample_interval: int = 1000
    checkpoint_interval: int = 1000
    val_interval: int = 1000
    val_items: int = 16  # held-out items (split "test") in the fixed validation batch
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # mixed precision, CUDA only
    time_limit_minutes: float | None = None  # stop (checkpoint, export) at the first log step past it

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", Path(self.data))
        object.__setattr__(self, "out", Path(self.out))
        problems = []
        if self.model not in MODEL_NAMES:
            problems.append(f"model must be one of {', '.join(MODEL_NAMES)}, got {self.model!r}")
        if self.device not in DEVICES:
            problems.append(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        for name in ("steps", "batch_size", "log_interval", "checkpoint_interval", "val_items"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        for name in ("num_workers", "sample_interval", "val_interval"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must not be negative")
        if self.lr <= 0:
            problems.append("lr must be positive")
        if self.time_limit_minutes is not None and self.time_limit_minutes <= 0:
            problems.append("time_limit_minutes must be positive")
        if problems:
            raise SdkError("invalid training config: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (paths as strings)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


@dataclass(frozen=True)
class DepthTrainConfig(TrainConfig):
    """Depth stage: monodepth2's Adam (lr 1e-4, default betas)."""
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weights: DepthLossWeights = DepthLossWeights()


@dataclass(frozen=True)
class GeneratorTrainConfig(TrainConfig):
    """Generator stage: FOMM's Adam (lr 2e-4, betas 0.5/0.999) for both networks.

    `depth`: a depth-stage export (or a depth run directory, its best_model/ then model/) for the
    dagan variants; not needed for fomm or when resuming. `init`: a model export (`save_model`,
    e.g. the shipped `default` or RUN/model) whose weights a new run starts from, depth net
    included, so training continues from committed weights on a fresh machine (the optimizer and
    discriminator start afresh; weights saved without the composite head get a new one). The
    data is read at `output_size`; the networks see it averaged down to the internal resolution,
    the reconstruction loss compares frames at `output_size`, and the discriminator sees random
    `patch_size`² windows of them. The discriminator and the GAN terms start after `gan_warmup_steps`. The random equivariance transform follows FOMM's
    `sigma_affine`, `sigma_tps`, `points_tps`.

    Models driven by the face prior ("-prior", "-hybrid" configs): `prior` is the face prior file
    (`sdk.prior.load_prior`; its digest is saved with the model and checked on resume), and
    `expression_dropout` the share of pairs whose expression code keeps only a random number of
    leading dimensions (uniform in 0..E-1; the keypoints follow the same truncated code, as a
    receiver sent fewer dimensions would compute them), so that fewer dimensions can be sent.
    """
    depth: Path | None = None
    init: str | Path | None = None
    output_size: int | None = None  # frames compared at this size (None: the model's default output size)
    patch_size: int | None = None  # the discriminator's window of the frame (None: the internal resolution)
    lr_discriminator: float = 2e-4
    gan_warmup_steps: int = 1000
    weights: LossWeights = LossWeights()
    sigma_affine: float = 0.05
    sigma_tps: float = 0.005
    points_tps: int = 5
    prior: str | Path = "default"
    expression_dropout: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.expression_dropout <= 1.0:
            raise SdkError("invalid training config: expression_dropout must be in [0, 1]")
        if self.depth is not None:
            object.__setattr__(self, "depth", Path(self.depth))
        if self.init is not None and self.depth is not None:
            raise SdkError("invalid training config: --init brings its own depth net; drop --depth")
        for name in ("output_size", "patch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 8:
                raise SdkError(f"invalid training config: {name} must be at least 8 pixels")
        if self.gan_warmup_steps < 0:
            raise SdkError("invalid training config: gan_warmup_steps must not be negative")


@dataclass
class TrainResult:
    """What a finished (or already complete) run reports."""
    run_dir: Path
    step: int  # the step the run stopped at (= steps once complete, earlier at the time limit)
    losses: dict[str, float]  # mean of every term since the last log (empty if nothing ran)
    best: float | None  # the best validation score so far (PSNR dB or photometric error)

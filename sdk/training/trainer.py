"""Two-stage training: the self-supervised depth net, then the keypoint generator with a frozen depth net.

`train_depth(DepthTrainConfig)`: DepthNet + PoseNet on consecutive frames (FrameTripletDataset),
minimising `losses.depth_loss`; the run exports the depth stage with `sdk.checkpoint.save_depth`.

`train_generator(GeneratorTrainConfig)`: TalkingHeadModel (its depth net loaded from a depth-stage
export and frozen; fomm has none) and a multi-scale Discriminator on frame pairs
(FramePairDataset): pyramid reconstruction, least-squares GAN after a warm-up with feature
matching, equivariance of keypoints and Jacobians, keypoint distance; Adam as FOMM. The run
exports with `sdk.checkpoint.save_model`.

A run directory RUN holds:

    RUN/checkpoint.pt        full training state (atomic; the run resumes from it automatically)
    RUN/train_config.json    the configuration of the latest start or resume
    RUN/model/               the latest weights, fp32, rewritten at every checkpoint
    RUN/best_model/          the weights with the best validation score so far, fp32
    RUN/model-fp16/, RUN/best_model-fp16/   generator stage: the same in fp16, ready to ship
    RUN/samples/*.png        sample sheets
    RUN/logs/                TensorBoard events (every loss term, validation, lr, speed)

Runs are seeded (torch, numpy, random; the data order and every random draw inside an item
depend only on the seed and the step, see `sampling`), run on CPU or CUDA (mixed precision with
autocast + GradScaler on CUDA only), and on several processes under `torchrun`
(DistributedDataParallel, gloo on CPU, nccl on CUDA; `batch_size` is per process; rank 0 logs
and saves).
"""
from __future__ import annotations

import abc
import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..checkpoint import load_depth, load_model, save_depth, save_model
from ..data.datasets import FramePairDataset, FrameTripletDataset
from ..errors import ModelLoadError, SdkError
from ..media import write_image
from ..models import (CONFIG_NAMES, DepthNet, Discriminator, GeneratorOutput, Keypoints, ModelConfig, PoseNet,
                      TalkingHeadModel, get_config)
from .distributed import DEVICES, DistributedContext, barrier, gather, setup, teardown, wrap
from .losses import (DepthLossOutput, DepthLossWeights, LossWeights, RandomTransform, depth_loss,
                     discriminator_adversarial_loss, equivariance_losses, feature_matching_loss,
                     generator_adversarial_loss, keypoint_distance_loss, psnr, reconstruction_loss)
from .sampling import SeededItems, StepSampler, derived_seed
from .state import capture_rng_state, load_checkpoint, replace_directory, restore_rng_state, save_checkpoint, seed_everything
from .visualize import MAX_ROWS, depth_sheet, generator_sheet

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
CONFIG_FILE = "train_config.json"
MODEL_DIR = "model"
BEST_MODEL_DIR = "best_model"
HALF_SUFFIX = "-fp16"
SAMPLES_DIR = "samples"
LOGS_DIR = "logs"


# ----------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class TrainConfig:
    """Settings shared by both stages. Intervals count optimisation steps; 0 disables samples
    (`sample_interval`) or validation (`val_interval`). `batch_size` is per process."""
    model: str  # a config name, e.g. "dagan-mobile" (see sdk.models.CONFIG_NAMES)
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", Path(self.data))
        object.__setattr__(self, "out", Path(self.out))
        problems = []
        if self.model not in CONFIG_NAMES:
            problems.append(f"model must be one of {', '.join(CONFIG_NAMES)}, got {self.model!r}")
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
    discriminator start afresh). The discriminator and the GAN terms
    start after `gan_warmup_steps`. The random equivariance transform follows FOMM's
    `sigma_affine`, `sigma_tps`, `points_tps`.
    """
    depth: Path | None = None
    init: str | Path | None = None
    lr_discriminator: float = 2e-4
    gan_warmup_steps: int = 1000
    weights: LossWeights = LossWeights()
    sigma_affine: float = 0.05
    sigma_tps: float = 0.005
    points_tps: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.depth is not None:
            object.__setattr__(self, "depth", Path(self.depth))
        if self.init is not None and self.depth is not None:
            raise SdkError("invalid training config: --init brings its own depth net; drop --depth")
        if self.gan_warmup_steps < 0:
            raise SdkError("invalid training config: gan_warmup_steps must not be negative")


@dataclass
class TrainResult:
    """What a finished (or already complete) run reports."""
    run_dir: Path
    step: int  # the step the run stopped at (= steps once complete)
    losses: dict[str, float]  # mean of every term since the last log (empty if nothing ran)
    best: float | None  # the best validation score so far (PSNR dB or photometric error)


# ----------------------------------------------------------------------------------------------
# Objectives: one forward per network and step, so DistributedDataParallel sees one graph


@dataclass
class DepthStepOutput:
    loss: DepthLossOutput
    depth: Tensor  # (N, 1, H, W) finest depth of the target
    uncertainty: Tensor | None  # (N, 1, H, W) of the first reference pair (DaGAN++)


class DepthObjective(nn.Module):
    """target (N, 3, H, W), references (N, R, 3, H, W) -> DepthStepOutput (self-supervised loss)."""

    def __init__(self, depth_net: DepthNet, pose_net: PoseNet, weights: DepthLossWeights):
        super().__init__()
        self.depth_net = depth_net
        self.pose_net = pose_net
        self.weights = weights

    def forward(self, target: Tensor, references: Tensor) -> DepthStepOutput:
        depths = self.depth_net(target)
        poses = [self.pose_net(target, references[:, r]) for r in range(references.shape[1])]
        loss = depth_loss(target, references, depths, poses, self.weights)
        return DepthStepOutput(loss, depths[0].detach(), None if poses[0].uncertainty is None
                               else poses[0].uncertainty.detach())


@dataclass
class GeneratorStepOutput:
    total: Tensor  # weighted sum to minimise
    terms: dict[str, Tensor]  # unweighted, detached
    source_depth: Tensor | None  # (N, 1, H, W) normalised
    kp_source: Keypoints
    kp_driving: Keypoints
    generated: GeneratorOutput


class GeneratorObjective(nn.Module):
    """source, driving (N, 3, H, W) -> GeneratorStepOutput: the generator-side losses.

    The depth net is frozen (eval mode, no gradients). The discriminator, when given, is the
    caller's, with its parameters frozen for this step; it only passes gradients to the image.
    """

    def __init__(self, model: TalkingHeadModel, weights: LossWeights):
        super().__init__()
        self.model = model
        self.weights = weights
        if model.depth_net is not None:
            model.depth_net.requires_grad_(False)

    def train(self, mode: bool = True) -> GeneratorObjective:
        super().train(mode)
        if self.model.depth_net is not None:
            self.model.depth_net.eval()
        return self

    def forward(self, source: Tensor, driving: Tensor, transform: RandomTransform,
                discriminator: Discriminator | None = None) -> GeneratorStepOutput:
        model, weights = self.model, self.weights
        with torch.no_grad():
            source_depth = model.estimate_depth(source)
            driving_depth = model.estimate_depth(driving)
        kp_source = model.kp_detector(source, source_depth)
        kp_driving = model.kp_detector(driving, driving_depth)
        generated = model.generator(source, source_depth, kp_source, kp_driving)

        terms = {"reconstruction": reconstruction_loss(generated.prediction, driving, weights.pyramid_scales)}
        # Equivariance on RGB-D: image and depth move together (DaGAN++'s T(I || D)).
        rgbd = driving if driving_depth is None else torch.cat([driving, driving_depth], dim=1)
        transformed = transform.warp_image(rgbd)
        kp_transformed = model.kp_detector(transformed[:, :3], None if driving_depth is None else transformed[:, 3:])
        terms["equivariance_value"], terms["equivariance_jacobian"] = equivariance_losses(
            kp_driving, kp_transformed, transform)
        terms["keypoint_distance"] = (keypoint_distance_loss(kp_source.value, weights.keypoint_distance_threshold)
                                      + keypoint_distance_loss(kp_driving.value, weights.keypoint_distance_threshold))
        if discriminator is not None:
            kp = kp_driving.detach() if discriminator.use_kp else None
            fake = discriminator(generated.prediction, kp)
            with torch.no_grad():
                real = discriminator(driving, kp)
            terms["generator_gan"] = generator_adversarial_loss([o.prediction for o in fake])
            terms["feature_matching"] = feature_matching_loss([o.features for o in real], [o.features for o in fake])
        total = sum(getattr(weights, name) * value for name, value in terms.items())
        terms = {name: value.detach() for name, value in terms.items()}
        terms["total"] = total.detach()
        return GeneratorStepOutput(total, terms, source_depth, kp_source.detach(), kp_driving.detach(), generated)


class DiscriminatorObjective(nn.Module):
    """real, fake (N, 3, H, W), kp | None -> least-squares discriminator loss (scalar)."""

    def __init__(self, discriminator: Discriminator):
        super().__init__()
        self.discriminator = discriminator

    def forward(self, real: Tensor, fake: Tensor, kp: Keypoints | None) -> Tensor:
        real_out = self.discriminator(real, kp)
        fake_out = self.discriminator(fake, kp)
        return discriminator_adversarial_loss([o.prediction for o in real_out], [o.prediction for o in fake_out])


# ----------------------------------------------------------------------------------------------
# Stages


def _stack(items: list[dict]) -> dict[str, Tensor]:
    return {key: torch.stack([item[key] for item in items]) for key in items[0] if key != "clip"}


def _validation_batch(dataset: Dataset, count: int, seed: int, device: torch.device) -> dict[str, Tensor]:
    """A fixed batch of `count` items spread over `dataset`, the same for every step and resume."""
    seeded = SeededItems(dataset)
    indices = torch.linspace(0, len(dataset) - 1, count).round().long().tolist()
    batch = _stack([seeded[(index, derived_seed(seed + 2, i))] for i, index in enumerate(indices)])
    return {key: value.to(device) for key, value in batch.items()}


def _held_out(cls: type, cfg: TrainConfig, size: int) -> Dataset:
    try:
        return cls(cfg.data, "test", size=size, augment=False)
    except SdkError as exc:
        raise SdkError(f"validation needs held-out clips (split 'test'): {exc}. "
                       "Set val_interval to 0 (--val-every 0) to train without validation") from exc


class _Stage(abc.ABC):
    """What the shared loop needs from a stage: its networks, optimizers, one training step,
    sample sheet, validation and export."""
    name: str
    metric: str  # the validation metric that picks best_model/
    higher_is_better: bool
    ships_half: bool  # also write fp16 copies of the exported models
    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    scalers: dict[str, torch.amp.GradScaler]
    base_lrs: dict[str, float]

    def __init__(self, cfg: TrainConfig, model_cfg: ModelConfig, ctx: DistributedContext):
        self.cfg = cfg
        self.model_cfg = model_cfg
        self.ctx = ctx
        self.amp = cfg.amp and ctx.device.type == "cuda"
        if cfg.amp and not self.amp:
            log.debug("mixed precision is CUDA only; training in fp32 on %s", ctx.device)

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.ctx.device.type, dtype=torch.float16, enabled=self.amp)

    def scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.ctx.device.type, enabled=self.amp)

    def state(self) -> dict[str, Any]:
        return {"modules": {k: v.state_dict() for k, v in self.modules.items()},
                "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
                "scalers": {k: v.state_dict() for k, v in self.scalers.items()}}

    def load_state(self, checkpoint: dict[str, Any]) -> None:
        for group in ("modules", "optimizers", "scalers"):
            own = getattr(self, group)
            saved = checkpoint[group]
            if set(saved) != set(own):
                raise SdkError(f"checkpoint {group} {sorted(saved)} do not match this stage's {sorted(own)}")
            for key, value in own.items():
                if group == "scalers" and not saved[key]:
                    continue  # saved without mixed precision (CPU): start the scale afresh
                value.load_state_dict(saved[key])

    def set_learning_rate(self, step: int) -> None:
        factor = self.cfg.lr_decay ** sum(step >= milestone for milestone in self.cfg.lr_decay_steps)
        for name, optimizer in self.optimizers.items():
            for group in optimizer.param_groups:
                group["lr"] = self.base_lrs[name] * factor

    def to_device(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        return {k: v.to(self.ctx.device, non_blocking=True) for k, v in batch.items() if isinstance(v, Tensor)}

    @abc.abstractmethod
    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        """One optimisation step on a DataLoader batch -> detached unweighted loss terms (and "total")."""

    @abc.abstractmethod
    def sample_sheet(self) -> np.ndarray:
        """RGB uint8 sheet of the last training step's first examples."""

    @abc.abstractmethod
    def validate(self) -> dict[str, float]:
        """Metrics on the fixed held-out batch, including `metric`."""

    @abc.abstractmethod
    def export(self, directory: Path, half: bool, metadata: dict[str, Any]) -> None:
        """Write the stage's model directory (sdk.checkpoint format)."""


class _DepthStage(_Stage):
    name = "depth"
    metric = "photometric"
    higher_is_better = False
    ships_half = False

    def __init__(self, cfg: DepthTrainConfig, model_cfg: ModelConfig, ctx: DistributedContext):
        super().__init__(cfg, model_cfg, ctx)
        if model_cfg.depth is None:
            raise SdkError(f"{model_cfg.name} has no depth network; train its generator directly "
                           "(python -m sdk train generator)")
        self.depth_net = DepthNet(model_cfg).to(ctx.device)
        self.pose_net = PoseNet(model_cfg).to(ctx.device)
        self.objective = DepthObjective(self.depth_net, self.pose_net, cfg.weights)
        self.parallel = wrap(self.objective, ctx)
        self.modules = {"depth_net": self.depth_net, "pose_net": self.pose_net}
        params = [*self.depth_net.parameters(), *self.pose_net.parameters()]
        self.optimizers = {"depth": torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas)}
        self.base_lrs = {"depth": cfg.lr}
        self.scalers = {"depth": self.scaler()}
        self.val_batch = None
        if cfg.val_interval and ctx.is_main:
            held_out = _held_out(FrameTripletDataset, cfg, model_cfg.resolution)
            self.val_batch = _validation_batch(held_out, cfg.val_items, cfg.seed, ctx.device)
        self.last: tuple[dict[str, Tensor], DepthStepOutput] | None = None

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        batch = self.to_device(batch)
        self.objective.train()
        with self.autocast():
            out = self.parallel(batch["target"], batch["references"])
        optimizer, scaler = self.optimizers["depth"], self.scalers["depth"]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(out.loss.total).backward()
        scaler.step(optimizer)
        scaler.update()
        self.last = (batch, out)
        return out.loss.terms

    def sample_sheet(self) -> np.ndarray:
        batch, out = self.last
        return depth_sheet(batch["target"], batch["references"], out.loss.warped, out.depth, out.uncertainty,
                           out.loss.auto_mask)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.objective.eval()
        try:
            with self.autocast():
                out = self.objective(self.val_batch["target"], self.val_batch["references"])
        finally:
            self.objective.train()
        return {name: float(value) for name, value in out.loss.terms.items()}

    def export(self, directory: Path, half: bool, metadata: dict[str, Any]) -> None:
        save_depth(self.depth_net, self.pose_net, self.model_cfg, directory, half=half, extra_metadata=metadata)


def resolve_depth_export(path: Path) -> Path:
    """A depth-stage export directory from a path to one or to a depth run directory."""
    for candidate in (path, path / BEST_MODEL_DIR, path / MODEL_DIR):
        if (candidate / "config.json").is_file():
            return candidate
    raise SdkError(f"{path}: neither a depth-stage export (config.json) nor a depth run directory "
                   f"with {BEST_MODEL_DIR}/ or {MODEL_DIR}/")


def _load_frozen_depth(model: TalkingHeadModel, depth_path: Path) -> None:
    directory = resolve_depth_export(depth_path)
    stage = load_depth(directory)
    trained, wanted = stage.config, model.cfg
    if trained.depth != wanted.depth or trained.resolution != wanted.resolution:
        raise ModelLoadError(f"{directory}: depth stage of {trained.name} ({trained.resolution}², {trained.depth}) "
                             f"does not match {wanted.name} ({wanted.resolution}², {wanted.depth}); train the "
                             f"depth stage with --config {wanted.name}")
    if trained.variant != wanted.variant:
        log.warning("using the depth net of %s for %s (same architecture)", trained.name, wanted.name)
    model.depth_net.load_state_dict(stage.depth_net.state_dict())
    log.info("loaded the frozen depth net from %s (step %s)", directory, stage.metadata.get("step", "?"))


def _load_initial_weights(model: TalkingHeadModel, init: str | Path) -> None:
    start = load_model(init)
    if start.cfg != model.cfg:
        raise ModelLoadError(f"--init {init}: its config {start.cfg.name} differs from the run's {model.cfg.name}")
    model.load_state_dict(start.state_dict())
    log.info("initialised from %s (%s)", init, ", ".join(f"{k} {v}" for k, v in start.metadata.items()
                                                         if k in ("step", "stage", "run")) or "no provenance")


class _GeneratorStage(_Stage):
    name = "generator"
    metric = "psnr"
    higher_is_better = True
    ships_half = True

    def __init__(self, cfg: GeneratorTrainConfig, model_cfg: ModelConfig, ctx: DistributedContext, resuming: bool):
        super().__init__(cfg, model_cfg, ctx)
        self.model = TalkingHeadModel(model_cfg)
        if cfg.init is not None and not resuming:
            _load_initial_weights(self.model, cfg.init)
        elif model_cfg.uses_depth and not resuming:
            if cfg.depth is None:
                raise SdkError(f"{model_cfg.name} needs a trained depth net: pass --depth with a depth run "
                               f"(python -m sdk train depth --config {model_cfg.name} ...)")
            _load_frozen_depth(self.model, cfg.depth)
        elif cfg.depth is not None:
            if not model_cfg.uses_depth:
                raise SdkError(f"{model_cfg.name} has no depth net; drop --depth")
            log.info("resuming: the depth net comes from the checkpoint, --depth %s is not read", cfg.depth)
        self.model.to(ctx.device)
        self.discriminator = Discriminator(model_cfg).to(ctx.device)
        self.objective = GeneratorObjective(self.model, cfg.weights)
        self.discriminator_objective = DiscriminatorObjective(self.discriminator)
        self.parallel = wrap(self.objective, ctx)
        self.parallel_discriminator = wrap(self.discriminator_objective, ctx)
        self.modules = {"model": self.model, "discriminator": self.discriminator}
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizers = {
            "generator": torch.optim.Adam(trainable, lr=cfg.lr, betas=cfg.betas),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr_discriminator,
                                              betas=cfg.betas),
        }
        self.base_lrs = {"generator": cfg.lr, "discriminator": cfg.lr_discriminator}
        self.scalers = {"generator": self.scaler(), "discriminator": self.scaler()}
        self.val_batch = None
        if cfg.val_interval and ctx.is_main:
            held_out = _held_out(FramePairDataset, cfg, model_cfg.resolution)
            self.val_batch = _validation_batch(held_out, cfg.val_items, cfg.seed, ctx.device)
        self.last: tuple[dict[str, Tensor], GeneratorStepOutput] | None = None

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        cfg: GeneratorTrainConfig = self.cfg
        batch = self.to_device(batch)
        source, driving = batch["source"], batch["driving"]
        transform = RandomTransform(source.shape[0], cfg.sigma_affine, cfg.sigma_tps, cfg.points_tps,
                                    device=self.ctx.device)
        adversarial = step >= cfg.gan_warmup_steps
        self.objective.train()
        self.discriminator.train()

        self.discriminator.requires_grad_(False)
        with self.autocast():
            out = self.parallel(source, driving, transform, self.discriminator if adversarial else None)
        optimizer, scaler = self.optimizers["generator"], self.scalers["generator"]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(out.total).backward()
        scaler.step(optimizer)
        scaler.update()
        terms = dict(out.terms)

        if adversarial:
            self.discriminator.requires_grad_(True)
            kp = out.kp_driving if self.discriminator.use_kp else None
            with self.autocast():
                loss = self.parallel_discriminator(driving, out.generated.prediction.detach(), kp)
            optimizer, scaler = self.optimizers["discriminator"], self.scalers["discriminator"]
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(cfg.weights.discriminator_gan * loss).backward()
            scaler.step(optimizer)
            scaler.update()
            terms["discriminator_gan"] = loss.detach()
        self.last = (batch, out)
        return terms

    def sample_sheet(self) -> np.ndarray:
        batch, out = self.last
        rows = slice(0, MAX_ROWS)
        generated = out.generated
        return generator_sheet(batch["source"][rows], batch["driving"][rows],
                               None if out.source_depth is None else out.source_depth[rows],
                               out.kp_source, out.kp_driving, generated.occlusion[rows],
                               generated.deformed[rows].detach(), generated.prediction[rows].detach())

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        source, driving = self.val_batch["source"], self.val_batch["driving"]
        self.model.eval()
        try:
            with self.autocast():
                source_depth = self.model.estimate_depth(source)
                kp_source = self.model.kp_detector(source, source_depth)
                kp_driving = self.model.kp_detector(driving, self.model.estimate_depth(driving))
                prediction = self.model.generator(source, source_depth, kp_source, kp_driving).prediction
        finally:
            self.objective.train()
        return {"l1": float((prediction.float() - driving).abs().mean()), "psnr": float(psnr(prediction, driving).mean())}

    def export(self, directory: Path, half: bool, metadata: dict[str, Any]) -> None:
        save_model(self.model, directory, half=half, extra_metadata=metadata)


# ----------------------------------------------------------------------------------------------
# The shared loop


def _model_config_key(model_cfg: ModelConfig) -> str:
    return json.dumps(model_cfg.to_dict(), sort_keys=True)


def _read_resume_point(cfg: TrainConfig, stage_name: str, model_cfg: ModelConfig) -> dict[str, Any] | None:
    path = cfg.out / CHECKPOINT_FILE
    if not path.is_file():
        return None
    checkpoint = load_checkpoint(path)
    if checkpoint.get("stage") != stage_name or checkpoint.get("model_config") != _model_config_key(model_cfg):
        raise SdkError(f"{cfg.out} holds a {checkpoint.get('stage')} run of {checkpoint.get('model_name')}, not a "
                       f"{stage_name} run of {model_cfg.name}; use another --out or the same --config")
    return checkpoint


class _Run:
    """Bookkeeping of one run: logging, samples, validation, checkpoints and exports (rank 0 writes)."""

    def __init__(self, stage: _Stage, checkpoint: dict[str, Any] | None):
        self.stage = stage
        self.cfg = stage.cfg
        self.ctx = stage.ctx
        self.dir = stage.cfg.out
        self.start_step = 0
        self.best: float | None = None
        seed_everything(derived_seed(self.cfg.seed, 1 + self.ctx.rank))  # each rank its own random draws
        if checkpoint is not None:
            stage.load_state(checkpoint)
            self.start_step = int(checkpoint["step"])
            self.best = checkpoint["best"]
            exported = self.exported_best()
            if exported is not None and (self.best is None or self.better(exported, self.best)):
                self.best = exported  # validated after the last checkpoint, before an interruption
            rng = checkpoint["rng"]
            if len(rng) == self.ctx.world_size:
                restore_rng_state(rng[self.ctx.rank])
            else:
                log.warning("checkpoint was written by %d processes, this run has %d: random draws restart "
                            "from the seed (the data order is unaffected)", len(rng), self.ctx.world_size)
                seed_everything(derived_seed(self.cfg.seed, self.start_step * self.ctx.world_size + self.ctx.rank))
            log.info("resuming %s from step %d in %s", stage.name, self.start_step, self.dir)
        self.writer = None
        if self.ctx.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / CONFIG_FILE).write_text(json.dumps(
                {"stage": stage.name, **self.cfg.to_dict()}, indent=2) + "\n")
            # purge_step drops events a crashed run logged after its last checkpoint.
            self.writer = SummaryWriter(str(self.dir / LOGS_DIR), purge_step=self.start_step + 1)

    def better(self, score: float, than: float) -> bool:
        return score > than if self.stage.higher_is_better else score < than

    def exported_best(self) -> float | None:
        """The validation score recorded in RUN/best_model/, if there is one."""
        config = self.dir / BEST_MODEL_DIR / "config.json"
        if not config.is_file():
            return None
        validation = json.loads(config.read_text()).get("metadata", {}).get("validation", {})
        return validation.get(self.stage.metric)

    def metadata(self, step: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"stage": self.stage.name, "step": step, "train_config": self.cfg.to_dict(), **(extra or {})}

    def export(self, name: str, step: int, extra: dict[str, Any] | None = None) -> None:
        metadata = self.metadata(step, extra)
        replace_directory(self.dir / name, lambda d: self.stage.export(d, False, metadata))
        if self.stage.ships_half:
            replace_directory(self.dir / (name + HALF_SUFFIX), lambda d: self.stage.export(d, True, metadata))

    def log_scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        for name, value in values.items():
            self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def write_samples(self, step: int) -> None:
        sheet = self.stage.sample_sheet()
        write_image(self.dir / SAMPLES_DIR / f"{self.stage.name}_{step:07d}.png", sheet)
        self.writer.add_image("samples", sheet, step, dataformats="HWC")

    def validate(self, step: int) -> None:
        metrics = self.stage.validate()
        self.log_scalars("val", metrics, step)
        score = metrics[self.stage.metric]
        better = self.best is None or self.better(score, self.best)
        log.info("step %d validation: %s%s", step, ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
                 " (best)" if better else "")
        if better:
            self.best = score
            self.export(BEST_MODEL_DIR, step, {"validation": metrics})

    def save(self, step: int) -> None:
        """Checkpoint and latest export; every rank must call it (the RNG states are gathered)."""
        rng = gather(capture_rng_state(), self.ctx)
        if self.ctx.is_main:
            save_checkpoint(self.dir / CHECKPOINT_FILE, {
                "stage": self.stage.name, "model_name": self.stage.model_cfg.name,
                "model_config": _model_config_key(self.stage.model_cfg), "step": step, "best": self.best,
                "rng": rng, **self.stage.state()})
            self.export(MODEL_DIR, step)
        barrier(self.ctx)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _means(sums: dict[str, Tensor], count: int, step: int) -> dict[str, float]:
    means = {name: float(value) / count for name, value in sums.items()}
    bad = sorted(name for name, value in means.items() if not math.isfinite(value))
    if bad:
        raise SdkError(f"loss terms {', '.join(bad)} became non-finite by step {step}; lower the learning rate "
                       "or disable mixed precision, then resume from the last checkpoint")
    return means


def _train(stage: _Stage, dataset: Dataset, checkpoint: dict[str, Any] | None) -> TrainResult:
    cfg, ctx = stage.cfg, stage.ctx
    run = _Run(stage, checkpoint)
    means: dict[str, float] = {}
    if run.start_step >= cfg.steps:
        log.info("%s already trained to step %d (steps=%d): nothing to do", cfg.out, run.start_step, cfg.steps)
        run.close()
        return TrainResult(cfg.out, run.start_step, means, run.best)
    sampler = StepSampler(len(dataset), cfg.seed, cfg.batch_size, ctx.rank, ctx.world_size, run.start_step)
    # The loader's own generator: creating its iterator must not draw from the global one, or a
    # resumed run's random draws would shift by one against an uninterrupted run's.
    loader = DataLoader(SeededItems(dataset), batch_size=cfg.batch_size, sampler=sampler,
                        num_workers=cfg.num_workers, pin_memory=ctx.device.type == "cuda",
                        generator=torch.Generator().manual_seed(cfg.seed))
    batches = iter(loader)
    progress = tqdm(total=cfg.steps, initial=run.start_step, desc=stage.name, unit="step",
                    disable=not ctx.is_main, dynamic_ncols=True)
    sums: dict[str, Tensor] = {}
    count, tick = 0, time.perf_counter()
    try:
        for step in range(run.start_step, cfg.steps):
            stage.set_learning_rate(step)
            terms = stage.train_step(next(batches), step)
            for name, value in terms.items():
                sums[name] = sums.get(name, 0) + value.detach().float()
            count += 1
            done = step + 1
            progress.update(1)
            checkpoint_now = done % cfg.checkpoint_interval == 0 or done == cfg.steps
            if done % cfg.log_interval == 0 or checkpoint_now:
                means = _means(sums, count, done)
                if ctx.is_main:
                    run.log_scalars("train", means, done)
                    run.writer.add_scalar("train/seconds_per_step", (time.perf_counter() - tick) / count, done)
                    for name, optimizer in stage.optimizers.items():
                        run.writer.add_scalar(f"lr/{name}", optimizer.param_groups[0]["lr"], done)
                    progress.set_postfix(loss=f"{means['total']:.4f}")
                sums, count, tick = {}, 0, time.perf_counter()
            if ctx.is_main and cfg.sample_interval and done % cfg.sample_interval == 0:
                run.write_samples(done)
            if ctx.is_main and cfg.val_interval and done % cfg.val_interval == 0:
                run.validate(done)
            if checkpoint_now:
                run.save(done)
    finally:
        progress.close()
        run.close()
        del batches
    return TrainResult(cfg.out, cfg.steps, means, run.best)


def train_depth(cfg: DepthTrainConfig) -> TrainResult:
    """Train the depth and pose nets of `cfg.model` (a dagan or dagan++ config); see the module doc."""
    model_cfg = get_config(cfg.model)
    ctx = setup(cfg.device)
    try:
        dataset = FrameTripletDataset(cfg.data, "train", size=model_cfg.resolution, augment=cfg.augment)
        checkpoint = _read_resume_point(cfg, "depth", model_cfg)
        seed_everything(cfg.seed)  # identical initial weights on every rank
        stage = _DepthStage(cfg, model_cfg, ctx)
        return _train(stage, dataset, checkpoint)
    finally:
        teardown(ctx)


def train_generator(cfg: GeneratorTrainConfig) -> TrainResult:
    """Train the keypoint detector and generator of `cfg.model` with its discriminator; see the module doc."""
    model_cfg = get_config(cfg.model)
    ctx = setup(cfg.device)
    try:
        dataset = FramePairDataset(cfg.data, "train", size=model_cfg.resolution, augment=cfg.augment)
        checkpoint = _read_resume_point(cfg, "generator", model_cfg)
        seed_everything(cfg.seed)
        stage = _GeneratorStage(cfg, model_cfg, ctx, resuming=checkpoint is not None)
        return _train(stage, dataset, checkpoint)
    finally:
        teardown(ctx)

"""The two training stages behind the shared loop: networks, optimisers, one step, samples,
validation and export.

`TrainingStage` is what `sdk.training.trainer` drives; `DepthTrainingStage` trains the depth and
pose nets, `GeneratorTrainingStage` the keypoint detector, generator and discriminator (the depth
net frozen, loaded from a depth-stage export or from `--init`). For models driven by the face
prior it also turns each batch's meshes into prior keypoints and expression codes
(`SelfReenactment`, with expression dropout), masks and counts pairs without a usable mesh, and
validates through the receiver's path (`prepare_source` with the mesh, `drive`, `render_semantic`).
"""
from __future__ import annotations

import abc
import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..checkpoint import load_depth, load_model, save_depth, save_model
from ..data.datasets import FramePairDataset, FrameTripletDataset
from ..errors import ModelLoadError, SdkError
from ..models import DepthNet, Discriminator, ModelConfig, PoseNet, TalkingHeadModel
from ..prior import EncoderConfig, FacePrior, MotionDelta, SemanticEncoder, load_prior, relative_motion
from .config import DepthTrainConfig, GeneratorTrainConfig, TrainConfig
from .distributed import DistributedContext, wrap
from .losses import RandomTransform, psnr
from ..models.talking_head import to_internal
from .objectives import (DepthObjective, DepthStepOutput, DiscriminatorObjective, GeneratorObjective, GeneratorStepOutput,
                         random_patch)
from .sampling import SeededItems, derived_seed
from .self_reenactment import SelfReenactment, expression_cuts
from .visualize import MAX_ROWS, depth_sheet, generator_sheet

log = logging.getLogger(__name__)

BEST_MODEL_DIR = "best_model"
MODEL_DIR = "model"

def _stack(items: list[dict]) -> dict[str, Tensor]:
    return {key: torch.stack([item[key] for item in items]) for key in items[0] if key != "clip"}


def _validation_batch(dataset: Dataset, count: int, seed: int, device: torch.device) -> dict[str, Tensor]:
    """A fixed batch of `count` items spread over `dataset`, the same for every step and resume."""
    seeded = SeededItems(dataset)
    indices = torch.linspace(0, len(dataset) - 1, count).round().long().tolist()
    batch = _stack([seeded[(index, derived_seed(seed + 2, i))] for i, index in enumerate(indices)])
    return {key: value.to(device) for key, value in batch.items()}


def _held_out(cls: type, cfg: TrainConfig, size: int, **options: Any) -> Dataset:
    try:
        return cls(cfg.data, "test", size=size, augment=False, **options)
    except SdkError as exc:
        raise SdkError(f"validation needs held-out clips (split 'test'): {exc}. "
                       "Set val_interval to 0 (--val-every 0) to train without validation") from exc


class TrainingStage(abc.ABC):
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


class DepthTrainingStage(TrainingStage):
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
    """Start `model` from the weights of the export `init`.

    Upgrade paths: weights saved before the composite head (their config has none) start a model
    with one; every other tensor must match, and the head starts from `reset_composite_head`.
    Learned-keypoint weights start a prior or hybrid model of the same architecture (e.g.
    dagan++-mobile -> dagan++-mobile-prior): every tensor whose name and shape match loads (depth
    net, encoder, dense motion, decoder; the hybrid's detector hourglass), the rest start fresh
    (the expression modulation, which starts as the identity; detector heads of another K) and
    the unused keypoint detector of a prior model is dropped; both lists are logged.
    """
    start = load_model(init)
    upgrading = start.cfg.composite is None and model.cfg.composite is not None
    comparable = dataclasses.replace(start.cfg, composite=model.cfg.composite)
    to_prior = start.cfg.semantic is None and model.cfg.semantic is not None
    if to_prior:
        comparable = dataclasses.replace(comparable, name=model.cfg.name, num_kp=model.cfg.num_kp,
                                         keypoint_source=model.cfg.keypoint_source, semantic=model.cfg.semantic)
    if comparable != model.cfg:
        raise ModelLoadError(f"--init {init}: its config {start.cfg.name} differs from the run's {model.cfg.name}")
    if to_prior:
        own, tensors = model.state_dict(), start.state_dict()
        matching = {key: value for key, value in tensors.items() if key in own and own[key].shape == value.shape}
        model.load_state_dict(matching, strict=False)
        log.info("--init %s (%s) -> %s: %d tensors loaded; starting fresh: %s; not used: %s", init, start.cfg.name,
                 model.cfg.name, len(matching), ", ".join(sorted(set(own) - set(matching))) or "nothing",
                 _modules_of(sorted(set(tensors) - set(matching))) or "nothing")
        log.info("initialised from %s (%s)", init, ", ".join(f"{k} {v}" for k, v in start.metadata.items()
                                                             if k in ("step", "stage", "run")) or "no provenance")
        return
    missing, unexpected = model.load_state_dict(start.state_dict(), strict=not upgrading)
    if upgrading:
        head = {key for key in model.state_dict() if key.startswith("generator.composite_head.")}
        if set(missing) != head or unexpected:
            raise ModelLoadError(f"--init {init}: cannot add the composite head (missing {sorted(missing)}, "
                                 f"unexpected {sorted(unexpected)})")
        log.info("--init %s has no composite head: added one (%s), every other weight loaded", init,
                 ", ".join(sorted(head)))
    log.info("initialised from %s (%s)", init, ", ".join(f"{k} {v}" for k, v in start.metadata.items()
                                                         if k in ("step", "stage", "run")) or "no provenance")


def _modules_of(keys: list[str]) -> str:
    """State-dict keys summarised by their top-level module, e.g. "kp_detector (12 tensors)"."""
    counts: dict[str, int] = {}
    for key in keys:
        counts[key.split(".")[0]] = counts.get(key.split(".")[0], 0) + 1
    return ", ".join(f"{module} ({count} tensors)" for module, count in counts.items())


class GeneratorTrainingStage(TrainingStage):
    name = "generator"
    metric = "psnr"
    higher_is_better = True
    ships_half = True

    def __init__(self, cfg: GeneratorTrainConfig, model_cfg: ModelConfig, ctx: DistributedContext, resuming: bool):
        super().__init__(cfg, model_cfg, ctx)
        self.model = TalkingHeadModel(model_cfg)
        self.output_size = cfg.output_size or model_cfg.default_output_size
        self.prior: FacePrior | None = None
        self.reenactment: SelfReenactment | None = None
        self.flagged_pairs = 0  # pairs masked out for want of a usable mesh, over the whole run
        if model_cfg.semantic is not None:
            self.prior = load_prior(cfg.prior)
            try:
                self.reenactment = SelfReenactment(self.prior, model_cfg.semantic, self.output_size)
            except ValueError as exc:
                raise SdkError(f"invalid training config: {exc}") from None
            self.model.face_prior = self.prior
            energy = torch.as_tensor(self.prior.basis.energy[:model_cfg.semantic.expression_dims], dtype=torch.float32)
            self.model.generator.expression_modulation.set_input_scale(energy.sqrt())
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
        self.patch_size = cfg.patch_size or model_cfg.resolution
        try:
            model_cfg.check_output_size(self.output_size)
        except ValueError as exc:
            raise SdkError(f"invalid training config: {exc}") from None
        if self.patch_size > self.output_size:
            raise SdkError(f"invalid training config: patch_size {self.patch_size} exceeds the output size "
                           f"{self.output_size}")
        if model_cfg.discriminator.use_kp and self.patch_size < self.output_size:
            raise SdkError("invalid training config: a keypoint-conditioned discriminator (use_kp) needs whole "
                           f"frames; set patch_size to the output size {self.output_size}")
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
        self.val_motions: list[MotionDelta] | None = None
        if cfg.val_interval and ctx.is_main:
            held_out = _held_out(FramePairDataset, cfg, self.output_size, meshes=self.prior is not None)
            self.val_batch = _validation_batch(held_out, cfg.val_items, cfg.seed, ctx.device)
            if self.prior is not None:
                self._keep_validation_pairs_with_meshes()
        self.last: tuple[dict[str, Tensor], GeneratorStepOutput] | None = None

    def _keep_validation_pairs_with_meshes(self) -> None:
        """Prior and hybrid: the validation pairs whose meshes the encoder accepts, and each one's
        driving motion relative to its source frame (the anchor), as a receiver would get it."""
        meshes = {key: self.val_batch[key].cpu().double().numpy() for key in ("source_mesh", "driving_mesh")}
        usable = self.reenactment(meshes["source_mesh"], meshes["driving_mesh"]).valid.bool()
        count = int(usable.sum())
        if count == 0:
            raise SdkError(f"validation needs held-out pairs with usable face meshes (landmarks.npy): none of the "
                           f"{len(usable)} in {self.cfg.data} has one. Set val_interval to 0 (--val-every 0) to "
                           "train without validation")
        if count < len(usable):
            log.info("validation: %d of %d held-out pairs have usable face meshes; validating on those",
                     count, len(usable))
        self.val_batch = {key: value[usable.to(self.ctx.device)] for key, value in self.val_batch.items()}
        encoder = SemanticEncoder(self.prior, EncoderConfig(image_size=self.output_size))
        kept = usable.numpy()
        self.val_motions = [relative_motion(encoder.encode(driving).code, encoder.encode(source).code)
                            for source, driving in zip(meshes["source_mesh"][kept], meshes["driving_mesh"][kept])]

    def state(self) -> dict[str, Any]:
        state = super().state()
        if self.prior is not None:
            state.update(face_prior_sha256=self.prior.sha256, flagged_pairs=self.flagged_pairs)
        return state

    def load_state(self, checkpoint: dict[str, Any]) -> None:
        if self.prior is not None:
            if checkpoint.get("face_prior_sha256") != self.prior.sha256:
                raise SdkError(f"this run was trained with face prior {str(checkpoint.get('face_prior_sha256'))[:12]}, "
                               f"--prior {self.cfg.prior} is {str(self.prior.sha256)[:12]}; resume with the same prior")
            self.flagged_pairs = int(checkpoint.get("flagged_pairs", 0))
        super().load_state(checkpoint)

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        cfg: GeneratorTrainConfig = self.cfg
        meshes = None if self.prior is None else (batch["source_mesh"].numpy(), batch["driving_mesh"].numpy())
        batch = self.to_device(batch)
        source, driving = batch["source"], batch["driving"]
        transform = RandomTransform(source.shape[0], cfg.sigma_affine, cfg.sigma_tps, cfg.points_tps,
                                    device=self.ctx.device)
        adversarial = step >= cfg.gan_warmup_steps
        patch = random_patch(self.output_size, self.patch_size) if adversarial else None
        prior_inputs = None
        if meshes is not None:
            cuts = expression_cuts(source.shape[0], self.model_cfg.semantic.expression_dims, cfg.expression_dropout)
            prior_inputs = self.reenactment(*meshes, cuts)
            flagged = int((prior_inputs.valid == 0).sum())
            self.flagged_pairs += flagged
            prior_inputs = prior_inputs.to(self.ctx.device)
        self.objective.train()
        self.discriminator.train()

        self.discriminator.requires_grad_(False)
        with self.autocast():
            out = self.parallel(source, driving, transform, self.discriminator if adversarial else None,
                                batch.get("coverage"), patch, batch.get("regions"), prior_inputs)
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
                loss = self.parallel_discriminator(out.real_patch, out.fake_patch, kp)
            optimizer, scaler = self.optimizers["discriminator"], self.scalers["discriminator"]
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(cfg.weights.discriminator_gan * loss).backward()
            scaler.step(optimizer)
            scaler.update()
            terms["discriminator_gan"] = loss.detach()
        if meshes is not None:
            terms["flagged_pairs"] = torch.tensor(float(flagged))  # per step; the run's total is in the exports
        self.last = (batch, out)
        return terms

    def sample_sheet(self) -> np.ndarray:
        batch, out = self.last
        rows = slice(0, MAX_ROWS)
        generated = out.generated
        return generator_sheet(batch["source"][rows], batch["driving"][rows],
                               None if out.source_depth is None else out.source_depth[rows],
                               out.kp_source, out.kp_driving, generated.occlusion[rows],
                               generated.deformed[rows].detach(), generated.prediction[rows].detach(),
                               generated.decoded[rows].detach(),
                               None if generated.composite_mask is None else generated.composite_mask[rows].detach())

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """L1 and PSNR of the frames at the output size on the fixed held-out batch, and the L1
        over the driving frames' mouth and eyes alone (`mouth_eyes_l1`)."""
        source, driving = self.val_batch["source"], self.val_batch["driving"]
        self.model.eval()
        try:
            with self.autocast():
                if self.prior is None:
                    state = self.model.prepare_source(source)
                    kp_driving = self.model.encode(to_internal(driving, self.model_cfg.resolution))
                    prediction = self.model.render(state, kp_driving).prediction
                else:
                    # The receiver's path: the source frame as the avatar, its own code as the anchor.
                    state = self.model.prepare_source(source, self.val_batch["source_mesh"].cpu().numpy())
                    learned = (None if self.model.kp_detector is None
                               else self.model.encode(to_internal(driving, self.model_cfg.resolution)))
                    inputs = self.model.drive(state, self.val_motions, learned)
                    prediction = self.model.render_semantic(state, inputs.keypoints, inputs.expression).prediction
        finally:
            self.objective.train()
        error = (prediction.float() - driving).abs()
        regions = self.val_batch["regions"]
        return {"l1": float(error.mean()), "psnr": float(psnr(prediction, driving).mean()),
                "mouth_eyes_l1": float((error * regions).sum() / (3 * regions.sum()).clamp_min(1e-6))}

    def export(self, directory: Path, half: bool, metadata: dict[str, Any]) -> None:
        if self.prior is not None:
            # The receiver loads the prior with this digest (`TalkingHeadModel.prior`), or refuses.
            metadata = {**metadata, "face_prior": {"sha256": self.prior.sha256, "components": self.prior.components},
                        "flagged_pairs": self.flagged_pairs}
        save_model(self.model, directory, half=half, extra_metadata=metadata)

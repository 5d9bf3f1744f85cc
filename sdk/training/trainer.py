"""Two-stage training: the self-supervised depth net, then the keypoint generator with a frozen depth net.

`train_depth(DepthTrainConfig)`: DepthNet + PoseNet on consecutive frames (FrameTripletDataset),
minimising `losses.depth_loss`; the run exports the depth stage with `sdk.checkpoint.save_depth`.

`train_generator(GeneratorTrainConfig)`: TalkingHeadModel (its depth net loaded from a depth-stage
export and frozen; fomm has none) and a multi-scale Discriminator on frame pairs
(FramePairDataset): pyramid reconstruction, least-squares GAN after a warm-up with feature
matching, equivariance of keypoints and Jacobians, keypoint distance; Adam as FOMM. The run
exports with `sdk.checkpoint.save_model`.

The pieces: `config` (the frozen configs), `objectives` (the losses per step), `stages` (networks,
optimisers, step, validation, export per stage), `run` (logging, checkpoints, exports; the run
directory's layout), and here the shared loop.

Runs are seeded (torch, numpy, random; the data order and every random draw inside an item
depend only on the seed and the step, see `sampling`), run on CPU or CUDA (mixed precision with
autocast + GradScaler on CUDA only), and on several processes under `torchrun`
(DistributedDataParallel, gloo on CPU, nccl on CUDA; `batch_size` is per process; rank 0 logs
and saves).
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..data.datasets import FramePairDataset, FrameTripletDataset
from ..errors import SdkError
from ..models import ModelConfig, get_config
from .config import DepthTrainConfig, GeneratorTrainConfig, TrainResult
from .distributed import gather, setup, teardown
from .run import TrainingRun, read_resume_point
from .sampling import SeededItems, StepSampler
from .stages import DepthTrainingStage, GeneratorTrainingStage, TrainingStage
from .state import seed_everything

log = logging.getLogger(__name__)


def _means(sums: dict[str, Tensor], count: int, step: int) -> dict[str, float]:
    means = {name: float(value) / count for name, value in sums.items()}
    bad = sorted(name for name, value in means.items() if not math.isfinite(value))
    if bad:
        raise SdkError(f"loss terms {', '.join(bad)} became non-finite by step {step}; lower the learning rate "
                       "or disable mixed precision, then resume from the last checkpoint")
    return means


def _train(stage: TrainingStage, dataset: Dataset, checkpoint: dict[str, Any] | None) -> TrainResult:
    cfg, ctx = stage.cfg, stage.ctx
    run = TrainingRun(stage, checkpoint)
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
    started, stop_at = time.monotonic(), cfg.steps
    try:
        for step in range(run.start_step, cfg.steps):
            stage.set_learning_rate(step)
            terms = stage.train_step(next(batches), step)
            for name, value in terms.items():
                sums[name] = sums.get(name, 0) + value.detach().float()
            count += 1
            done = step + 1
            progress.update(1)
            if cfg.time_limit_minutes is not None and done % cfg.log_interval == 0:
                # Every rank must stop at the same step (the checkpoint gathers from all of them).
                if any(gather(time.monotonic() - started > 60 * cfg.time_limit_minutes, ctx)):
                    stop_at = done
                    log.info("time limit of %.1f min reached at step %d: checkpointing and stopping",
                             cfg.time_limit_minutes, done)
            checkpoint_now = done % cfg.checkpoint_interval == 0 or done == stop_at
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
            if done == stop_at:
                break
    finally:
        progress.close()
        run.close()
        del batches
    return TrainResult(cfg.out, stop_at, means, run.best)


def train_depth(cfg: DepthTrainConfig) -> TrainResult:
    """Train the depth and pose nets of `cfg.model` (a dagan or dagan++ config); see the module doc."""
    model_cfg = get_config(cfg.model)
    ctx = setup(cfg.device)
    try:
        dataset = FrameTripletDataset(cfg.data, "train", size=model_cfg.resolution, augment=cfg.augment)
        checkpoint = read_resume_point(cfg, "depth", model_cfg)
        seed_everything(cfg.seed)  # identical initial weights on every rank
        stage = DepthTrainingStage(cfg, model_cfg, ctx)
        return _train(stage, dataset, checkpoint)
    finally:
        teardown(ctx)


def train_generator(cfg: GeneratorTrainConfig, model_config: ModelConfig | None = None) -> TrainResult:
    """Train the keypoint detector and generator of `cfg.model` with its discriminator; see the module doc.

    `model_config`: a variant of the named config to train instead (e.g. without the composite
    head, for the ablation); its name must be `cfg.model`.
    """
    model_cfg = get_config(cfg.model) if model_config is None else model_config
    if model_cfg.name != cfg.model:
        raise SdkError(f"invalid training config: model_config is {model_cfg.name}, the run says {cfg.model}")
    ctx = setup(cfg.device)
    try:
        dataset = FramePairDataset(cfg.data, "train", size=cfg.output_size or model_cfg.default_output_size,
                                   augment=cfg.augment, meshes=model_cfg.semantic is not None)
        checkpoint = read_resume_point(cfg, "generator", model_cfg)
        seed_everything(cfg.seed)
        stage = GeneratorTrainingStage(cfg, model_cfg, ctx, resuming=checkpoint is not None)
        return _train(stage, dataset, checkpoint)
    finally:
        teardown(ctx)

"""Short fine-tuning of a compressed (pruned) generator with the training losses.

Only the generator learns: the depth net and keypoint detector are the unpruned ones and stay
frozen, so the codes a sender produces do not change. Each step renders a (source, driving)
pair of the train split and minimises the training stage's reconstruction loss (pyramid L1 +
(1 − SSIM), `sdk.training.losses`) plus, with `distill_weight`, an L1 distance to the frames of
the uncompressed model (the teacher), which recovers the lost layers faster than the data alone.
BatchNorm statistics adapt during the run (train mode), which pruning makes necessary: the layer
after a pruned one sees different inputs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from sdk.data.datasets import FramePairDataset
from sdk.models import TalkingHeadModel
from sdk.training.losses import LossWeights, reconstruction_loss

from .errors import QuantizationError

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class FinetuneConfig:
    """data: a prepared folder (train split); steps, batch_size, lr: Adam on the generator;
    distill_weight: weight of the L1 to the teacher's frames (0: the data alone); seed; device (a torch device);
    log_every: steps per point of the loss curve."""
    data: Path = Path("cache/prepared")
    steps: int = 300
    batch_size: int = 4
    lr: float = 1e-4
    distill_weight: float = 10.0
    seed: int = 0
    device: str = "cpu"
    log_every: int = 25

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", Path(self.data))
        if self.steps < 0 or self.batch_size < 1 or self.lr <= 0 or self.distill_weight < 0 or self.log_every < 1:
            raise QuantizationError(f"invalid fine-tuning settings {self}")
        try:
            torch.device(self.device)
        except RuntimeError as exc:
            raise QuantizationError(f"fine-tuning device {self.device!r}: {exc}") from None


@dataclass
class FinetuneResult:
    steps: int
    seconds: float
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, mean total loss since the last log)


def finetune_generator(student: TalkingHeadModel, teacher: TalkingHeadModel | None, config: FinetuneConfig,
                       progress: ProgressFn | None = None) -> FinetuneResult:
    """Train `student.generator` in place for `config.steps` steps; returns the loss curve.

    Both models are moved to `config.device` and stay there.
    """
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    student.to(device).eval()
    trainable = student.generator
    for module in (student.depth_net, student.kp_detector):
        if module is not None:
            module.requires_grad_(False)
    parameters = [p for p in trainable.parameters() if p.requires_grad]
    if not parameters:
        raise QuantizationError("the generator has no trainable parameters")
    optimizer = torch.optim.Adam(parameters, lr=config.lr, betas=(0.5, 0.999))
    if teacher is not None:
        teacher.to(device).eval()
    dataset = FramePairDataset(config.data, "train", size=student.cfg.resolution, augment=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=True,
                                         num_workers=0, generator=torch.Generator().manual_seed(config.seed))
    weights = LossWeights()
    result = FinetuneResult(0, 0.0)
    started, running, counted = time.perf_counter(), 0.0, 0
    batches = iter(loader)
    trainable.train()
    for step in range(1, config.steps + 1):
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        source, driving = batch["source"].to(device), batch["driving"].to(device)
        with torch.no_grad():
            source_depth, driving_depth = student.estimate_depth(source), student.estimate_depth(driving)
            kp_source = student.kp_detector(source, source_depth)
            kp_driving = student.kp_detector(driving, driving_depth)
            target = None if teacher is None else teacher.generator(source, source_depth, kp_source,
                                                                    kp_driving).prediction
        prediction = trainable(source, source_depth, kp_source, kp_driving).prediction
        loss = weights.reconstruction * reconstruction_loss(prediction, driving, weights.pyramid_scales)
        if target is not None and config.distill_weight:
            loss = loss + config.distill_weight * (prediction - target).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running += float(loss.detach())
        counted += 1
        if step % config.log_every == 0 or step == config.steps:
            result.losses.append((step, running / counted))
            if progress:
                progress(f"fine-tune step {step}/{config.steps} loss {running / counted:.4f} "
                         f"({(time.perf_counter() - started) / step:.2f} s/step)")
            running, counted = 0.0, 0
    student.eval()
    result.steps = config.steps
    result.seconds = time.perf_counter() - started
    return result

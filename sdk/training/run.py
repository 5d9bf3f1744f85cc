"""Bookkeeping of one training run: logging, samples, validation, checkpoints and exports.

A run directory RUN holds:

    RUN/checkpoint.pt        full training state (atomic; the run resumes from it automatically)
    RUN/train_config.json    the configuration of the latest start or resume
    RUN/model/               the latest weights, fp32, rewritten at every checkpoint
    RUN/best_model/          the weights with the best validation score so far, fp32
    RUN/model-fp16/, RUN/best_model-fp16/   generator stage: the same in fp16, ready to ship
    RUN/samples/*.png        sample sheets
    RUN/logs/                TensorBoard events (every loss term, validation, lr, speed)
"""
from __future__ import annotations

import json
import logging
from typing import Any

from ..errors import SdkError
from ..media import write_image
from ..models import ModelConfig
from .config import TrainConfig
from .distributed import barrier, gather
from .sampling import derived_seed
from .stages import BEST_MODEL_DIR, MODEL_DIR, TrainingStage
from ..files import replace_directory
from .state import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint, seed_everything

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
CONFIG_FILE = "train_config.json"
HALF_SUFFIX = "-fp16"
SAMPLES_DIR = "samples"
LOGS_DIR = "logs"

def model_config_key(model_cfg: ModelConfig) -> str:
    return json.dumps(model_cfg.to_dict(), sort_keys=True)


def read_resume_point(cfg: TrainConfig, stage_name: str, model_cfg: ModelConfig) -> dict[str, Any] | None:
    path = cfg.out / CHECKPOINT_FILE
    if not path.is_file():
        return None
    checkpoint = load_checkpoint(path)
    if checkpoint.get("stage") != stage_name or checkpoint.get("model_config") != model_config_key(model_cfg):
        raise SdkError(f"{cfg.out} holds a {checkpoint.get('stage')} run of {checkpoint.get('model_name')}, not a "
                       f"{stage_name} run of {model_cfg.name}; use another --out or the same --config")
    return checkpoint


class TrainingRun:
    """Bookkeeping of one run: logging, samples, validation, checkpoints and exports (rank 0 writes)."""

    def __init__(self, stage: TrainingStage, checkpoint: dict[str, Any] | None):
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
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the minimal install (the README's first command) has no TensorBoard
                raise SdkError("training writes TensorBoard logs: pip install -e \".[train]\"") from None

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
                "model_config": model_config_key(self.stage.model_cfg), "step": step, "best": self.best,
                "rng": rng, **self.stage.state()})
            self.export(MODEL_DIR, step)
        barrier(self.ctx)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

"""The structured-pruning recipe: prune channels, refit their readers, fine-tune briefly, save.

`prune_model` = `pruning.prune_channels` (BatchNorm-scaled L1 ranking) -> `pruning.reconstruct_readers`
(least squares on calibration pairs of the train split) -> `finetune.finetune_generator` (training
losses + distillation from the unpruned model) -> `pruning.save_pruned`, with the generator's MACs
before and after (`sdk.models.count_macs` on the per-frame graph).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from sdk.media import to_tensor
from sdk.models import TalkingHeadModel, count_macs, count_params
from sdk.runtime.metadata import model_sha256

from .calibration import CalibrationConfig, load_calibration
from .finetune import FinetuneConfig, FinetuneResult, finetune_generator
from .pruning import PruneConfig, generator_inputs, prune_channels, reconstruct_readers, save_pruned

SUMMARY_FILE = "pruning_summary.json"
ProgressFn = Callable[[str], None]


@dataclass
class StructuredResult:
    directory: Path
    generator_macs_before: int
    generator_macs_after: int
    parameters_before: int
    parameters_after: int
    reconstruction_residuals: dict[str, float]
    finetune: FinetuneResult
    seconds: float

    @property
    def mac_reduction(self) -> float:
        return 1.0 - self.generator_macs_after / self.generator_macs_before

    def to_dict(self) -> dict:
        data = asdict(self)
        data["directory"] = str(self.directory)
        data["mac_reduction"] = self.mac_reduction
        return data


def generator_macs(model: TalkingHeadModel, output_size: int | None = None) -> int:
    """MACs of one per-frame generator call (the exported `generator` graph at `output_size`,
    None: the model's default)."""
    from sdk.runtime.graphs import build_graphs, example_inputs

    return count_macs(build_graphs(model, output_size=output_size)["generator"],
                      example_inputs(model.cfg, output_size=output_size)["generator"])


def prune_model(model: TalkingHeadModel, out_dir: str | Path, prune: PruneConfig = PruneConfig(),
                calibration: CalibrationConfig = CalibrationConfig(pairs=16),
                finetune: FinetuneConfig = FinetuneConfig(), progress: ProgressFn | None = None) -> StructuredResult:
    """Prune, refit, fine-tune and save `model` to `out_dir` (see the module docstring)."""
    say = progress or (lambda message: None)
    started = time.perf_counter()
    model = model.to("cpu").eval()
    pruned, plan = prune_channels(model, prune)
    say(f"pruned {len(plan.groups)} channel groups by {prune.ratio:.0%}; refitting their readers")
    pairs = load_calibration(calibration, model.cfg.resolution)
    inputs = generator_inputs(model, to_tensor(np.stack(pairs.sources)), to_tensor(np.stack(pairs.drivers)))
    residuals = reconstruct_readers(pruned, model, plan, inputs)
    tuned = finetune_generator(pruned, model, finetune, say)
    pruned, model = pruned.to("cpu"), model.to("cpu")  # fine-tuning moved both to its device
    with torch.no_grad():
        result = StructuredResult(Path(out_dir), generator_macs(model), generator_macs(pruned), count_params(model),
                                  count_params(pruned), residuals, tuned, 0.0)
    result.seconds = time.perf_counter() - started
    save_pruned(pruned, plan, out_dir, {"pruned_from": model.cfg.name, "pruned_from_sha256": model_sha256(model),
                                        "mac_reduction": result.mac_reduction, "finetune_steps": finetune.steps})
    (Path(out_dir) / SUMMARY_FILE).write_text(json.dumps(result.to_dict(), indent=1, default=str) + "\n")
    return result

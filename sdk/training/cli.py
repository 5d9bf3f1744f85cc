"""`python -m sdk train depth|generator`: train the depth stage, then the generator.

    python -m sdk train depth --config dagan-mobile --data DATA --out runs/depth
    python -m sdk train generator --config dagan-mobile --data DATA --out runs/gen --depth runs/depth
    python -m sdk train generator --config dagan++-mobile-prior --init default --data DATA --out runs/prior
    torchrun --nproc_per_node 2 -m sdk train generator ...    (one process per GPU or CPU slot)

A run resumes from RUN/checkpoint.pt automatically.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from .audio_cli import add_audio_train_stage


# Command-line flag -> TrainConfig field, for the settings both stages share.
_COMMON_FLAGS = {"steps": "steps", "batch_size": "batch_size", "lr": "lr", "device": "device", "seed": "seed",
                 "num_workers": "num_workers", "log_every": "log_interval", "sample_every": "sample_interval",
                 "checkpoint_every": "checkpoint_interval", "val_every": "val_interval", "val_items": "val_items",
                 "time_limit": "time_limit_minutes"}


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="NAME",
                        help="model config, e.g. dagan-mobile (fomm|dagan|dagan++ - tiny|mobile|paper), "
                        "or a face-prior one: dagan++-mobile-prior, dagan++-mobile-hybrid")
    parser.add_argument("--data", required=True, type=Path, help="prepared data folder (python -m sdk data prepare)")
    parser.add_argument("--out", required=True, type=Path, help="run directory; an existing run is resumed")
    parser.add_argument("--steps", type=int, help="total optimisation steps (default 100000)")
    parser.add_argument("--batch-size", type=int, help="batch size per process (default 8)")
    parser.add_argument("--lr", type=float, help="learning rate (depth 1e-4, generator 2e-4)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default auto: cuda when available")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--num-workers", type=int, help="data loading processes (default 2)")
    parser.add_argument("--log-every", type=int, metavar="N", help="TensorBoard scalars every N steps (default 20)")
    parser.add_argument("--sample-every", type=int, metavar="N", help="sample sheet every N steps, 0 never (1000)")
    parser.add_argument("--checkpoint-every", type=int, metavar="N", help="checkpoint + RUN/model every N steps (1000)")
    parser.add_argument("--val-every", type=int, metavar="N",
                        help="validate on held-out clips every N steps, 0 never (1000)")
    parser.add_argument("--val-items", type=int, metavar="N", help="size of the fixed validation batch (16)")
    parser.add_argument("--no-amp", dest="amp", action="store_false", help="no mixed precision on CUDA")
    parser.add_argument("--time-limit", type=float, metavar="MIN", help="stop after MIN minutes of training, "
                        "checkpointed and exported (e.g. the time left on a lent GPU)")
    parser.add_argument("--no-augment", dest="augment", action="store_false", help="no flips or colour jitter")


def _overrides(args: argparse.Namespace, flags: dict[str, str]) -> dict[str, object]:
    values = {field: getattr(args, flag) for flag, field in flags.items() if getattr(args, flag) is not None}
    values.update(model=args.config, data=args.data, out=args.out, amp=args.amp, augment=args.augment)
    return values


def depth_config(args: argparse.Namespace):
    """The DepthTrainConfig of parsed `train depth` arguments (unset flags keep the defaults)."""
    from .config import DepthTrainConfig

    return DepthTrainConfig(**_overrides(args, _COMMON_FLAGS))


def generator_config(args: argparse.Namespace):
    """The GeneratorTrainConfig of parsed `train generator` arguments (unset flags keep the defaults)."""
    from .config import GeneratorTrainConfig
    from .losses import LossWeights

    values = _overrides(args, {**_COMMON_FLAGS, "depth": "depth", "init": "init", "gan_warmup": "gan_warmup_steps",
                               "size": "output_size", "patch_size": "patch_size", "prior": "prior",
                               "expression_dropout": "expression_dropout"})
    if getattr(args, "mask_weight", None) is not None:
        values["weights"] = LossWeights(composite_mask=args.mask_weight)
    return GeneratorTrainConfig(**values)


def _report(result) -> int:
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun, rank 0 reports for the run
    losses = ", ".join(f"{name} {value:.4f}" for name, value in sorted(result.losses.items()))
    print(f"{result.run_dir}: step {result.step}" + (f"; {losses}" if losses else "")
          + (f"; best validation {result.best:.4f}" if result.best is not None else ""))
    return 0


def _run_depth(args: argparse.Namespace) -> int:
    from .trainer import train_depth

    return _report(train_depth(depth_config(args)))


def _run_generator(args: argparse.Namespace) -> int:
    from .trainer import train_generator

    return _report(train_generator(generator_config(args)))


def add_train_verb(subparsers: argparse._SubParsersAction) -> None:
    """Add `train depth` and `train generator` to the `python -m sdk` parser."""
    parser = subparsers.add_parser("train", help="train the depth net or the generator",
                                   description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    stages = parser.add_subparsers(dest="train_stage", metavar="STAGE", required=True)
    depth = stages.add_parser("depth", help="self-supervised depth + pose nets (dagan, dagan++)")
    _add_common(depth)
    depth.set_defaults(run=_run_depth)
    generator = stages.add_parser("generator", help="keypoints + generator (frozen depth net)")
    _add_common(generator)
    generator.add_argument("--depth", type=Path, metavar="RUN_OR_DIR",
                           help="depth run directory or depth export (dagan variants; not needed to resume)")
    generator.add_argument("--init", metavar="MODEL", help="start a new run from a model's weights (default, a "
                           "model directory or RUN/model), depth net included; instead of --depth")
    generator.add_argument("--gan-warmup", type=int, metavar="N", help="steps before the GAN losses start (1000)")
    generator.add_argument("--size", type=int, metavar="S", help="output size the frames are compared at "
                           "(default: 2x the internal resolution, e.g. 256 for the mobile configs)")
    generator.add_argument("--mask-weight", type=float, metavar="W", help="weight of the composite mask's "
                           "decisiveness loss, mean 4m(1-m) (default 1; 0 turns it off)")
    generator.add_argument("--patch-size", type=int, metavar="P", help="the discriminator's window of the frame "
                           "(default: the internal resolution)")
    generator.add_argument("--prior", metavar="PRIOR", help="face prior of -prior and -hybrid configs: default "
                           "(sdk/assets/prior) or a prior directory (python -m sdk prior fit)")
    generator.add_argument("--expression-dropout", type=float, metavar="P", help="-prior and -hybrid configs: share "
                           "of pairs whose expression code keeps only a random number of leading dims (0.5)")
    generator.set_defaults(run=_run_generator)
    add_audio_train_stage(stages)


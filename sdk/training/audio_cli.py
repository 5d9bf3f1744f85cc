"""`python -m sdk train audio`: the parser side (no torch import until the stage runs); see `sdk.training.audio`."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SdkError


def add_audio_train_stage(stages: argparse._SubParsersAction) -> None:
    """`train audio` under the `python -m sdk train` parser."""
    parser = stages.add_parser("audio", help="audio -> expression + head motion (python -m sdk audio prepare first)")
    parser.add_argument("--data", type=Path, default=Path("cache/audio"), help="audio cache (python -m sdk audio prepare)")
    parser.add_argument("--out", type=Path, required=True, help="run directory; an existing run is resumed")
    parser.add_argument("--steps", type=int, help="total optimisation steps (default 1600)")
    parser.add_argument("--time-limit", type=float, metavar="MIN", help="stop after MIN minutes (checkpointed, exported)")
    parser.add_argument("--batch-size", type=int, help="expression segments per step (default 32)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default 1e-3)")
    parser.add_argument("--segment-frames", type=int, help="frames per expression segment (default 16)")
    parser.add_argument("--corr-weight", type=float,
                        help="weight of the per-segment mouth-opening correlation loss (default 0: off)")
    parser.add_argument("--mel-warp", type=float, metavar="W",
                        help="stretch each segment's mel axis by a random factor in 1 +- W (default 0: off)")
    parser.add_argument("--time-mask", type=int, metavar="MEL",
                        help="mask up to 2 spans of up to MEL mel frames per segment (default 0: off)")
    parser.add_argument("--ema", type=float, metavar="DECAY",
                        help="validate and export a moving average of the weights with this decay per step "
                             "(e.g. 0.995; default 0: the weights as trained)")
    parser.add_argument("--freq-mask", type=int, metavar="BINS", help="mask up to BINS mel bins (default 8)")
    parser.add_argument("--silence-share", type=float, metavar="P",
                        help="share of expression segments that are pure silence with a closed mouth (default 0.05)")
    parser.add_argument("--threads", type=int, help="torch threads (default 1)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--prior", help="face prior the cache was coded with (default: the shipped one)")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from .audio import AudioTrainConfig, train_audio

    flags = {"steps": "steps", "time_limit": "time_limit_minutes", "batch_size": "batch_size", "lr": "lr",
             "segment_frames": "segment_frames", "corr_weight": "corr_weight", "mel_warp": "mel_warp",
             "time_mask": "time_mask", "freq_mask": "freq_mask", "ema": "ema_decay",
             "silence_share": "silence_share", "threads": "threads", "seed": "seed", "prior": "prior"}
    values = {field: getattr(args, flag) for flag, field in flags.items() if getattr(args, flag) is not None}
    try:
        config = AudioTrainConfig(data=args.data, out=args.out, **values)
    except ValueError as exc:
        raise SdkError(f"train audio: {exc}") from None
    result = train_audio(config)
    print(f"{result.run_dir}: step {result.step}; best validation {result.best}; model in {result.run_dir / 'model'}")
    return 0

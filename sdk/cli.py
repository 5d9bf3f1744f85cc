"""`python -m sdk <verb>`: a thin argument parser over the library; each verb lives in its module."""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from .errors import SdkError


def build_parser() -> argparse.ArgumentParser:
    from . import animate, edit
    from .audio.cli import add_audio_verbs
    from .bench import add_bench_verb
    from .data import prepare as data_prepare
    from .eval import reenactment
    from .face import cli as face_cli
    from .live.cli import add_live_verb
    from .prior.cli import add_prior_verb
    from .training.cli import add_train_verb

    parser = argparse.ArgumentParser(prog="python -m sdk", description="One-shot talking-head SDK: data, training, animation, evaluation.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    face_cli.add_crop_verb(verbs)
    animate.add_animate_verb(verbs)
    edit.add_edit_verb(verbs)
    add_live_verb(verbs)
    reenactment.add_eval_verb(verbs)
    data = verbs.add_parser("data", help="prepare training data").add_subparsers(
        dest="data_verb", metavar="ACTION", required=True)
    data_prepare.add_prepare_verb(data)
    add_train_verb(verbs)
    add_bench_verb(verbs)
    add_prior_verb(verbs)
    add_audio_verbs(verbs)
    return parser


def run_command(run: Callable[[], int | None], verbose: bool, level: int = logging.INFO) -> int:
    """What every CLI of the project does around a verb: logging set up, `run()` called, and an
    SdkError (bad input) printed as one "error:" line with exit status 2 instead of a traceback."""
    logging.basicConfig(level=logging.DEBUG if verbose else level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(run() or 0)
    except SdkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: args.run(args), args.verbose)

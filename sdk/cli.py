"""`python -m sdk <verb>`: a thin argument parser over the library; each verb lives in its module."""
from __future__ import annotations

import argparse
import logging
import sys

from .errors import SdkError


def build_parser() -> argparse.ArgumentParser:
    from . import animate
    from .bench import add_bench_verb
    from .data import prepare as data_prepare
    from .eval import reenactment
    from .face import cli as face_cli
    from .live.cli import add_live_verb
    from .training.cli import add_train_verb

    parser = argparse.ArgumentParser(prog="python -m sdk", description="One-shot talking-head SDK: data, training, animation, evaluation.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    face_cli.add_crop_verb(verbs)
    animate.add_animate_verb(verbs)
    add_live_verb(verbs)
    reenactment.add_eval_verb(verbs)
    data = verbs.add_parser("data", help="prepare training data").add_subparsers(
        dest="data_verb", metavar="ACTION", required=True)
    data_prepare.add_prepare_verb(data)
    add_train_verb(verbs)
    add_bench_verb(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except SdkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

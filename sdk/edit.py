"""`python -m sdk edit`: a still portrait re-posed and re-expressed (novel view synthesis from one image).

The portrait's face is cropped and rigged (its face mesh), then rendered once with `edits` applied
to no motion at all: `yaw=-20` turns the head 20° towards the image's right, `mouth_open=1`
opens the mouth, and so on (`sdk.prior.Edits`). Needs a face-prior model (the shipped `prior`, a `dagan++-mobile-prior`).
With `paste_back` the edited face is pasted into the whole portrait over a feathered seam.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .errors import SdkError
from .face.crop import PasteCanvas
from .live.avatars import Avatar, load_avatar
from .media import write_image
from .pipeline import TalkingHeadPipeline
from .prior import Edits, MotionDelta
from .runtime import SourceHandle


def prepare_portrait(pipeline: TalkingHeadPipeline, portrait: str | Path) -> tuple[Avatar, SourceHandle]:
    """The portrait image file cropped and rigged once, ready for any number of `render_edit`s."""
    if not pipeline.is_semantic:
        raise SdkError(f"{pipeline.cfg.name} uses learned keypoints: editing a still portrait needs a face-prior "
                       "model (e.g. --model with a dagan++-mobile-prior model)")
    avatar = load_avatar(portrait, pipeline.output_size)
    return avatar, pipeline.prepare_source(avatar.crop)


def render_edit(pipeline: TalkingHeadPipeline, avatar: Avatar, state: SourceHandle, edits: Edits,
                paste_back: bool = False) -> np.ndarray:
    """The prepared portrait with `edits` applied -> RGB uint8: the S² face crop, or the whole
    portrait (at most 1080 rows) with `paste_back`."""
    motion = edits.apply(MotionDelta.identity(0), pipeline.backend.prior())
    learned = getattr(state, "learned", None)  # hybrid: the learned keypoints stay where they are
    frame = pipeline.render_motion(state, motion, learned)
    if paste_back:
        assert avatar.portrait is not None and avatar.box is not None
        frame = PasteCanvas.of(avatar.portrait, avatar.box).paste(frame)
    return frame


def edit_portrait(pipeline: TalkingHeadPipeline, portrait: str | Path, edits: Edits,
                  paste_back: bool = False) -> np.ndarray:
    """`render_edit` of a portrait image file prepared for this one edit."""
    return render_edit(pipeline, *prepare_portrait(pipeline, portrait), edits, paste_back)


def _run(args: argparse.Namespace) -> int:
    from .checkpoint import load_model

    edits = Edits.parse(args.edit)  # before the model loads: a typo fails fast
    if edits.is_identity:
        raise SdkError("--edit changes nothing: give e.g. yaw=-20,mouth_open=1")
    model = load_model(args.model, device=args.device)
    pipeline = TalkingHeadPipeline(model, device=args.device, output_size=args.size)
    frame = edit_portrait(pipeline, args.portrait, edits, args.paste_back)
    write_image(args.out, frame)
    print(json.dumps({"out": str(args.out), "model": model.cfg.name, "edits": args.edit,
                      "height": frame.shape[0], "width": frame.shape[1]}, indent=1))
    return 0


def add_edit_verb(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("edit", help="re-pose / re-express a still portrait (face-prior models)",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--portrait", required=True, help="portrait image")
    parser.add_argument("--out", required=True, help="output image (.png, .jpg)")
    parser.add_argument("--edit", required=True, metavar="EDITS",
                        help="e.g. yaw=-20,pitch=5,roll=0,mouth_open=1,smile=0.5,eyes_closed=1,brows_up=0.5,"
                             "jaw_left_right=0.3")
    parser.add_argument("--model", default="prior", help="a face-prior model: a shipped name (default: prior) or a model folder")
    parser.add_argument("--size", type=int, default=None, help="output size S (default: the model's)")
    parser.add_argument("--paste-back", action="store_true", help="paste the edited face into the whole portrait")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.set_defaults(run=_run)

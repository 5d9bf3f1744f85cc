"""The `crop` verb: `python -m sdk crop --image IMG --out OUT.png [--size 256] [--scale S]`."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..media import write_image
from .crop import CropConfig, crop_portrait


def _positive(kind: type[int | float]):
    """An argparse `type` that parses `kind` and rejects values <= 0."""
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def add_crop_verb(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `crop` verb to a sub-parsers object; its handler is set as `run`."""
    parser = subparsers.add_parser(
        "crop", help="cut the square face crop out of a portrait",
        description="Find the most confident face in an image and write its square crop "
                    "(framed like FOMM/VoxCeleb training crops). Prints the crop box in source pixels.")
    parser.add_argument("--image", type=Path, required=True, help="portrait image file")
    parser.add_argument("--out", type=Path, required=True, help="output image file (e.g. .png)")
    parser.add_argument("--size", type=_positive(int), default=256, help="crop side in pixels (default 256)")
    parser.add_argument("--scale", type=_positive(float), default=CropConfig.scale,
                        help=f"crop side / face-landmark extent (default {CropConfig.scale})")
    parser.set_defaults(run=run_crop)
    return parser


def run_crop(args: argparse.Namespace) -> int:
    """Handler of the `crop` verb; errors on bad input are raised as SdkError subclasses."""
    crop, box = crop_portrait(args.image, args.size, CropConfig(scale=args.scale))
    write_image(args.out, crop)
    print(f"{args.out}: cx={box.cx:.1f} cy={box.cy:.1f} size={box.size:.1f} (pixels of {args.image})")
    return 0

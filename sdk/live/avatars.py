"""The portraits a receiver animates: one image, every image of a folder, or the one the sender sent.

Portraits are cropped around their face once, at load, at the output size, or at the face's own
size in the image when that is smaller: the pipeline then upscales it, with a warning (an image
with no face is an error when it is the only one, and is skipped with a warning in a folder).
The whole image and the face box stay with the crop for paste-back. The portrait the sender
sends at session start is the crop alone, as PNG bytes.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..errors import MediaReadError, NoFaceError
from ..face.crop import SquareBox
from ..media import read_image
from .errors import LiveError

if TYPE_CHECKING:
    from ..face import FaceLandmarker

log = logging.getLogger(__name__)

DEFAULT_PORTRAIT = Path(__file__).resolve().parents[1] / "assets" / "portrait.jpg"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class Avatar:
    """A portrait ready to animate.

    crop: RGB uint8 (n, n, 3) around its face: n is the output size it was loaded at, or less
        when the face is smaller than that in the image. portrait: the whole image (H, W, 3) and
        box: the face box in its pixels, for paste-back (None for the portrait a sender sent).
    """

    name: str
    crop: np.ndarray
    portrait: np.ndarray | None = None
    box: SquareBox | None = None


def load_avatar(file: str | Path, size: int, landmarker: FaceLandmarker | None = None) -> Avatar:
    """Crop the face of one image at `size`², or at the face box's own side when that is smaller.

    Raises MediaReadError (unreadable image) or NoFaceError (no usable face), naming the file.
    """
    from ..face import crop_portrait

    file = Path(file)
    crop, box = crop_portrait(file, size=size, landmarker=landmarker)
    image = read_image(file)
    if box.size < size:  # no pixels to fill `size`²: the crop keeps the face's own resolution
        crop = box.crop(image, max(1, math.floor(box.size)))
    return Avatar(file.name, crop, image, box)


def load_avatars(path: str | Path, size: int) -> list[Avatar]:
    """`load_avatar` of an image, or of every image in a folder (sorted by name).

    Raises MediaReadError (no such file or folder, unreadable image) or NoFaceError (the image,
    or every image of the folder, has no usable face), naming the path.
    """
    from ..face import FaceLandmarker

    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise MediaReadError(f"{path}: no portrait images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    elif path.is_file():
        files = [path]
    else:
        raise MediaReadError(f"{path}: no such portrait image or folder")
    avatars, problems = [], []
    with FaceLandmarker() as landmarker:
        for file in files:
            try:
                avatars.append(load_avatar(file, size, landmarker))
            except (NoFaceError, MediaReadError) as exc:
                if not path.is_dir():
                    raise
                log.warning("skipping portrait %s", exc)
                problems.append(str(exc))
    if not avatars:
        raise NoFaceError(f"{path}: none of its {len(files)} images has a usable face ({'; '.join(problems[:3])})")
    return avatars


def encode_portrait(avatar: Avatar) -> bytes:
    """The crop as PNG bytes (what travels in the session start)."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(avatar.crop, cv2.COLOR_RGB2BGR))
    if not ok:
        raise LiveError(f"portrait {avatar.name}: cannot encode as PNG")
    return data.tobytes()


def decode_portrait(data: bytes) -> Avatar:
    """The sender's portrait crop from its PNG (or JPEG) bytes; LiveError if it is not a square image."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise LiveError(f"the sender's portrait ({len(data)} bytes) is not a readable image")
    if image.shape[0] != image.shape[1]:
        raise LiveError(f"the sender's portrait is {image.shape[1]}x{image.shape[0]}, expected a square face crop")
    return Avatar("sender's portrait", cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


class AvatarRing:
    """The avatars in order; `step(+1)` / `step(-1)` moves to the next / previous, wrapping around."""

    def __init__(self, avatars: list[Avatar]):
        if not avatars:
            raise LiveError("no avatar to animate")
        self.avatars = list(avatars)
        self.index = 0

    @property
    def current(self) -> Avatar:
        return self.avatars[self.index]

    def step(self, delta: int) -> Avatar:
        self.index = (self.index + delta) % len(self.avatars)
        return self.current

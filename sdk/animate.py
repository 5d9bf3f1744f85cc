"""`python -m sdk animate`: a portrait animated by a driving video, written to a file.

With `crop="auto"` the portrait's face is cropped with the face front end and the driving face is
tracked and cropped frame by frame (smoothed box); frames where the driver's face is lost keep
the last code (counted in the stats). With `crop="none"` both inputs are used as they are,
resized to the model's resolution. The output has exactly one frame per driving frame.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from .errors import MediaReadError
from .face import FaceTracker, TrackerConfig, crop_portrait
from .media import iter_video, probe_video, read_audio, read_image, write_video
from .pipeline import MotionConfig, TalkingHeadPipeline

DEFAULT_SOURCE = Path(__file__).parent / "assets" / "portrait.jpg"
DEFAULT_DRIVING = Path(__file__).parent / "assets" / "driving.mp4"


@dataclass
class AnimationStats:
    """What happened while animating; `no_face_frames` rendered with the last good code."""

    frames: int = 0
    no_face_frames: int = 0
    frames_before_first_face: int = 0  # rendered as the unmoved portrait
    encoder_ms: float = 0.0  # mean per encoded frame
    render_ms: float = 0.0  # mean per rendered frame
    seconds: float = 0.0


def _square_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, then resize (for crop="none" inputs that are not square)."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top:top + side, left:left + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)


def animate(pipeline: TalkingHeadPipeline, source: str | Path, driving: str | Path, out: str | Path,
            crop: Literal["auto", "none"] = "auto", side_by_side: bool = False) -> AnimationStats:
    """Animate `source` (an image file) with `driving` (a video file) into `out` (mp4)."""
    if crop not in ("auto", "none"):
        raise ValueError(f"crop must be 'auto' or 'none', got {crop!r}")
    started = time.perf_counter()
    size = pipeline.resolution
    if crop == "auto":
        portrait, _ = crop_portrait(source, size=size)
    else:
        portrait = _square_resize(read_image(source), size)
    info = probe_video(driving)
    state = pipeline.prepare_source(portrait)
    pipeline.reset_anchor()
    tracker = FaceTracker(TrackerConfig(fps=info.fps)) if crop == "auto" else None
    stats = AnimationStats()
    encode_seconds = render_seconds = 0.0
    encoded = 0

    def frames():
        nonlocal encode_seconds, render_seconds, encoded
        code = None
        for frame in iter_video(driving):
            stats.frames += 1
            if tracker is not None:
                track = tracker.update(frame)
                face = track.box.crop(frame, size) if track.box is not None else None
                found = track.face_found
            else:
                face, found = _square_resize(frame, size), True
            if found:
                tick = time.perf_counter()
                code = pipeline.encode(face)
                encode_seconds += time.perf_counter() - tick
                encoded += 1
            else:
                stats.no_face_frames += 1
            if code is None:
                stats.frames_before_first_face += 1
                rendered = portrait
            else:
                tick = time.perf_counter()
                rendered = pipeline.render(state, code)
                render_seconds += time.perf_counter() - tick
            if side_by_side:
                left = face if face is not None else np.zeros_like(rendered)
                rendered = np.concatenate([left, rendered], axis=1)
            yield rendered

    try:
        audio = read_audio(driving) if info.has_audio else None
    except MediaReadError:
        audio = None  # a broken audio track must not stop the video
    try:
        write_video(out, frames(), info.fps, audio=audio)
    finally:
        if tracker is not None:
            tracker.close()
    rendered = stats.frames - stats.frames_before_first_face
    stats.encoder_ms = 1000 * encode_seconds / max(encoded, 1)
    stats.render_ms = 1000 * render_seconds / max(rendered, 1)
    stats.seconds = time.perf_counter() - started
    return stats


def _run(args: argparse.Namespace) -> int:
    from .checkpoint import load_model

    model = load_model(args.model, device=args.device)
    motion = MotionConfig(mode=args.motion, adapt_movement_scale=not args.no_adapt_scale)
    pipeline = TalkingHeadPipeline(model, motion, device=args.device)
    stats = animate(pipeline, args.source, args.driving, args.out, args.crop, args.side_by_side)
    print(json.dumps({"out": str(args.out), "model": model.cfg.name, **asdict(stats)}, indent=1))
    return 0


def add_animate_verb(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("animate", help="animate a portrait with a driving video",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=str(DEFAULT_SOURCE), help="portrait image (default: bundled)")
    parser.add_argument("--driving", default=str(DEFAULT_DRIVING), help="driving video (default: bundled)")
    parser.add_argument("--out", required=True, help="output video (.mp4)")
    parser.add_argument("--model", default="default", help="'default', a shipped model name, or a model folder")
    parser.add_argument("--crop", choices=["auto", "none"], default="auto",
                        help="auto: find and track the faces; none: use the inputs as they are")
    parser.add_argument("--motion", choices=["relative", "absolute"], default="relative")
    parser.add_argument("--no-adapt-scale", action="store_true", help="relative motion without movement-scale adaptation")
    parser.add_argument("--side-by-side", action="store_true", help="write the driving crop beside the result")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.set_defaults(run=_run)

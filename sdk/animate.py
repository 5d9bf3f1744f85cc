"""`python -m sdk animate`: a portrait animated by a driving video, written to a file.

With `crop="auto"` the portrait's face is cropped with the face front end and the driving face is
tracked and cropped frame by frame (smoothed box); frames where the driver's face is lost keep
the last code (counted in the stats). With `crop="none"` both inputs are used as they are
(centre square). The output has exactly one frame per driving frame, at the pipeline's output
size S; with `paste_back` (crop="auto" only) each frame is the whole portrait with the animated
crop pasted into its face box over a feathered seam, scaled down to at most 1080 rows.
A portrait whose face (or centre square) has fewer than S² pixels is upscaled, with a warning.
Face-prior models (issue 12) are driven by the tracked face mesh of each frame (crop="auto" only)
and take `edits` (`sdk.prior.Edits`, e.g. `--edit yaw=15,smile=0.5`); a frame whose mesh the
prior flags keeps the last good code and is counted (`flagged_mesh_frames`).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .errors import MediaReadError, SdkError
from .face import FaceTracker, TrackerConfig
from .face.crop import PasteCanvas
from .live.avatars import load_avatar
from .live.outputs import compose
from .media import iter_video, probe_video, read_audio, read_image, resize_image, write_video
from .pipeline import MotionConfig, TalkingHeadPipeline
from .prior import Edits

DEFAULT_SOURCE = Path(__file__).parent / "assets" / "portrait.jpg"
DEFAULT_DRIVING = Path(__file__).parent / "assets" / "driving.mp4"


@dataclass
class AnimationStats:
    """What happened while animating; `no_face_frames` rendered with the last good code."""

    frames: int = 0
    no_face_frames: int = 0
    frames_before_first_face: int = 0  # rendered as the unmoved portrait
    flagged_mesh_frames: int = 0  # face-prior models: meshes the prior could not trust (last good code kept)
    output_size: int = 0  # S: the side of the rendered crops
    frame_width: int = 0  # of the written frames (driver panel and paste-back included)
    frame_height: int = 0
    portrait_upscaled: bool = False  # the portrait had fewer than S² pixels for its crop
    paste_back_scale: float | None = None  # portrait pixels -> frame pixels (None: crop only)
    encoder_ms: float = 0.0  # mean per encoded frame
    render_ms: float = 0.0  # mean per rendered frame
    seconds: float = 0.0


def _square_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, then resize (for crop="none" inputs that are not square)."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return resize_image(image[top:top + side, left:left + side], size, size)


def _check_options(crop: str, paste_back: bool, semantic: bool = False) -> None:
    if crop not in ("auto", "none"):
        raise ValueError(f"crop must be 'auto' or 'none', got {crop!r}")
    if paste_back and crop != "auto":
        raise ValueError("paste-back needs crop 'auto': it pastes into the face box the crop was cut from")
    if semantic and crop != "auto":
        raise ValueError("a face-prior model is driven by the tracked face mesh: it needs crop 'auto'")


def animate(pipeline: TalkingHeadPipeline, source: str | Path, driving: str | Path, out: str | Path,
            crop: Literal["auto", "none"] = "auto", side_by_side: bool = False,
            paste_back: bool = False) -> AnimationStats:
    """Animate `source` (an image file) with `driving` (a video file) into `out` (mp4)."""
    _check_options(crop, paste_back, pipeline.is_semantic)
    started = time.perf_counter()
    size = pipeline.output_size
    canvas = None
    if crop == "auto":
        avatar = load_avatar(source, size)
        portrait = avatar.crop
        if paste_back:
            assert avatar.portrait is not None and avatar.box is not None
            canvas = PasteCanvas.of(avatar.portrait, avatar.box)
    else:
        image = read_image(source)
        portrait = _square_resize(image, min(size, *image.shape[:2]))  # smaller: the pipeline upscales it
    info = probe_video(driving)
    state = pipeline.prepare_source(portrait)
    pipeline.reset_anchor()
    tracker = FaceTracker(TrackerConfig(fps=info.fps)) if crop == "auto" else None
    stats = AnimationStats(output_size=size, portrait_upscaled=portrait.shape[0] < size,
                           paste_back_scale=canvas.scale if canvas is not None else None)
    # Before the first face: the unmoved portrait, at the size of every other frame.
    still = canvas.image if canvas is not None else _square_resize(portrait, size)
    encode_seconds = render_seconds = 0.0
    encoded = 0

    def frames():
        nonlocal encode_seconds, render_seconds, encoded
        code = None
        for frame in iter_video(driving):
            stats.frames += 1
            # The driving crop at S: the encoder sees it averaged down to R, the driver panel as it is.
            mesh = None
            if tracker is not None:
                track = tracker.update(frame)
                face = track.box.crop(frame, size) if track.box is not None else None
                found = track.face_found
                if found and pipeline.is_semantic:
                    mesh = track.box.points_to_crop(track.landmarks, size)
            else:
                face, found = _square_resize(frame, size), True
            if found:
                tick = time.perf_counter()
                code = pipeline.encode(face, mesh)
                encode_seconds += time.perf_counter() - tick
                encoded += 1
            else:
                stats.no_face_frames += 1
            if code is None:
                stats.frames_before_first_face += 1
                rendered = still
            else:
                tick = time.perf_counter()
                rendered = pipeline.render(state, code)
                render_seconds += time.perf_counter() - tick
                if canvas is not None:
                    rendered = canvas.paste(rendered)
            rendered = compose(rendered, face, side_by_side)
            stats.frame_height, stats.frame_width = rendered.shape[:2]
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
    if pipeline.is_semantic:
        stats.flagged_mesh_frames = pipeline.encoder_stats.flagged
    stats.encoder_ms = 1000 * encode_seconds / max(encoded, 1)
    stats.render_ms = 1000 * render_seconds / max(rendered, 1)
    stats.seconds = time.perf_counter() - started
    return stats


def _run(args: argparse.Namespace) -> int:
    from .checkpoint import load_model

    try:
        _check_options(args.crop, args.paste_back)  # before the model loads
    except ValueError as exc:
        raise SdkError(str(exc)) from None
    edits = Edits.parse(args.edit)
    model = load_model(args.model, device=args.device)
    motion = MotionConfig(mode=args.motion, adapt_movement_scale=not args.no_adapt_scale)
    pipeline = TalkingHeadPipeline(model, motion, device=args.device, output_size=args.size, edits=edits)
    try:
        _check_options(args.crop, args.paste_back, pipeline.is_semantic)
    except ValueError as exc:
        raise SdkError(str(exc)) from None
    stats = animate(pipeline, args.source, args.driving, args.out, args.crop, args.side_by_side, args.paste_back)
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
    parser.add_argument("--size", type=int, default=None,
                        help="output size S of the animated crop: a multiple of the model's internal resolution "
                             "(default: the model's default output size)")
    parser.add_argument("--paste-back", action="store_true",
                        help="paste the animated face into the whole portrait (with --crop auto)")
    parser.add_argument("--side-by-side", action="store_true", help="write the driving crop beside the result")
    parser.add_argument("--edit", default="", metavar="EDITS",
                        help="face-prior models: pose and expression edits on top of the driver, e.g. "
                             "yaw=15,pitch=-5,smile=0.5,mouth_open=1,eyes_closed=1,brows_up=0.5,jaw_left_right=0.3,"
                             "freeze=pose|expression|all")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.set_defaults(run=_run)

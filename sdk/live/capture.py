"""Frames from a camera: a device index, a video file or a stream URL, read with OpenCV.

Video files are paced at their frame rate by default, so a file behaves like a camera (and the
pipeline's drop-oldest queues see the same load); unpaced, a file is read as fast as the next
stage takes its frames, which is what a throughput benchmark wants. Cameras and streams pace
themselves.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from .errors import CameraError
from .queues import DropOldestQueue

DEFAULT_DRIVING = Path(__file__).resolve().parents[1] / "assets" / "driving.mp4"
FALLBACK_FPS = 25.0  # for cameras and streams that do not report a frame rate


@dataclass(frozen=True)
class CaptureConfig:
    """Where the driving frames come from and how fast.

    camera: a device index (0 = the first webcam; a string of digits counts as an index), a
        video file, or a stream URL ("rtsp://...", "http://...").
    paced: deliver a video file's frames at its frame rate, as a camera would; False reads them
        as fast as the pipeline takes them (benchmarks; nothing is dropped at capture then).
    fps: pace a file at this rate instead of its own, or hold a camera or stream to it (frames
        sooner than that are skipped and counted); None: the rate the source reports.
    max_frames: stop after this many frames (None: until the video ends or the session stops).
    """

    camera: int | str | Path = DEFAULT_DRIVING
    paced: bool = True
    fps: float | None = None
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"CaptureConfig.fps must be > 0, got {self.fps}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"CaptureConfig.max_frames must be >= 1, got {self.max_frames}")


@dataclass(frozen=True)
class CapturedFrame:
    """One frame: its index in the stream, when it was captured (time.monotonic() seconds) and
    the image, RGB uint8 (H, W, 3)."""

    index: int
    captured_at: float
    image: np.ndarray


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV logs a warning per backend it tries for a missing device; our error says it once."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


class Camera:
    """An opened source of frames. `read()` returns RGB uint8 (H, W, 3), or None at the end."""

    def __init__(self, source: int | str | Path):
        self.kind: Literal["device", "file", "stream"]
        self.name = str(source)
        if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
            self.kind, target = "device", int(source)
        elif "://" in str(source):
            self.kind, target = "stream", str(source)
        else:
            path = Path(source)
            if not path.is_file():
                raise CameraError(f"{path}: no such video file (the camera is a device index, a video "
                                  "file or a stream URL)")
            self.kind, target = "file", str(path)
        with _quiet_opencv():
            self._capture = cv2.VideoCapture(target)
            opened = self._capture.isOpened()
        if not opened:
            self._capture.release()
            if self.kind == "device":
                raise CameraError(f"camera {target}: cannot open this device index (no such camera, "
                                  "or it is busy or not permitted)")
            what = "video file" if self.kind == "file" else "stream"
            raise CameraError(f"{self.name}: cannot open this {what} with OpenCV")
        reported = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        # Some containers and drivers report 0 or absurd rates; fall back to a common camera rate.
        self.fps = reported if 1.0 <= reported <= 240.0 else FALLBACK_FPS
        self.frames_read = 0

    def read(self) -> np.ndarray | None:
        ok, frame = self._capture.read()
        if not ok or frame is None:
            if self.frames_read == 0:
                raise CameraError(f"{self.name}: opened, but delivered no frame")
            return None
        self.frames_read += 1
        if frame.ndim == 2:
            return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        self._capture.release()


@dataclass
class CaptureStats:
    frames: int = 0
    first_at: float = 0.0  # time.monotonic() of the first and the last frame
    last_at: float = 0.0
    end: str = ""  # why capture stopped: "end of video", "frame limit", "stopped", "camera stopped"
    # frames a live source delivered sooner than its rate allows (a camera faster than it says):
    # skipped here, before any stage spends time on them, and counted as capture drops
    skipped: int = 0


def run_capture(camera: Camera, config: CaptureConfig, out: DropOldestQueue[CapturedFrame],
                stop: threading.Event, stats: CaptureStats) -> None:
    """Read frames into `out` until the video ends, `max_frames`, or `stop`; then close `out`.

    Live sources (cameras, streams, paced files) `put` (a slow pipeline drops the oldest frame);
    an unpaced file waits for room, since nothing is lost by reading it later. A camera or stream
    is held to its rate (`config.fps` or the one it reports) by the frames' timestamps: one that
    delivers faster has the surplus skipped (`stats.skipped`); one that is slower is taken as it comes.
    """
    paced = config.paced and camera.kind == "file"
    period = 1.0 / (config.fps or camera.fps)
    live = camera.kind != "file" or config.paced
    started = None
    due_at = None  # a live camera's next frame slot
    try:
        while not stop.is_set():
            if config.max_frames is not None and stats.frames >= config.max_frames:
                stats.end = "frame limit"
                break
            image = camera.read()
            if image is None:
                stats.end = "end of video" if camera.kind == "file" else "camera stopped"
                break
            now = time.monotonic()
            if paced:
                if started is None:
                    started = now
                due = started + stats.frames * period
                if due > now:
                    time.sleep(due - now)
                    now = time.monotonic()
                elif now - due > period:
                    started = now - stats.frames * period  # fell behind: keep the pace from here, no burst
            elif camera.kind != "file":
                if due_at is not None and now < due_at - period / 2:  # half a period of jitter is not "too fast"
                    stats.skipped += 1
                    continue
                # the next frame is due a period after this one's slot; after a stall, from now on (no burst)
                due_at = now + period if due_at is None or now > due_at + period else due_at + period
            frame = CapturedFrame(stats.frames, now, image)
            if live:
                out.put(frame)
            elif not out.put_waiting(frame, stop):
                break
            stats.first_at = stats.first_at or now
            stats.last_at = now
            stats.frames += 1
        stats.end = stats.end or "stopped"
    finally:
        out.close()

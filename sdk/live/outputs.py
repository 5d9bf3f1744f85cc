"""Where rendered frames go: a callback, a video file, an OpenCV window (or nowhere: headless)."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from ..media import resize_image
from .controls import KEY_BINDINGS, LiveControls
from .errors import LiveError


@dataclass(frozen=True)
class OutputConfig:
    """Outputs besides the `on_frame` callback.

    window: show an OpenCV window with keys (see `controls.KEY_BINDINGS`); False is headless.
    out_path: also write the frames to this video file (H.264 mp4) at the stream's frame rate.
    side_by_side: start with the driver's crop shown left of the avatar (the window's "s" key
        toggles it); the video file keeps the layout it started with.
    display_size: height in pixels of the window's image (frames are scaled to it).
    virtual_camera: also send the avatar to this virtual camera device ("auto": the first one
        found; e.g. "/dev/video10" or "OBS Virtual Camera"); None: off. See `views.virtual_camera`.
    virtual_camera_size: (width, height) of the virtual camera's frames; avatars are fitted into it.
    serve: (host, port) of a local browser view of the avatar, the input and the stats; None: off.
    progress: a progress bar on stderr; None: on for a headless session reading a video file
        when stderr is a terminal.
    """

    window: bool = True
    out_path: Path | None = None
    side_by_side: bool = False
    display_size: int = 512
    virtual_camera: str | None = None
    virtual_camera_size: tuple[int, int] = (640, 480)
    serve: tuple[str, int] | None = None
    progress: bool | None = None

    def __post_init__(self) -> None:
        if self.display_size < 16:
            raise ValueError(f"OutputConfig.display_size must be >= 16, got {self.display_size}")
        width, height = self.virtual_camera_size
        if not (width >= 16 and height >= 16 and width % 2 == 0 and height % 2 == 0):
            raise ValueError(f"OutputConfig.virtual_camera_size must be even and >= 16 per side, got {width}x{height}")


@dataclass(frozen=True)
class LiveFrame:
    """One output frame, as the `on_frame` callback receives it.

    image: what is shown: the avatar, RGB uint8, or driver | avatar while side by side is on.
    avatar: the rendered avatar (S, S, 3) at the output size S, or with paste-back the whole
        portrait (H, W, 3) with it pasted in. driver: the driver's face crop (S, S, 3) when this
        process captured it, else None (a receiver half).
    index: output frame number from 0; sequence: the code's number in the stream.
    latency_ms: capture -> this output (see LiveStats.latency_clock).
    """

    image: np.ndarray
    avatar: np.ndarray
    driver: np.ndarray | None
    avatar_name: str
    index: int
    sequence: int
    no_face: bool
    latency_ms: float


def compose(avatar: np.ndarray, driver: np.ndarray | None, side_by_side: bool) -> np.ndarray:
    """The avatar alone, or driver | avatar with the driver's square crop at the avatar's height
    (the avatar is the whole portrait with paste-back); without the driver (a receiver half, no
    face yet) black shows there."""
    if not side_by_side:
        return avatar
    height = avatar.shape[0]
    if driver is None:
        left = np.zeros((height, height, 3), avatar.dtype)
    else:
        left = resize_image(driver, height, height)
    return np.concatenate([left, avatar], axis=1)


class VideoFileSink:
    """Writes RGB uint8 frames to an H.264 mp4 as they come (low-latency settings), at the size of
    the first frame: a later frame of another size (paste-back into another avatar's portrait)
    is scaled to fit inside it, centred on black."""

    def __init__(self, path: str | Path, fps: float):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._container = av.open(str(self.path), mode="w")
        except (av.FFmpegError, OSError) as exc:
            raise LiveError(f"{self.path}: cannot write a video here ({exc})") from None
        self._stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": "18", "preset": "veryfast", "tune": "zerolatency"}
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        if h % 2 or w % 2:  # yuv420p needs even sides
            image = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        if self.frames == 0:
            self._stream.width, self._stream.height = image.shape[1], image.shape[0]
        elif image.shape[:2] != (self._stream.height, self._stream.width):
            image = fit_image(image, self._stream.height, self._stream.width)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        if self.frames:
            self._container.mux(self._stream.encode(None))
        self._container.close()
        if not self.frames:
            self.path.unlink(missing_ok=True)  # an mp4 without frames is not a video


def fit_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """`image` scaled to fit inside height x width, centred on black."""
    scale = min(height / image.shape[0], width / image.shape[1])
    size = (min(width, round(image.shape[1] * scale)), min(height, round(image.shape[0] * scale)))
    scaled = resize_image(image, *size)
    canvas = np.zeros((height, width, 3), image.dtype)
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    canvas[top:top + size[1], left:left + size[0]] = scaled
    return canvas


def check_display() -> None:
    """Raise LiveError when a window cannot be shown (no display server on Linux)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise LiveError("no display to show the window on (DISPLAY is not set); run headless "
                        "(--headless, OutputConfig(window=False)) and use --out or a callback")


class PreviewWindow:
    """An OpenCV window; `poll()` passes pressed keys to the controls. Use from one thread only."""

    TITLE = "sdk live - " + ", ".join(f"{key}: {what.split(' (')[0]}" for key, what in KEY_BINDINGS.items())

    def __init__(self, controls: LiveControls, display_size: int):
        check_display()
        self.controls = controls
        self.display_size = display_size
        self._shown = False
        try:
            cv2.namedWindow(self.TITLE, cv2.WINDOW_AUTOSIZE)
        except cv2.error as exc:
            raise LiveError(f"cannot open an OpenCV window ({exc}); run headless (--headless)") from None

    def show(self, image: np.ndarray) -> None:
        scale = self.display_size / image.shape[0]
        size = (round(image.shape[1] * scale), self.display_size)
        shown = resize_image(image, *size)
        cv2.imshow(self.TITLE, cv2.cvtColor(shown, cv2.COLOR_RGB2BGR))
        self._shown = True

    def poll(self) -> None:
        """Let the window draw and handle one key; closing the window quits."""
        self.controls.handle_key(cv2.waitKeyEx(1))  # the full code: arrow keys are not characters
        if self._shown and cv2.getWindowProperty(self.TITLE, cv2.WND_PROP_VISIBLE) < 1:
            self.controls.quit()

    def close(self) -> None:
        cv2.destroyWindow(self.TITLE)
        cv2.waitKey(1)

"""The views a live session can open besides its window, video file and callback (`OutputConfig`):

- `VirtualCamera`: the avatar as a webcam for video-call apps (pyvirtualcam);
- `BrowserView`: a local page with the input and the avatar side by side and live stats;
- `ProgressBar`: frames, fps and kbit/s on stderr for headless runs on files.

`open_views` opens the configured ones at the session's start, before the model loads, so an
unavailable virtual camera or a taken port is an error before anything else happens; `Views.show`
gets every rendered frame on the session's output thread, and hands the stats (`LiveStats`, from
the session's `snapshot`) to the views that show them a few times a second.
"""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from ...errors import MediaReadError
from ...media import probe_video
from ..capture import FALLBACK_FPS, Camera
from ..config import LiveConfig
from ..errors import LiveError
from ..outputs import LiveFrame
from ..stats import LiveStats
from .browser import BrowserView
from .progress import ProgressBar
from .virtual_camera import VirtualCamera

log = logging.getLogger(__name__)

STATS_INTERVAL_S = 0.5  # how often the page and the progress bar get new stats

__all__ = ["BrowserView", "ProgressBar", "Views", "VirtualCamera", "open_views"]


class Views:
    """The opened views of one session; `show(frame)` per rendered frame, `close()` at the end."""

    def __init__(self, snapshot: Callable[[], LiveStats], virtual_camera: VirtualCamera | None = None,
                 browser: BrowserView | None = None, progress: ProgressBar | None = None):
        self.snapshot = snapshot
        self.virtual_camera = virtual_camera
        self.browser = browser
        self.progress = progress
        self.frames = 0
        self._stats_at = 0.0

    def show(self, frame: LiveFrame) -> None:
        if self.virtual_camera is not None:
            self.virtual_camera.send(frame.avatar)
        if self.browser is not None:
            self.browser.show(frame)
        self.frames += 1
        now = time.monotonic()
        if now - self._stats_at >= STATS_INTERVAL_S:
            self._stats_at = now
            self._update_stats()

    def _update_stats(self) -> None:
        if self.browser is None and self.progress is None:
            return
        stats = self.snapshot()
        for view in (self.browser, self.progress):
            if view is not None:
                view.update_stats(stats)

    def close(self) -> None:
        """The final stats to the views (when a frame was shown: the session got going), then close
        each; one that fails to close is logged and does not keep the others open."""
        steps = [self._update_stats] if self.frames else []
        steps += [view.close for view in (self.progress, self.browser, self.virtual_camera) if view is not None]
        for step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - closing must not hide the session's own error
                log.warning("while closing a view: %s", exc)


def open_views(config: LiveConfig, camera: Camera | None, snapshot: Callable[[], LiveStats]) -> Views:
    """Open the views `config.output` asks for. camera: the session's opened camera (None on a
    receiver half); snapshot: the session's stats so far (called on the output thread).

    Raises LiveError: a view on a sender half (it renders nothing), a taken or unavailable
    address for the page, no virtual camera device (or no pyvirtualcam).
    """
    output = config.output
    renders = config.transport.mode != "udp-sender"
    if not renders:
        asked = [flag for flag, on in (("--virtual-camera", output.virtual_camera is not None),
                                       ("--serve", output.serve is not None), ("--progress", output.progress))
                 if on]
        if asked:
            raise LiveError(f"{', '.join(asked)}: a sender half (--connect) renders no frames; "
                            "use them on the receiving end (--listen)")
        return Views(snapshot)
    views = Views(snapshot)
    try:
        if output.serve is not None:
            views.browser = BrowserView(output.serve, has_input=camera is not None)
        if output.virtual_camera is not None:
            fps = config.capture.fps or (camera.fps if camera is not None else FALLBACK_FPS)
            views.virtual_camera = VirtualCamera(output.virtual_camera, *output.virtual_camera_size, fps)
        reads_file = camera is not None and camera.kind == "file"
        show_progress = output.progress
        if show_progress is None:
            show_progress = not output.window and reads_file and sys.stderr.isatty()
        if show_progress:
            views.progress = ProgressBar(_expected_frames(config, camera if reads_file else None))
    except BaseException:
        views.close()  # e.g. the page was served, then the virtual camera is missing
        raise
    return views


def _expected_frames(config: LiveConfig, video: Camera | None) -> int | None:
    """The frames the session will capture: `max_frames`, or fewer when the video file is shorter."""
    frames = None
    if video is not None:
        try:
            frames = probe_video(video.name).frame_count or None
        except MediaReadError:
            frames = None  # OpenCV reads it, PyAV cannot count it: a bar without a total
    limit = config.capture.max_frames
    return min(frames, limit) if frames is not None and limit is not None else frames or limit

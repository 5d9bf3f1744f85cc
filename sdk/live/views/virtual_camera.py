"""The avatar as a webcam: frames to a virtual camera device, for video-call apps.

pyvirtualcam drives v4l2loopback on Linux (`sudo modprobe v4l2loopback exclusive_caps=1`) and
OBS Studio's virtual camera on macOS and Windows. The device has one fixed frame size, like a
real camera, so an app that already shows it keeps working across avatar switches and restarts:
each avatar frame (S², or the whole portrait with paste-back) is scaled to fit it, centred on
black. Only the avatar is sent; the driver panel is for the window and the browser view.
"""
from __future__ import annotations

import logging

import numpy as np

from ..errors import LiveError
from ..outputs import fit_image

log = logging.getLogger(__name__)

AUTO_DEVICE = "auto"  # the first virtual camera pyvirtualcam finds
INSTALL_HINT = "pip install 'talking-head-sdk[virtualcam]'"
SETUP_HINT = ("Linux: load v4l2loopback (sudo modprobe v4l2loopback exclusive_caps=1 card_label=Avatar); "
              "macOS / Windows: install OBS Studio and start its virtual camera once")


class VirtualCamera:
    """An opened virtual camera of `width` x `height` at `fps`; `send(avatar)` per rendered frame.

    fps is the rate the device advertises: the stream's (the camera's, or `--fps`; a receiver half,
    which opens it before the sender's rate is known, says 25, a hint the apps need). Frames are sent
    as soon as they are rendered, without sleeping to a schedule: the session is already paced by
    its capture timestamps, and waiting here would only add latency (and make the output queue drop).
    Raises LiveError when pyvirtualcam is missing or no virtual camera device is available.
    """

    def __init__(self, device: str, width: int, height: int, fps: float):
        try:
            import pyvirtualcam
        except ImportError:
            raise LiveError(f"--virtual-camera needs pyvirtualcam: {INSTALL_HINT}") from None
        self.width, self.height = width, height
        try:
            self._camera = pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.RGB,
                                               device=None if device == AUTO_DEVICE else device)
        except (RuntimeError, ValueError, OSError) as exc:
            # pyvirtualcam says per backend why it could not open one, e.g. "No v4l2 loopback device found".
            reason = " ".join(str(exc).split()) or "no virtual camera backend for this system"
            what = ("found no virtual camera device" if device == AUTO_DEVICE
                    else f"virtual camera {device!r} is not available")
            raise LiveError(f"--virtual-camera: {what} ({reason}); {SETUP_HINT}") from None
        self.device = self._camera.device
        self.frames = 0
        log.info("virtual camera %s: %dx%d at %.3g fps", self.device, width, height, fps)

    def send(self, avatar: np.ndarray) -> None:
        if avatar.shape[:2] != (self.height, self.width):
            avatar = fit_image(avatar, self.height, self.width)
        self._camera.send(np.ascontiguousarray(avatar))
        self.frames += 1

    def close(self) -> None:
        self._camera.close()

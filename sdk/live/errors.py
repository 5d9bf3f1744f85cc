"""Errors of a live session; each is an `SdkError` whose message names the camera, file or model."""
from __future__ import annotations

from ..errors import SdkError


class LiveError(SdkError):
    """A live session cannot start or go on (bad option, no display for the window, ...)."""


class CameraError(LiveError):
    """The camera cannot be opened: no such device index, unreadable video file or stream URL."""


class ModelMismatchError(LiveError):
    """The sender encodes codes of another model than the one this receiver renders with."""

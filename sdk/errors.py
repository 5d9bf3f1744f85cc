"""Every error the SDK raises on bad input derives from `SdkError`, so apps can catch one type."""
from __future__ import annotations


class SdkError(Exception):
    """Base class for errors caused by inputs, files or models given to the SDK."""


class MediaReadError(SdkError):
    """A file or path could not be read as the image, video or audio that was expected."""


class NoFaceError(SdkError):
    """No face was found where one is required (a portrait, a calibration frame, ...)."""


class ModelLoadError(SdkError):
    """A checkpoint is missing, corrupt, fails its checksum, or does not match its config."""

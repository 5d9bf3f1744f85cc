"""Edge SDK for one-shot talking-head video.

A face is turned into a compact code per frame on the sender's device (keypoints with
Jacobians from the camera), sent over the network, and turned back into video of a chosen
portrait by a generator running locally. Public API:

- media: `read_image`, `write_image`, `read_video`, `iter_video`, `write_video`, `read_audio`
- face front end: `FaceTracker`, `FaceDetector`, `FaceLandmarker`, `crop_portrait`, `SquareBox`
- models: `load_model("default")`
- live: `live_camera(LiveConfig(...))` -> `LiveStats` (camera -> codes -> generator -> window/file);
  `live_microphone(LiveConfig(model="prior"), MicrophoneConfig(source=...))` (speech drives the codes)
- errors: `SdkError` and its subclasses in `sdk.errors`

Heavy submodules (mediapipe, torch) are imported on first use, so `import sdk` stays cheap.

`import sdk` sets `OMP_WAIT_POLICY=PASSIVE` unless the environment already has a value: by
default torch's OpenMP threads spin for a while after each parallel region, which on a machine
shared with other programs takes the cores those programs (and the SDK's other stages) need.
OpenMP reads the variable once, when torch loads it, so this must run before torch is imported:
import sdk first (the CLIs do), or set the variable yourself.
"""
from __future__ import annotations

import importlib
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before any import that may load torch

from .errors import MediaReadError, ModelLoadError, NoFaceError, SdkError  # noqa: E402
from .media import iter_video, probe_video, read_audio, read_image, read_video, write_image, write_video  # noqa: E402

__version__ = "0.1.0"

_LAZY = {
    "FaceTracker": "sdk.face",
    "TrackerConfig": "sdk.face",
    "FaceDetector": "sdk.face",
    "FaceLandmarker": "sdk.face",
    "CropConfig": "sdk.face",
    "SquareBox": "sdk.face",
    "crop_portrait": "sdk.face",
    "load_model": "sdk.checkpoint",
    "live_camera": "sdk.live",
    "LiveConfig": "sdk.live",
    "LiveStats": "sdk.live",
    "CaptureConfig": "sdk.live",
    "TransportConfig": "sdk.live",
    "OutputConfig": "sdk.live",
    "live_microphone": "sdk.live.microphone",
    "MicrophoneConfig": "sdk.live.microphone",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sdk' has no attribute {name!r}")


__all__ = ["MediaReadError", "ModelLoadError", "NoFaceError", "SdkError", "iter_video", "probe_video",
           "read_audio", "read_image", "read_video", "write_image", "write_video", *_LAZY]

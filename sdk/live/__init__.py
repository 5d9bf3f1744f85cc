"""Live sessions: camera -> codes -> (network) -> generator -> window, callback or file.

The codes are the model's: learned keypoints, or for face-prior models the semantic code (head
pose + expression) of the tracker's mesh, in the code stream kind the header names; face-prior
models also take pose and expression edits on the receiver (`LiveConfig.edits`, the window's keys).

- `live_camera(LiveConfig(...), model=None, on_frame=None, controls=None) -> LiveStats`
- configs: `LiveConfig`, `CaptureConfig`, `TransportConfig`, `OutputConfig`
- `LiveFrame` (what `on_frame` receives), `LiveControls` (quit, re-anchor, switch avatar, side by
  side, edits)
- errors: `LiveError`, `CameraError`, `ModelMismatchError`
- `python -m sdk live` (`cli.add_live_verb`) is a thin wrapper over `live_camera`.
"""
from __future__ import annotations

from .capture import CaptureConfig
from .config import LiveConfig, TransportConfig
from .controls import KEY_BINDINGS, LiveControls
from .errors import CameraError, LiveError, ModelMismatchError
from .outputs import LiveFrame, OutputConfig
from .session import live_camera
from .stats import DROP_STAGES, LiveStats

__all__ = ["DROP_STAGES", "KEY_BINDINGS", "CameraError", "CaptureConfig", "LiveConfig", "LiveControls", "LiveError",
           "LiveFrame", "LiveStats", "ModelMismatchError", "OutputConfig", "TransportConfig", "live_camera"]

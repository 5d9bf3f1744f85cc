"""Live sessions: camera -> keypoint codes -> (network) -> generator -> window, callback or file.

- `live_camera(LiveConfig(...), model=None, on_frame=None, controls=None) -> LiveStats`
- configs: `LiveConfig`, `CaptureConfig`, `TransportConfig`, `OutputConfig`
- `LiveFrame` (what `on_frame` receives), `LiveControls` (quit, re-anchor, switch avatar, side by side)
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

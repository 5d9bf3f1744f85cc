"""MediaPipe's start-up log lines, kept off stderr; everything else it writes still shows.

Building a MediaPipe graph makes its C++ side (absl logging and TFLite's own logger) write a few
lines straight to file descriptor 2, from the graph's threads, while the graph starts:

    INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    W0000 ... inference_feedback_manager.cc:114] Feedback manager requires a model with a single ...

None of them can be turned off from Python (absl reads no environment variable, and mediapipe's
bindings export no logging call), so `mediapipe_start` points fd 2 at a temporary file around a
graph's construction and a first run on a blank frame (which returns only once the graph has
started), then writes back every captured line that is not one of those. Its Python-side
deprecation warning from protobuf is filtered by message.
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

# Substrings of the start-up lines dropped; anything else captured is written back.
STARTUP_NOISE: tuple[bytes, ...] = (
    b"Created TensorFlow Lite XNNPACK delegate for CPU",
    b"All log messages before absl::InitializeLog() is called",
    b"Feedback manager requires a model with a single signature inference",
)

# mediapipe 0.10.14 calls a protobuf function deprecated in protobuf 4, which says so (a Python warning).
warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated",
                        category=UserWarning, module=r"google\.protobuf")

# What a new graph is run on once inside the scope: no face, so no state carries over to real frames.
BLANK_FRAME = np.zeros((64, 64, 3), np.uint8)
BLANK_FRAME.flags.writeable = False

_lock = threading.RLock()  # fd 2 is one per process: one capture at a time, nested scopes reuse it
_depth = 0


def without_noise(captured: bytes, noise: tuple[bytes, ...] = STARTUP_NOISE) -> bytes:
    """`captured` without the lines that contain one of `noise`."""
    return b"".join(line for line in captured.splitlines(keepends=True)
                    if not any(part in line for part in noise))


@contextmanager
def mediapipe_start() -> Iterator[None]:
    """Inside: fd 2 is captured; on exit, what was written there comes back without `STARTUP_NOISE`.

    Output of other threads in the meantime is delayed to the end of the scope, never lost.
    """
    global _depth
    with _lock:
        if _depth:
            _depth += 1
            try:
                yield
            finally:
                _depth -= 1
            return
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            _depth = 1
            try:
                yield
            finally:
                _depth = 0
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                kept = without_noise(capture.read())
                while kept:
                    kept = kept[os.write(2, kept):]

"""One decoded frame of the code stream."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameCode:
    """A frame's code after decoding.

    keypoints: (K, 2) float32 in [-1, 1], x first.
    jacobians: (K, 2, 2) float32, or None when the stream carries none.
    extra: (D,) float32 extra code dims, or None when the header reserves none.
    """

    sequence: int
    timestamp_ms: int
    keyframe: bool
    keypoints: np.ndarray
    jacobians: np.ndarray | None
    extra: np.ndarray | None = None

"""Face front end: detection, 478-point mesh, head pose, square crops and stream tracking.

All images are RGB uint8 (H, W, 3); all coordinates are pixels of the full image. MediaPipe
is imported when the first detector or landmarker is built, not when this package is imported.
"""
from __future__ import annotations

from .crop import (
    CropConfig,
    SquareBox,
    box_from_detection,
    box_from_landmarks,
    clip_box,
    crop_portrait,
)
from .detector import FaceBox, FaceDetector
from .filters import OneEuroFilter
from .landmarks import NUM_LANDMARKS, FaceLandmarker
from .pose import head_pose, head_rotation
from .regions import MESH_REGIONS
from .tracker import FaceTracker, TrackerConfig, TrackerStats, TrackResult

__all__ = [
    "MESH_REGIONS", "NUM_LANDMARKS", "CropConfig", "FaceBox", "FaceDetector", "FaceLandmarker", "FaceTracker",
    "OneEuroFilter", "SquareBox", "TrackResult", "TrackerConfig", "TrackerStats",
    "box_from_detection", "box_from_landmarks", "clip_box", "crop_portrait", "head_pose",
    "head_rotation",
]

"""Following one face through a video stream with a steady crop box."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import numpy as np

from .crop import CropConfig, SquareBox, box_from_detection, box_from_landmarks, check_rgb_image
from .filters import OneEuroFilter
from .landmarks import FaceLandmarker


@dataclass(frozen=True)
class TrackerConfig:
    """Settings of a FaceTracker.

    Attributes:
        fps: frame rate assumed for `update` calls without a timestamp.
        crop: framing of the crop box around the face mesh.
        work_size: side in pixels of the crop the mesh model runs on.
        min_detection_confidence: for (re)detecting the face, in [0, 1].
        min_tracking_confidence: below this the mesh counts the face as lost, in [0, 1].
        min_cutoff: One-Euro cutoff in Hz for a still face; lower is steadier but lags more.
        beta: One-Euro speed coefficient, in Hz per (box side per second): how quickly the box
            catches up when the head moves.
        d_cutoff: One-Euro cutoff in Hz of the speed estimate.
    """

    fps: float = 30.0
    crop: CropConfig = field(default_factory=CropConfig)
    work_size: int = 256
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    min_cutoff: float = 0.5
    beta: float = 2.0
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ValueError(f"TrackerConfig.fps must be > 0, got {self.fps}")


@dataclass(frozen=True)
class TrackResult:
    """The tracker's answer for one frame.

    Attributes:
        box: the smoothed crop box in frame pixels; the last good box when the face is missing
            in this frame (`held`); None until a face has been seen.
        landmarks: float32 (478, 3) face mesh of this frame in frame pixels (unsmoothed), or None.
        face_found: whether a face was found in this frame.
        held: whether `box` was carried over from an earlier frame because none was found.
    """

    box: SquareBox | None
    landmarks: np.ndarray | None
    face_found: bool
    held: bool


@dataclass
class TrackerStats:
    """Counters since the tracker was created or reset.

    Attributes:
        frames: frames given to `update`.
        face_frames: frames with a face.
        no_face_frames: frames without one.
        redetections: times the face had to be found by the detector (the first time included)
            rather than followed from the previous frame.
    """

    frames: int = 0
    face_frames: int = 0
    no_face_frames: int = 0
    redetections: int = 0


class FaceTracker:
    """Follows the most prominent face of a video stream and gives a jitter-free crop box.

    Per frame: while the face is tracked, the mesh runs on the previous frame's box and
    MediaPipe follows the face from the last mesh; once it is lost, the full frame goes through
    the detector and the mesh restarts on the detection. The box from the mesh
    (`box_from_landmarks`) is smoothed with a One-Euro filter in units of the face size, so one
    setting works at any resolution. Frames without a face keep the last box.

    Not thread-safe; one tracker per stream. Use as a context manager or call `close()`.
    """

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config
        self.landmarker = FaceLandmarker(config.crop, config.work_size, config.min_detection_confidence,
                                         config.min_tracking_confidence)
        self.stats = TrackerStats()
        self._filter = OneEuroFilter(config.min_cutoff, config.beta, config.d_cutoff)
        self._box: SquareBox | None = None
        self._following: SquareBox | None = None  # where the mesh looks next; None once the face is lost
        self._unit = 1.0  # face box side at first sight, the filter's unit of length

    def reset(self) -> None:
        """Start a new stream: forget the face, the box, the smoothing history and the stats."""
        self.landmarker.reset_video()
        self.stats = TrackerStats()
        self._filter.reset()
        self._box = None
        self._following = None

    def update(self, frame: np.ndarray, timestamp: float | None = None) -> TrackResult:
        """Process the next frame of the stream.

        Args:
            frame: RGB uint8 (H, W, 3).
            timestamp: the frame's time in seconds, increasing; when None it is the frame index
                divided by `config.fps`.
        """
        check_rgb_image(frame)
        time = self.stats.frames / self.config.fps if timestamp is None else timestamp
        self.stats.frames += 1
        landmarks = None
        if self._following is not None:
            landmarks = self.landmarker.from_video_frame(frame, self._following)
        if landmarks is None:
            faces = self.landmarker.detector.detect(frame)
            if faces:
                crop = self.config.crop
                region = box_from_detection(faces[0], crop.scale, crop.shift_up)
                landmarks = self.landmarker.from_video_frame(frame, region)
                if landmarks is not None:
                    self.stats.redetections += 1
        if landmarks is None:
            self._following = None
            self.stats.no_face_frames += 1
            return TrackResult(box=self._box, landmarks=None, face_found=False, held=self._box is not None)

        self.stats.face_frames += 1
        raw = box_from_landmarks(landmarks, self.config.crop.scale, self.config.crop.shift_up)
        if self._box is None:
            self._unit = raw.size
        smoothed = self._filter.update(np.array([raw.cx, raw.cy, raw.size]) / self._unit, time) * self._unit
        self._box = self._following = SquareBox(float(smoothed[0]), float(smoothed[1]), float(smoothed[2]))
        return TrackResult(box=self._box, landmarks=landmarks, face_found=True, held=False)

    def close(self) -> None:
        """Release the MediaPipe graphs."""
        self.landmarker.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

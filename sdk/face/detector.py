"""Face detection with MediaPipe's BlazeFace models."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from .crop import check_rgb_image
from .native_logs import BLANK_FRAME, mediapipe_start

FULL_RANGE_MODEL = 1   # 192x192 input, faces up to ~5 m: small faces in large frames
SHORT_RANGE_MODEL = 0  # 128x128 input, faces within ~2 m: close-ups the full-range model can miss


@dataclass(frozen=True)
class FaceBox:
    """A detected face: corners (x0, y0) top-left and (x1, y1) bottom-right in image pixels.

    The box spans roughly brows-to-chin and ear-to-ear and may extend past the image edges.
    `score` is the detector's confidence in [0, 1].
    """

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0


class FaceDetector:
    """Finds faces in RGB images with MediaPipe face detection.

    Runs the full-range model first, so faces that are small in the frame (upper-body shots,
    720x1280 video) are found; if it finds nothing, the short-range model is tried, which
    handles close-ups better. Not thread-safe: use one detector per thread, and reuse it,
    since building the MediaPipe graphs takes ~0.1 s each.

    Args:
        min_confidence: detections scoring below this (in [0, 1]) are dropped.
    """

    def __init__(self, min_confidence: float = 0.5) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        self.min_confidence = min_confidence
        self._models: dict[int, Any] = {}

    def _model(self, selection: int) -> Any:
        if selection not in self._models:
            from mediapipe.python.solutions.face_detection import FaceDetection

            with mediapipe_start():
                model = FaceDetection(model_selection=selection, min_detection_confidence=self.min_confidence)
                model.process(BLANK_FRAME)
            self._models[selection] = model
        return self._models[selection]

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        """Faces in `image` (RGB uint8, (H, W, 3)), most confident first; empty if none."""
        check_rgb_image(image)
        faces = self._detect_with(FULL_RANGE_MODEL, image)
        if not faces:
            faces = self._detect_with(SHORT_RANGE_MODEL, image)
        return sorted(faces, key=lambda face: face.score, reverse=True)

    def _detect_with(self, selection: int, image: np.ndarray) -> list[FaceBox]:
        height, width = image.shape[:2]
        result = self._model(selection).process(image)
        faces = []
        for detection in result.detections or ():
            box = detection.location_data.relative_bounding_box
            if box.width <= 0 or box.height <= 0:
                continue
            faces.append(FaceBox(x0=box.xmin * width, y0=box.ymin * height,
                                 x1=(box.xmin + box.width) * width, y1=(box.ymin + box.height) * height,
                                 score=float(detection.score[0])))
        return faces

    def close(self) -> None:
        """Release the MediaPipe graphs; the detector rebuilds them if used again."""
        for model in self._models.values():
            model.close()
        self._models.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

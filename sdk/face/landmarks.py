"""The 478-point MediaPipe face mesh (468 face points + 10 iris points), in full-image pixels."""
from __future__ import annotations

from typing import Any, Self

import numpy as np

from .crop import CropConfig, SquareBox, box_from_detection, check_rgb_image
from .detector import FaceBox, FaceDetector
from .native_logs import BLANK_FRAME, mediapipe_start

NUM_LANDMARKS = 478


class FaceLandmarker:
    """Face-mesh landmarks for still images and for video streams.

    The mesh model always runs on a square crop around the face (resampled to `work_size`
    pixels), never on the whole frame, so faces that are small in a large frame get as many
    model pixels as close-ups. Landmarks are returned as float32 (478, 3) arrays in pixels of
    the full image: x, y in the continuous-pixel convention of `sdk.face.crop`, and z (depth,
    relative to the head centre, larger is farther from the camera) in the same pixel scale as x.

    Two modes, each with its own MediaPipe graph, built on first use:
    - `from_image`: independent images; finds the face with `detector`, then runs the mesh.
    - `from_video_frame`: consecutive frames of one stream; MediaPipe tracks the face from the
      previous frame's mesh instead of re-detecting it. `reset_video` starts a new stream.

    Not thread-safe: use one landmarker per thread, and reuse it (each graph takes ~0.1 s to build).

    Args:
        crop: framing of the crop the mesh runs on when it starts from a detection box;
            `CropConfig()` when None.
        work_size: side in pixels of the crop given to the mesh model (whose own input is 192).
        min_detection_confidence: for `detector` and the mesh's internal face detector, in [0, 1].
        min_tracking_confidence: below this mesh confidence a video frame counts as lost and
            the next one is detected afresh, in [0, 1].
    """

    def __init__(self, crop: CropConfig | None = None, work_size: int = 256,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5) -> None:
        if work_size < 64:
            raise ValueError(f"work_size must be at least 64 pixels, got {work_size}")
        if not 0.0 <= min_tracking_confidence <= 1.0:
            raise ValueError(f"min_tracking_confidence must be in [0, 1], got {min_tracking_confidence}")
        self.crop = CropConfig() if crop is None else crop
        self.work_size = work_size
        self.min_detection_confidence = min_detection_confidence
        self.min_tracking_confidence = min_tracking_confidence
        self.detector = FaceDetector(min_detection_confidence)
        self._image_mesh: Any = None
        self._video_mesh: Any = None

    def _new_mesh(self, static_image_mode: bool) -> Any:
        from mediapipe.python.solutions.face_mesh import FaceMesh

        with mediapipe_start():
            mesh = FaceMesh(static_image_mode=static_image_mode, max_num_faces=1, refine_landmarks=True,
                            min_detection_confidence=self.min_detection_confidence,
                            min_tracking_confidence=self.min_tracking_confidence)
            mesh.process(BLANK_FRAME)
        return mesh

    def from_image(self, image: np.ndarray, face: FaceBox | None = None) -> np.ndarray | None:
        """Landmarks of the most confident face in a still image, or None if there is no face.

        Args:
            image: RGB uint8 (H, W, 3).
            face: the face to run the mesh on; detected with `self.detector` when None.

        Returns:
            float32 (478, 3) in full-image pixels, or None when no face is detected or the mesh
            rejects the detection.
        """
        check_rgb_image(image)
        if face is None:
            faces = self.detector.detect(image)
            if not faces:
                return None
            face = faces[0]
        if self._image_mesh is None:
            self._image_mesh = self._new_mesh(static_image_mode=True)
        region = box_from_detection(face, self.crop.scale, self.crop.shift_up)
        return self._run_mesh(self._image_mesh, image, region)

    def from_video_frame(self, frame: np.ndarray, region: SquareBox) -> np.ndarray | None:
        """Landmarks of the face inside `region` of the next frame of a stream, or None if lost.

        Args:
            frame: RGB uint8 (H, W, 3), the frame after the one of the previous call.
            region: the part of the frame the face is in, e.g. the previous frame's crop box or
                one built from a fresh detection. It should move little from frame to frame,
                since MediaPipe tracks the face in the region's coordinates.

        Returns:
            float32 (478, 3) in full-frame pixels, or None when the mesh finds no face.
        """
        check_rgb_image(frame)
        if self._video_mesh is None:
            self._video_mesh = self._new_mesh(static_image_mode=False)
        return self._run_mesh(self._video_mesh, frame, region)

    def _run_mesh(self, mesh: Any, image: np.ndarray, region: SquareBox) -> np.ndarray | None:
        # Bilinear without antialiasing: the model resamples its input again, and on the shared
        # clips this gave the same landmark jitter as an area-averaged crop at 2-3x the speed.
        patch = region.crop(image, self.work_size, antialias=False)
        result = mesh.process(patch)
        if not result.multi_face_landmarks:
            return None
        points = result.multi_face_landmarks[0].landmark
        # MediaPipe normalises x by the width and y by the height of its (square) input, and gives
        # z in the same units as x.
        normalised = np.array([(p.x, p.y, p.z) for p in points], dtype=np.float64)
        return region.points_from_crop(normalised * self.work_size, self.work_size).astype(np.float32)

    def reset_video(self) -> None:
        """Forget the tracked face: the next `from_video_frame` starts a new stream."""
        if self._video_mesh is not None:
            self._video_mesh.close()
            self._video_mesh = None

    def close(self) -> None:
        """Release all MediaPipe graphs; they are rebuilt if the landmarker is used again."""
        self.reset_video()
        if self._image_mesh is not None:
            self._image_mesh.close()
            self._image_mesh = None
        self.detector.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

"""Head orientation from the 3D face mesh.

Camera axes: x to the image's right, y down, z away from the camera (MediaPipe's convention,
with z in the same pixel scale as x and y). The head frame is built from four mesh points:

- x axis: from the subject's right eye outer corner (33) to their left eye outer corner (263);
- y axis: from the top of the forehead (10) to the bottom of the chin (152), made orthogonal to x;
- z axis: x cross y, pointing from the face towards the back of the head.

The frame of MediaPipe's canonical face model (looking straight at the camera) is taken as
zero rotation; on that model the forehead-chin line leans 0.7 degrees out of the image plane.
"""
from __future__ import annotations

import math

import numpy as np

RIGHT_EYE_OUTER = 33
LEFT_EYE_OUTER = 263
FOREHEAD_TOP = 10
CHIN_BOTTOM = 152

# Those four points on mediapipe/modules/face_geometry/data/canonical_face_model.obj (y up, z to
# the viewer), converted to camera axes by negating y and z.
_CANONICAL_POINTS = {
    RIGHT_EYE_OUTER: (-4.445859, -2.663991, -3.173422),
    LEFT_EYE_OUTER: (4.445859, -2.663991, -3.173422),
    FOREHEAD_TOP: (0.0, -8.261778, -4.481535),
    CHIN_BOTTOM: (0.0, 9.403378, -4.264492),
}


def _head_frame(right_eye: np.ndarray, left_eye: np.ndarray, forehead: np.ndarray,
                chin: np.ndarray) -> np.ndarray:
    """(3, 3) orthonormal matrix whose columns are the head's x, y, z axes in camera axes."""
    x_axis = left_eye - right_eye
    down = chin - forehead
    x_norm = np.linalg.norm(x_axis)
    if x_norm == 0:
        raise ValueError("degenerate landmarks: the eye corners coincide")
    x_axis = x_axis / x_norm
    y_axis = down - np.dot(down, x_axis) * x_axis
    y_norm = np.linalg.norm(y_axis)
    if y_norm == 0:
        raise ValueError("degenerate landmarks: forehead-chin line is parallel to the eye line")
    y_axis = y_axis / y_norm
    return np.stack([x_axis, y_axis, np.cross(x_axis, y_axis)], axis=1)


_CANONICAL_FRAME = _head_frame(*(np.array(_CANONICAL_POINTS[i], dtype=np.float64) for i in
                                 (RIGHT_EYE_OUTER, LEFT_EYE_OUTER, FOREHEAD_TOP, CHIN_BOTTOM)))


def head_rotation(landmarks: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) float64 from the frontal head pose to the observed one, in camera axes.

    Args:
        landmarks: (478, 3) or (468, 3) face-mesh points with x, y, z in the same pixel scale.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 2 or landmarks.shape[0] < 468 or landmarks.shape[1] != 3:
        raise ValueError(f"expected face-mesh landmarks of shape (478, 3), got {landmarks.shape}")
    points = landmarks[[RIGHT_EYE_OUTER, LEFT_EYE_OUTER, FOREHEAD_TOP, CHIN_BOTTOM]]
    if not np.isfinite(points).all():
        raise ValueError("landmarks contain NaN or infinite values")
    return _head_frame(*points) @ _CANONICAL_FRAME.T


def head_pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees; (0, 0, 0) is a face looking straight at the camera.

    The angles decompose `head_rotation` as Ry(yaw) @ Rx(pitch) @ Rz(roll) about the camera axes:
    yaw > 0 when the face turns towards the image's left (the subject's right), pitch > 0 when
    it tilts down, roll > 0 when the head leans clockwise in the image. A mirrored image
    negates yaw and roll.
    """
    return rotation_angles(head_rotation(landmarks))


def rotation_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a (3, 3) rotation = Ry(yaw) @ Rx(pitch) @ Rz(roll)
    (the decomposition and signs of `head_pose`)."""
    yaw = math.atan2(rotation[0, 2], rotation[2, 2])
    pitch = math.asin(float(np.clip(-rotation[1, 2], -1.0, 1.0)))
    roll = math.atan2(rotation[1, 0], rotation[1, 1])
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def rotation_from_angles(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) float64 Ry(yaw) @ Rx(pitch) @ Rz(roll), angles in degrees: the inverse of `rotation_angles`."""
    a, b, c = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(b), -math.sin(b)], [0.0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0.0], [math.sin(c), math.cos(c), 0.0], [0.0, 0.0, 1.0]])
    return ry @ rx @ rz

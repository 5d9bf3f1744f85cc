"""Named regions of the 478-point face mesh, as index arrays into it.

The indices are the points of MediaPipe's face-mesh connection sets (FACEMESH_LIPS, ..._LEFT_EYE,
...; "left" is the subject's left, on the image's right), written out so that training, the data
pack and the eval import no mediapipe; `tests/test_face_regions.py` checks them against
mediapipe's own sets.
"""
from __future__ import annotations

import cv2
import numpy as np

MESH_REGIONS: dict[str, np.ndarray] = {
    "lips": np.array([0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185,
                      191, 267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405,
                      409, 415]),
    "left_eye": np.array([249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466]),
    "right_eye": np.array([7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246]),
    "left_eyebrow": np.array([276, 282, 283, 285, 293, 295, 296, 300, 334, 336]),
    "right_eyebrow": np.array([46, 52, 53, 55, 63, 65, 66, 70, 105, 107]),
    "face_oval": np.array([10, 21, 54, 58, 67, 93, 103, 109, 127, 132, 136, 148, 149, 150, 152, 162, 172, 176,
                           234, 251, 284, 288, 297, 323, 332, 338, 356, 361, 365, 377, 378, 379, 389, 397,
                           400, 454]),
    "nose": np.array([1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278, 294, 326,
                      327, 344, 440]),
    "left_iris": np.array([474, 475, 476, 477]),
    "right_iris": np.array([469, 470, 471, 472]),
}


def region_mask(points: np.ndarray, size: int, names: tuple[str, ...] = ("lips", "left_eye", "right_eye"),
                margin: float = 0.25) -> np.ndarray:
    """(size, size) float32 in [0, 1]: 1 inside the convex hull of each named region of a mesh
    (478, 2+) in pixels of a size² image, each hull grown by `margin` of its own width (so a closed
    eye's lids and the skin around the lips are inside), with a soft edge. All zeros when
    the mesh has NaN points (no face)."""
    mask = np.zeros((size, size), np.uint8)
    if not np.isfinite(points[:, :2]).all():
        return mask.astype(np.float32)
    for name in names:
        # pixel i spans [i, i + 1) in the mesh's coordinates; OpenCV's integer points are centres
        hull = cv2.convexHull(np.round(points[MESH_REGIONS[name], :2] - 0.5).astype(np.int32))
        region = np.zeros_like(mask)
        cv2.fillConvexPoly(region, hull, 255)
        radius = max(1, round(margin * float(np.ptp(hull[:, 0], axis=0).max())))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        mask |= cv2.dilate(region, kernel)
    blur = max(3, size // 64 * 2 + 1)
    return cv2.GaussianBlur(mask, (blur, blur), 0).astype(np.float32) / 255.0

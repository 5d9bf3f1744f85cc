"""The canonical face's frame and the rigid points that define head pose.

Canonical frame (the frame of every pose-normalised mesh): x towards the image's right (the
subject's left), y down, z away from the camera (MediaPipe's camera axes); the face looks
straight at the camera in the sense of `sdk.face.pose` (its four-point head frame is the
identity), the origin is the weighted centroid of the rigid points, and one unit is the distance
between the outer eye corners (33, 263). The canonical neutral face itself is fitted from the
train split by `sdk.prior.fit`.

Rigid points (weight 1; every other point 0), chosen by region on a frontal mesh:
- the four eye corners (33, 133, 362, 263): lids move, corners barely do;
- the nose above its tip (the bridge): bone;
- the face oval above the nose tip (temples, forehead edge): the jaw and cheeks are below it;
- the forehead: every point above the highest eyebrow point (brows move, skin above barely does).
Mouth, jaw, cheeks, lids, brows and irises get weight 0, so an open mouth or raised brows change
the expression code, not the head pose.
"""
from __future__ import annotations

import numpy as np

from ..face.landmarks import NUM_LANDMARKS
from ..face.pose import LEFT_EYE_OUTER, RIGHT_EYE_OUTER, head_rotation
from ..face.regions import MESH_REGIONS

EYE_CORNERS = np.array([33, 133, 362, 263])
# Where a head turns about, in canonical units (behind and below the rigid centroid: the neck).
# Least squares of each frame's centroid motion (over its scale) against (I - R R0^T) R0 b over
# the train split's 73 clips, every frame against its clip's first: pooled b = (-0.11, 0.68,
# 0.64), per-clip median (0.02, 0.46, 0.59), the 24 clips that turn > 15°: (0.10, 0.52, 0.67).
# Edits turn the head about it (`sdk.prior.receiver`): turned about the centroid instead, a 15°
# yaw moves the 15 keypoints 2 px at 256² and the face outline the other way, which the dense
# motion does not follow (bench/editing.py).
NECK_PIVOT = (0.0, 0.5, 0.65)
NOSE_TIP = 1
IRISES = np.concatenate([MESH_REGIONS["left_iris"], MESH_REGIONS["right_iris"]])


def rigid_weights(frontal: np.ndarray) -> np.ndarray:
    """(478,) float64 weights (1 rigid, 0 otherwise) from a frontal mesh (478, 3), y down."""
    y = frontal[:, 1]
    weights = np.zeros(NUM_LANDMARKS)
    weights[EYE_CORNERS] = 1.0
    nose = MESH_REGIONS["nose"]
    weights[nose[y[nose] < y[NOSE_TIP]]] = 1.0
    oval = MESH_REGIONS["face_oval"]
    weights[oval[y[oval] < y[NOSE_TIP]]] = 1.0
    brows = np.concatenate([MESH_REGIONS["left_eyebrow"], MESH_REGIONS["right_eyebrow"]])
    forehead = y < y[brows].min()
    forehead[IRISES] = False
    weights[forehead] = 1.0
    return weights


def to_canonical_frame(mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A mean face (478, 3) in any pose -> (the same face in the canonical frame, its rigid weights).

    Rotated by `sdk.face.pose.head_rotation` to frontal, weighted by `rigid_weights`, centred on
    the rigid centroid and scaled to unit outer-eye-corner distance.
    """
    frontal = np.asarray(mesh, dtype=np.float64) @ head_rotation(mesh)
    weights = rigid_weights(frontal)
    frontal = frontal - (weights @ frontal) / weights.sum()
    frontal /= np.linalg.norm(frontal[LEFT_EYE_OUTER] - frontal[RIGHT_EYE_OUTER])
    return frontal, weights

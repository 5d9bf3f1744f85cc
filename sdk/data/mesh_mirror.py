"""Face meshes flipped with their frames: a horizontal flip mirrors x and swaps left and right points.

A frame flipped left to right shows a face whose left eye is where its right eye was. The flipped
mesh must say so: point i of the flipped mesh is the mirror image of point `MIRROR[i]` of the
original (the right outer eye corner 33 becomes the left one 263, the nose tip 1 stays 1), with x
mirrored about the crop's vertical centre line (continuous pixel coordinates: pixel i covers
[i, i + 1), so x becomes width - x). Without the swap, the flipped mesh would describe a mirrored
face (a reflection, which no pose or expression reproduces) and every index-based use of it
(keypoints, the expression code, the mouth-and-eyes regions' names) would be wrong.

The permutation is derived once from the face prior's canonical neutral face (`sdk.prior`, built
from our own training meshes): each point's mirror is the canonical point nearest to its
reflection through the face's midline plane (x = 0 in the canonical frame). On the shipped prior
this is an involution with 28 midline points fixed and every pair under 0.01 eye-distances apart;
anything else (a prior that is not a symmetric face) is refused.
"""
from __future__ import annotations

import functools

import numpy as np

from ..errors import SdkError

MAX_MIRROR_DISTANCE = 0.05  # canonical units (outer eye-corner distance): a pair further apart is no mirror pair


def mirror_permutation(canonical: np.ndarray) -> np.ndarray:
    """(478,) int64: index of each point's mirror image on a symmetric canonical face (478, 3) whose
    midline plane is x = 0."""
    reflected = canonical * np.array([-1.0, 1.0, 1.0])
    distances = np.linalg.norm(canonical[:, None, :] - reflected[None, :, :], axis=-1)
    permutation = distances.argmin(axis=1)
    worst = float(distances[np.arange(len(canonical)), permutation].max())
    if not np.array_equal(permutation[permutation], np.arange(len(canonical))) or worst > MAX_MIRROR_DISTANCE:
        raise SdkError(f"the face prior's canonical face is not left-right symmetric (nearest mirror points "
                       f"{worst:.3f} apart, or not pairwise): cannot flip meshes with their frames")
    return permutation


@functools.cache
def default_mirror_permutation() -> np.ndarray:
    """`mirror_permutation` of the shipped prior's canonical face (read once per process)."""
    from ..prior import load_prior

    permutation = mirror_permutation(load_prior("default").canonical)
    permutation.flags.writeable = False
    return permutation


def flip_meshes(meshes: np.ndarray, width: int, permutation: np.ndarray | None = None) -> np.ndarray:
    """meshes (..., 478, 3) in pixels of a `width`-wide crop -> the meshes of the crop flipped left
    to right (x mirrored, left and right points swapped). NaN meshes stay NaN."""
    permutation = default_mirror_permutation() if permutation is None else permutation
    flipped = meshes[..., permutation, :].copy()
    flipped[..., 0] = width - flipped[..., 0]
    return flipped

"""Which mesh points become the generator's K keypoints, and their coordinates and local Jacobians.

Selection (seed 002, appendix B.3): eyes and mouth first, then the nose, brows and contour
sparsely. One fixed priority list; the first K entries are the keypoints for K (so K = 10 is a
prefix of K = 15, and a model trained with dropout of the last keypoints can use fewer):

| K | mouth | eyes | nose | brows | contour |
| --- | --- | --- | --- | --- | --- |
| 5 | 2 | 2 | 1 | 0 | 0 |  (the seed's better 5-point allocation, Tab. 4)
| 10 | 4 | 4 | 1 | 0 | 1 |
| 15 | 6 | 4 | 2 | 2 | 1 |
| 20 | 6 | 6 | 2 | 2 | 4 |
| 30 | 10 | 8 | 2 | 4 | 6 |
| 40 | 12 | 10 | 4 | 6 | 8 |

Coordinates are the model's (`sdk.models.Keypoints`): [-1, 1], x first, y down, -1 and 1 at the
centres of the edge pixels (the grid of `make_coordinate_grid`); mesh points are continuous pixel
coordinates (pixel i covers [i, i + 1)), so a pixel centre i + 0.5 maps to -1 + 2 i / (S - 1).

Jacobians: per keypoint, the 2x2 affine map that best takes its mesh neighbours' offsets on
the canonical face (x, y; canonical units) to their offsets in the image (keypoint coordinates),
divided by the face's scale: the canonical face seen frontally gives the identity, a turned or
stretched neighbourhood a rotated or stretched matrix, as FOMM's local affine motion expects.
"""
from __future__ import annotations

import numpy as np

from ..errors import SdkError

# (mesh index, region), in priority order; see the module docstring for what each prefix holds.
KEYPOINT_PRIORITY: tuple[tuple[int, str], ...] = (
    (17, "mouth"),           # lower lip, outer centre: jaw and mouth opening
    (159, "eyes"),           # right upper lid: blinks
    (386, "eyes"),           # left upper lid
    (0, "mouth"),            # upper lip, outer centre
    (1, "nose"),             # nose tip
    (61, "mouth"),           # right mouth corner: smile
    (291, "mouth"),          # left mouth corner
    (145, "eyes"),           # right lower lid
    (374, "eyes"),           # left lower lid
    (152, "contour"),        # chin
    (105, "brows"),          # right brow, middle
    (334, "brows"),          # left brow, middle
    (13, "mouth"),           # upper inner lip
    (14, "mouth"),           # lower inner lip
    (168, "nose"),           # nose bridge
    (33, "eyes"),            # right eye outer corner
    (263, "eyes"),           # left eye outer corner
    (234, "contour"),        # right cheek at eye level
    (454, "contour"),        # left cheek at eye level
    (10, "contour"),         # top of the forehead
    (133, "eyes"),           # right eye inner corner
    (362, "eyes"),           # left eye inner corner
    (70, "brows"),           # right brow, outer end
    (300, "brows"),          # left brow, outer end
    (172, "contour"),        # right jaw angle
    (397, "contour"),        # left jaw angle
    (37, "mouth"),           # upper lip, right of centre
    (267, "mouth"),          # upper lip, left of centre
    (84, "mouth"),           # lower lip, right of centre
    (314, "mouth"),          # lower lip, left of centre
    (98, "nose"),            # right nostril
    (327, "nose"),           # left nostril
    (107, "brows"),          # right brow, inner end
    (336, "brows"),          # left brow, inner end
    (81, "mouth"),           # upper inner lip, right
    (311, "mouth"),          # upper inner lip, left
    (160, "eyes"),           # right upper lid, outer third
    (387, "eyes"),           # left upper lid, outer third
    (148, "contour"),        # jaw, right of the chin
    (377, "contour"),        # jaw, left of the chin
)
MAX_KEYPOINTS = len(KEYPOINT_PRIORITY)
NEIGHBOURS = 8


def keypoint_indices(num_keypoints: int) -> np.ndarray:
    """(K,) int64 mesh indices of the K keypoints, in priority order (1 <= K <= MAX_KEYPOINTS)."""
    if not 1 <= num_keypoints <= MAX_KEYPOINTS:
        raise SdkError(f"the face prior has 1 to {MAX_KEYPOINTS} keypoints, not {num_keypoints}")
    return np.array([index for index, _ in KEYPOINT_PRIORITY[:num_keypoints]], dtype=np.int64)


def to_keypoint_coords(points: np.ndarray, image_size: int) -> np.ndarray:
    """points (..., 2) continuous pixel coordinates of a size² crop -> (..., 2) keypoint coordinates."""
    return (np.asarray(points) - 0.5) * (2.0 / (image_size - 1)) - 1.0


def from_keypoint_coords(coords: np.ndarray, image_size: int) -> np.ndarray:
    """The inverse of `to_keypoint_coords`: (..., 2) keypoint coordinates -> continuous pixels."""
    return (np.asarray(coords) + 1.0) * ((image_size - 1) / 2.0) + 0.5


def neighbour_table(canonical: np.ndarray, indices: np.ndarray, count: int = NEIGHBOURS) -> np.ndarray:
    """(K, count) mesh indices of each keypoint's nearest other points on the canonical face (3D)."""
    distances = np.linalg.norm(canonical[indices, None, :] - canonical[None, :, :], axis=-1)
    distances[np.arange(len(indices)), indices] = np.inf
    return np.argsort(distances, axis=1)[:, :count]


class JacobianFitter:
    """Per-keypoint 2x2 Jacobians from a projected mesh, with the canonical side precomputed.

    canonical (478, 3); indices (K,); neighbours (K, n) from `neighbour_table`.
    """

    def __init__(self, canonical: np.ndarray, indices: np.ndarray, neighbours: np.ndarray):
        self.indices = indices
        self.neighbours = neighbours
        reference = canonical[neighbours, :2] - canonical[indices, None, :2]  # (K, n, 2)
        self.solve = np.linalg.pinv(reference)  # (K, 2, n): least squares J^T = solve @ image offsets

    def __call__(self, coords: np.ndarray, scale: float) -> np.ndarray:
        """coords (478, 2) mesh in keypoint coordinates; scale: one canonical unit in those
        coordinates (exp(log_scale)) -> (K, 2, 2) Jacobians."""
        image = coords[self.neighbours] - coords[self.indices, None, :]  # (K, n, 2)
        return np.swapaxes(self.solve @ image, -1, -2) / scale

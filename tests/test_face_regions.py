"""The mesh regions written out in sdk.face.regions are MediaPipe's own connection sets."""
import numpy as np
import pytest

from sdk.face import MESH_REGIONS, NUM_LANDMARKS


def test_regions_match_mediapipe_connection_sets():
    mesh = pytest.importorskip("mediapipe.python.solutions.face_mesh_connections")
    for name, indices in MESH_REGIONS.items():
        connections = getattr(mesh, f"FACEMESH_{name.upper()}")
        assert indices.tolist() == sorted({i for edge in connections for i in edge}), name


def test_regions_are_sorted_unique_mesh_indices():
    for indices in MESH_REGIONS.values():
        assert np.all(np.diff(indices) > 0) and indices.min() >= 0 and indices.max() < NUM_LANDMARKS


def test_region_mask_covers_the_named_hulls_softly_and_is_empty_without_a_face():
    from sdk.face.regions import region_mask

    points = np.full((NUM_LANDMARKS, 3), 10.0, np.float32)
    lips = MESH_REGIONS["lips"]
    angles = np.linspace(0, 2 * np.pi, len(lips), endpoint=False)
    points[lips, 0], points[lips, 1] = 64 + 16 * np.cos(angles), 80 + 6 * np.sin(angles)
    mask = region_mask(points, 128, names=("lips",))
    assert mask.shape == (128, 128) and mask.dtype == np.float32
    assert mask[80, 64] == 1.0 and mask[80, 64 + 20] > 0  # inside, and grown past the hull
    assert mask[20, 20] == 0 and 0 < mask.max() <= 1
    points[0] = np.nan
    assert not region_mask(points, 128).any()

"""Real face crops to verify and time exported graphs on: a test-split clip of the shared data.

From a prepared folder (`python -m sdk data prepare`) when one is given, else tracked and cropped
from the first test-split video of the shared manifest (`$SDK_SHARED_DATA`, default
``<repo>/../shared/data``), as `python -m sdk animate` crops a driving video. Frames are taken
`FRAME_STRIDE` apart so that the face moves between them. With `meshes`, each crop comes with its
face mesh (478, 3) in its pixels (the prepared `landmarks.npy`, or the tracker's), and frames
without one are passed over: models driven by the face prior are rigged and driven by them.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .request import ExportError

REPOSITORY = Path(__file__).resolve().parents[1]
FRAME_STRIDE = 5


def shared_data_dir() -> Path:
    return Path(os.environ.get("SDK_SHARED_DATA") or REPOSITORY.parent / "shared" / "data")


class TestFrames(NamedTuple):
    """clip: the clip's id; crops: RGB uint8 (S, S, 3); meshes: (478, 3) per crop in its pixels, or None."""
    clip: str
    crops: list[np.ndarray]
    meshes: list[np.ndarray] | None


def test_frames(resolution: int, count: int, prepared: Path | None = None, meshes: bool = False) -> TestFrames:
    """`count` face crops (resolution, resolution, 3) of one test identity [with their meshes];
    ExportError if not enough are found."""
    if count < 2:
        raise ExportError(f"need at least 2 frames (a source and a driving frame), got {count}")
    if prepared is not None:
        return _prepared_frames(Path(prepared), resolution, count, meshes)
    return _shared_video_frames(resolution, count, meshes)


def _prepared_frames(root: Path, resolution: int, count: int, meshes: bool) -> TestFrames:
    from sdk.data.datasets import load_frame, load_landmarks, read_prepared_manifest

    clip = read_prepared_manifest(root, "test", min_frames=count)[0]
    step = min(FRAME_STRIDE, max(clip.frames // count, 1))
    indices = list(range(0, clip.frames, step))
    points = None
    if meshes:
        points = load_landmarks(clip, resolution)
        if points is None:
            raise ExportError(f"{clip.directory}: no landmarks.npy, which models driven by the face prior need; "
                              "re-run `python -m sdk data prepare`")
        indices = [index for index in indices if np.isfinite(points[index]).all()]
        if len(indices) < count:
            raise ExportError(f"{clip.directory}: only {len(indices)} frames with a face mesh, need {count}")
    indices = indices[:count]
    return TestFrames(clip.id, [load_frame(clip.frame_path(index), resolution) for index in indices],
                      None if points is None else [points[index].astype(np.float64) for index in indices])


def _shared_video_frames(resolution: int, count: int, meshes: bool) -> TestFrames:
    from sdk.face import FaceTracker, TrackerConfig
    from sdk.media import iter_video, probe_video

    manifest = shared_data_dir() / "manifest.csv"
    if not manifest.is_file():
        raise ExportError(f"no test frames: {manifest} not found (set SDK_SHARED_DATA or pass --data PREPARED)")
    with manifest.open(newline="") as handle:
        videos = [row for row in csv.DictReader(handle) if row["kind"] == "video" and row["split"] == "test"]
    if not videos:
        raise ExportError(f"{manifest}: no test-split video to take frames from")
    row = videos[0]
    path = shared_data_dir() / row["path"]
    tracker = FaceTracker(TrackerConfig(fps=probe_video(path).fps))
    crops, points = [], []
    try:
        for index, frame in enumerate(iter_video(path)):
            track = tracker.update(frame)  # every frame, so the tracker follows the face
            if index % FRAME_STRIDE == 0 and track.face_found and track.box is not None:
                crops.append(track.box.crop(frame, resolution))
                points.append(track.box.points_to_crop(track.landmarks, resolution))
            if len(crops) == count:
                break
    finally:
        tracker.close()
    if len(crops) < count:
        raise ExportError(f"{path}: only {len(crops)} frames with a face, need {count}")
    return TestFrames(row["id"], crops, points if meshes else None)

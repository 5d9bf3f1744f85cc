"""Shared fixtures: the real data in ../shared/data and small prepared datasets made from it."""
from __future__ import annotations

import csv
import functools
import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("SDK_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))

# Two short real clips (one per split) used wherever a prepared dataset is needed.
SMALL_CLIPS = ["pcavs-Input-00010", "pcavs-Pose_Source-620900105"]


@functools.cache
def _manifest_by_kind_and_id() -> dict[tuple[str, str], dict[str, str]]:
    with open(SHARED_DATA / "manifest.csv", newline="") as handle:
        return {(row["kind"], row["id"]): row for row in csv.DictReader(handle)}


def data_file(kind: str, item_id: str) -> Path:
    """Path of a shared manifest entry (ids repeat across kinds, e.g. an image and a video of one person).

    The tests are about real media: missing shared data fails them rather than skipping them.
    """
    if not (SHARED_DATA / "manifest.csv").is_file():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set SDK_SHARED_DATA")
    return SHARED_DATA / _manifest_by_kind_and_id()[(kind, item_id)]["path"]


@pytest.fixture(scope="session")
def shared_manifest() -> Path:
    manifest = SHARED_DATA / "manifest.csv"
    if not manifest.is_file():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set SDK_SHARED_DATA")
    return manifest


@pytest.fixture(scope="session")
def manifest_rows(shared_manifest) -> list[dict[str, str]]:
    with shared_manifest.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def small_clip_ids() -> list[str]:
    return list(SMALL_CLIPS)


@pytest.fixture(scope="session")
def prepared_small(shared_manifest, tmp_path_factory) -> Path:
    """Two real clips prepared at 64² (one train, one test identity)."""
    from sdk.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("prepared")
    prepare_dataset(shared_manifest, out, size=64, ids=SMALL_CLIPS, show_progress=False)
    return out


# The live tests' shared inputs (test_live.py, test_views.py): a tiny untrained model and a short
# 256² face clip cut from the bundled driving video.
CLIP_FRAMES = 10


@pytest.fixture(scope="module")
def tiny_model():
    import torch

    from sdk.models import TalkingHeadModel, get_config

    torch.manual_seed(0)
    return TalkingHeadModel(get_config("dagan++-tiny")).eval()


@pytest.fixture(scope="module")
def driving_frames():
    import numpy as np

    from sdk import media
    from sdk.live.capture import DEFAULT_DRIVING

    frames = []
    for frame in media.iter_video(DEFAULT_DRIVING):
        frames.append(np.ascontiguousarray(frame[::2, ::2]))  # 256², the face stays easy to find
        if len(frames) == CLIP_FRAMES:
            break
    return frames


@pytest.fixture(scope="module")
def clip(driving_frames, tmp_path_factory):
    from sdk import media

    path = tmp_path_factory.mktemp("clips") / "face.mp4"
    media.write_video(path, driving_frames, 25.0)
    return path


@pytest.fixture(scope="module")
def single_thread():
    """One torch intra-op thread for a module (`pytestmark = pytest.mark.usefixtures("single_thread")`):
    its tiny networks gain nothing from more, and two OpenMP threads competing with any other busy
    process on a 2-core machine slow the module down several-fold."""
    from sdk.runtime import torch_threads

    with torch_threads(1):
        yield

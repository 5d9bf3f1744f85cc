import csv
import json

import cv2
import numpy as np
import pytest
import torch

from sdk.data import AudioWindowDataset, FramePairDataset, FrameTripletDataset, read_prepared_manifest
from sdk.data.prepare import PREPARED_COLUMNS, prepare_dataset, read_source_manifest
from sdk.errors import SdkError
from sdk.face import SquareBox


def test_prepare_writes_what_the_manifest_says(prepared_small, manifest_rows, small_clip_ids):
    with (prepared_small / "manifest.csv").open(newline="") as handle:
        rows = {row["id"]: row for row in csv.DictReader(handle)}
    assert set(rows) == set(small_clip_ids)
    source = {row["id"]: row for row in manifest_rows}
    for clip_id, row in rows.items():
        assert list(row) == PREPARED_COLUMNS
        assert row["status"] == "ok", row["reason"]
        assert row["split"] == source[clip_id]["split"] and row["identity"] == source[clip_id]["identity"]
        clip = prepared_small / "clips" / clip_id
        frames = sorted((clip / "frames").glob("*.jpg"))
        assert len(frames) == int(row["frames"])
        # every frame decoded, at the video's rate: duration x fps (within a frame or two)
        assert abs(len(frames) - float(source[clip_id]["duration_s"]) * float(source[clip_id]["fps"])) <= 2
        landmarks = np.load(clip / "landmarks.npy")
        assert landmarks.shape == (len(frames), 478, 3)
        found = ~np.isnan(landmarks[:, 0, 0])
        assert found.sum() == int(row["face_frames"]) >= 0.9 * len(frames)
        # landmarks are in crop pixels: the face sits inside the 64² crop
        assert np.nanmin(landmarks[found, :, :2]) >= 0 and np.nanmax(landmarks[found, :, :2]) <= 64
        assert np.load(clip / "pose.npy").shape == (len(frames), 3)
        assert (clip / "audio.wav").is_file() == (row["has_audio"] == "yes")
        coverage = cv2.imread(str(clip / "coverage.png"), cv2.IMREAD_GRAYSCALE)
        assert coverage.shape == (64, 64) and coverage.max() == 255  # the face lies inside the source frame


def test_prepare_is_resumable(prepared_small, shared_manifest, small_clip_ids):
    meta = prepared_small / "clips" / small_clip_ids[0] / "meta.json"
    before = meta.stat().st_mtime_ns
    results = prepare_dataset(shared_manifest, prepared_small, size=64, ids=small_clip_ids, show_progress=False)
    assert meta.stat().st_mtime_ns == before
    assert all(result.status == "ok" for result in results)
    assert json.loads(meta.read_text())["size"] == 64


def test_prepare_rejects_bad_manifests(tmp_path, shared_manifest):
    with pytest.raises(SdkError, match="not found"):
        read_source_manifest(tmp_path / "none.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(SdkError, match="missing columns"):
        read_source_manifest(bad)
    with pytest.raises(SdkError, match="no-such-clip"):
        prepare_dataset(shared_manifest, tmp_path / "out", ids=["no-such-clip"], show_progress=False)


def test_unreadable_video_is_skipped_with_a_reason(tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 1000)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("id,kind,path,split,identity,content\nbroken,video,broken.mp4,train,p0,talking\n")
    results = prepare_dataset(manifest, tmp_path / "out", size=64, show_progress=False)
    assert results[0].status == "skipped" and "unreadable" in results[0].reason


def test_datasets_shapes_and_determinism(prepared_small, small_clip_ids):
    train = read_prepared_manifest(prepared_small, "train")
    assert [clip.id for clip in train] == [small_clip_ids[0]]
    pairs = FramePairDataset(prepared_small, "train", size=32)
    assert len(pairs) == train[0].frames
    torch.manual_seed(0)
    first = pairs[5]
    torch.manual_seed(0)
    again = pairs[5]
    assert first["source"].shape == first["driving"].shape == (3, 32, 32)
    assert torch.equal(first["source"], again["source"])
    assert 0.0 <= float(first["source"].min()) and float(first["source"].max()) <= 1.0
    assert first["coverage"].shape == (1, 32, 32) and torch.equal(first["coverage"], again["coverage"])

    triplets = FrameTripletDataset(prepared_small, "test", size=32, augment=False)
    item = triplets[0]
    assert item["target"].shape == (3, 32, 32) and item["references"].shape == (2, 3, 32, 32)

    audio = AudioWindowDataset(prepared_small, "train", size=32, window_seconds=0.5)
    sample = audio[0]
    assert sample["audio"].shape == (8000,) and sample["frame"].shape == (3, 32, 32)
    # the first frame's window starts before the clip: its beginning is zero padding
    assert float(sample["audio"][:3000].abs().max()) == 0.0


def test_coverage_marks_the_part_of_a_box_outside_the_frame():
    box = SquareBox(cx=10.0, cy=20.0, size=40.0)  # x from -10 to 30 in a 40-wide frame: left quarter outside
    coverage = box.coverage(frame_height=40, frame_width=40, out_size=40)
    assert coverage.shape == (40, 40) and coverage.dtype == np.float32
    assert np.allclose(coverage[:, :9], 0) and np.allclose(coverage[:, 11:], 1)


def test_missing_prepared_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SdkError, match="data prepare"):
        FramePairDataset(tmp_path)

"""`python -m sdk data prepare`: turn the shared talking-head videos into aligned face clips.

For every video of the source manifest, the face is tracked through the clip, one square
FOMM-style box is fitted to the whole clip (so the background stays still and only the head
moves, as in the training data of the papers), and each frame is cropped with it. Output layout:

    OUT/manifest.csv                    one row per source video (see PREPARED_COLUMNS)
    OUT/clips/<id>/frames/000000.jpg    square RGB crops, `size` pixels
    OUT/clips/<id>/coverage.png         uint8 (size, size): 255 where the crop lies inside the source
                                        frame, 0 where `crop` repeated edge pixels (left out of losses)
    OUT/clips/<id>/landmarks.npy        (T, 478, 3) float32 mesh in crop pixels, NaN where no face
    OUT/clips/<id>/pose.npy             (T, 3) float32 yaw, pitch, roll in degrees, NaN where no face
    OUT/clips/<id>/audio.wav            16 kHz mono PCM, when the video has sound
    OUT/clips/<id>/meta.json            written last: its presence marks the clip as finished

The run is deterministic and resumable: a clip whose meta.json matches the requested size and
crop settings is not processed again.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import time
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import MediaReadError, SdkError
from ..files import atomic_file, write_bytes_atomic
from ..face import CropConfig, FaceTracker, SquareBox, TrackerConfig, box_from_landmarks, clip_box, head_pose
from ..media import AUDIO_SAMPLE_RATE, iter_video, probe_video, read_audio

PREPARED_COLUMNS = ["id", "split", "identity", "content", "source_path", "status", "reason", "fps",
                    "frames", "face_frames", "size", "has_audio", "box_cx", "box_cy", "box_size"]
FORMAT_VERSION = 2  # 2: coverage.png
JPEG_QUALITY = 95
# A clip in which the face is found in fewer frames than this is not usable for training.
MIN_FACE_FRACTION = 0.5


@dataclass(frozen=True)
class SourceVideo:
    """One video row of the shared data manifest."""

    id: str
    path: Path
    split: str
    identity: str
    content: str


@dataclass
class ClipResult:
    id: str
    split: str
    identity: str
    content: str
    source_path: str
    status: str  # "ok" | "skipped"
    reason: str = ""
    fps: float = 0.0
    frames: int = 0
    face_frames: int = 0
    size: int = 0
    has_audio: bool = False
    box: SquareBox | None = None
    seconds: float = field(default=0.0, compare=False)

    def row(self) -> dict[str, object]:
        values = {name: getattr(self, name) for name in PREPARED_COLUMNS if hasattr(self, name)}
        values["has_audio"] = "yes" if self.has_audio else "no"
        values["box_cx"] = f"{self.box.cx:.2f}" if self.box else ""
        values["box_cy"] = f"{self.box.cy:.2f}" if self.box else ""
        values["box_size"] = f"{self.box.size:.2f}" if self.box else ""
        return values


def read_source_manifest(manifest: Path) -> list[SourceVideo]:
    """Video rows of the shared manifest; paths resolved against the manifest's folder."""
    if not manifest.is_file():
        raise MediaReadError(f"{manifest}: manifest not found")
    with manifest.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"id", "kind", "path", "split"} - set(reader.fieldnames or [])
        if missing:
            raise SdkError(f"{manifest}: not a data manifest, missing columns {sorted(missing)}")
        rows = [row for row in reader if row["kind"] == "video"]
    return [SourceVideo(row["id"], manifest.parent / row["path"], row["split"],
                        row.get("identity", ""), row.get("content", "")) for row in rows]


def _write_wav(path: Path, audio: np.ndarray) -> None:
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(AUDIO_SAMPLE_RATE)
        handle.writeframes(pcm.tobytes())


def _finished(meta_path: Path, size: int, crop: CropConfig) -> dict | None:
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT_VERSION or meta.get("size") != size or meta.get("crop") != asdict(crop):
        return None
    return meta


def prepare_clip(video: SourceVideo, clip_dir: Path, size: int, crop: CropConfig,
                 progress: tqdm | None = None) -> ClipResult:
    """Track, crop and write one clip; returns its result (status "skipped" with a reason)."""
    started = time.perf_counter()
    result = ClipResult(video.id, video.split, video.identity, video.content, str(video.path), "ok", size=size)
    meta_path = clip_dir / "meta.json"
    meta = _finished(meta_path, size, crop)
    if meta is not None:
        return ClipResult(**{**meta["result"], "box": SquareBox(**meta["box"]) if meta["box"] else None})
    if clip_dir.exists():
        shutil.rmtree(clip_dir)  # a half-written clip from an interrupted run
    try:
        info = probe_video(video.path)
    except MediaReadError as exc:
        result.status, result.reason = "skipped", f"unreadable video: {exc}"
        return result
    result.fps, result.has_audio = info.fps, info.has_audio

    # Pass 1: landmarks in every frame, in full-frame pixels.
    tracker = FaceTracker(TrackerConfig())
    landmarks: list[np.ndarray | None] = []
    try:
        for frame in iter_video(video.path):
            track = tracker.update(frame)
            landmarks.append(track.landmarks if track.face_found else None)
            if progress is not None:
                progress.set_postfix_str(f"{video.id} track {len(landmarks)}")
    except MediaReadError as exc:
        result.status, result.reason = "skipped", f"decoding failed: {exc}"
        return result
    finally:
        tracker.close()
    result.frames = len(landmarks)
    found = [points for points in landmarks if points is not None]
    result.face_frames = len(found)
    if result.face_frames < MIN_FACE_FRACTION * max(result.frames, 1):
        result.status = "skipped"
        result.reason = f"face found in only {result.face_frames}/{result.frames} frames"
        return result
    box = clip_box([box_from_landmarks(points, crop.scale, crop.shift_up) for points in found])
    result.box = box

    # Pass 2: crop every frame with the clip's box.
    frames_dir = clip_dir / "frames"
    frames_dir.mkdir(parents=True)
    crop_landmarks = np.full((result.frames, 478, 3), np.nan, np.float32)
    poses = np.full((result.frames, 3), np.nan, np.float32)
    for index, frame in enumerate(iter_video(video.path)):
        if index >= result.frames:
            break
        if index == 0:
            coverage = box.coverage(frame.shape[0], frame.shape[1], size)
            cv2.imwrite(str(clip_dir / "coverage.png"), np.rint(coverage * 255).astype(np.uint8))
        image = box.crop(frame, size)
        ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                                  [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise SdkError(f"{video.id}: JPEG encoding failed at frame {index}")
        buffer.tofile(str(frames_dir / f"{index:06d}.jpg"))
        points = landmarks[index]
        if points is not None:
            crop_landmarks[index] = box.points_to_crop(points, size)
            poses[index] = head_pose(points)
        if progress is not None and index % 25 == 0:
            progress.set_postfix_str(f"{video.id} crop {index}/{result.frames}")
    np.save(clip_dir / "landmarks.npy", crop_landmarks)
    np.save(clip_dir / "pose.npy", poses)
    if info.has_audio:
        _write_wav(clip_dir / "audio.wav", read_audio(video.path))
    result.seconds = time.perf_counter() - started
    meta = {"format": FORMAT_VERSION, "size": size, "crop": asdict(crop),
            "box": asdict(box), "result": {k: v for k, v in asdict(result).items() if k != "box"}}
    write_bytes_atomic(meta_path, json.dumps(meta, indent=1).encode())
    return result


def prepare_dataset(manifest: Path, out: Path, size: int = 256, crop: CropConfig = CropConfig(),
                    splits: tuple[str, ...] = ("train", "test"), ids: list[str] | None = None,
                    show_progress: bool = True) -> list[ClipResult]:
    """Prepare every video of `manifest` in `splits` (or only `ids`) into `out`; writes OUT/manifest.csv."""
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    videos = [v for v in read_source_manifest(manifest) if v.split in splits]
    if ids is not None:
        unknown = set(ids) - {v.id for v in videos}
        if unknown:
            raise SdkError(f"{manifest}: no video rows with ids {sorted(unknown)} in splits {splits}")
        videos = [v for v in videos if v.id in ids]
    out.mkdir(parents=True, exist_ok=True)
    results: list[ClipResult] = []
    with tqdm(videos, desc="prepare", unit="clip", disable=not show_progress) as progress:
        for video in progress:
            results.append(prepare_clip(video, out / "clips" / video.id, size, crop, progress))
    with atomic_file(out / "manifest.csv") as partial, partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, PREPARED_COLUMNS)
        writer.writeheader()
        for result in results:
            writer.writerow(result.row())
    return results


def summary_table(results: list[ClipResult], seconds: float) -> str:
    """A plain-text summary: clips and frames per split, and every skipped clip with its reason."""
    lines = [f"{'split':<6} {'clips':>6} {'skipped':>8} {'frames':>8} {'no-face':>8} {'audio':>6}"]
    for split in sorted({r.split for r in results}):
        rows = [r for r in results if r.split == split]
        ok = [r for r in rows if r.status == "ok"]
        lines.append(f"{split:<6} {len(ok):>6} {len(rows) - len(ok):>8} {sum(r.frames for r in ok):>8} "
                     f"{sum(r.frames - r.face_frames for r in ok):>8} {sum(r.has_audio for r in ok):>6}")
    lines.append(f"time: {seconds:.1f} s")
    lines += [f"skipped {r.id}: {r.reason}" for r in results if r.status != "ok"]
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    crop = CropConfig() if args.crop_scale is None else CropConfig(scale=args.crop_scale)
    results = prepare_dataset(Path(args.manifest), Path(args.out), args.size, crop,
                              tuple(args.split), args.ids)
    print(summary_table(results, time.perf_counter() - started))
    return 0


def add_prepare_verb(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("prepare", help="track, crop and cache the training videos",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", required=True, help="the shared data manifest.csv")
    parser.add_argument("--out", required=True, help="output folder (kept out of git)")
    parser.add_argument("--size", type=int, default=256, help="crop size in pixels (default 256)")
    parser.add_argument("--split", nargs="+", default=["train", "test"], help="splits to prepare")
    parser.add_argument("--ids", nargs="+", help="only these manifest ids")
    parser.add_argument("--crop-scale", type=float, help="box side relative to the face (default: CropConfig)")
    parser.set_defaults(run=_run)

"""Training datasets over a prepared folder (see `sdk.data.prepare`).

Every item is a dict of float32 tensors in [0, 1], NCHW per frame, at the requested model size.
Randomness (which frames, flips, colour jitter) is drawn from torch's global generator, which the
DataLoader seeds per worker from the training seed, so a seeded run sees the same samples.
"""
from __future__ import annotations

import csv
import wave
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import MediaReadError, SdkError
from ..face.landmarks import NUM_LANDMARKS
from ..face.regions import region_mask
from ..media import resize_image
from .mesh_mirror import flip_meshes


@dataclass(frozen=True)
class PreparedClip:
    id: str
    split: str
    identity: str
    frames: int
    fps: float
    has_audio: bool
    directory: Path
    size: int  # side of the prepared frames in pixels (what landmarks.npy is measured in)

    def frame_path(self, index: int) -> Path:
        return self.directory / "frames" / f"{index:06d}.jpg"


def read_prepared_manifest(root: str | Path, split: str | None = None, min_frames: int = 1) -> list[PreparedClip]:
    """Usable clips ("ok" status, at least `min_frames` frames) of a prepared folder."""
    root = Path(root)
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        raise SdkError(f"{root}: not a prepared data folder (no manifest.csv); run `python -m sdk data prepare`")
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    clips = [PreparedClip(row["id"], row["split"], row["identity"], int(row["frames"]), float(row["fps"]),
                          row["has_audio"] == "yes", root / "clips" / row["id"], int(row["size"]))
             for row in rows if row["status"] == "ok" and int(row["frames"]) >= min_frames
             and (split is None or row["split"] == split)]
    if not clips:
        raise SdkError(f"{manifest}: no usable clips for split {split!r} with at least {min_frames} frames")
    return clips


def load_frame(path: Path, size: int) -> np.ndarray:
    """A prepared JPEG frame as RGB uint8 (size, size, 3)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaReadError(f"{path}: missing or corrupt prepared frame; re-run data prepare")
    return cv2.cvtColor(resize_image(image, size, size), cv2.COLOR_BGR2RGB)


def load_landmarks(clip: PreparedClip, size: int) -> np.ndarray | None:
    """(T, 478, 3) float32 mesh of every frame in pixels of a size² crop (NaN where no face), or
    None for a folder without `landmarks.npy` (in pixels of the prepared frames, `clip.size`)."""
    path = clip.directory / "landmarks.npy"
    if not path.is_file():
        return None
    try:
        points = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise MediaReadError(f"{path}: unreadable landmarks ({error}); re-run data prepare") from error
    if points.shape != (clip.frames, NUM_LANDMARKS, 3):
        raise MediaReadError(f"{path}: landmarks of shape {points.shape}, expected ({clip.frames}, "
                             f"{NUM_LANDMARKS}, 3); re-run data prepare")
    return points * np.float32(size / clip.size)


def load_coverage(clip: PreparedClip, size: int) -> torch.Tensor:
    """(1, size, size) float32 in [0, 1]: where the clip's crops show the source frame (1) and
    where they repeat its edge pixels (0), from `coverage.png`. Folders prepared before it existed
    (format 1) count as fully covered."""
    path = clip.directory / "coverage.png"
    if not path.is_file():
        return torch.ones(1, size, size)
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise MediaReadError(f"{path}: corrupt coverage mask; re-run data prepare")
    return torch.from_numpy(resize_image(image, size, size)).float().div_(255.0)[None]


@dataclass(frozen=True)
class AugmentConfig:
    flip_probability: float = 0.5
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    hue: float = 0.05  # fraction of a full turn


def _to_tensor(frames: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div_(255.0)


def augment(frames: torch.Tensor, config: AugmentConfig, masks: torch.Tensor | None = None,
            meshes: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor | None, np.ndarray | None]:
    """Apply one random flip and colour jitter to all frames alike (T, 3, H, W) -> (T, 3, H, W);
    `masks` (K, H, W), e.g. the coverage, are flipped with them (and not jittered), and so are
    `meshes` (M, 478, 3) in their pixels (`flip_meshes`: x mirrored, left and right points swapped).

    The same parameters for every frame keep the pair/triplet consistent: the networks must
    explain differences between frames by motion, never by colour.
    """
    if torch.rand(()) < config.flip_probability:
        frames = frames.flip(-1)
        masks = None if masks is None else masks.flip(-1)
        meshes = None if meshes is None else flip_meshes(meshes, frames.shape[-1])
    factors = 1.0 + (torch.rand(3) * 2 - 1) * torch.tensor([config.brightness, config.contrast, config.saturation])
    frames = frames * factors[0]
    mean = frames.mean(dim=(1, 2, 3), keepdim=True)
    frames = (frames - mean) * factors[1] + mean
    gray = (frames * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    frames = (frames - gray) * factors[2] + gray
    if config.hue > 0:
        frames = _rotate_hue(frames.clamp(0, 1), float((torch.rand(()) * 2 - 1) * config.hue))
    return frames.clamp(0, 1), masks, meshes


def _rotate_hue(frames: torch.Tensor, turns: float) -> torch.Tensor:
    # Rotation about the gray axis in RGB space: a hue shift without an HSV round trip.
    angle = 2 * np.pi * turns
    cos, sin = np.cos(angle), np.sin(angle)
    k = 1.0 / 3.0
    s = np.sqrt(k)
    matrix = torch.tensor([
        [cos + (1 - cos) * k, k * (1 - cos) - s * sin, k * (1 - cos) + s * sin],
        [k * (1 - cos) + s * sin, cos + k * (1 - cos), k * (1 - cos) - s * sin],
        [k * (1 - cos) - s * sin, k * (1 - cos) + s * sin, cos + k * (1 - cos)],
    ], dtype=frames.dtype)
    return torch.einsum("ij,tjhw->tihw", matrix, frames)


class _ClipFramesDataset(Dataset):
    """Indexes every frame of every clip; subclasses decide which other frames go with it."""

    min_frames = 2

    def __init__(self, root: str | Path, split: str = "train", size: int = 128, augment: bool = True,
                 items_per_epoch: int | None = None, augment_config: AugmentConfig = AugmentConfig()):
        self.clips = read_prepared_manifest(root, split, self.min_frames)
        self.size = size
        self.augment = augment
        self.augment_config = augment_config
        self.offsets = np.cumsum([0] + [clip.frames for clip in self.clips])
        self.items_per_epoch = items_per_epoch
        self._landmarks: dict[str, np.ndarray | None] = {}  # per clip, loaded on first use

    def __len__(self) -> int:
        return self.items_per_epoch or int(self.offsets[-1])

    def locate(self, index: int) -> tuple[PreparedClip, int]:
        """Item index -> (clip, frame index); indices past the frame count wrap around."""
        index = index % int(self.offsets[-1])
        clip_index = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return self.clips[clip_index], index - int(self.offsets[clip_index])

    def load(self, clip: PreparedClip, indices: list[int], regions_of: int | None = None, meshes: bool = False
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Frames (T, 3, S, S), the clip's coverage (1, S, S), for frame `regions_of` its
        mouth-and-eyes `region_mask` (1, S, S) (zeros without landmarks) and, if `meshes`, the
        frames' meshes (T, 478, 3) in S² pixels (NaN where there is no face), augmented alike."""
        frames = _to_tensor([load_frame(clip.frame_path(i), self.size) for i in indices])
        masks = [load_coverage(clip, self.size)]
        if regions_of is not None:
            masks.append(self.regions(clip, regions_of))
        masks = torch.cat(masks)
        points = self.meshes(clip, indices) if meshes else None
        if self.augment:
            frames, masks, points = augment(frames, self.augment_config, masks, points)
        return (frames, masks[:1], None if regions_of is None else masks[1:],
                None if points is None else torch.from_numpy(points))

    def landmarks(self, clip: PreparedClip) -> np.ndarray | None:
        """The clip's meshes (T, 478, 3) at this dataset's size (cached), None without landmarks.npy."""
        if clip.id not in self._landmarks:
            self._landmarks[clip.id] = load_landmarks(clip, self.size)
        return self._landmarks[clip.id]

    def regions(self, clip: PreparedClip, frame: int) -> torch.Tensor:
        points = self.landmarks(clip)
        if points is None:
            return torch.zeros(1, self.size, self.size)
        return torch.from_numpy(region_mask(points[frame], self.size))[None]

    def meshes(self, clip: PreparedClip, indices: list[int]) -> np.ndarray:
        """(T, 478, 3) float32 meshes of frames `indices` (all NaN for a clip without landmarks)."""
        points = self.landmarks(clip)
        if points is None:
            return np.full((len(indices), NUM_LANDMARKS, 3), np.nan, np.float32)
        return points[indices].astype(np.float32)


class FramePairDataset(_ClipFramesDataset):
    """(source, driving): two random frames of one clip. Item: source (3,S,S), driving (3,S,S),
    coverage (1,S,S), regions (1,S,S) = the driving frame's mouth and eyes, clip; with `meshes`
    (models driven by the face prior) also source_mesh and driving_mesh (478,3) float32, the two
    frames' meshes in S² pixels, flipped with the frames, NaN where the frame has no face (the
    training stage turns them into codes and keypoints and masks out pairs without a usable mesh)."""

    def __init__(self, root: str | Path, split: str = "train", size: int = 128, augment: bool = True,
                 pairs_per_epoch: int | None = None, augment_config: AugmentConfig = AugmentConfig(),
                 meshes: bool = False):
        super().__init__(root, split, size, augment, pairs_per_epoch, augment_config)
        self.with_meshes = meshes

    def __getitem__(self, index: int) -> dict:
        clip, driving = self.locate(index)
        source = int(torch.randint(clip.frames - 1, ()))
        source += source >= driving  # never the same frame twice
        frames, coverage, regions, meshes = self.load(clip, [source, driving], regions_of=driving,
                                                      meshes=self.with_meshes)
        item = {"source": frames[0], "driving": frames[1], "coverage": coverage, "regions": regions, "clip": clip.id}
        if meshes is not None:
            item.update(source_mesh=meshes[0], driving_mesh=meshes[1])
        return item


class FrameTripletDataset(_ClipFramesDataset):
    """Consecutive frames for the self-supervised depth network.

    Item: target (3,S,S), references (2,3,S,S) = the frames just before and after the target,
    coverage (1,S,S), clip.
    """

    min_frames = 3

    def __getitem__(self, index: int) -> dict:
        clip, frame = self.locate(index)
        target = min(max(frame, 1), clip.frames - 2)
        frames, coverage, _, _ = self.load(clip, [target, target - 1, target + 1])
        return {"target": frames[0], "references": frames[1:], "coverage": coverage, "clip": clip.id}


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit PCM mono wav as float32 in [-1, 1] and its sample rate."""
    try:
        with wave.open(str(path), "rb") as handle:
            if handle.getsampwidth() != 2 or handle.getnchannels() != 1:
                raise MediaReadError(f"{path}: expected 16-bit mono PCM")
            rate = handle.getframerate()
            pcm = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    except (wave.Error, EOFError, FileNotFoundError) as exc:
        raise MediaReadError(f"{path}: not a readable wav file ({exc})") from exc
    return pcm.astype(np.float32) / 32768.0, rate


class AudioWindowDataset(_ClipFramesDataset):
    """A frame and the audio around it, for audio-driven models.

    Item: frame (3,S,S), audio (W,) float32 with W = round(window_seconds × 16000): the samples
    centred on the frame's time, zero-padded past the ends of the clip (a fixed length whatever
    the clip's frame rate, so items batch), and clip.
    """

    min_frames = 1

    def __init__(self, root: str | Path, split: str = "train", size: int = 128, augment: bool = True,
                 window_seconds: float = 0.68, items_per_epoch: int | None = None,
                 augment_config: AugmentConfig = AugmentConfig()):
        super().__init__(root, split, size, augment, items_per_epoch, augment_config)
        self.clips = [clip for clip in self.clips if clip.has_audio]
        if not self.clips:
            raise SdkError(f"{root}: no clips with audio in split {split!r}")
        self.offsets = np.cumsum([0] + [clip.frames for clip in self.clips])
        self.window_seconds = window_seconds
        self._audio: dict[str, tuple[np.ndarray, int]] = {}

    def audio(self, clip: PreparedClip) -> tuple[np.ndarray, int]:
        if clip.id not in self._audio:
            self._audio[clip.id] = read_wav(clip.directory / "audio.wav")
        return self._audio[clip.id]

    def __getitem__(self, index: int) -> dict:
        clip, frame = self.locate(index)
        samples, rate = self.audio(clip)
        length = int(round(self.window_seconds * rate))
        start = int(round((frame + 0.5) / clip.fps * rate)) - length // 2
        window = np.zeros(length, np.float32)
        lo, hi = max(start, 0), min(start + length, len(samples))
        if hi > lo:
            window[lo - start:hi - start] = samples[lo:hi]
        frames, coverage, _, _ = self.load(clip, [frame])
        return {"frame": frames[0], "audio": torch.from_numpy(window), "coverage": coverage, "clip": clip.id}

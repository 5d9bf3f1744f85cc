"""Training data of the audio-to-code model: per 25 fps frame, the semantic code of the mesh and the audio around it.

`python -m sdk audio prepare --data cache/prepared --out cache/audio` (or `prepare_audio_data`)
writes, for every clip with audio of the prepared folder (train and test splits):

    OUT/clips/<id>.npz   mel (80, M) float16 raw log-mel of the clip's audio.wav (`LogMel.raw`;
                         mel frame m centred on m x 10 ms)
                         expression (J, E) float32: the face prior's expression code of each
                           frame's mesh minus its clip's neutral face's (`sdk.prior.neutral`)
                         pose (J, 6) float32: `sdk.audio.codes.pose_delta` of each frame's pose
                           from the clip's rest pose (the per-number median pose of its good frames)
                         offsets (J, 478, 3) float16: pose-normalised mesh minus the neutral
                           (the landmark loss's targets)
                         valid (J,) bool: the frame's mesh encoded "ok" (`SemanticEncoder`)
                         face_px (J,) float32: canonical units (eye-corner distance) in pixels at 256²
    OUT/manifest.json    format, the prior's sha256, the mel config, per clip: id, split,
                         identity, frames J, source fps, valid frames

J frames at 25 fps, one per started 40 ms of the clip's video; clips at other rates (30, 29.97,
22.1 fps) are resampled by linear interpolation of codes and meshes between the two nearest
source frames (a frame next to an invalid one is invalid). Clips without audio are skipped.
Everything is written atomically; the cache belongs in the ignored cache/ folder.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..audio.codes import pose_delta
from ..audio.features import FRAME_RATE, LogMel, MelConfig
from ..data.datasets import PreparedClip, load_landmarks, read_prepared_manifest, read_wav
from ..errors import SdkError
from ..files import atomic_file, write_bytes_atomic
from ..media import AUDIO_SAMPLE_RATE
from ..prior import EncoderConfig, FacePrior, SemanticEncoder, load_prior
from ..prior.neutral import clip_neutral

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
MESH_SIZE = 256  # the crop side codes and face_px are measured at


@dataclass
class AudioClipData:
    """One clip of the cache, as arrays (see the module docstring)."""

    id: str
    split: str
    identity: str
    mel: np.ndarray
    expression: np.ndarray
    pose: np.ndarray
    offsets: np.ndarray
    valid: np.ndarray
    face_px: np.ndarray

    @property
    def frames(self) -> int:
        return len(self.expression)


def resample_positions(source_frames: int, fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For 25 fps frames over a clip of `source_frames` at `fps`: (lower source index, upper
    index, weight of the upper), by the frames' centre times."""
    frames = int(np.floor(source_frames / fps * FRAME_RATE + 1e-6))
    position = np.clip((np.arange(frames) + 0.5) * fps / FRAME_RATE - 0.5, 0.0, source_frames - 1)
    lower = np.floor(position).astype(int)
    upper = np.minimum(lower + 1, source_frames - 1)
    return lower, upper, (position - lower).astype(np.float64)


def encode_clip(clip: PreparedClip, prior: FacePrior, log_mel: LogMel) -> AudioClipData | None:
    """The cache arrays of one prepared clip, or None when it has no good frame."""
    meshes = load_landmarks(clip, MESH_SIZE)
    if meshes is None:
        raise SdkError(f"{clip.directory}: no landmarks.npy; re-run `python -m sdk data prepare`")
    encoder = SemanticEncoder(prior, EncoderConfig(image_size=MESH_SIZE))
    count = len(meshes)
    valid = np.zeros(count, bool)
    poses = np.zeros((count, 6))
    normalized = np.zeros((count, *meshes.shape[1:]))
    face_px = np.zeros(count)
    for index, mesh in enumerate(meshes):
        frame = encoder.encode(mesh)
        if frame.status != "ok":
            continue
        fitted = encoder.normalize(np.asarray(mesh, dtype=np.float64))
        valid[index] = True
        poses[index] = frame.code.pose
        normalized[index] = fitted.mesh
        face_px[index] = float(fitted.similarity.scale)
    if not valid.any():
        log.warning("%s: no frame with a good mesh; skipped", clip.id)
        return None
    neutral = clip_neutral(normalized[valid])
    offsets = normalized - neutral
    expression = prior.basis.encode(offsets)
    reference = np.median(poses[valid], axis=0)
    deltas = np.stack([pose_delta(pose, reference) if ok else np.zeros(6) for pose, ok in zip(poses, valid)])

    lower, upper, weight = resample_positions(count, clip.fps)
    exact = weight < 1e-6

    def resample(values: np.ndarray) -> np.ndarray:
        shape = (-1,) + (1,) * (values.ndim - 1)
        return values[lower] * (1 - weight).reshape(shape) + values[upper] * weight.reshape(shape)

    samples, rate = read_wav(clip.directory / "audio.wav")
    if rate != AUDIO_SAMPLE_RATE:
        raise SdkError(f"{clip.directory / 'audio.wav'}: {rate} Hz, the prepared audio must be 16 kHz")
    with torch.no_grad():
        mel = log_mel.raw(torch.from_numpy(samples)[None])[0].numpy()
    return AudioClipData(clip.id, clip.split, clip.identity, mel.astype(np.float16),
                         resample(expression).astype(np.float32), resample(deltas).astype(np.float32),
                         resample(offsets).astype(np.float16), valid[lower] & (exact | valid[upper]),
                         resample(face_px).astype(np.float32))


def save_clip(path: Path, data: AudioClipData) -> None:
    with atomic_file(path) as partial:
        with partial.open("wb") as handle:
            np.savez(handle, mel=data.mel, expression=data.expression, pose=data.pose, offsets=data.offsets,
                     valid=data.valid, face_px=data.face_px)


def prepare_audio_data(data: str | Path, out: str | Path, prior: str | Path = "default",
                       splits: tuple[str, ...] = ("train", "test"), show_progress: bool = True) -> Path:
    """Write the cache (module docstring) for every clip with audio; returns the manifest path."""
    data, out = Path(data), Path(out)
    face_prior = load_prior(prior)
    mel_config = MelConfig()
    log_mel = LogMel(mel_config)
    clips = [clip for split in splits for clip in read_prepared_manifest(data, split) if clip.has_audio]
    if not clips:
        raise SdkError(f"{data}: no clip with audio in the {', '.join(splits)} split(s)")
    entries = []
    for clip in tqdm(clips, desc="audio prepare", unit="clip", disable=not show_progress):
        encoded = encode_clip(clip, face_prior, log_mel)
        if encoded is None:
            continue
        save_clip(out / "clips" / f"{clip.id}.npz", encoded)
        entries.append({"id": clip.id, "split": clip.split, "identity": clip.identity, "frames": encoded.frames,
                        "source_fps": clip.fps, "valid": int(encoded.valid.sum())})
    manifest = {"format": CACHE_FORMAT, "data": str(data), "prior_sha256": face_prior.sha256,
                "expression_dims": face_prior.components, "mel": asdict(mel_config), "clips": entries}
    return write_bytes_atomic(out / "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())


def read_audio_manifest(root: str | Path) -> dict:
    path = Path(root) / "manifest.json"
    if not path.is_file():
        raise SdkError(f"{root}: not an audio training cache (no manifest.json); run `python -m sdk audio prepare`")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != CACHE_FORMAT:
        raise SdkError(f"{path}: audio cache format {manifest.get('format')}, this SDK reads {CACHE_FORMAT}; "
                       "re-run `python -m sdk audio prepare`")
    return manifest


def load_audio_clips(root: str | Path, split: str | None = None) -> tuple[dict, list[AudioClipData]]:
    """The manifest and the clips of one split (None: all) of a cache."""
    root = Path(root)
    manifest = read_audio_manifest(root)
    clips = []
    for entry in manifest["clips"]:
        if split is not None and entry["split"] != split:
            continue
        try:
            with np.load(root / "clips" / f"{entry['id']}.npz", allow_pickle=False) as arrays:
                clips.append(AudioClipData(entry["id"], entry["split"], entry["identity"],
                                           **{key: arrays[key] for key in arrays.files}))
        except (OSError, ValueError, KeyError) as exc:
            raise SdkError(f"{root / 'clips' / (entry['id'] + '.npz')}: unreadable ({exc}); re-run "
                           "`python -m sdk audio prepare`") from exc
    if not clips:
        raise SdkError(f"{root}: no {split or ''} clips in the audio cache")
    return manifest, clips

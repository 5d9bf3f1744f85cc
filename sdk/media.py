"""Reading and writing images, videos and audio.

Conventions, stated once for the whole SDK:
- Images in numpy are RGB uint8, shape (H, W, 3). Grayscale inputs are expanded to three
  channels; RGBA inputs are composited on white (portraits with transparent backgrounds are
  common and black would read as hair).
- Images crossing model boundaries are float32 in [0, 1], NCHW, at the model's resolution
  (`to_tensor` / `to_image` convert).
- Keypoints are in [-1, 1] image coordinates, `x` first (left to right), then `y` (top to bottom).
- Audio is mono float32 in [-1, 1] at 16 kHz.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

# cv2 before av: PyAV's wheel bundles its own libxcb, and when it loads first OpenCV's Qt window
# hangs in cv2.namedWindow (PyAV issues 978/1050). av loads on first use (`_av`), always after cv2;
# that also keeps modules that only read prepared frames (training) free of PyAV.
import cv2  # isort: skip
import numpy as np

from .errors import MediaReadError


def _av():
    import av

    return av

AUDIO_SAMPLE_RATE = 16_000


def _as_rgb(image: np.ndarray, source: str) -> np.ndarray:
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise MediaReadError(f"{source}: unsupported image shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if image.shape[2] == 4:
        rgb = image[:, :, :3].astype(np.float32)
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        image = np.round(rgb * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    if image.dtype != np.uint8:
        raise MediaReadError(f"{source}: expected 8-bit image, got {image.dtype}")
    return np.ascontiguousarray(image)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); raises MediaReadError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise MediaReadError(f"{path}: no such file")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise MediaReadError(f"{path}: not a readable image (corrupt or unsupported format)")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return _as_rgb(image, str(path))


def write_image(path: str | Path, image: np.ndarray) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix or ".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise MediaReadError(f"{path}: cannot encode image with this extension")
    buf.tofile(str(path))


@dataclass(frozen=True)
class VideoInfo:
    path: str
    fps: float
    width: int
    height: int
    frame_count: int  # as reported by the container; 0 when unknown
    has_audio: bool


def probe_video(path: str | Path) -> VideoInfo:
    av = _av()
    path = Path(path)
    if not path.is_file():
        raise MediaReadError(f"{path}: no such file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaReadError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            return VideoInfo(str(path), float(rate), stream.codec_context.width,
                             stream.codec_context.height, int(stream.frames or 0),
                             bool(container.streams.audio))
    except av.FFmpegError as exc:
        raise MediaReadError(f"{path}: not a readable video ({exc})") from exc


def iter_video(path: str | Path) -> Iterator[np.ndarray]:
    """Yield the frames of a video as RGB uint8; raises MediaReadError if it cannot be decoded."""
    av = _av()
    path = Path(path)
    probe_video(path)
    decoded = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                decoded += 1
                yield frame.to_ndarray(format="rgb24")
    except av.FFmpegError as exc:
        raise MediaReadError(f"{path}: decoding failed after {decoded} frames ({exc})") from exc
    if decoded == 0:
        raise MediaReadError(f"{path}: video has no decodable frames")


def read_video(path: str | Path) -> tuple[list[np.ndarray], float]:
    """All frames of a video (RGB uint8) and its frame rate."""
    info = probe_video(path)
    return list(iter_video(path)), info.fps


def read_audio(path: str | Path, sample_rate: int = AUDIO_SAMPLE_RATE) -> np.ndarray:
    """The first audio stream of a file (wav, mp4, ...) as mono float32 at `sample_rate`."""
    av = _av()
    path = Path(path)
    if not path.is_file():
        raise MediaReadError(f"{path}: no such file")
    chunks: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaReadError(f"{path}: has no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except av.FFmpegError as exc:
        raise MediaReadError(f"{path}: not a readable audio file ({exc})") from exc
    if not chunks:
        return np.zeros(0, np.float32)
    # AAC decoders overshoot slightly past full scale.
    return np.clip(np.concatenate(chunks), -1.0, 1.0).astype(np.float32)


def write_video(path: str | Path, frames: Sequence[np.ndarray] | Iterator[np.ndarray], fps: float,
                audio: np.ndarray | None = None, crf: int = 18) -> int:
    """Write RGB uint8 frames as H.264 (yuv420p) mp4, optionally with 16 kHz mono audio.

    Returns the number of frames written. Odd frame sizes are padded by one pixel because
    yuv420p needs even dimensions.
    """
    av = _av()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        audio_stream = None
        if audio is not None:
            audio_stream = container.add_stream("aac", rate=AUDIO_SAMPLE_RATE)
            audio_stream.layout = "mono"
        for frame in frames:
            h, w = frame.shape[:2]
            if h % 2 or w % 2:
                frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            if count == 0:
                stream.width, stream.height = frame.shape[1], frame.shape[0]
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            container.mux(stream.encode(video_frame))
            count += 1
        if count == 0:
            raise ValueError(f"{path}: no frames to write")
        container.mux(stream.encode(None))
        if audio_stream is not None:
            samples = np.clip(audio, -1.0, 1.0).astype(np.float32).reshape(1, -1)
            audio_frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            audio_frame.sample_rate = AUDIO_SAMPLE_RATE
            container.mux(audio_stream.encode(audio_frame))
            container.mux(audio_stream.encode(None))
    return count


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`image` (H, W[, C]) resampled to (height, width[, C]); the same array when it already is.

    Area averaging when shrinking (anti-aliased), bilinear when enlarging: OpenCV's INTER_AREA
    alone is close to nearest-neighbour there.
    """
    if image.shape[0] == height and image.shape[1] == width:
        return image
    shrinking = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def to_tensor(images: np.ndarray | Sequence[np.ndarray]):
    """RGB uint8 (H, W, 3) or a batch (N, H, W, 3) -> float32 torch tensor (N, 3, H, W) in [0, 1]."""
    import torch

    batch = np.asarray(images)
    if batch.ndim == 3:
        batch = batch[None]
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def to_image(tensor) -> np.ndarray:
    """float tensor (3, H, W) or (1, 3, H, W) in [0, 1] -> RGB uint8 (H, W, 3)."""
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"to_image takes one image, got a batch of {tensor.shape[0]}")
        tensor = tensor[0]
    array = tensor.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0)
    return array.cpu().numpy()

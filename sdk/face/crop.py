"""Square face crops: choosing the box, cutting it out, and pasting a generated crop back
(`SquareBox.paste`, or `PasteCanvas` for the whole portrait, scaled down for video when huge).

Coordinates are continuous pixel coordinates of the source image: pixel (column i, row j) covers
[i, i+1) x [j, j+1), so its centre is (i + 0.5, j + 0.5). MediaPipe's normalised landmarks times
the image size land in the same convention, so landmarks and boxes can be mixed freely.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..errors import NoFaceError
from ..media import read_image

if TYPE_CHECKING:
    from .detector import FaceBox
    from .landmarks import FaceLandmarker

log = logging.getLogger(__name__)

# Side of MediaPipe's face-detection box relative to the extent of the 478 mesh landmarks on the
# same face: measured 1.02 (range 0.95-1.06) over 35 real clips of the shared data; the two boxes
# share their centre to within 2% of the extent, so no offset is applied.
_LANDMARK_EXTENT_PER_DETECTION_SIDE = 1.02
# A detection the face mesh rejects is used alone only above this score. On the shared data such
# detections (animals, random noise) scored 0.52-0.68, while human faces score 0.65-0.97.
_DETECTION_ONLY_MIN_SCORE = 0.8


def check_rgb_image(image: np.ndarray) -> None:
    """Raise TypeError/ValueError unless `image` is an RGB uint8 array (H, W, 3) with H, W > 0."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected an RGB uint8 numpy image, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected an RGB image of dtype uint8, got {image.dtype}")


@dataclass(frozen=True)
class CropConfig:
    """How a square face crop is framed around the face mesh.

    Attributes:
        scale: side of the crop divided by the larger side of the landmarks' bounding box
            (forehead-top to chin, which is the larger side for all but extreme profiles).
            1.8 matches the FOMM/VoxCeleb-aligned clips of the shared data (256-px DaGAN driving
            clip: 1.82; TPSMM: 1.69; LivePortrait driving clips: 1.55-2.2, mean 1.75) and keeps
            hair and chin inside the crop.
        shift_up: how far the crop centre sits above the landmarks' centre, as a fraction of the
            landmark extent, so that hair is included (the same clips: 0.10-0.16).
    """

    scale: float = 1.8
    shift_up: float = 0.1

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"CropConfig.scale must be > 0, got {self.scale}")


@dataclass(frozen=True)
class SquareBox:
    """An axis-aligned square in source-image pixels: centre (cx, cy) and side `size`.

    The box may extend past the image; crops then repeat the edge pixels.
    """

    cx: float
    cy: float
    size: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cx) and math.isfinite(self.cy) and math.isfinite(self.size)):
            raise ValueError(f"SquareBox needs finite values, got {self}")
        if self.size <= 0:
            raise ValueError(f"SquareBox.size must be > 0, got {self.size}")

    @property
    def corners(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1): top-left and bottom-right corners in source pixels."""
        half = self.size / 2
        return self.cx - half, self.cy - half, self.cx + half, self.cy + half

    def to_matrix(self, out_size: int) -> np.ndarray:
        """(2, 3) float64 affine map from source pixel coordinates to `out_size`-pixel crop coordinates."""
        s = out_size / self.size
        x0, y0, _, _ = self.corners
        return np.array([[s, 0.0, -s * x0], [0.0, s, -s * y0]])

    def inverse_matrix(self, out_size: int) -> np.ndarray:
        """(2, 3) float64 affine map from `out_size`-pixel crop coordinates back to source pixels."""
        s = self.size / out_size
        x0, y0, _, _ = self.corners
        return np.array([[s, 0.0, x0], [0.0, s, y0]])

    def scaled(self, factor: float) -> SquareBox:
        """The same box in the pixels of the image resized by `factor` (both sides)."""
        return SquareBox(self.cx * factor, self.cy * factor, self.size * factor)

    def points_to_crop(self, points: np.ndarray, out_size: int) -> np.ndarray:
        """Map (N, 2) or (N, 3) source-pixel points into an `out_size` crop (float64); z scales like x, y."""
        return _map_points(points, self.to_matrix(out_size))

    def points_from_crop(self, points: np.ndarray, out_size: int) -> np.ndarray:
        """Map (N, 2) or (N, 3) points of an `out_size` crop back to source pixels (float64); z scales too."""
        return _map_points(points, self.inverse_matrix(out_size))

    def crop(self, image: np.ndarray, out_size: int, antialias: bool = True) -> np.ndarray:
        """Cut the box out of `image` (H, W) or (H, W, C) and resample it to (out_size, out_size[, C]).

        Upscaling is bilinear. Downscaling is area-averaging (INTER_AREA quality) when
        `antialias`, else bilinear, which aliases but is 2-3x faster for boxes several times
        larger than `out_size`. Parts of the box outside the image repeat the edge pixels.
        """
        if out_size <= 0:
            raise ValueError(f"crop size must be > 0, got {out_size}")
        if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"expected an image of shape (H, W) or (H, W, C), got {image.shape}")
        return _resample(image, self.to_matrix(out_size), (out_size, out_size), cv2.BORDER_REPLICATE, antialias)

    def coverage(self, frame_height: int, frame_width: int, out_size: int) -> np.ndarray:
        """(out_size, out_size) float32 in [0, 1]: how much of each crop pixel lies inside the frame.

        `crop` fills the rest with repeated edge pixels; training leaves those pixels out of its
        losses so that no model learns to draw the stripes.
        """
        inside = np.ones((frame_height, frame_width), np.float32)
        return _resample(inside, self.to_matrix(out_size), (out_size, out_size), cv2.BORDER_CONSTANT)

    def paste(self, frame: np.ndarray, crop_image: np.ndarray, feather: float = 0.08) -> np.ndarray:
        """Paste a (generated) crop of this box back into `frame`, blending over a feathered edge.

        Args:
            frame: the full image the box refers to, (H, W) or (H, W, C).
            crop_image: a square crop (n, n[, C]) of the same dtype and channels, for any n.
            feather: width of the blend ramp at the crop's edges as a fraction of its side, in
                [0, 0.5]; 0 gives a hard edge. Inside the ramp the crop fades into the frame.

        Returns:
            A new array like `frame` with the box region replaced.
        """
        if not 0.0 <= feather <= 0.5:
            raise ValueError(f"feather must be in [0, 0.5], got {feather}")
        if crop_image.ndim != frame.ndim or crop_image.shape[0] != crop_image.shape[1] \
                or crop_image.shape[2:] != frame.shape[2:]:
            raise ValueError(f"crop of shape {crop_image.shape} does not fit a frame of shape {frame.shape}; "
                             "it must be square with the frame's channels")
        if crop_image.dtype != frame.dtype:
            raise ValueError(f"crop dtype {crop_image.dtype} differs from frame dtype {frame.dtype}")
        out = frame.copy()
        height, width = frame.shape[:2]
        x0, y0, x1, y1 = self.corners
        left, top = max(0, math.floor(x0)), max(0, math.floor(y0))
        right, bottom = min(width, math.ceil(x1)), min(height, math.ceil(y1))
        if right <= left or bottom <= top:
            return out
        side = crop_image.shape[0]
        # Frame pixel (left + u, top + v) -> crop pixel: the forward map, shifted to the region.
        crop_from_region = self.to_matrix(side)
        crop_from_region[:, 2] += crop_from_region[:, :2] @ np.array([left, top], dtype=np.float64)
        region_from_crop = cv2.invertAffineTransform(crop_from_region)
        size = (right - left, bottom - top)
        pasted = _resample(crop_image, region_from_crop, size, cv2.BORDER_REPLICATE)
        alpha = _resample(_feather_mask(side, feather), region_from_crop, size, cv2.BORDER_CONSTANT)
        region = out[top:bottom, left:right]
        if frame.dtype == np.uint8 and (frame.ndim == 2 or frame.shape[2] <= 4):
            # OpenCV's one-pass blend (the RGB uint8 case): a 700-px face into a 1080p frame blends in 2 ms
            # against numpy's 9 ms (1 thread), which live paste-back pays per frame
            out[top:bottom, left:right] = cv2.blendLinear(np.ascontiguousarray(pasted), np.ascontiguousarray(region),
                                                          alpha, 1.0 - alpha).reshape(region.shape)
            return out
        if frame.ndim == 3:
            alpha = alpha[:, :, None]
        region = region.astype(np.float32)
        blended = region + alpha * (pasted.astype(np.float32) - region)
        if np.issubdtype(frame.dtype, np.integer):
            info = np.iinfo(frame.dtype)
            blended = np.clip(np.rint(blended), info.min, info.max)
        out[top:bottom, left:right] = blended.astype(frame.dtype)
        return out


@dataclass(frozen=True)
class PasteCanvas:
    """A whole portrait that generated crops of its face box are pasted into (paste-back).

    image: the portrait, RGB uint8 (H, W, 3), scaled by `scale` (< 1 only for portraits taller
        than the `of(max_height=...)` they were made with). box: the face box in its pixels.
    """

    image: np.ndarray
    box: SquareBox
    scale: float

    @classmethod
    def of(cls, image: np.ndarray, box: SquareBox, max_height: int = 1080) -> PasteCanvas:
        """The canvas of `image` (whose face is `box`), scaled down to at most `max_height` rows."""
        check_rgb_image(image)
        height, width = image.shape[:2]
        if height <= max_height:
            return cls(image, box, 1.0)
        scale = max_height / height
        size = (max(1, round(width * scale)), max_height)
        scaled = _resample(image, np.array([[scale, 0.0, 0.0], [0.0, scale, 0.0]]), size, cv2.BORDER_REPLICATE)
        log.info("paste-back: the %dx%d portrait is scaled down to %dx%d (at most %d rows)",
                 width, height, *size, max_height)
        return cls(scaled, box.scaled(scale), scale)

    def paste(self, crop_image: np.ndarray, feather: float = 0.08) -> np.ndarray:
        """The canvas with `crop_image` (a square crop of the box, any side) pasted over a feathered seam."""
        return self.box.paste(self.image, crop_image, feather)


def _resample(image: np.ndarray, dst_from_src: np.ndarray, dst_size: tuple[int, int],
              border: int, antialias: bool = True) -> np.ndarray:
    """Warp `image` by a scale-and-shift map to an image of `dst_size` (width, height).

    `dst_from_src` maps continuous source pixel coordinates to destination ones. Upscaling is
    bilinear. Downscaling by a factor r, when `antialias`, first warps bilinearly to a grid
    k = ceil(r) times finer than the destination, then averages k x k blocks (INTER_AREA): an
    alias-free box filter, which cv2.warpAffine alone does not offer; otherwise it is bilinear.
    Outside the source, `border` applies (cv2.BORDER_CONSTANT fills zeros).
    """
    factor = max(1, math.ceil(1.0 / dst_from_src[0, 0] - 1e-9)) if antialias else 1
    width, height = dst_size
    fine = cv2.warpAffine(image, _cv2_matrix(dst_from_src * factor), (width * factor, height * factor),
                          flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0)
    result = fine if factor == 1 else cv2.resize(fine, (width, height), interpolation=cv2.INTER_AREA)
    return result[:, :, None] if image.ndim == 3 and result.ndim == 2 else result  # OpenCV drops 1-channel axes


def _cv2_matrix(matrix: np.ndarray) -> np.ndarray:
    """Convert an affine map between continuous pixel coordinates to OpenCV's convention.

    OpenCV puts pixel centres at integers, ours at half-integers: p_cv = p - 0.5 on both sides.
    """
    converted = matrix.copy()
    converted[:, 2] += 0.5 * matrix[:, :2].sum(axis=1) - 0.5
    return converted


def _map_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise ValueError(f"expected points of shape (N, 2) or (N, 3), got {points.shape}")
    mapped = points.astype(np.float64)  # always a copy
    mapped[:, :2] = mapped[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    if points.shape[1] == 3:
        mapped[:, 2] *= matrix[0, 0]
    return mapped


def _feather_mask(side: int, feather: float) -> np.ndarray:
    """(side, side) float32 mask: 1 inside, smoothly falling to 0 over `feather * side` at the edges."""
    ramp_px = feather * side
    centres = np.arange(side, dtype=np.float32) + 0.5
    edge_distance = np.minimum(centres, side - centres)
    if ramp_px > 0:
        ramp = np.clip(edge_distance / ramp_px, 0.0, 1.0)
        ramp = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep: no visible kink at the ramp's ends
    else:
        ramp = np.ones(side, dtype=np.float32)
    return np.minimum(ramp[:, None], ramp[None, :]).astype(np.float32)


def box_from_landmarks(landmarks: np.ndarray, scale: float = CropConfig.scale,
                       shift_up: float = CropConfig.shift_up) -> SquareBox:
    """The FOMM-style square crop box around a face mesh.

    Args:
        landmarks: (N, 2) or (N, 3) face-mesh points in source pixels (x, y first).
        scale: crop side / larger side of the landmarks' bounding box (see `CropConfig`).
        shift_up: upward shift of the centre, as a fraction of that larger side.
    """
    landmarks = np.asarray(landmarks)
    if landmarks.ndim != 2 or landmarks.shape[0] < 2 or landmarks.shape[1] < 2:
        raise ValueError(f"expected landmarks of shape (N, 2) or (N, 3), got {landmarks.shape}")
    xy = landmarks[:, :2].astype(np.float64)
    if not np.isfinite(xy).all():
        raise ValueError("landmarks contain NaN or infinite values")
    low, high = xy.min(axis=0), xy.max(axis=0)
    extent = float((high - low).max())
    if extent <= 0:
        raise ValueError("landmarks have zero extent")
    centre = (low + high) / 2
    return SquareBox(float(centre[0]), float(centre[1] - shift_up * extent), scale * extent)


def box_from_detection(face: FaceBox, scale: float = CropConfig.scale,
                       shift_up: float = CropConfig.shift_up) -> SquareBox:
    """The crop box from a face-detection box, framed like `box_from_landmarks` would frame the mesh.

    Used when no mesh is available (e.g. a face the mesh model rejects); the detection box is
    converted to the equivalent landmark extent with a factor measured on the shared data.
    """
    extent = max(face.width, face.height) * _LANDMARK_EXTENT_PER_DETECTION_SIDE
    if not extent > 0:
        raise ValueError(f"detection box has no area: {face}")
    cx, cy = (face.x0 + face.x1) / 2, (face.y0 + face.y1) / 2
    return SquareBox(cx, cy - shift_up * extent, scale * extent)


def clip_box(boxes: Sequence[SquareBox]) -> SquareBox:
    """One box for a whole clip: the smallest square that covers every per-frame box.

    Centred on the union's bounding rectangle, with side equal to its larger dimension, so the
    face stays inside the crop on every frame (as in FOMM's VoxCeleb preprocessing).
    """
    if not boxes:
        raise ValueError("clip_box needs at least one box")
    corners = np.array([box.corners for box in boxes])
    x0, y0 = corners[:, 0].min(), corners[:, 1].min()
    x1, y1 = corners[:, 2].max(), corners[:, 3].max()
    return SquareBox(float(x0 + x1) / 2, float(y0 + y1) / 2, float(max(x1 - x0, y1 - y0)))


def crop_portrait(path: str | Path, size: int = 256, config: CropConfig = CropConfig(),
                  landmarker: FaceLandmarker | None = None) -> tuple[np.ndarray, SquareBox]:
    """Read a portrait and cut out its most confident face.

    Args:
        path: image file.
        size: side of the returned crop in pixels.
        config: crop framing.
        landmarker: a FaceLandmarker to reuse across calls (building one takes ~0.2 s); a
            temporary one is made and closed when None.

    Returns:
        The crop, RGB uint8 (size, size, 3), and its box in the source image's pixels. The box
        comes from the face mesh or, when the mesh rejects the face, from a confident detection.

    Raises:
        MediaReadError: the file is missing or not a readable image.
        NoFaceError: no face was detected, or only a doubtful one that the mesh rejected.
    """
    from .landmarks import FaceLandmarker  # deferred: landmarks imports this module

    image = read_image(path)
    owner = landmarker is None
    landmarker = FaceLandmarker() if landmarker is None else landmarker
    try:
        faces = landmarker.detector.detect(image)
        if not faces:
            raise NoFaceError(f"{path}: no face found")
        landmarks = landmarker.from_image(image, face=faces[0])
    finally:
        if owner:
            landmarker.close()
    if landmarks is not None:
        box = box_from_landmarks(landmarks, config.scale, config.shift_up)
    elif faces[0].score >= _DETECTION_ONLY_MIN_SCORE:
        box = box_from_detection(faces[0], config.scale, config.shift_up)
    else:
        raise NoFaceError(f"{path}: no face found (one doubtful detection, score {faces[0].score:.2f}, "
                          "was rejected by the face mesh)")
    return box.crop(image, size), box

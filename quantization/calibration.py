"""Calibration frames for INT8: real face crops, checked by the face front end, turned into graph inputs.

A calibration source is a prepared folder (`python -m sdk data prepare`; its `split` clips,
crops already made), a folder of portrait images, which the face front end crops
(`sdk.crop_portrait`), or a video file, whose face is tracked and cropped frame by frame as
`python -m sdk animate` does. Without one (`source=None`), `cache/prepared` is used when it is a
prepared folder, else the bundled driving clip (`sdk/assets/driving.mp4`): a fresh checkout
calibrates with nothing prepared. Frames without a face are counted and dropped, and a set where
no frame shows a face raises `NoFaceError`, since ranges calibrated on anything else would not
describe the frames the model runs on.

Pairs: from a prepared folder, a source and a driving frame of the same clip (self-reenactment,
as in training); from a video, two frames of it; from an image folder, each image is a source
driven by the next image. Crops are loaded at the output size S the graphs are made for: the
generator's ``portrait`` is the source crop itself, and the encoders see the crops averaged down
to the internal resolution, as the backends feed them. Each crop comes with its face mesh in its
pixels where the source has one (prepared `landmarks.npy`, the tracker's mesh, the landmarker's on
a portrait): models driven by the face prior calibrate on what their receiver feeds the
generator, the source's rig keypoints and the driver's code relative to it. `graph_feeds` runs
the fp32 torch graphs on the pairs to get every graph's inputs.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from sdk.data.datasets import load_frame, load_landmarks, read_prepared_manifest
from sdk.errors import NoFaceError
from sdk.media import to_tensor
from sdk.models import Keypoints, TalkingHeadModel
from sdk.models.talking_head import to_internal

from .errors import QuantizationError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
DEFAULT_PREPARED = Path("cache/prepared")
# Frames of a calibration video tracked at most (10 s at 25 fps): pairs are drawn among them.
MAX_VIDEO_FRAMES = 250
# The detector is run on crops brought to this side: prepared crops can be as small as 64².
DETECTION_SIDE = 256

Feeds = dict[str, np.ndarray]


@dataclass(frozen=True)
class CalibrationConfig:
    """Where calibration frames come from and how many.

    source: a prepared folder (has manifest.csv), a folder of portrait images or a video file;
        None: cache/prepared if it is a prepared folder, else the bundled driving clip.
    split: the prepared split to draw from (calibrate on train, evaluate on test).
    pairs: (source, driving) frame pairs; each pair gives one input set per graph.
    seed: which frames are drawn.
    """
    source: Path | None = None
    split: str = "train"
    pairs: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.source is not None:
            object.__setattr__(self, "source", Path(self.source))
        if self.pairs < 1:
            raise QuantizationError(f"calibration needs at least 1 frame pair, got {self.pairs}")


@dataclass(frozen=True)
class CalibrationSet:
    """RGB uint8 crops (S, S, 3) at the output size: sources[i] is driven by drivers[i]; their face
    meshes (478, 3) in the crops' pixels (None, or NaN points, where there is none)."""
    sources: list[np.ndarray]
    drivers: list[np.ndarray]
    frames_without_face: int  # drawn frames the detector found no face in (dropped)
    origin: str  # what the frames came from, for reports
    source_meshes: list[np.ndarray | None] | None = None  # None: the source gave no meshes
    driver_meshes: list[np.ndarray | None] | None = None

    def __len__(self) -> int:
        return len(self.sources)


def calibration_source(config: CalibrationConfig) -> tuple[Path, str]:
    """The source `config` calibrates on (its `source`, or the default) and a line saying what it is."""
    if config.source is not None:
        return config.source, f"calibration frames from {config.source}"
    if (DEFAULT_PREPARED / "manifest.csv").is_file():
        return DEFAULT_PREPARED, f"calibration frames from the prepared folder {DEFAULT_PREPARED} ({config.split} split)"
    from sdk.animate import DEFAULT_DRIVING

    return DEFAULT_DRIVING, (f"calibration frames from the bundled driving clip {DEFAULT_DRIVING} (no prepared "
                             f"folder at {DEFAULT_PREPARED}; the face is tracked and cropped on the fly; choose "
                             "others with --calibration PREPARED_DIR|IMAGE_DIR|VIDEO)")


def load_calibration(config: CalibrationConfig, size: int) -> CalibrationSet:
    """The calibration pairs of `config` as crops of side `size` (the output size the graphs
    are made for); NoFaceError when no drawn frame shows a face."""
    source, _ = calibration_source(config)
    if source.is_file() and source.suffix.lower() in VIDEO_SUFFIXES:
        return _video_pairs(source, config, size)
    if not source.is_dir():
        raise QuantizationError(f"{source}: calibration source is neither a folder nor a video "
                                f"({', '.join(VIDEO_SUFFIXES)}); expected a prepared folder with manifest.csv, "
                                "a folder of portrait images or a video of a face")
    if (source / "manifest.csv").is_file():
        return _prepared_pairs(source, config, size)
    return _image_pairs(source, config, size)


def _prepared_pairs(source: Path, config: CalibrationConfig, size: int) -> CalibrationSet:
    clips = read_prepared_manifest(source, config.split, min_frames=2)
    rng = np.random.default_rng(config.seed)
    detector = _FaceCheck()
    sources, drivers, source_meshes, driver_meshes, without_face = [], [], [], [], 0
    meshes: dict[str, np.ndarray | None] = {}
    try:
        # One draw per requested pair, spread over the clips. A pair with a faceless frame is dropped and
        # counted, not redrawn, so a set without faces ends (with NoFaceError) instead of looping.
        for index in range(config.pairs):
            clip = clips[index % len(clips)]
            first, second = rng.choice(clip.frames, 2, replace=False)
            pair = [load_frame(clip.frame_path(int(i)), size) for i in (first, second)]
            missing = sum(not detector.has_face(frame) for frame in pair)
            if missing:
                without_face += missing
                continue
            if clip.id not in meshes:
                meshes[clip.id] = load_landmarks(clip, size)
            clip_meshes = meshes[clip.id]
            sources.append(pair[0])
            drivers.append(pair[1])
            source_meshes.append(None if clip_meshes is None else clip_meshes[int(first)])
            driver_meshes.append(None if clip_meshes is None else clip_meshes[int(second)])
    finally:
        detector.close()
    origin = f"{source} ({config.split} split, {len(clips)} clips)"
    return _checked(CalibrationSet(sources, drivers, without_face, origin, source_meshes, driver_meshes), source)


def _video_pairs(source: Path, config: CalibrationConfig, size: int) -> CalibrationSet:
    """Pairs of two tracked face crops of one video (its first `MAX_VIDEO_FRAMES` frames)."""
    from sdk.face import FaceTracker, TrackerConfig
    from sdk.media import iter_video, probe_video

    tracker = FaceTracker(TrackerConfig(fps=probe_video(source).fps))
    crops, meshes, without_face = [], [], 0
    try:
        for frame in itertools.islice(iter_video(source), MAX_VIDEO_FRAMES):
            track = tracker.update(frame)  # every frame, so the tracker follows the face
            if track.face_found and track.box is not None:
                crops.append(track.box.crop(frame, size))
                meshes.append(None if track.landmarks is None else track.box.points_to_crop(track.landmarks, size))
            else:
                without_face += 1
    finally:
        tracker.close()
    sources, drivers, source_meshes, driver_meshes = [], [], [], []
    if len(crops) >= 2:
        rng = np.random.default_rng(config.seed)
        for _ in range(config.pairs):
            first, second = rng.choice(len(crops), 2, replace=False)
            sources.append(crops[int(first)])
            drivers.append(crops[int(second)])
            source_meshes.append(meshes[int(first)])
            driver_meshes.append(meshes[int(second)])
    origin = f"{source} (video, {len(crops)} tracked frames with a face)"
    return _checked(CalibrationSet(sources, drivers, without_face, origin, source_meshes, driver_meshes), source)


def _image_pairs(source: Path, config: CalibrationConfig, size: int) -> CalibrationSet:
    from sdk.face import FaceLandmarker, crop_portrait

    paths = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise QuantizationError(f"{source}: no manifest.csv and no images ({', '.join(IMAGE_SUFFIXES)})")
    crops, meshes, without_face = [], [], 0
    landmarker = FaceLandmarker()
    try:
        for path in paths[:config.pairs]:
            try:
                crop, _ = crop_portrait(path, size=size, landmarker=landmarker)
            except NoFaceError:
                without_face += 1
                continue
            crops.append(crop)
            meshes.append(landmarker.from_image(crop))
    finally:
        landmarker.close()
    drivers, driver_meshes = crops[1:] + crops[:1], meshes[1:] + meshes[:1]
    return _checked(CalibrationSet(crops, drivers, without_face, f"{source} ({len(paths)} images)", meshes,
                                   driver_meshes), source)


def _checked(calibration: CalibrationSet, source: Path) -> CalibrationSet:
    if not calibration.sources:
        raise NoFaceError(f"{source}: no face found in any calibration frame "
                          f"({calibration.frames_without_face} frames checked); calibrate on face crops")
    return calibration


class _FaceCheck:
    """The face detector of the SDK's front end, on crops brought to `DETECTION_SIDE`."""

    def __init__(self) -> None:
        from sdk.face import FaceDetector

        self.detector = FaceDetector()

    def has_face(self, crop: np.ndarray) -> bool:
        if crop.shape[0] != DETECTION_SIDE:
            crop = cv2.resize(crop, (DETECTION_SIDE, DETECTION_SIDE), interpolation=cv2.INTER_LINEAR)
        return bool(self.detector.detect(crop))

    def close(self) -> None:
        self.detector.close()


@torch.inference_mode()
def graph_feeds(model: TalkingHeadModel, calibration: CalibrationSet) -> dict[str, list[Feeds]]:
    """Inputs of every graph (by `sdk.runtime.graphs` name) for each calibration pair, from the fp32
    torch graphs made for the output size of the calibration crops.

    keypoint_encoder: the driving frames; source_encoder: the source frames; generator: the source
    encoder's outputs and the source crop (``portrait``) with the driving frames' keypoints
    (absolute motion). The encoders' frames are the crops averaged down to the internal resolution.
    Face-prior models: the generator's keypoints are the source mesh's rig keypoints and those of
    the rig driven by the driver's code relative to the source's (self-reenactment), with that
    code's expression (the driving frame's learned keypoints after them, hybrid); pairs without a
    usable mesh on either side are dropped (NoFaceError when none is left).
    """
    from sdk.runtime.graphs import build_graphs, graph_specs

    size, resolution = calibration.sources[0].shape[0], model.cfg.resolution
    graphs = build_graphs(model, output_size=size)
    specs = graph_specs(model.cfg, size)
    semantic = None if model.cfg.semantic is None else _SemanticDriver(model, size)
    feeds: dict[str, list[Feeds]] = {name: [] for name in specs}
    meshes = zip(calibration.source_meshes or [None] * len(calibration),
                 calibration.driver_meshes or [None] * len(calibration))
    for source, driver, (source_mesh, driver_mesh) in zip(calibration.sources, calibration.drivers, meshes):
        portrait = to_tensor(source)
        source_image, driving_image = to_internal(portrait, resolution), to_internal(to_tensor(driver), resolution)
        outputs = dict(zip(specs["source_encoder"].output_names, graphs["source_encoder"](source_image)))
        if semantic is None:
            keypoints, jacobians = graphs["keypoint_encoder"](driving_image)
            motion = {"driving_keypoints": keypoints, "driving_jacobians": jacobians}
        else:
            learned = None
            if "keypoint_encoder" in graphs:  # hybrid: the source's and the driver's learned keypoints
                learned = (Keypoints(outputs["learned_keypoints"], outputs["learned_jacobians"]),
                           Keypoints(*graphs["keypoint_encoder"](driving_image)))
            motion = semantic.inputs(source_mesh, driver_mesh, learned, source_image)
            if motion is None:
                continue
        available = {**outputs, "source_image": source_image, "portrait": portrait, **motion}
        if "keypoint_encoder" in feeds:
            feeds["keypoint_encoder"].append({"image": driving_image.numpy()})
        feeds["source_encoder"].append({"image": source_image.numpy()})
        feeds["generator"].append({name: available[name].numpy() for name in specs["generator"].input_names})
    if not feeds["generator"]:
        raise NoFaceError(f"{calibration.origin}: no calibration pair has a usable face mesh on both sides, which "
                          f"{model.cfg.name} (driven by the face prior) needs; calibrate on a prepared folder or a "
                          "video of a face")
    return feeds


class _SemanticDriver:
    """The receiver's numpy side for calibration: a source mesh and a driver mesh -> the generator's
    keypoint and expression inputs (`sdk.models.semantic_inputs`), or None when either is unusable."""

    def __init__(self, model: TalkingHeadModel, size: int):
        from sdk.prior import EncoderConfig, SemanticEncoder

        self.cfg = model.cfg
        self.prior = model.prior()
        self.encoder = SemanticEncoder(self.prior, EncoderConfig(image_size=size))
        self.size = size

    def inputs(self, source_mesh: np.ndarray | None, driver_mesh: np.ndarray | None,
               learned: tuple[Keypoints, Keypoints] | None, like: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """learned: hybrid models' (source, driver) learned keypoints, which follow the prior's."""
        from sdk.models.semantic_inputs import avatar_rigs, concat_keypoints, driven_keypoints, rest_keypoints
        from sdk.prior import relative_motion

        if source_mesh is None or driver_mesh is None or np.isnan(source_mesh).any():
            return None
        self.encoder.reset()  # no last good code carried over from another pair
        encoded = self.encoder.encode(driver_mesh)
        if encoded.flagged:
            return None
        try:
            rigs = avatar_rigs(self.prior, source_mesh, 1, self.size, self.cfg.semantic)
        except NoFaceError:
            return None
        source = rest_keypoints(rigs, self.cfg.semantic, like)
        driving, expression = driven_keypoints(rigs, [relative_motion(encoded.code, rigs[0].code)], self.cfg.semantic,
                                               like)
        if learned is not None:  # absolute motion, as for learned keypoints
            source, driving = concat_keypoints(source, learned[0]), concat_keypoints(driving, learned[1])
        return {"source_keypoints": source.value, "source_jacobians": source.jacobian,
                "driving_keypoints": driving.value, "driving_jacobians": driving.jacobian, "expression": expression}

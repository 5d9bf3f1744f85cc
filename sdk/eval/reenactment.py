"""`python -m sdk eval`: the papers' reenactment protocol on the prepared test identities.

Self-reenactment: for each test clip the first frame is the source and every frame drives it
(absolute motion); the prediction is compared with the real frame (L1, PSNR, SSIM, AKD, identity
distance). The still-frame baseline (the source frame repeated) is measured on the same frames.
Cross-identity: the first frame of each test clip is animated by every other test clip (relative
motion); AKD is taken against the driver frame and identity distance against the source.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.datasets import PreparedClip, load_frame, read_prepared_manifest
from ..media import to_tensor
from ..pipeline import MotionConfig, TalkingHeadPipeline
from ..training.losses import psnr
from .metrics import AKD_RESOLUTION, IdentityDistance, KeypointDistance, l1, ssim


@dataclass
class MetricSums:
    """Running means of one method's metrics; AKD/identity only over frames where faces are found."""

    frames: int = 0
    l1: float = 0.0
    psnr: float = 0.0
    ssim: float = 0.0
    akd: float = 0.0
    akd_frames: int = 0
    akd_missed: int = 0  # frames whose prediction the landmark model found no face in
    identity: float = 0.0
    identity_frames: int = 0

    def add(self, prediction: np.ndarray, target: np.ndarray, target_landmarks: np.ndarray | None,
            akd: KeypointDistance | None, with_pixels: bool = True) -> None:
        """Score one frame: L1/PSNR/SSIM (unless not `with_pixels`), and AKD where `akd` is given and the
        target's landmarks are known; a prediction the landmark model finds no face in counts as missed."""
        self.frames += 1
        if with_pixels:
            p, t = to_tensor(prediction), to_tensor(target)
            self.l1 += float(l1(p, t))
            self.psnr += float(psnr(p, t))
            self.ssim += float(ssim(p, t))
        if akd is not None and target_landmarks is not None and np.isfinite(target_landmarks).all():
            predicted = akd.landmarks(prediction)
            if predicted is None:
                self.akd_missed += 1
            else:
                self.akd += KeypointDistance.distance(predicted, target_landmarks)
                self.akd_frames += 1

    def summary(self) -> dict[str, float | int | None]:
        n = max(self.frames, 1)
        return {"frames": self.frames, "l1": self.l1 / n, "psnr": self.psnr / n, "ssim": self.ssim / n,
                "akd": self.akd / self.akd_frames if self.akd_frames else None, "akd_missed": self.akd_missed,
                "identity": self.identity / self.identity_frames if self.identity_frames else None}


@dataclass
class EvalReport:
    model: str
    split: str
    clips: list[str]
    frame_stride: int
    identity_model: str | None
    self_reenactment: dict[str, dict] = field(default_factory=dict)  # method -> summary
    cross_identity: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0


def _frames(clip: PreparedClip, stride: int, skip_first: bool = False) -> list[int]:
    """Every `stride`-th frame; `skip_first` drops frame 0 (the source itself in self-reenactment,
    where the still-frame baseline would score a perfect frame)."""
    return list(range(stride if skip_first else 0, clip.frames, stride))


class ReenactmentEvaluator:
    """Runs both protocols for one pipeline over prepared clips."""

    def __init__(self, pipeline: TalkingHeadPipeline, clips: list[PreparedClip], prepared_size: int,
                 frame_stride: int = 1, with_identity: bool = True):
        self.pipeline = pipeline
        self.clips = clips
        self.prepared_size = prepared_size
        self.stride = frame_stride
        self.akd = KeypointDistance()
        self.identity = IdentityDistance() if with_identity and IdentityDistance.available() else None

    def _load(self, clip: PreparedClip, index: int) -> np.ndarray:
        return load_frame(clip.frame_path(index), self.pipeline.resolution)

    def _landmarks(self, clip: PreparedClip) -> np.ndarray:
        # Prepared landmarks are in prepared-crop pixels; AKD is in pixels at 256².
        return np.load(clip.directory / "landmarks.npy")[:, :, :2] * (AKD_RESOLUTION / self.prepared_size)

    def _score(self, sums: MetricSums, prediction: np.ndarray, target: np.ndarray,
               target_landmarks: np.ndarray | None, identity_reference: np.ndarray | None,
               with_pixels: bool = True) -> None:
        sums.add(prediction, target, target_landmarks, self.akd, with_pixels)
        if self.identity is not None and identity_reference is not None:
            descriptor = self.identity.descriptor(prediction)
            if descriptor is not None:
                sums.identity += IdentityDistance.distance(descriptor, identity_reference)
                sums.identity_frames += 1

    def self_reenactment(self) -> dict[str, dict]:
        model, still = MetricSums(), MetricSums()
        self.pipeline.motion = MotionConfig(mode="absolute")
        for clip in self.clips:
            landmarks = self._landmarks(clip)
            source = self._load(clip, 0)
            state = self.pipeline.prepare_source(source)
            for index in _frames(clip, self.stride, skip_first=True):
                target = self._load(clip, index)
                reference = self.identity.descriptor(target) if self.identity else None
                prediction = self.pipeline.render(state, self.pipeline.encode(target))
                self._score(model, prediction, target, landmarks[index], reference)
                self._score(still, source, target, landmarks[index], reference)
        return {"model": model.summary(), "still_frame": still.summary()}

    def cross_identity(self, motion: MotionConfig = MotionConfig()) -> dict[str, dict]:
        """Each clip's first frame driven by every other clip (different identities only)."""
        model, still = MetricSums(), MetricSums()
        self.pipeline.motion = motion
        for source_clip in self.clips:
            source = self._load(source_clip, 0)
            state = self.pipeline.prepare_source(source)
            reference = self.identity.descriptor(source) if self.identity else None
            for driving_clip in self.clips:
                if driving_clip.identity == source_clip.identity:
                    continue
                landmarks = self._landmarks(driving_clip)
                self.pipeline.reset_anchor()
                for index in _frames(driving_clip, self.stride):
                    driving = self._load(driving_clip, index)
                    prediction = self.pipeline.render(state, self.pipeline.encode(driving))
                    self._score(model, prediction, driving, landmarks[index], reference, with_pixels=False)
                    self._score(still, source, driving, landmarks[index], reference, with_pixels=False)
        keep = ("frames", "akd", "akd_missed", "identity")
        return {name: {k: v for k, v in sums.summary().items() if k in keep}
                for name, sums in (("model", model), ("still_frame", still))}

    def close(self) -> None:
        self.akd.close()


def evaluate(pipeline: TalkingHeadPipeline, data: str | Path, split: str = "test", frame_stride: int = 1,
             cross_stride: int = 5, with_identity: bool = True) -> EvalReport:
    """Both protocols on the `split` clips of a prepared folder."""
    started = time.perf_counter()
    clips = read_prepared_manifest(data, split)
    prepared_size = int(next(iter(_prepared_sizes(Path(data)))))
    evaluator = ReenactmentEvaluator(pipeline, clips, prepared_size, frame_stride, with_identity)
    try:
        report = EvalReport(pipeline.model.cfg.name, split, [c.id for c in clips], frame_stride,
                            IdentityDistance.NAME if evaluator.identity else None)
        report.self_reenactment = evaluator.self_reenactment()
        evaluator.stride = cross_stride
        report.cross_identity = evaluator.cross_identity()
    finally:
        evaluator.close()
    report.seconds = time.perf_counter() - started
    return report


def _prepared_sizes(root: Path) -> set[int]:
    import csv

    with (root / "manifest.csv").open(newline="") as handle:
        return {int(row["size"]) for row in csv.DictReader(handle) if row["status"] == "ok"}


def format_report(report: EvalReport) -> str:
    def cell(value: float | int | None, digits: int) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    lines = [f"model {report.model} on {report.split} ({len(report.clips)} clips, every "
             f"{report.frame_stride}. frame, the source frame excluded); identity: {report.identity_model or 'not measured (--no-identity, or the eval extra is not installed)'}",
             "", "self-reenactment      frames      L1    PSNR   SSIM    AKD  AKD-missed  ID-dist"]
    for name, row in report.self_reenactment.items():
        lines.append(f"  {name:<18} {row['frames']:>7} {cell(row['l1'], 4):>7} {cell(row['psnr'], 2):>7} "
                     f"{cell(row['ssim'], 3):>6} {cell(row['akd'], 2):>6} {row['akd_missed']:>10} "
                     f"{cell(row['identity'], 3):>8}")
    lines += ["", "cross-identity        frames   AKD(driver)  AKD-missed  ID-dist(source)"]
    for name, row in report.cross_identity.items():
        lines.append(f"  {name:<18} {row['frames']:>7} {cell(row['akd'], 2):>13} {row['akd_missed']:>10} "
                     f"{cell(row['identity'], 3):>16}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from ..checkpoint import load_model

    torch.set_grad_enabled(False)
    pipeline = TalkingHeadPipeline(load_model(args.model, device=args.device), device=args.device)
    report = evaluate(pipeline, args.data, args.split, args.stride, args.cross_stride, not args.no_identity)
    print(format_report(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(asdict(report), indent=1))
    return 0


def add_eval_verb(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="reenactment metrics on the prepared test identities",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="cache/prepared", help="prepared data folder (python -m sdk data prepare)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", default="default")
    parser.add_argument("--stride", type=int, default=1, help="use every N-th frame for self-reenactment")
    parser.add_argument("--cross-stride", type=int, default=5, help="every N-th driving frame for cross-identity")
    parser.add_argument("--no-identity", action="store_true", help="skip the identity distance")
    parser.add_argument("--json", help="also write the report as JSON")
    parser.add_argument("--device", default="cpu")
    parser.set_defaults(run=_run)

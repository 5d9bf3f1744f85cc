"""`python -m sdk eval`: the papers' reenactment protocol on the prepared test identities.

Self-reenactment: for each test clip the first frame is the source and every frame drives it
(absolute motion); the prediction at the output size is compared with the real frame at that
size (L1, PSNR, SSIM, sharpness ratio, AKD, mouth and eye landmark distance, identity distance),
per clip and over all clips. The still-frame baseline (the source frame repeated) is measured on
the same frames. Cross-identity: the first frame of each test clip is animated by every other
test clip (relative motion); AKD is taken against the driver frame and identity distance against
the source, and, for every model, against the driver's *transferred* expression: the driver's
motion (face-prior code relative to its first frame) applied to the source's own mesh
(`sdk.prior.AvatarRig`), which is where the avatar's landmarks should be (issue 12).

Face-prior models are driven by the prepared meshes (`landmarks.npy`) of the frames, as a sender
runs them on the tracker's mesh; their source is rigged with its own prepared mesh.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from ..data.datasets import PreparedClip, load_frame, read_prepared_manifest
from ..media import resize_image, to_tensor
from ..pipeline import MotionConfig, TalkingHeadPipeline
from ..prior import AvatarRig, EncoderConfig, SemanticEncoder, load_prior, relative_motion
from ..training.losses import psnr
from .metrics import AKD_RESOLUTION, IdentityDistance, KeypointDistance, l1, laplacian_variance, ssim


@dataclass
class MetricSums:
    """Running sums of one method's metrics. Pixel metrics are means over `pixel_frames`; the
    sharpness ratio over frames whose real frame is not flat (`sharpness_frames`); AKD and the
    mouth / eye landmark distances over frames where both meshes are known (`akd_frames`);
    identity over frames where dlib finds both faces. Sums of two add up (`+`)."""

    frames: int = 0
    pixel_frames: int = 0
    l1: float = 0.0
    psnr: float = 0.0
    ssim: float = 0.0
    sharpness: float = 0.0  # Laplacian variance of the prediction / of the real frame, summed over frames
    sharpness_frames: int = 0
    akd: float = 0.0
    mouth_lmd: float = 0.0
    eye_lmd: float = 0.0
    akd_frames: int = 0
    akd_missed: int = 0  # frames whose prediction the landmark model found no face in
    identity: float = 0.0
    identity_frames: int = 0

    def add(self, prediction: np.ndarray, target: np.ndarray, target_landmarks: np.ndarray | None,
            akd: KeypointDistance | None, with_pixels: bool = True) -> None:
        """Score one frame (RGB uint8, both at one size): L1/PSNR/SSIM/sharpness (unless not
        `with_pixels`), and AKD, mouth and eye distance where `akd` is given and the target's
        landmarks (478, 2) at 256² are known; a prediction the landmark model finds no face in
        counts as missed."""
        if prediction.shape != target.shape:
            raise ValueError(f"prediction {prediction.shape} and target {target.shape} differ: score both at one size")
        self.frames += 1
        if with_pixels:
            p, t = to_tensor(prediction), to_tensor(target)
            self.pixel_frames += 1
            self.l1 += float(l1(p, t))
            self.psnr += float(psnr(p, t))
            self.ssim += float(ssim(p, t))
            real = laplacian_variance(target)
            if real > 0:
                self.sharpness += laplacian_variance(prediction) / real
                self.sharpness_frames += 1
        if akd is not None and target_landmarks is not None and np.isfinite(target_landmarks).all():
            self.add_landmarks(akd.landmarks(prediction), target_landmarks, akd)

    def add_landmarks(self, predicted: np.ndarray | None, target_landmarks: np.ndarray | None,
                      akd: KeypointDistance) -> None:
        """AKD, mouth and eye distance of a prediction's landmarks (None: no face found, counted as
        missed) against a target's (478, 2) at 256² (None or NaN: not scored)."""
        if target_landmarks is None or not np.isfinite(target_landmarks).all():
            return
        if predicted is None:
            self.akd_missed += 1
            return
        self.akd += KeypointDistance.distance(predicted, target_landmarks)
        self.mouth_lmd += KeypointDistance.distance(predicted, target_landmarks, akd.regions["mouth"])
        self.eye_lmd += KeypointDistance.distance(predicted, target_landmarks, akd.regions["eyes"])
        self.akd_frames += 1

    def __add__(self, other: MetricSums) -> MetricSums:
        return MetricSums(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def summary(self) -> dict[str, float | int | None]:
        def mean(total: float, count: int) -> float | None:
            return total / count if count else None

        return {"frames": self.frames, "l1": mean(self.l1, self.pixel_frames),
                "psnr": mean(self.psnr, self.pixel_frames), "ssim": mean(self.ssim, self.pixel_frames),
                "sharpness": mean(self.sharpness, self.sharpness_frames), "sharpness_frames": self.sharpness_frames,
                "akd": mean(self.akd, self.akd_frames), "mouth_lmd": mean(self.mouth_lmd, self.akd_frames),
                "eye_lmd": mean(self.eye_lmd, self.akd_frames), "akd_missed": self.akd_missed,
                "identity": mean(self.identity, self.identity_frames)}


@dataclass
class ClipScores:
    """One test clip's self-reenactment: the model against the still frame (None: no frame scored)."""
    clip: str
    frames: int
    model_psnr: float | None
    model_ssim: float | None
    still_psnr: float | None
    still_ssim: float | None
    ssim_above_still: bool | None


@dataclass
class EvalReport:
    model: str
    split: str
    clips: list[str]
    frame_stride: int
    identity_model: str | None
    output_size: int  # frames are rendered and scored at this size; AKD stays in pixels at 256²
    prepared_size: int
    frames_resized: str | None  # how the prepared frames reached the output size, None when they are at it
    self_reenactment: dict[str, dict] = field(default_factory=dict)  # method -> summary
    per_clip: list[ClipScores] = field(default_factory=list)
    versus_still: dict[str, float | int | None] = field(default_factory=dict)
    cross_identity: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0


def _frames(clip: PreparedClip, stride: int, skip_first: bool = False) -> list[int]:
    """Every `stride`-th frame; `skip_first` drops frame 0 (the source itself in self-reenactment,
    where the still-frame baseline would score a perfect frame)."""
    return list(range(stride if skip_first else 0, clip.frames, stride))


def clip_scores(clip: str, model: MetricSums, still: MetricSums) -> ClipScores:
    m, s = model.summary(), still.summary()
    above = None if m["ssim"] is None else m["ssim"] > s["ssim"]
    return ClipScores(clip, model.frames, m["psnr"], m["ssim"], s["psnr"], s["ssim"], above)


def versus_still(model: dict, still: dict, per_clip: list[ClipScores]) -> dict[str, float | int | None]:
    """The model's self-reenactment summary against the still frame's: PSNR gain in dB, AKD and
    landmark distance ratios, the model's sharpness ratio to the real frames, and on how many of
    the clips with scored frames its SSIM is above the still frame's."""
    def ratio(key: str) -> float | None:
        return model[key] / still[key] if model[key] is not None and still[key] else None

    scored = [row for row in per_clip if row.ssim_above_still is not None]
    return {"psnr_gain_db": None if model["psnr"] is None else model["psnr"] - still["psnr"],
            "akd_ratio": ratio("akd"), "mouth_lmd_ratio": ratio("mouth_lmd"), "eye_lmd_ratio": ratio("eye_lmd"),
            "sharpness": model["sharpness"], "ssim_above_still_clips": sum(row.ssim_above_still for row in scored),
            "scored_clips": len(scored)}


class ReenactmentEvaluator:
    """Runs both protocols for one pipeline over prepared clips, at the pipeline's output size."""

    def __init__(self, pipeline: TalkingHeadPipeline, clips: list[PreparedClip], prepared_size: int,
                 frame_stride: int = 1, with_identity: bool = True):
        self.pipeline = pipeline
        self.clips = clips
        self.prepared_size = prepared_size
        self.size = pipeline.output_size
        self.stride = frame_stride
        self.akd = KeypointDistance()
        self.identity = IdentityDistance() if with_identity and IdentityDistance.available() else None
        self.prior = pipeline.backend.prior() if pipeline.is_semantic else load_prior("default")

    @property
    def frames_resized(self) -> str | None:
        if self.size == self.prepared_size:
            return None
        if self.size < self.prepared_size:
            return f"downscaled from {self.prepared_size}² to {self.size}² (area)"
        return (f"upscaled from {self.prepared_size}² to {self.size}² (bilinear): the real frames and the "
                f"source are no sharper than {self.prepared_size}²")

    def _load(self, clip: PreparedClip, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(the frame as prepared, the frame at the output size). The encoder gets the first: it
        averages it down to the internal resolution as training does."""
        prepared = load_frame(clip.frame_path(index), self.prepared_size)
        return prepared, resize_image(prepared, self.size, self.size)

    def _meshes(self, clip: PreparedClip) -> np.ndarray:
        """(T, 478, 3) the clip's meshes in prepared-crop pixels (NaN where no face)."""
        return np.load(clip.directory / "landmarks.npy")

    def _landmarks(self, clip: PreparedClip) -> np.ndarray:
        # Prepared landmarks are in prepared-crop pixels; AKD is in pixels at 256².
        return self._meshes(clip)[:, :, :2] * (AKD_RESOLUTION / self.prepared_size)

    def _prepare_source(self, clip: PreparedClip, source: np.ndarray):
        """The pipeline's state for the clip's first frame (at the output size); face-prior models
        rig it with its prepared mesh (NoFaceError where it has none)."""
        if not self.pipeline.is_semantic:
            return self.pipeline.prepare_source(source)
        return self.pipeline.prepare_source(source, self._meshes(clip)[0] * (self.size / self.prepared_size))

    def _encode(self, prepared: np.ndarray, mesh: np.ndarray):
        return self.pipeline.encode(prepared, mesh if self.pipeline.is_semantic else None)

    def _transferred_landmarks(self, source_clip: PreparedClip, driving_clip: PreparedClip, frames: list[int]
                               ) -> dict[int, np.ndarray]:
        """Per driving frame index, the source's mesh moved by the driver's motion since its first
        good frame, (478, 2) at 256² (frames the prior flags, and all when the source has no usable
        mesh, are left out)."""
        source_mesh = self._meshes(source_clip)[0]
        encoder = SemanticEncoder(self.prior, EncoderConfig(image_size=self.prepared_size))
        if encoder.encode(source_mesh).flagged:
            return {}
        rig = AvatarRig(self.prior, source_mesh, self.prepared_size)
        encoder.reset()
        meshes, anchor, targets = self._meshes(driving_clip), None, {}
        for index in frames:
            encoded = encoder.encode(meshes[index])
            if encoded.flagged:
                continue
            anchor = encoded.code if anchor is None else anchor
            moved = rig.driven_mesh(relative_motion(encoded.code, anchor))
            targets[index] = moved[:, :2] * (AKD_RESOLUTION / self.prepared_size)
        return targets

    def _score(self, sums: MetricSums, prediction: np.ndarray, target: np.ndarray,
               target_landmarks: np.ndarray | None, identity_reference: np.ndarray | None,
               with_pixels: bool = True) -> None:
        sums.add(prediction, target, target_landmarks, self.akd, with_pixels)
        self._add_identity(sums, prediction, identity_reference)

    def _add_identity(self, sums: MetricSums, prediction: np.ndarray, reference: np.ndarray | None) -> None:
        """The identity distance of `prediction` to `reference` (when both have a face and dlib is here)."""
        if self.identity is not None and reference is not None:
            descriptor = self.identity.descriptor(prediction)
            if descriptor is not None:
                sums.identity += IdentityDistance.distance(descriptor, reference)
                sums.identity_frames += 1

    def self_reenactment(self) -> tuple[dict[str, dict], list[ClipScores]]:
        """The summaries of the model and the still frame over all clips, and each clip's scores."""
        model_total, still_total, per_clip = MetricSums(), MetricSums(), []
        self.pipeline.motion = MotionConfig(mode="absolute")
        for clip in self.clips:
            model, still = MetricSums(), MetricSums()
            landmarks, meshes = self._landmarks(clip), self._meshes(clip)
            _, source = self._load(clip, 0)
            state = self._prepare_source(clip, source)
            self.pipeline.reset_encoder()
            for index in _frames(clip, self.stride, skip_first=True):
                prepared, target = self._load(clip, index)
                reference = self.identity.descriptor(target) if self.identity else None
                code = self._encode(prepared, meshes[index])
                prediction = source if code is None else self.pipeline.render(state, code)
                self._score(model, prediction, target, landmarks[index], reference)
                self._score(still, source, target, landmarks[index], reference)
            per_clip.append(clip_scores(clip.id, model, still))
            model_total, still_total = model_total + model, still_total + still
        return {"model": model_total.summary(), "still_frame": still_total.summary()}, per_clip

    def cross_identity(self, motion: MotionConfig = MotionConfig()) -> dict[str, dict]:
        """Each clip's first frame driven by every other clip (different identities only): AKD
        against the driver frame ("model", "still_frame") and against the driver's expression
        transferred to the source's mesh ("model_vs_transferred", "still_vs_transferred")."""
        model, still, model_moved, still_moved = MetricSums(), MetricSums(), MetricSums(), MetricSums()
        self.pipeline.motion = motion
        for source_clip in self.clips:
            _, source = self._load(source_clip, 0)
            state = self._prepare_source(source_clip, source)
            reference = self.identity.descriptor(source) if self.identity else None
            still_landmarks = self.akd.landmarks(source)
            for driving_clip in self.clips:
                if driving_clip.identity == source_clip.identity:
                    continue
                landmarks, meshes = self._landmarks(driving_clip), self._meshes(driving_clip)
                frames = _frames(driving_clip, self.stride)
                transferred = self._transferred_landmarks(source_clip, driving_clip, frames)
                self.pipeline.reset_anchor()
                self.pipeline.reset_encoder()
                for index in frames:
                    prepared, driving = self._load(driving_clip, index)
                    code = self._encode(prepared, meshes[index])
                    prediction = source if code is None else self.pipeline.render(state, code)
                    predicted = self.akd.landmarks(prediction)
                    model.frames += 1
                    still.frames += 1
                    model.add_landmarks(predicted, landmarks[index], self.akd)
                    still.add_landmarks(still_landmarks, landmarks[index], self.akd)
                    if index in transferred:
                        model_moved.frames += 1
                        still_moved.frames += 1
                        model_moved.add_landmarks(predicted, transferred[index], self.akd)
                        still_moved.add_landmarks(still_landmarks, transferred[index], self.akd)
                    self._add_identity(model, prediction, reference)
        keep = ("frames", "akd", "mouth_lmd", "eye_lmd", "akd_missed", "identity")
        rows = (("model", model), ("still_frame", still), ("model_vs_transferred", model_moved),
                ("still_vs_transferred", still_moved))
        return {name: {k: v for k, v in sums.summary().items() if k in keep} for name, sums in rows}

    def close(self) -> None:
        self.akd.close()


def evaluate(pipeline: TalkingHeadPipeline, data: str | Path, split: str = "test", frame_stride: int = 1,
             cross_stride: int = 5, with_identity: bool = True) -> EvalReport:
    """Both protocols on the `split` clips of a prepared folder, at `pipeline.output_size`."""
    started = time.perf_counter()
    clips = read_prepared_manifest(data, split, min_frames=2)  # one frame is the source alone: nothing to score
    prepared_size = int(next(iter(_prepared_sizes(Path(data)))))
    evaluator = ReenactmentEvaluator(pipeline, clips, prepared_size, frame_stride, with_identity)
    try:
        report = EvalReport(pipeline.cfg.name, split, [c.id for c in clips], frame_stride,
                            IdentityDistance.NAME if evaluator.identity else None, evaluator.size, prepared_size,
                            evaluator.frames_resized)
        report.self_reenactment, report.per_clip = evaluator.self_reenactment()
        report.versus_still = versus_still(report.self_reenactment["model"],
                                           report.self_reenactment["still_frame"], report.per_clip)
        evaluator.stride = cross_stride
        report.cross_identity = evaluator.cross_identity()
    finally:
        evaluator.close()
    report.seconds = time.perf_counter() - started
    return report


def _prepared_sizes(root: Path) -> set[int]:
    with (root / "manifest.csv").open(newline="") as handle:
        return {int(row["size"]) for row in csv.DictReader(handle) if row["status"] == "ok"}


def format_report(report: EvalReport) -> str:
    def cell(value: float | int | None, digits: int, suffix: str = "") -> str:
        return "—" if value is None else f"{value:.{digits}f}{suffix}"

    size = f"{report.output_size}²" + (f", {report.frames_resized}" if report.frames_resized else "")
    lines = [f"model {report.model} on {report.split} ({len(report.clips)} clips, every "
             f"{report.frame_stride}. frame, the source frame excluded) at {size}; AKD, mouth and eye distance in "
             f"pixels at {AKD_RESOLUTION}²; identity: "
             f"{report.identity_model or 'not measured (--no-identity, or the eval extra is not installed)'}",
             "", "self-reenactment      frames      L1    PSNR   SSIM  sharp    AKD  mouth    eye  AKD-missed  ID-dist"]
    for name, row in report.self_reenactment.items():
        lines.append(f"  {name:<18} {row['frames']:>7} {cell(row['l1'], 4):>7} {cell(row['psnr'], 2):>7} "
                     f"{cell(row['ssim'], 3):>6} {cell(row['sharpness'], 2):>6} {cell(row['akd'], 2):>6} "
                     f"{cell(row['mouth_lmd'], 2):>6} {cell(row['eye_lmd'], 2):>6} {row['akd_missed']:>11} "
                     f"{cell(row['identity'], 3):>8}")
    ratios = report.versus_still
    lines += [f"  model vs still: PSNR {cell(ratios['psnr_gain_db'], 2, ' dB'):>8}, AKD {cell(ratios['akd_ratio'], 2, '×')}, "
              f"mouth {cell(ratios['mouth_lmd_ratio'], 2, '×')}, eye {cell(ratios['eye_lmd_ratio'], 2, '×')}; "
              f"sharpness {cell(ratios['sharpness'], 2, '×')} the real frames' (variance of the Laplacian)",
              "", "per clip                               frames  PSNR model  still  SSIM model  still  SSIM>still"]
    for row in report.per_clip:
        above = "—" if row.ssim_above_still is None else ("yes" if row.ssim_above_still else "no")
        lines.append(f"  {row.clip:<36} {row.frames:>7} {cell(row.model_psnr, 2):>11} {cell(row.still_psnr, 2):>6} "
                     f"{cell(row.model_ssim, 3):>11} {cell(row.still_ssim, 3):>6} {above:>11}")
    lines.append(f"  SSIM above still on {ratios['ssim_above_still_clips']} of {ratios['scored_clips']} clips"
                 + (f" ({len(report.per_clip) - ratios['scored_clips']} clips had no scored frame)"
                    if ratios["scored_clips"] < len(report.per_clip) else ""))
    lines += ["", "cross-identity          frames   AKD(target)  mouth    eye  AKD-missed  ID-dist(source)",
              "  (target: the driver frame; *_vs_transferred: the driver's motion moving the source's own mesh)"]
    for name, row in report.cross_identity.items():
        lines.append(f"  {name:<20} {row['frames']:>7} {cell(row['akd'], 2):>13} {cell(row['mouth_lmd'], 2):>6} "
                     f"{cell(row['eye_lmd'], 2):>6} {row['akd_missed']:>11} {cell(row['identity'], 3):>16}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from ..checkpoint import load_model

    if args.audio:
        from .audio import run_audio_eval

        return run_audio_eval(args.data, args.audio_model, args.split, args.json)

    pipeline = TalkingHeadPipeline(load_model(args.model, device=args.device), device=args.device,
                                   output_size=args.size)
    with torch.no_grad():
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
    parser.add_argument("--size", type=int, metavar="S", help="output size rendered and scored at (default: the "
                        "model's, 2x its internal resolution with the composite head); prepared frames are resized to it")
    parser.add_argument("--stride", type=int, default=1, help="use every N-th frame for self-reenactment")
    parser.add_argument("--cross-stride", type=int, default=5, help="every N-th driving frame for cross-identity")
    parser.add_argument("--no-identity", action="store_true", help="skip the identity distance")
    parser.add_argument("--json", help="also write the report as JSON")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--audio", action="store_true", help="the audio-to-code model instead (sdk.eval.audio): "
                        "each test clip driven by its own speech, mouth opening and head motion at the mesh level")
    parser.add_argument("--audio-model", default="default", help="with --audio: the audio model (default sdk/assets/audio)")
    parser.set_defaults(run=_run)

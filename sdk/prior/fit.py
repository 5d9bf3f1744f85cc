"""Fitting the face prior on a prepared data folder's train split, and measuring it on its test split.

1. Canonical neutral face (generalised Procrustes): start from one clip's median mesh; then
   repeatedly align every frame to the current canonical face (weighted Procrustes on the rigid
   points), take each clip's neutral (`sdk.prior.neutral`), average the neutrals (per identity
   first, so people with many clips count once), bring the mean to the canonical frame
   (`sdk.prior.canonical`) and re-derive the rigid weights, until it moves less than `tolerance`.
2. Expression basis: uncentred PCA of every train frame's pose-normalised mesh minus its clip's
   neutral (`sdk.prior.basis`).
3. Controls: units and the two linear maps by least squares on the same frames (`sdk.prior.controls`).
4. The rigid residual limit: `residual_margin` x the train frames' `residual_quantile` quantile.

Long clips are subsampled evenly to `max_frames_per_clip` so that a few long talks do not decide
the basis. Frames without a face (NaN mesh) are left out and counted.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..data.datasets import PreparedClip, load_landmarks, read_prepared_manifest
from ..errors import SdkError
from ..face.regions import MESH_REGIONS
from .basis import ExpressionBasis, fit_basis
from .canonical import to_canonical_frame
from .controls import CONTROL_NAMES, ControlMap, fit_controls
from .features import measure_features
from .neutral import NeutralConfig, clip_neutral
from .prior_file import FacePrior
from .procrustes import Similarity, fit_similarity

log = logging.getLogger(__name__)

MOUTH = MESH_REGIONS["lips"]
EYES = np.concatenate([MESH_REGIONS["left_eye"], MESH_REGIONS["right_eye"]])
DATA_NOTE = ("fitted on the train split of the shared talking-head data, whose clips carry their own "
             "licenses (several non-commercial or research-only): for evaluating and developing this project only")


@dataclass(frozen=True)
class FitConfig:
    """components: E; size: crop side the meshes are measured at (errors are in its pixels);
    max_frames_per_clip: even subsampling of longer clips; iterations / tolerance: canonical-face
    alignment rounds and the RMS change (canonical units) that ends them; report_dims: E' at which
    the report measures the basis (those <= E)."""

    components: int = 32
    size: int = 256
    max_frames_per_clip: int = 400
    iterations: int = 8
    tolerance: float = 1e-4
    neutral: NeutralConfig = NeutralConfig()
    residual_quantile: float = 0.999
    residual_margin: float = 1.5
    report_dims: tuple[int, ...] = (8, 16, 24, 32)

    def __post_init__(self) -> None:
        if not 1 <= self.components <= 256:
            raise ValueError(f"components must be in [1, 256], got {self.components}")
        if self.max_frames_per_clip < 1 or self.iterations < 1 or self.size < 2:
            raise ValueError("max_frames_per_clip, iterations must be >= 1 and size >= 2")


@dataclass
class ClipMeshes:
    """One clip's usable meshes: frames (T, 478, 3) finite, in pixels at the fit size."""

    clip: PreparedClip
    frames: np.ndarray
    dropped: int


@dataclass
class AlignedClip:
    """A clip aligned to the canonical face: similarity (T,), normalized (T, 478, 3), neutral (478, 3)."""

    meshes: ClipMeshes
    similarity: Similarity
    normalized: np.ndarray
    neutral: np.ndarray


@dataclass
class FitReport:
    """What the fit used and how well the prior describes the test split (see `table`)."""

    data: dict = field(default_factory=dict)
    alignment: dict = field(default_factory=dict)
    explained: dict = field(default_factory=dict)
    reconstruction_px: dict = field(default_factory=dict)
    identity: dict = field(default_factory=dict)
    controls: dict = field(default_factory=dict)
    half_precision_px: float = 0.0

    def table(self) -> str:
        """The fit table: energy explained, test reconstruction error, identity check."""
        lines = [f"train: {self.data['train']['clips']} clips, {self.data['train']['identities']} identities, "
                 f"{self.data['train']['frames']} frames used ({self.data['train']['dropped']} without a face); "
                 f"test: {self.data['test']['clips']} clips, {self.data['test']['frames']} frames",
                 f"canonical face: {self.alignment['iterations']} alignment rounds (last change "
                 f"{self.alignment['last_change']:.2e}), {self.alignment['rigid_points']} rigid points; rigid "
                 f"residual median {self.alignment['residual_median']:.4f}, "
                 f"limit {self.alignment['residual_limit']:.4f}",
                 "",
                 "| E | energy explained train | test | test error px all | mouth | eyes | identity / expression |",
                 "| --- | --- | --- | --- | --- | --- | --- |"]
        for dims, errors in self.reconstruction_px.items():
            explained = self.explained.get(dims, {"train": 0.0, "test": 0.0})
            ratio = f"{self.identity[dims]['ratio']:.2f}" if dims in self.identity else "-"
            lines.append(f"| {dims} | {explained['train']:.3f} | {explained['test']:.3f} | {errors['all']:.3f} | "
                         f"{errors['mouth']:.3f} | {errors['eyes']:.3f} | {ratio} |")
        lines += ["", "E = 0: each test clip's neutral face alone (the error a still frame would make). Errors are "
                  f"mean x-y distances at {self.data['size']}² after re-posing; identity / expression: RMS "
                  "spread of the test clips' neutral codes around their mean over the RMS of expression "
                  "moves (frame code minus its clip's neutral code).", "",
                  "| control | unit (canonical) | test R² (read from coefficients) |", "| --- | --- | --- |"]
        for name, entry in self.controls.items():
            lines.append(f"| {name} | {entry['unit']:.4f} | {entry['test_r2']:.3f} |")
        lines.append(f"\nfp16 basis: changes the test error at E = max by {self.half_precision_px:.4f} px")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {key: ({str(k): v for k, v in value.items()} if isinstance(value, dict) else value)
                for key, value in asdict(self).items()}


def load_split(root: Path, split: str, config: FitConfig) -> list[ClipMeshes]:
    """The split's clips with their finite meshes (evenly subsampled to max_frames_per_clip)."""
    clips = []
    for clip in read_prepared_manifest(root, split):
        points = load_landmarks(clip, config.size)
        if points is None:
            raise SdkError(f"{clip.directory}: no landmarks.npy; re-run `python -m sdk data prepare`")
        finite = points[np.isfinite(points).all(axis=(1, 2))].astype(np.float64)
        dropped = len(points) - len(finite)
        if len(finite) > config.max_frames_per_clip:
            finite = finite[np.linspace(0, len(finite) - 1, config.max_frames_per_clip).round().astype(int)]
        if len(finite):
            clips.append(ClipMeshes(clip, finite, dropped))
        else:
            log.warning("%s: no frame with a face; skipped", clip.id)
    if not clips:
        raise SdkError(f"{root}: no {split} clip has a frame with a face mesh")
    return clips


def align(clips: list[ClipMeshes], canonical: np.ndarray, weights: np.ndarray,
          neutral: NeutralConfig) -> list[AlignedClip]:
    """Align every clip's frames to `canonical` and take each clip's neutral."""
    aligned = []
    for meshes in clips:
        similarity = fit_similarity(canonical, meshes.frames, weights)
        normalized = similarity.invert(meshes.frames)
        aligned.append(AlignedClip(meshes, similarity, normalized, clip_neutral(normalized, neutral)))
    return aligned


def identity_mean(aligned: list[AlignedClip]) -> np.ndarray:
    """(478, 3) mean of the clips' neutrals, each identity's clips averaged first."""
    by_identity: dict[str, list[np.ndarray]] = {}
    for clip in aligned:
        by_identity.setdefault(clip.meshes.clip.identity, []).append(clip.neutral)
    return np.mean([np.mean(neutrals, axis=0) for neutrals in by_identity.values()], axis=0)


def fit_canonical(train: list[ClipMeshes], config: FitConfig) -> tuple[np.ndarray, np.ndarray, list[AlignedClip], dict]:
    """Generalised Procrustes (module docstring, step 1) -> canonical, weights, the aligned train clips, stats."""
    canonical, weights = to_canonical_frame(np.median(train[0].frames, axis=0))
    change, rounds = np.inf, 0
    while rounds < config.iterations and change >= config.tolerance:
        aligned = align(train, canonical, weights, config.neutral)
        updated, weights = to_canonical_frame(identity_mean(aligned))
        change = float(np.sqrt(((updated - canonical) ** 2).sum(-1).mean()))
        canonical, rounds = updated, rounds + 1
        log.info("canonical face round %d: change %.2e", rounds, change)
    aligned = align(train, canonical, weights, config.neutral)
    return canonical, weights, aligned, {"iterations": rounds, "last_change": change,
                                         "rigid_points": int((weights > 0).sum())}


def rigid_residuals(aligned: list[AlignedClip], canonical: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(N,) weighted RMS distance of every frame's rigid points from the canonical face."""
    w = weights / weights.sum()
    return np.concatenate([np.sqrt(((clip.normalized - canonical) ** 2).sum(-1) @ w) for clip in aligned])


def reconstruction_errors(aligned: list[AlignedClip], basis: ExpressionBasis, dims: int,
                          components: np.ndarray | None = None) -> dict[str, float]:
    """Mean x-y pixel error of the frames rebuilt from their clip neutral + `dims` coefficients, re-posed."""
    if components is not None:
        basis = ExpressionBasis(components, basis.energy, basis.total_energy)
    sums = {"all": 0.0, "mouth": 0.0, "eyes": 0.0}
    count = 0
    for clip in aligned:
        offsets = clip.normalized - clip.neutral
        rebuilt = clip.neutral + (basis.decode(basis.encode(offsets, dims)) if dims else 0.0)
        error = np.linalg.norm(clip.similarity.apply(rebuilt)[..., :2] - clip.meshes.frames[..., :2], axis=-1)
        sums["all"] += error.mean(-1).sum()
        sums["mouth"] += error[:, MOUTH].mean(-1).sum()
        sums["eyes"] += error[:, EYES].mean(-1).sum()
        count += len(error)
    return {key: value / count for key, value in sums.items()}


def identity_check(aligned: list[AlignedClip], basis: ExpressionBasis, canonical: np.ndarray, dims: int) -> dict:
    """How far apart different people's neutral codes are, against how far expressions move codes."""
    neutral_codes = np.stack([basis.encode(clip.neutral - canonical, dims) for clip in aligned])
    identity = float(np.sqrt(((neutral_codes - neutral_codes.mean(0)) ** 2).sum(-1).mean()))
    moves = np.concatenate([basis.encode(clip.normalized - clip.neutral, dims) for clip in aligned])
    expression = float(np.sqrt((moves ** 2).sum(-1).mean()))
    return {"identity_rms": identity, "expression_rms": expression, "ratio": identity / expression}


def feature_deltas(aligned: list[AlignedClip]) -> np.ndarray:
    """(N, 6) every frame's features minus its clip neutral's."""
    return np.concatenate([measure_features(clip.normalized) - measure_features(clip.neutral) for clip in aligned])


def measure_on_test(basis: ExpressionBasis, controls: ControlMap, canonical: np.ndarray,
                    test: list[AlignedClip], config: FitConfig) -> FitReport:
    """The report's test figures: energy explained, reconstruction errors (fp16 basis too),
    identity check and how well controls read off coefficients match the measured ones."""
    report = FitReport()
    offsets = np.concatenate([clip.normalized - clip.neutral for clip in test])
    energy = float((offsets ** 2).sum((1, 2)).mean())
    dims_list = sorted({d for d in config.report_dims if d <= basis.size} | {basis.size})
    for dims in dims_list:
        projected = basis.encode(offsets, dims)
        report.explained[dims] = {"train": basis.explained(dims),
                                  "test": float((projected ** 2).sum(-1).mean() / energy)}
        report.identity[dims] = identity_check(test, basis, canonical, dims)
    for dims in [0, *dims_list]:
        report.reconstruction_px[dims] = reconstruction_errors(test, basis, dims)
    full = report.reconstruction_px[basis.size]
    half = reconstruction_errors(test, basis, basis.size, basis.components.astype(np.float16).astype(np.float64))
    report.half_precision_px = max(abs(half[key] - full[key]) for key in full)
    measured = controls.control_values(feature_deltas(test))
    read = controls.read(basis.encode(offsets))
    for index, name in enumerate(CONTROL_NAMES):
        variance = float(measured[:, index].var())
        error = float(((read[:, index] - measured[:, index]) ** 2).mean())
        report.controls[name] = {"unit": float(controls.units[index]),
                                 "test_r2": 1.0 - error / variance if variance > 0 else 0.0}
    return report


def fit_prior(data: str | Path, config: FitConfig = FitConfig()) -> tuple[FacePrior, FitReport]:
    """Fit the prior on `data`'s train split (a prepared folder) and measure it on its test split."""
    from .. import __version__

    data = Path(data)
    train = load_split(data, "train", config)
    test = load_split(data, "test", config)
    canonical, weights, aligned, alignment = fit_canonical(train, config)
    offsets = np.concatenate([clip.normalized - clip.neutral for clip in aligned])
    basis = fit_basis(offsets, config.components)
    controls = fit_controls(feature_deltas(aligned), basis.encode(offsets),
                            measure_features(np.stack([clip.neutral for clip in aligned])))
    residuals = rigid_residuals(aligned, canonical, weights)
    residual_limit = float(config.residual_margin * np.quantile(residuals, config.residual_quantile))

    test_aligned = align(test, canonical, weights, config.neutral)
    report = measure_on_test(basis, controls, canonical, test_aligned, config)
    report.data = {"size": config.size, "train": _split_summary(train), "test": _split_summary(test)}
    report.alignment = {**alignment, "residual_median": float(np.median(residuals)), "residual_limit": residual_limit}
    metadata = {"fit": {"data": data.name, "split": "train", **report.data["train"], "size": config.size,
                        "max_frames_per_clip": config.max_frames_per_clip, "neutral": asdict(config.neutral),
                        "explained_train": basis.explained(),
                        "test_error_px": report.reconstruction_px[basis.size],
                        "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        "sdk_version": __version__, "note": DATA_NOTE}}
    return FacePrior(canonical, weights, basis, controls, residual_limit, metadata), report


def _split_summary(clips: list[ClipMeshes]) -> dict:
    return {"clips": len(clips), "identities": len({clip.clip.identity for clip in clips}),
            "frames": int(sum(len(clip.frames) for clip in clips)), "dropped": int(sum(clip.dropped for clip in clips))}

"""Semantic-code stream (issue 12, item 4): kbit/s per preset and per E, and the mesh error its
quantization adds, against the learned-keypoint stream on the same clips in the same run.

    python bench/semantic_codec.py [--data cache/prepared] [--split test] [--prior default]
        [--presets default low high robust] [--dims 8,16,24,32] [--model default | --no-baseline]
        [--clips N] [--frames N] [--json out/semantic_codec.json]

Codes: `SemanticEncoder` (image size 256) on every frame's tracked mesh (`landmarks.npy`) of the
split's clips; a flagged frame sends the last good code, as a sender does. Each (preset, E) row
sends the first E coefficients through `SemanticCodeEncoder` / `SemanticCodeDecoder` at 25 fps
(timestamps 40 ms apart, whatever the clip's own rate) and reports:
- kbit/s of the code stream at 25 fps, bytes per keyframe / delta frame; median ms per frame of
  this (pure Python) encoder and decoder on this machine (under load: the table says how much);
- `quantization px`: the mesh rebuilt from the decoded code against the mesh rebuilt from the
  code as it left the encoder (both: canonical face + E coefficients of the basis, posed by the
  code's pose, x-y at 256²), mean per point, all points / lips / eyes (`sdk.prior.fit` regions);
- as references in the same run: `prior px`, the prior's own reconstruction error at that E
  (`sdk.prior.fit.reconstruction_errors` on the split: what the E coefficients cannot express,
  before any quantization), and the learned-keypoint stream (baseline): today's model encodes
  every frame (at its internal resolution), its keypoints and Jacobians go through the default
  `CodecConfig`; its kbit/s, and its keypoint quantization error (mean distance per keypoint,
  pixels at 256²) for scale: keypoints are not mesh points, but the unit is the same.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sdk.codec import (SEMANTIC_PRESETS, CodecConfig, CodeDecoder, CodeEncoder, SemanticCodecConfig,
                       SemanticCodeDecoder, SemanticCodeEncoder, SemanticStreamHeader, StreamHeader)
from sdk.data.datasets import PreparedClip, load_landmarks, read_prepared_manifest
from sdk.errors import SdkError
from sdk.face.pose import rotation_from_angles
from sdk.prior import EncoderConfig, FacePrior, SemanticEncoder, load_prior
from sdk.prior.fit import EYES, MOUTH, FitConfig, align, load_split, reconstruction_errors
from sdk.prior.keypoints import from_keypoint_coords

FPS = 25
SIZE = 256  # the crop side the meshes (and every pixel figure) are at
TARGET_KBPS = 1.2
log = logging.getLogger(__name__)


@dataclass
class ClipCodes:
    """One clip's codes as the sender sends them: pose (T, 6), expression (T, E_prior)."""
    clip_id: str
    pose: np.ndarray
    expression: np.ndarray
    flagged: int  # frames that repeated the last good code (or were skipped before the first one)


@dataclass
class StreamRow:
    preset: str
    dims: int
    config: dict
    kbps: float = 0.0
    bytes_per_frame: float = 0.0
    keyframe_bytes: float = 0.0
    delta_bytes: float = 0.0
    quantization_px: dict = field(default_factory=dict)   # all / mouth / eyes: mean per point
    quantization_p99_px: dict = field(default_factory=dict)  # 99th percentile over frames of the per-frame mean
    prior_px: dict = field(default_factory=dict)          # the prior's own reconstruction error at this E
    encode_ms: float = 0.0  # median per frame, this Python codec on this machine (the sender's share)
    decode_ms: float = 0.0


@dataclass
class LearnedBaseline:
    model: str
    num_kp: int
    kbps: float
    bytes_per_frame: float
    keypoint_error_px: float  # mean distance decoded - encoded keypoint, in pixels at 256² (for scale)
    seconds: float


@dataclass
class SemanticCodecReport:
    split: str
    prior_sha256: str
    prior_components: int
    clips: list[str]
    frames: int
    flagged: int
    rows: list[StreamRow] = field(default_factory=list)
    baseline: LearnedBaseline | None = None
    target_kbps: float = TARGET_KBPS
    load_average: dict = field(default_factory=dict)
    seconds: float = 0.0


def clip_codes(prior: FacePrior, clips: list[PreparedClip], max_frames: int | None) -> list[ClipCodes]:
    """Every clip's per-frame codes (SemanticEncoder at 256²; flagged frames repeat the last good code)."""
    out = []
    for clip in clips:
        points = load_landmarks(clip, SIZE)
        if points is None:
            raise SdkError(f"{clip.directory}: no landmarks.npy; re-run `python -m sdk data prepare`")
        encoder = SemanticEncoder(prior, EncoderConfig(image_size=SIZE))
        codes = [encoder.encode(mesh).code for mesh in points[:max_frames]]
        good = [code for code in codes if code is not None]
        if good:
            out.append(ClipCodes(clip.id, np.stack([c.pose for c in good]), np.stack([c.expression for c in good]),
                                 encoder.stats.flagged + len(codes) - len(good)))
    return out


def code_meshes(prior: FacePrior, pose: np.ndarray, expression: np.ndarray) -> np.ndarray:
    """(T, 478, 2) x-y pixels at 256² of canonical face + coefficients, posed: pose (T, 6), expression (T, E)."""
    rotations = np.stack([rotation_from_angles(*angles) for angles in pose[:, :3]])
    shapes = prior.canonical + prior.basis.decode(expression) if expression.shape[1] else \
        np.broadcast_to(prior.canonical, (len(pose), *prior.canonical.shape))
    scale = np.exp(pose[:, 5]) * (SIZE - 1) / 2  # as `sdk.prior.similarity_from_pose`, for T frames at once
    centre = from_keypoint_coords(pose[:, 3:5], SIZE)
    return np.einsum("tij,tpj->tpi", rotations, shapes)[..., :2] * scale[:, None, None] + centre[:, None, :]


def run_stream(prior: FacePrior, codes: list[ClipCodes], preset: str, config: SemanticCodecConfig,
               dims: int) -> StreamRow:
    """One (preset, E) row: every clip through a fresh encoder / decoder pair."""
    header = SemanticStreamHeader.for_prior(prior, "semantic-bench", "00" * 32, SIZE, FPS, config, dims)
    row = StreamRow(preset, dims, asdict(config))
    sizes, keyframe_sizes, delta_sizes, errors, encode_ms, decode_ms = [], [], [], [], [], []
    for item in codes:
        encoder, decoder = SemanticCodeEncoder(header), SemanticCodeDecoder(header)
        decoded_pose, decoded_expression = [], []
        for index in range(len(item.pose)):
            started = time.perf_counter()
            packet = encoder.encode(item.pose[index], item.expression[index], index * 1000 // FPS)
            encoded = time.perf_counter()
            frame = decoder.decode(packet)
            encode_ms.append(1000 * (encoded - started))
            decode_ms.append(1000 * (time.perf_counter() - encoded))
            sizes.append(len(packet))
            (keyframe_sizes if frame.keyframe else delta_sizes).append(len(packet))
            decoded_pose.append(frame.pose)
            decoded_expression.append(frame.expression)
        sent = code_meshes(prior, item.pose, item.expression[:, :dims])
        received = code_meshes(prior, np.stack(decoded_pose), np.stack(decoded_expression))
        errors.append(np.linalg.norm(received - sent, axis=-1))
    error = np.concatenate(errors)
    row.bytes_per_frame = float(np.mean(sizes))
    row.kbps = row.bytes_per_frame * 8 * FPS / 1000
    row.keyframe_bytes = float(np.mean(keyframe_sizes))
    row.delta_bytes = float(np.mean(delta_sizes)) if delta_sizes else 0.0
    row.encode_ms, row.decode_ms = float(np.median(encode_ms)), float(np.median(decode_ms))
    for name, points in (("all", slice(None)), ("mouth", MOUTH), ("eyes", EYES)):
        per_frame = error[:, points].mean(-1)
        row.quantization_px[name] = float(per_frame.mean())
        row.quantization_p99_px[name] = float(np.quantile(per_frame, 0.99))
    return row


def prior_errors(data: Path, split: str, clip_ids: list[str], prior: FacePrior, dims_list: list[int]
                 ) -> dict[int, dict]:
    """The prior's own reconstruction error (px at 256²) at each E on those clips, as its fit
    measures it (each clip's neutral + E coefficients; at most 400 frames per clip)."""
    meshes = [clip for clip in load_split(data, split, FitConfig(size=SIZE)) if clip.clip.id in clip_ids]
    aligned = align(meshes, prior.canonical, prior.weights, FitConfig().neutral)
    return {dims: reconstruction_errors(aligned, prior.basis, dims) for dims in dims_list}


def learned_baseline(model_name: str, clips: list[PreparedClip], max_frames: int | None) -> LearnedBaseline:
    """Today's stream on the same clips: the model's keypoints + Jacobians through the default CodecConfig."""
    import torch

    from sdk.checkpoint import load_model
    from sdk.data.datasets import load_frame
    from sdk.media import to_tensor

    started = time.perf_counter()
    model = load_model(model_name)
    cfg = model.cfg
    header = StreamHeader(cfg.name, "00" * 32, cfg.num_kp, cfg.resolution, FPS, CodecConfig())
    sizes, errors = [], []
    with torch.inference_mode():
        for clip in clips:
            encoder, decoder = CodeEncoder(header), CodeDecoder(header)
            for index in range(clip.frames if max_frames is None else min(clip.frames, max_frames)):
                # averaged down to the internal resolution, as `python -m sdk bench codec` does
                code = model.encode(to_tensor(load_frame(clip.frame_path(index), cfg.resolution)))
                keypoints, jacobians = code.value[0].numpy(), code.jacobian[0].numpy()
                packet = encoder.encode(keypoints, jacobians, index * 1000 // FPS)
                sizes.append(len(packet))
                errors.append(np.linalg.norm(decoder.decode(packet).keypoints - keypoints, axis=-1).mean())
    mean = float(np.mean(sizes))
    return LearnedBaseline(cfg.name, cfg.num_kp, mean * 8 * FPS / 1000, mean,
                           float(np.mean(errors)) * (SIZE - 1) / 2, time.perf_counter() - started)


def run_bench(data: Path, split: str, prior: FacePrior, presets: list[str], dims_list: list[int],
              model: str | None, max_clips: int | None = None, max_frames: int | None = None) -> SemanticCodecReport:
    started = time.perf_counter()
    if prior.sha256 is None:
        raise SdkError("the bench needs a face prior loaded from a file")
    too_many = [dims for dims in dims_list if dims > prior.components]
    if too_many:
        raise SdkError(f"--dims {too_many}: the face prior has {prior.components} coefficients")
    clips = read_prepared_manifest(data, split, min_frames=2)[:max_clips]
    if not clips:
        raise SdkError(f"{data}: no {split} clips")
    load_before = os.getloadavg()
    codes = clip_codes(prior, clips, max_frames)
    report = SemanticCodecReport(split, prior.sha256, prior.components, [c.clip_id for c in codes],
                                 sum(len(c.pose) for c in codes), sum(c.flagged for c in codes))
    own = prior_errors(data, split, report.clips, prior, dims_list)
    for name in presets:
        for dims in dims_list:
            row = run_stream(prior, codes, name, SemanticCodecConfig.preset(name), dims)
            row.prior_px = own[dims]
            report.rows.append(row)
            log.info("%s E=%d: %.3f kbit/s, %.3f px", name, dims, row.kbps, row.quantization_px["all"])
    if model is not None:
        report.baseline = learned_baseline(model, [c for c in clips if c.id in report.clips], max_frames)
    report.load_average = {"before": load_before, "after": os.getloadavg(), "cpus": os.cpu_count()}
    report.seconds = time.perf_counter() - started
    return report


def format_report(report: SemanticCodecReport) -> str:
    lines = [f"semantic code stream, {report.split} split: {len(report.clips)} clips, {report.frames} frames "
             f"({report.flagged} flagged), at {FPS} fps; prior {report.prior_sha256[:16]} (E = "
             f"{report.prior_components}); pixels at {SIZE}²; load average "
             f"{report.load_average['before'][0]:.2f} -> {report.load_average['after'][0]:.2f} on "
             f"{report.load_average['cpus']} CPUs",
             "", "| preset | E | kbit/s | vs learned | B/keyframe | B/delta | quantization px all / mouth / eyes "
             "| p99 all | prior px all / mouth / eyes | encode / decode ms |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    base = report.baseline.kbps if report.baseline else None
    for row in report.rows:
        q, p = row.quantization_px, row.prior_px
        ratio = f"{row.kbps / base:.2f}x" if base else "-"
        lines.append(f"| {row.preset} | {row.dims} | {row.kbps:.3f} | {ratio} | {row.keyframe_bytes:.1f} | "
                     f"{row.delta_bytes:.2f} | {q['all']:.3f} / {q['mouth']:.3f} / {q['eyes']:.3f} | "
                     f"{row.quantization_p99_px['all']:.3f} | {p['all']:.3f} / {p['mouth']:.3f} / {p['eyes']:.3f} | "
                     f"{row.encode_ms:.2f} / {row.decode_ms:.2f} |")
    if report.baseline:
        b = report.baseline
        lines.append(f"\nbaseline (learned keypoints, {b.model}, K = {b.num_kp}, CodecConfig default): "
                     f"{b.kbps:.3f} kbit/s, {b.bytes_per_frame:.2f} B/frame, keypoint quantization "
                     f"{b.keypoint_error_px:.3f} px at {SIZE}² (mean per keypoint)")
    lines.append(f"target: default preset <= {report.target_kbps} kbit/s with quantization well below the prior's "
                 f"own error; took {report.seconds:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("cache/prepared"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--prior", default="default")
    parser.add_argument("--presets", nargs="+", default=list(SEMANTIC_PRESETS))
    parser.add_argument("--dims", default="8,16,24,32", help="comma-separated E values")
    parser.add_argument("--model", default="default", help="model of the learned-keypoint baseline")
    parser.add_argument("--no-baseline", action="store_true", help="skip the learned-keypoint baseline")
    parser.add_argument("--clips", type=int, help="use at most this many clips")
    parser.add_argument("--frames", type=int, help="use at most this many frames per clip")
    parser.add_argument("--json", type=Path, default=Path("out/semantic_codec.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        dims = [int(part) for part in args.dims.split(",") if part.strip()]
        report = run_bench(args.data, args.split, load_prior(args.prior), args.presets, dims,
                           None if args.no_baseline else args.model, args.clips, args.frames)
    except (SdkError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(asdict(report), indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

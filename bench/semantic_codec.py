"""Semantic-code stream (issue 12, item 4): kbit/s per preset and per E, the mesh error it adds, and
(with a face-prior model) the rendered quality, against the learned-keypoint stream on the same
clips in the same run: the seed's Fig. 7 (bytes per frame against quality, both codes side by side).

    python bench/semantic_codec.py [--data cache/prepared] [--split test] [--prior default]
        [--presets default fine low high robust] [--dims 8,16,24,32] [--model default | --no-baseline]
        [--clips N] [--frames N] [--json out/semantic_codec.json]
        [--render-model runs/prior/model [--render-clips 3] [--render-frames 100] [--render-stride 5]
         [--render-presets ...] [--render-dims preset | 8,16] [--render-learned-presets default low]]

Codes: `SemanticEncoder` (image size 256) on every frame's tracked mesh (`landmarks.npy`) of the
split's clips; a flagged frame sends the last good code, as a sender does. Each (preset, E) row
sends the first E coefficients through `SemanticCodeEncoder` / `SemanticCodeDecoder` at 25 fps
(timestamps 40 ms apart, whatever the clip's own rate; each preset also at its own E, when it
names one) and reports:
- kbit/s of the code stream at 25 fps, bytes per keyframe / delta frame; median ms per frame of
  this (pure Python) encoder and decoder on this machine (under load: the table says how much);
- `quantization px`: the mesh rebuilt from the decoded code against the mesh rebuilt from the
  code as it left the encoder (both: canonical face + E coefficients of the basis, posed by the
  code's pose, x-y at 256²), mean per point, all points / lips / eyes (`sdk.prior.fit` regions);
- `code px`: what the stream loses of the sender's whole code (truncation to E and quantization
  together): the mesh of the decoded code against the mesh of the code with all the prior's
  coefficients, both with the expression relative to the clip's first code (what relative
  motion moves the avatar by), mean per point; the default preset must keep it no worse than
  the learned stream's keypoint quantization error (below), at <= 1.2 kbit/s;
- as references in the same run: `prior px`, the prior's own reconstruction error at that E
  (`sdk.prior.fit.reconstruction_errors` on the split: what the E coefficients cannot express,
  before any quantization), and the learned-keypoint stream (baseline): today's model encodes
  every frame (at its internal resolution), its keypoints and Jacobians go through the default
  `CodecConfig`; its kbit/s, and its keypoint quantization error (mean distance per keypoint,
  pixels at 256²) for scale: keypoints are not mesh points, but the unit is the same.

Rendered quality (`--render-model`, a face-prior model, and the learned baseline `--model`): on
the first `--render-clips` clips (their first `--render-frames` frames), self-reenactment as
`python -m sdk eval` does it: frame 0 is the source, every frame's code goes through a fresh
encoder / decoder of the row's setting (every frame: the prediction needs them all), and every
`--render-stride`-th frame is rendered from the decoded code (absolute motion) at the model's
output size and scored against the real frame: PSNR, AKD, mouth and eye landmark distance
(`sdk.eval`: the MediaPipe mesh of the prediction against the prepared one, px at 256²). Rows:
each semantic preset (at its own E, or at each `--render-dims`), each learned preset, and both
codes uncoded (as the sender has them, no codec). Slow on a CPU: seconds per rendered frame and
row under load; the JSON records the load average.
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

from sdk.codec import (PRESETS, SEMANTIC_PRESETS, CodecConfig, CodeDecoder, CodeEncoder, SemanticCodecConfig,
                       SemanticCodeDecoder, SemanticCodeEncoder, SemanticStreamHeader, StreamHeader)
from sdk.data.datasets import PreparedClip, load_frame, load_landmarks, read_prepared_manifest
from sdk.errors import SdkError
from sdk.face.pose import rotation_from_angles
from sdk.media import resize_image
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
    code_px: dict = field(default_factory=dict)  # truncation to E + quantization, against the whole code (relative)
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
class RenderRow:
    """One code and setting, rendered: `preset` is a codec preset or "uncoded" (no codec)."""
    code: str  # "semantic" or "learned"
    preset: str
    dims: int | None  # E sent (semantic)
    bytes_per_frame: float = 0.0
    kbps: float = 0.0
    quality: dict = field(default_factory=dict)  # `sdk.eval.reenactment.MetricSums.summary()`


@dataclass
class RenderReport:
    model: str
    learned_model: str | None
    clips: list[str]
    frames_per_clip: int
    stride: int
    output_size: int
    rows: list[RenderRow] = field(default_factory=list)
    seconds: float = 0.0


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
    render: RenderReport | None = None
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
    sizes, keyframe_sizes, delta_sizes, errors, code_errors, encode_ms, decode_ms = [], [], [], [], [], [], []
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
        decoded_pose, decoded_expression = np.stack(decoded_pose), np.stack(decoded_expression)
        sent = code_meshes(prior, item.pose, item.expression[:, :dims])
        received = code_meshes(prior, decoded_pose, decoded_expression)
        errors.append(np.linalg.norm(received - sent, axis=-1))
        whole = code_meshes(prior, item.pose, item.expression - item.expression[0])
        moved = code_meshes(prior, decoded_pose, decoded_expression - decoded_expression[0])
        code_errors.append(np.linalg.norm(moved - whole, axis=-1))
    error, code_error = np.concatenate(errors), np.concatenate(code_errors)
    row.bytes_per_frame = float(np.mean(sizes))
    row.kbps = row.bytes_per_frame * 8 * FPS / 1000
    row.keyframe_bytes = float(np.mean(keyframe_sizes))
    row.delta_bytes = float(np.mean(delta_sizes)) if delta_sizes else 0.0
    row.encode_ms, row.decode_ms = float(np.median(encode_ms)), float(np.median(decode_ms))
    for name, points in (("all", slice(None)), ("mouth", MOUTH), ("eyes", EYES)):
        per_frame = error[:, points].mean(-1)
        row.quantization_px[name] = float(per_frame.mean())
        row.quantization_p99_px[name] = float(np.quantile(per_frame, 0.99))
        row.code_px[name] = float(code_error[:, points].mean())
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


def preset_dims(config: SemanticCodecConfig, prior: FacePrior, model_dims: int | None = None) -> int:
    """The E a stream of `config` sends with `prior` (and a model taking `model_dims`), as `sdk.live` makes it."""
    wanted = prior.components if config.expression_dims is None else config.expression_dims
    return min(wanted, prior.components, prior.components if model_dims is None else model_dims)


def stream_rows(presets: list[str], dims_list: list[int], prior: FacePrior) -> list[tuple[str, int]]:
    """(preset, E) rows: each preset at every E of `dims_list`, and at its own E when it names one."""
    rows = []
    for name in presets:
        config = SemanticCodecConfig.preset(name)
        own = [] if config.expression_dims is None else [preset_dims(config, prior)]
        rows += [(name, dims) for dims in sorted(set(dims_list) | set(own))]
    return rows


class _Scorer:
    """Renders decoded codes of one pipeline on one clip and scores them (`sdk.eval`'s metrics)."""

    def __init__(self, pipeline, akd, frames: list[np.ndarray], landmarks: np.ndarray, scored: list[int]):
        self.pipeline, self.akd, self.scored = pipeline, akd, scored
        size = pipeline.output_size
        self.source = resize_image(frames[0], size, size)
        self.targets = {index: resize_image(frames[index], size, size) for index in scored}
        self.landmarks = landmarks

    def score(self, sums, state, codes: list) -> None:
        """codes: per frame the code to render (None: the source is shown, no code yet)."""
        for index in self.scored:
            prediction = self.source if codes[index] is None else self.pipeline.render(state, codes[index])
            sums.add(prediction, self.targets[index], self.landmarks[index, :, :2], self.akd)


def render_quality(model_dir: str, learned_model: str | None, clips: list[PreparedClip], prior: FacePrior,
                   presets: list[str], render_dims: list[int] | None, learned_presets: list[str],
                   max_frames: int, stride: int) -> RenderReport:
    """Self-reenactment of the clips through each row's codec, rendered and scored (module docstring)."""
    from sdk.checkpoint import load_model
    from sdk.eval.metrics import KeypointDistance
    from sdk.eval.reenactment import MetricSums
    from sdk.pipeline import MotionConfig, TalkingHeadPipeline

    started = time.perf_counter()
    absolute = MotionConfig(mode="absolute")
    semantic = TalkingHeadPipeline(load_model(model_dir), absolute)
    if not semantic.is_semantic:
        raise SdkError(f"--render-model {model_dir}: {semantic.cfg.name} uses learned keypoints; give a face-prior "
                       "model")
    if semantic.backend.prior().sha256 != prior.sha256:
        raise SdkError(f"--render-model {model_dir} was trained with face prior "
                       f"{semantic.backend.prior().sha256[:16]}, not --prior {prior.sha256[:16]}")
    learned = TalkingHeadPipeline(load_model(learned_model), absolute) if learned_model else None
    model_dims = semantic.cfg.semantic.expression_dims
    # uncoded: the sender's whole code (the model uses up to its E of it)
    rows: list[tuple[str, str, int | None, object]] = [("semantic", "uncoded", min(prior.components, model_dims), None)]
    for name in presets:
        config = SemanticCodecConfig.preset(name)
        for dims in render_dims or [preset_dims(config, prior, model_dims)]:
            rows.append(("semantic", name, dims, config))
    if learned is not None:
        rows += [("learned", "uncoded", None, None)] + [("learned", name, None, CodecConfig.preset(name))
                                                         for name in learned_presets]
    sums = {index: MetricSums() for index in range(len(rows))}
    sizes: dict[int, list[int]] = {index: [] for index in range(len(rows))}
    report = RenderReport(semantic.cfg.name, learned.cfg.name if learned else None, [], max_frames, stride,
                          semantic.output_size)
    akd = KeypointDistance()
    try:
        for clip in clips:
            meshes = load_landmarks(clip, SIZE)
            count = min(clip.frames, max_frames)
            if meshes is None or count < 2 or not np.isfinite(meshes[0]).all():
                log.warning("%s: no landmarks, too short, or no mesh on the source frame: not rendered", clip.id)
                continue
            report.clips.append(clip.id)
            frames = [load_frame(clip.frame_path(index), SIZE) for index in range(count)]
            scored = list(range(stride, count, stride))
            encoder = SemanticEncoder(prior, EncoderConfig(image_size=SIZE))
            codes = [encoder.encode(mesh).code for mesh in meshes[:count]]
            scorer = _Scorer(semantic, akd, frames, meshes, scored)
            state = semantic.prepare_source(scorer.source, meshes[0] * (semantic.output_size / SIZE))
            learned_codes = learned_scorer = learned_state = None
            if learned is not None:
                learned_codes = [learned.encode(frame) for frame in frames]
                learned_scorer = _Scorer(learned, akd, frames, meshes, scored)
                learned_state = learned.prepare_source(learned_scorer.source)
            for index, (code, preset, dims, config) in enumerate(rows):
                log.info("render %s: %s %s E=%s", clip.id, code, preset, dims)
                # "uncoded": the codes as the sender has them
                if code == "semantic":
                    decoded = codes if config is None else _through_semantic_codec(codes, prior, config, dims,
                                                                                   sizes[index])
                    scorer.score(sums[index], state, decoded)
                else:
                    decoded = learned_codes if config is None else _through_learned_codec(
                        learned_codes, learned.cfg, config, sizes[index])
                    learned_scorer.score(sums[index], learned_state, decoded)
    finally:
        akd.close()
    for index, (code, preset, dims, config) in enumerate(rows):
        mean = float(np.mean(sizes[index])) if sizes[index] else 0.0
        report.rows.append(RenderRow(code, preset, dims, mean, mean * 8 * FPS / 1000, sums[index].summary()))
    report.seconds = time.perf_counter() - started
    return report


def _through_semantic_codec(codes: list, prior: FacePrior, config: SemanticCodecConfig, dims: int,
                            sizes: list[int]) -> list:
    """Per frame the decoded code (None until the first code: nothing is sent before it)."""
    from sdk.prior import SemanticCode

    header = SemanticStreamHeader.for_prior(prior, "semantic-bench", "00" * 32, SIZE, FPS, config, dims)
    encoder, decoder = SemanticCodeEncoder(header), SemanticCodeDecoder(header, prior)
    decoded = []
    for index, code in enumerate(codes):
        if code is None:
            decoded.append(None)
            continue
        packet = encoder.encode(code.pose, code.expression, index * 1000 // FPS)
        sizes.append(len(packet))
        frame = decoder.decode(packet)
        decoded.append(SemanticCode(frame.pose, frame.expression))
    return decoded


def _through_learned_codec(codes: list, cfg, config: CodecConfig, sizes: list[int]) -> list:
    """Per frame the decoded keypoints (Keypoints) of the learned codes (Keypoints)."""
    from sdk.live.receiver import code_to_keypoints

    header = StreamHeader(cfg.name, "00" * 32, cfg.num_kp, cfg.resolution, FPS, config)
    encoder, decoder = CodeEncoder(header), CodeDecoder(header)
    decoded = []
    for index, code in enumerate(codes):
        packet = encoder.encode(code.value[0].numpy(), code.jacobian[0].numpy(), index * 1000 // FPS)
        sizes.append(len(packet))
        decoded.append(code_to_keypoints(decoder.decode(packet), code.value.device))
    return decoded


def run_bench(data: Path, split: str, prior: FacePrior, presets: list[str], dims_list: list[int],
              model: str | None, max_clips: int | None = None, max_frames: int | None = None,
              render: dict | None = None) -> SemanticCodecReport:
    """render: None, or `render_quality`'s model_dir, presets, render_dims, learned_presets,
    clips, max_frames, stride (the learned model is `model`)."""
    started = time.perf_counter()
    if prior.sha256 is None:
        raise SdkError("the bench needs a face prior loaded from a file")
    rows = stream_rows(presets, dims_list, prior)
    too_many = sorted({dims for _, dims in rows if dims > prior.components})
    if too_many:
        raise SdkError(f"--dims {too_many}: the face prior has {prior.components} coefficients")
    clips = read_prepared_manifest(data, split, min_frames=2)[:max_clips]
    if not clips:
        raise SdkError(f"{data}: no {split} clips")
    load_before = os.getloadavg()
    codes = clip_codes(prior, clips, max_frames)
    report = SemanticCodecReport(split, prior.sha256, prior.components, [c.clip_id for c in codes],
                                 sum(len(c.pose) for c in codes), sum(c.flagged for c in codes))
    own = prior_errors(data, split, report.clips, prior, sorted({dims for _, dims in rows}))
    for name, dims in rows:
        row = run_stream(prior, codes, name, SemanticCodecConfig.preset(name), dims)
        row.prior_px = own[dims]
        report.rows.append(row)
        log.info("%s E=%d: %.3f kbit/s, %.3f px (code %.3f px)", name, dims, row.kbps, row.quantization_px["all"],
                 row.code_px["all"])
    used = [c for c in clips if c.id in report.clips]
    if model is not None:
        report.baseline = learned_baseline(model, used, max_frames)
    if render is not None:
        render = dict(render)
        report.render = render_quality(render.pop("model_dir"), model, used[:render.pop("clips")], prior, **render)
    report.load_average = {"before": load_before, "after": os.getloadavg(), "cpus": os.cpu_count()}
    report.seconds = time.perf_counter() - started
    return report


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_report(report: SemanticCodecReport) -> str:
    lines = [f"semantic code stream, {report.split} split: {len(report.clips)} clips, {report.frames} frames "
             f"({report.flagged} flagged), at {FPS} fps; prior {report.prior_sha256[:16]} (E = "
             f"{report.prior_components}); pixels at {SIZE}²; load average "
             f"{report.load_average['before'][0]:.2f} -> {report.load_average['after'][0]:.2f} on "
             f"{report.load_average['cpus']} CPUs",
             "", "| preset | E | kbit/s | vs learned | B/keyframe | B/delta | quantization px all / mouth / eyes "
             "| p99 all | code px all / mouth / eyes | prior px all / mouth / eyes | encode / decode ms |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    base = report.baseline.kbps if report.baseline else None
    for row in report.rows:
        q, c, p = row.quantization_px, row.code_px, row.prior_px
        ratio = f"{row.kbps / base:.2f}x" if base else "-"
        lines.append(f"| {row.preset} | {row.dims} | {row.kbps:.3f} | {ratio} | {row.keyframe_bytes:.1f} | "
                     f"{row.delta_bytes:.2f} | {q['all']:.3f} / {q['mouth']:.3f} / {q['eyes']:.3f} | "
                     f"{row.quantization_p99_px['all']:.3f} | {c['all']:.3f} / {c['mouth']:.3f} / {c['eyes']:.3f} | "
                     f"{p['all']:.3f} / {p['mouth']:.3f} / {p['eyes']:.3f} | "
                     f"{row.encode_ms:.2f} / {row.decode_ms:.2f} |")
    if report.baseline:
        b = report.baseline
        lines.append(f"\nbaseline (learned keypoints, {b.model}, K = {b.num_kp}, CodecConfig default): "
                     f"{b.kbps:.3f} kbit/s, {b.bytes_per_frame:.2f} B/frame, keypoint quantization "
                     f"{b.keypoint_error_px:.3f} px at {SIZE}² (mean per keypoint)")
    default = SemanticCodecConfig.preset("default")
    own = [row for row in report.rows if row.preset == "default" and default.expression_dims in (None, row.dims)]
    if own:
        row = own[-1]
        verdict = "meets" if row.kbps <= report.target_kbps and (
            report.baseline is None or row.code_px["all"] <= report.baseline.keypoint_error_px) else "misses"
        lines.append(f"target: default preset <= {report.target_kbps} kbit/s with code px no worse than the learned "
                     f"stream's keypoint error: E = {row.dims}, {row.kbps:.3f} kbit/s, code px {row.code_px['all']:.3f}"
                     f" ({verdict} it)")
    if report.render is not None:
        lines += ["", format_render(report.render)]
    lines.append(f"took {report.seconds:.0f} s")
    return "\n".join(lines)


def format_render(render: RenderReport) -> str:
    """The Fig. 7 table: bytes per frame against rendered quality, both codes, sorted by bytes."""
    lines = [f"rendered self-reenactment ({render.model} for the semantic code, {render.learned_model or 'none'} for "
             f"the learned keypoints): {len(render.clips)} clips, first {render.frames_per_clip} frames, one in "
             f"{render.stride} scored, at {render.output_size}²; AKD / mouth / eyes in px at 256² (MediaPipe mesh; "
             "frames whose prediction it finds no face in are counted, not scored)",
             "", "| code | preset | E | B/frame | kbit/s | PSNR dB | AKD | mouth | eyes | frames (no mesh) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in sorted(render.rows, key=lambda r: (r.bytes_per_frame == 0, r.bytes_per_frame, r.code)):
        q = row.quality
        lines.append(f"| {row.code} | {row.preset} | {'-' if row.dims is None else row.dims} | "
                     f"{_number(row.bytes_per_frame or None, 2)} | {_number(row.kbps or None)} | "
                     f"{_number(q['psnr'], 2)} | {_number(q['akd'])} | {_number(q['mouth_lmd'])} | "
                     f"{_number(q['eye_lmd'])} | {q['frames']} ({q['akd_missed']}) |")
    lines.append(f"rendering took {render.seconds:.0f} s")
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
    parser.add_argument("--render-model", default=None,
                        help="a face-prior model (folder or name): also render and score the codes (slow)")
    parser.add_argument("--render-clips", type=int, default=3, help="clips to render")
    parser.add_argument("--render-frames", type=int, default=100, help="frames per rendered clip (from its start)")
    parser.add_argument("--render-stride", type=int, default=5, help="score every N-th frame")
    parser.add_argument("--render-presets", nargs="+", default=None,
                        help="semantic presets to render (default: --presets)")
    parser.add_argument("--render-dims", default="preset",
                        help="'preset' (each preset at its own E) or comma-separated E values")
    parser.add_argument("--render-learned-presets", nargs="+", default=["default", "low"], choices=list(PRESETS),
                        help="learned-keypoint presets to render")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        dims = [int(part) for part in args.dims.split(",") if part.strip()]
        render = None
        if args.render_model is not None:
            if args.render_stride < 1 or args.render_frames < 2 or args.render_clips < 1:
                raise SdkError("--render-stride >= 1, --render-frames >= 2 and --render-clips >= 1, please")
            render = dict(model_dir=args.render_model, presets=args.render_presets or args.presets,
                          render_dims=None if args.render_dims == "preset" else
                          [int(part) for part in args.render_dims.split(",") if part.strip()],
                          learned_presets=args.render_learned_presets, clips=args.render_clips,
                          max_frames=args.render_frames, stride=args.render_stride)
        report = run_bench(args.data, args.split, load_prior(args.prior), args.presets, dims,
                           None if args.no_baseline else args.model, args.clips, args.frames, render)
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

"""`python -m sdk bench codec`: the code streams' bitrate and quality against H.264 at equal quality.

Per model (default: the shipped `default`, whose stream carries learned keypoints, and `prior`,
whose stream carries the semantic code of the face mesh; `sdk.live.stream.stream_kind`), on the
prepared clips of a split, self-reenactment in absolute mode with each clip's first frame as the
source (as `python -m sdk eval`): every frame is encoded as a live sender encodes it (the keypoint
encoder on the crop, or the face prior's `SemanticEncoder` on the frame's tracked mesh, the
prepared `landmarks.npy`; a flagged mesh repeats the last good code, and frames before the first
good one have no code: the receiver shows the portrait, as live), its code goes through the
stream's codec (`sdk.live.stream`'s header, encoder and decoder) under each preset of its kind, and
the frame rendered from the decoded code is compared with the input crop (PSNR, SSIM, AKD) at the
output size S (the frames users see); "unquantized" renders the codes as they left the encoder.
Every stream kind is scored the same way, on the same frames, against the same H.264 points.

In the same run, H.264 (libx264 via PyAV, preset medium, tune zerolatency, same frame rate) codes
the input crops at two sizes: the output size S, and the model's internal resolution R (crops
averaged down to R², decoded frames enlarged back to S² and scored there, like every other row).
libx264 makes few distinct rates on these clips, so instead of searching the bitrate it encodes a
short ladder of CRF values, lowest quality first, each once, and stops as soon as every metric
reaches ours; the rate H.264 needs for our PSNR, SSIM and AKD is interpolated between the two
ladder points around our value (log bitrate, linear in the metric). Where even its lowest rate
(CRF 51: ~20 kbit/s at 256², ~10 at 128², 25 fps) beats ours, that rate is what it needs, and
the row says so. The headline, per stream kind, is H.264 kbit/s / ours at equal PSNR at the output
size. The H.264 points depend only on the clips, so models scored on the same frames share them.

Bitrates are of the code stream at 25 fps. `wire kbps` adds what the transport puts around each
packet (its default two redundant copies, AEAD prefix and tag, IPv4 + UDP headers): per-packet
overhead, which H.264 over RTP pays too, so the comparison is of the streams.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from ..codec import PRESETS, SEMANTIC_PRESETS, SemanticFrameCode
from ..data.datasets import PreparedClip, load_frame, load_landmarks, read_prepared_manifest
from ..errors import SdkError
from ..media import resize_image
from ..eval.metrics import AKD_RESOLUTION, KeypointDistance
from ..eval.reenactment import MetricSums
from ..live.receiver import pipeline_code
from ..live.sender import code_arrays
from ..live.stream import stream_decoder, stream_encoder, stream_header, stream_kind
from ..pipeline import Code, MotionConfig, TalkingHeadPipeline

FPS = 25
DEFAULT_MODELS = ("default", "prior")
# The codec presets of each stream kind this bench measures.
KIND_PRESETS = {"keypoints": PRESETS, "semantic": SEMANTIC_PRESETS}
# What the two arrays of a decoded code are, per stream kind (`sdk.live.sender.code_arrays`).
CODE_PARTS = {"keypoints": ("keypoints", "jacobians"), "semantic": ("pose", "expression")}
log = logging.getLogger(__name__)
# Bytes on the wire per frame besides the packet: the transport's redundant copies of earlier
# packets (2-byte length + packet each), their count (1), prefix (9), tag (16), IPv4 (20) + UDP (8).
WIRE_REDUNDANCY = 2
WIRE_OVERHEAD_BYTES = 2 * WIRE_REDUNDANCY + 1 + 9 + 16 + 20 + 8


@dataclass
class PresetResult:
    name: str
    config: dict
    kbps: float = 0.0
    wire_kbps: float = 0.0
    bytes_per_frame: float = 0.0
    keyframe_bytes: float = 0.0
    delta_bytes: float = 0.0
    # Per part of the code (CODE_PARTS: keypoints / jacobians, or pose / expression): mean and max
    # abs difference of the decoded code from the sent one; a part the stream does not carry is absent.
    code_error: dict[str, dict[str, float]] = field(default_factory=dict)
    quality: dict = field(default_factory=dict)


@dataclass
class H264Point:
    """H.264 at one CRF of the ladder (`crf`), or interpolated between two (`crf` None)."""
    size: int  # H.264 coded frames of size² (scored at the output size)
    crf: float | None
    kbps: float
    psnr: float
    ssim: float
    akd: float | None = None
    akd_missed: int | None = None


@dataclass
class H264Comparison:
    """H.264 at one coded size against our first preset."""
    size: int
    ladder: list[H264Point] = field(default_factory=list)  # the CRFs encoded, lowest quality first
    at_our_bitrate: H264Point | None = None  # the ladder's lowest rate when ours is below it
    matching: dict[str, H264Point | None] = field(default_factory=dict)  # metric -> H.264 at our value
    how: dict[str, str] = field(default_factory=dict)  # metric -> "interpolated" | "lowest rate" | "not reached"
    ratios: dict[str, float | None] = field(default_factory=dict)  # metric -> H.264 kbps / ours


@dataclass
class CodecBenchReport:
    model: str
    stream_kind: str  # "keypoints" | "semantic" (sdk.live.stream.stream_kind)
    num_kp: int
    resolution: int  # internal: what the codes describe
    output_size: int  # what the frames are scored (and H.264 codes them) at
    clips: list[str]
    frames: int
    quality_frames: int
    unquantized: dict = field(default_factory=dict)
    presets: list[PresetResult] = field(default_factory=list)
    h264: list[H264Comparison] = field(default_factory=list)  # at the output size, then the internal one
    headline_ratio: float | None = None  # H.264 kbps / ours at equal PSNR, H.264 at the output size
    headline_note: str = ""
    frames_without_code: int = 0  # face-prior models: frames before each clip's first good mesh
    clips_skipped: list[str] = field(default_factory=list)  # face-prior models: no mesh on the source frame
    seconds: float = 0.0


@dataclass
class _Clip:
    """What the bench keeps per clip: targets at the output size, the sender's codes, landmarks."""
    clip: PreparedClip
    targets: list[np.ndarray]          # (S, S, 3) uint8 per frame
    codes: list[Code | None]           # per frame; None: no code yet (face-prior models, no good mesh so far)
    source_mesh: np.ndarray | None     # face-prior models: (478, 3) the source frame's mesh at S²
    landmarks: np.ndarray | None       # (T, 478, 2) at 256², or None
    quality_indices: list[int]


def _model_sha256(model_name: str) -> str:
    from ..checkpoint import CHECKSUM_FILE, MODELS_DIR

    directory = Path(model_name) if Path(model_name).is_dir() else MODELS_DIR / model_name
    return (directory / CHECKSUM_FILE).read_text().split()[0]


def _load_clips(pipeline: TalkingHeadPipeline, data: Path, split: str, max_clips: int | None,
                max_frames: int | None, quality_stride: int, prepared_size: int) -> tuple[list[_Clip], list[str]]:
    """The clips with their sender codes; and the ids of clips a face-prior model cannot use
    (no mesh on the source frame)."""
    clips = read_prepared_manifest(data, split, min_frames=2)[:max_clips]
    size = pipeline.output_size
    loaded, skipped = [], []
    for clip in clips:
        count = clip.frames if max_frames is None else min(clip.frames, max_frames)
        targets = [load_frame(clip.frame_path(index), size) for index in range(count)]
        meshes = source_mesh = None
        if pipeline.is_semantic:
            meshes = load_landmarks(clip, size)
            if meshes is None:
                raise SdkError(f"{clip.directory}: no landmarks.npy, which {pipeline.cfg.name} (a face-prior "
                               "model) encodes; re-run `python -m sdk data prepare`")
            if not np.isfinite(meshes[0]).all():
                log.warning("%s: no face mesh on the source frame: not scored for %s", clip.id, pipeline.cfg.name)
                skipped.append(clip.id)
                continue
            source_mesh = meshes[0]
            pipeline.reset_encoder()  # a new driver
        # The keypoint encoder sees each crop averaged down to the internal resolution.
        codes = [pipeline.encode(target, None if meshes is None else meshes[index])
                 for index, target in enumerate(targets)]
        landmarks_path = clip.directory / "landmarks.npy"
        landmarks = (np.load(landmarks_path)[:count, :, :2] * (AKD_RESOLUTION / prepared_size)
                     if landmarks_path.is_file() else None)
        loaded.append(_Clip(clip, targets, codes, source_mesh, landmarks, list(range(0, count, quality_stride))))
        log.info("encoded %s (%d frames)", clip.id, count)
    return loaded, skipped


def _render_quality(pipeline: TalkingHeadPipeline, clips: list[_Clip], akd: KeypointDistance | None,
                    codes: list[list[Code | None]] | None) -> dict:
    """Quality of frames rendered from `codes` (per clip, per frame; None = the sender's codes
    unquantized); a frame without a code shows the source portrait, as a live receiver does."""
    quality = MetricSums()
    for position, item in enumerate(clips):
        frame_codes = item.codes if codes is None else codes[position]
        state = pipeline.prepare_source(item.targets[0], item.source_mesh)
        for index in item.quality_indices:
            code = frame_codes[index]
            prediction = item.targets[0] if code is None else pipeline.render(state, code)
            quality.add(prediction, item.targets[index],
                        None if item.landmarks is None else item.landmarks[index], akd)
    return quality.summary()


def _sent_arrays(frame: object) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A decoded frame's two code arrays as the stream carried them (Jacobians None when it has none)."""
    if isinstance(frame, SemanticFrameCode):
        return frame.pose, frame.expression
    return frame.keypoints, frame.jacobians


def _run_preset(pipeline: TalkingHeadPipeline, name: str, model_sha256: str, clips: list[_Clip]
                ) -> tuple[PresetResult, list[list[Code | None]]]:
    """Every clip's codes through a fresh encoder / decoder of preset `name` of the model's stream kind."""
    kind = stream_kind(pipeline.cfg)
    config = KIND_PRESETS[kind][name]
    prior = pipeline.backend.prior() if kind == "semantic" else None
    header = stream_header(pipeline.cfg, model_sha256, float(FPS), config, prior)
    result = PresetResult(name, asdict(config))
    decoded_codes = []
    sizes, keyframe_sizes, delta_sizes = [], [], []
    errors: dict[str, list[np.ndarray]] = {part: [] for part in CODE_PARTS[kind]}
    for item in clips:
        encoder, decoder = stream_encoder(header), stream_decoder(header, prior)
        decoded: list[Code | None] = []
        for index, code in enumerate(item.codes):
            if code is None:  # nothing is sent before the first code
                decoded.append(None)
                continue
            sent = code_arrays(code)
            packet = encoder.encode(*sent, index * 1000 // FPS)
            frame = decoder.decode(packet)
            sizes.append(len(packet))
            (keyframe_sizes if frame.keyframe else delta_sizes).append(len(packet))
            decoded.append(pipeline_code(frame, pipeline.device))
            for part, original, received in zip(CODE_PARTS[kind], sent, _sent_arrays(frame)):
                if received is not None:
                    errors[part].append(np.abs(received - original).ravel())
        decoded_codes.append(decoded)
    if not sizes:
        raise SdkError(f"{pipeline.cfg.name}: no frame of the clips has a code (no good face mesh)")
    mean = float(np.mean(sizes))
    result.bytes_per_frame = mean
    result.kbps = mean * 8 * FPS / 1000
    result.wire_kbps = ((1 + WIRE_REDUNDANCY) * mean + WIRE_OVERHEAD_BYTES) * 8 * FPS / 1000
    result.keyframe_bytes = float(np.mean(keyframe_sizes))
    result.delta_bytes = float(np.mean(delta_sizes)) if delta_sizes else 0.0
    result.code_error = {part: {"mean": float(np.mean(np.concatenate(values))),
                                "max": float(np.max(np.concatenate(values)))}
                         for part, values in errors.items() if values}
    return result, decoded_codes


def h264_round_trip(frames: list[np.ndarray], crf: float, fps: int = FPS) -> tuple[list[np.ndarray], int]:
    """Encode RGB uint8 frames (S, S, 3) with libx264 (tune zerolatency) at constant quality `crf`
    (0-51, higher is smaller), decode.

    Returns (decoded frames, total bits of the encoded packets).
    """
    import av

    size = frames[0].shape[0]
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width = encoder.height = size
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, fps)
    encoder.framerate = Fraction(fps, 1)
    encoder.options = {"preset": "medium", "tune": "zerolatency", "crf": f"{crf:g}"}
    packets = []
    for index, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        packets.extend(encoder.encode(frame))
    packets.extend(encoder.encode(None))
    bits = 8 * sum(packet.size for packet in packets)
    decoder = av.CodecContext.create("h264", "r")
    decoded = []
    for packet in packets:
        decoded.extend(f.to_ndarray(format="rgb24") for f in decoder.decode(packet))
    decoded.extend(f.to_ndarray(format="rgb24") for f in decoder.decode(None))
    if len(decoded) != len(frames):
        raise SdkError(f"H.264 round trip returned {len(decoded)} of {len(frames)} frames")
    return decoded, bits


H264Cache = dict[tuple, H264Point]  # (the scored frames, size, CRF) -> the point; `compare_h264`


def _h264_point(clips: list[_Clip], size: int, crf: float, akd: KeypointDistance | None,
                cache: H264Cache | None = None) -> H264Point:
    """H.264 at `crf` on every clip's crops brought to size², scored at the output size (AKD with
    `akd`); from `cache` when these frames were coded at this size and CRF before (with AKD if wanted)."""
    frames_key = tuple((item.clip.id, len(item.targets), tuple(item.quality_indices), item.targets[0].shape[0])
                       for item in clips)
    key = (frames_key, size, crf)
    if cache is not None and key in cache and (akd is None or cache[key].akd_missed is not None):
        return cache[key]
    point = _h264_point_of(clips, size, crf, akd)
    if cache is not None:
        cache[key] = point
    return point


def _h264_point_of(clips: list[_Clip], size: int, crf: float, akd: KeypointDistance | None) -> H264Point:
    quality = MetricSums()
    bits = frames = 0
    for item in clips:
        output_size = item.targets[0].shape[0]
        decoded, clip_bits = h264_round_trip([resize_image(target, size, size) for target in item.targets], crf)
        bits += clip_bits
        frames += len(item.targets)
        for index in item.quality_indices:
            quality.add(resize_image(decoded[index], output_size, output_size), item.targets[index],
                        None if item.landmarks is None else item.landmarks[index], akd)
    summary = quality.summary()
    kbps = bits / (frames / FPS) / 1000
    log.info("H.264 %d² at CRF %g: %.1f kbit/s, PSNR %.2f", size, crf, kbps, summary["psnr"])
    return H264Point(size, crf, kbps, summary["psnr"], summary["ssim"], summary["akd"],
                     summary["akd_missed"] if akd is not None else None)


METRICS = {"psnr": True, "ssim": True, "akd": False}  # metric -> higher is better
# CRF ladder, lowest quality first: 51 is the most libx264 compresses; 3 CRF steps are ~1.25x in rate here.
H264_CRFS = (51, 48, 45, 42, 39, 36, 33, 30, 27, 24, 21, 18)


def _reaches(point: H264Point, metric: str, goal: float) -> bool:
    value = getattr(point, metric)
    if value is None:
        return False
    return value >= goal if METRICS[metric] else value <= goal


def _between(low: H264Point, high: H264Point, weight: float) -> H264Point:
    """The point `weight` of the way from `low` to `high`: log bitrate, metrics and CRF linear."""
    def mix(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a + weight * (b - a)

    kbps = math.exp(math.log(low.kbps) + weight * (math.log(high.kbps) - math.log(low.kbps)))
    return H264Point(low.size, None, kbps, mix(low.psnr, high.psnr), mix(low.ssim, high.ssim),
                     mix(low.akd, high.akd))


def match_on_ladder(ladder: list[H264Point], metric: str, goal: float) -> tuple[H264Point | None, str]:
    """H.264 where `metric` reaches `goal` on a ladder (lowest quality first): its first point if
    that already reaches it ("lowest rate"), interpolated between the points around it
    ("interpolated"), or None ("not reached")."""
    for position, point in enumerate(ladder):
        if _reaches(point, metric, goal):
            if position == 0:
                return point, "lowest rate"
            below = ladder[position - 1]
            a, b = getattr(below, metric), getattr(point, metric)
            weight = 1.0 if a is None or a == b else min(max((goal - a) / (b - a), 0.0), 1.0)
            return _between(below, point, weight), "interpolated"
    return None, "not reached"


def at_bitrate(ladder: list[H264Point], kbps: float) -> H264Point:
    """H.264's quality at `kbps` on a ladder: interpolated where the ladder spans it, else its nearest end
    (below the lowest rate libx264 makes, that rate's point)."""
    ordered = sorted(ladder, key=lambda point: point.kbps)
    if kbps <= ordered[0].kbps:
        return ordered[0]
    for low, high in zip(ordered, ordered[1:]):
        if kbps <= high.kbps:
            span = math.log(high.kbps) - math.log(low.kbps)
            return _between(low, high, (math.log(kbps) - math.log(low.kbps)) / span)
    return ordered[-1]


def compare_h264(clips: list[_Clip], size: int, ours: PresetResult, akd: KeypointDistance | None,
                 crfs: tuple[float, ...] = H264_CRFS, cache: H264Cache | None = None) -> H264Comparison:
    """H.264 at `size`² against `ours`: the ladder walked from its lowest quality up until H.264
    reaches each of our metrics (AKD, the costly one, only while it has not) and our bitrate;
    points already coded for another stream on the same frames come from `cache`."""
    goals = {metric: ours.quality[metric] for metric in METRICS if ours.quality.get(metric) is not None}
    if akd is None:
        goals.pop("akd", None)
    comparison = H264Comparison(size)
    for crf in sorted(crfs, reverse=True):
        akd_needed = "akd" in goals and not any(_reaches(point, "akd", goals["akd"]) for point in comparison.ladder)
        comparison.ladder.append(_h264_point(clips, size, crf, akd if akd_needed else None, cache))
        reached = all(any(_reaches(point, metric, goal) for point in comparison.ladder)
                      for metric, goal in goals.items())
        if reached and comparison.ladder[-1].kbps >= ours.kbps:
            break
    comparison.at_our_bitrate = at_bitrate(comparison.ladder, ours.kbps)
    for metric, goal in goals.items():
        match, how = match_on_ladder([point for point in comparison.ladder if getattr(point, metric) is not None],
                                     metric, goal)
        comparison.matching[metric], comparison.how[metric] = match, how
        comparison.ratios[metric] = None if match is None else match.kbps / ours.kbps
    return comparison


def model_presets(pipeline: TalkingHeadPipeline, presets: list[str] | None) -> list[str]:
    """`presets` (None: every preset of the model's stream kind), checked against that kind's presets."""
    kind = stream_kind(pipeline.cfg)
    if kind not in KIND_PRESETS:
        raise SdkError(f"{pipeline.cfg.name}: bench codec measures the {' and '.join(KIND_PRESETS)} streams, "
                       f"not the {kind} one yet")
    known = KIND_PRESETS[kind]
    unknown = [name for name in presets or [] if name not in known]
    if unknown:
        raise SdkError(f"unknown codec preset(s) {', '.join(unknown)} of the {kind} stream ({pipeline.cfg.name}; "
                       f"known: {', '.join(known)})")
    return list(presets or known)


def run_codec_bench(pipeline: TalkingHeadPipeline, model_sha256: str, data: Path, split: str = "test",
                    presets: list[str] | None = None, max_clips: int | None = None,
                    max_frames: int | None = None, quality_stride: int = 1, with_akd: bool = True,
                    with_h264: bool = True, h264_sizes: tuple[int, ...] | None = None,
                    crfs: tuple[float, ...] = H264_CRFS, h264_cache: H264Cache | None = None) -> CodecBenchReport:
    """`presets`: of the model's stream kind (None: all; the first is compared with H.264).
    `h264_sizes`: the sizes H.264 codes at (None: the output size and the internal resolution).
    `h264_cache`: H.264 points shared between runs on the same frames (one dict for several models)."""
    if h264_sizes is not None and any(size < 16 or size % 2 for size in h264_sizes):
        raise SdkError(f"H.264 sizes must be even and at least 16, got {list(h264_sizes)}")
    if not crfs or any(not 0 <= crf <= 51 for crf in crfs):
        raise SdkError(f"H.264 CRFs must be in [0, 51], got {list(crfs)}")
    names = model_presets(pipeline, presets)
    started = time.perf_counter()
    pipeline.motion = MotionConfig(mode="absolute")
    from ..eval.reenactment import _prepared_sizes

    prepared_size = max(_prepared_sizes(data))
    clips, skipped = _load_clips(pipeline, data, split, max_clips, max_frames, quality_stride, prepared_size)
    if not clips:
        raise SdkError(f"{data}: no clip of split {split!r} that {pipeline.cfg.name} can be scored on")
    cfg = pipeline.cfg
    akd = KeypointDistance() if with_akd else None
    report = CodecBenchReport(cfg.name, stream_kind(cfg), cfg.num_kp, cfg.resolution, pipeline.output_size,
                              [c.clip.id for c in clips], sum(len(c.targets) for c in clips),
                              sum(len(c.quality_indices) for c in clips),
                              frames_without_code=sum(code is None for c in clips for code in c.codes),
                              clips_skipped=skipped)
    try:
        report.unquantized = _render_quality(pipeline, clips, akd, None)
        for name in names:
            result, codes = _run_preset(pipeline, name, model_sha256, clips)
            result.quality = _render_quality(pipeline, clips, akd, codes)
            report.presets.append(result)
            log.info("preset %s: %.2f kbit/s, PSNR %.2f", name, result.kbps, result.quality["psnr"])
        if with_h264:
            ours = report.presets[0]
            sizes = tuple(dict.fromkeys(h264_sizes or (pipeline.output_size, cfg.resolution)))
            report.h264 = [compare_h264(clips, size, ours, akd, crfs, h264_cache) for size in sizes]
            report.headline_ratio = next((c.ratios.get("psnr") for c in report.h264 if c.size == pipeline.output_size),
                                         None)
            matches = "; ".join(f"at {c.size}²: " + ", ".join(f"{m.upper()} {_how(c, m)}" for m in c.matching)
                                for c in report.h264)
            report.headline_note = (f"ours: preset '{ours.name}' at {ours.kbps:.2f} kbit/s; "
                                    f"H.264 kbit/s to match it {matches}")
    finally:
        if akd is not None:
            akd.close()
    report.seconds = time.perf_counter() - started
    return report


def _how(comparison: H264Comparison, metric: str) -> str:
    point, how = comparison.matching[metric], comparison.how[metric]
    if point is None:
        return f"not reached by CRF {min(p.crf for p in comparison.ladder):g}"
    if how == "lowest rate":
        return f"{point.kbps:.1f} (its lowest rate, CRF {point.crf:g}, already better)"
    return f"{point.kbps:.1f}"


def format_report(report: CodecBenchReport) -> str:
    def cell(value: float | None, digits: int) -> str:
        return "—" if value is None else f"{value:.{digits}f}"

    parts = CODE_PARTS[report.stream_kind]
    code = f"K={report.num_kp}" if report.stream_kind == "keypoints" else "semantic code of the mesh"
    lines = [f"codec bench: {report.model} ({report.stream_kind} stream: {code}; {report.resolution}², frames at "
             f"{report.output_size}²) on {len(report.clips)} clips, "
             f"{report.frames} frames coded, quality on {report.quality_frames}; bitrates at {FPS} fps"]
    if report.frames_without_code or report.clips_skipped:
        lines.append(f"{report.frames_without_code} frames before a clip's first good mesh (no code: the portrait "
                     f"is shown); clips without a mesh on the source frame, not scored: "
                     f"{', '.join(report.clips_skipped) or 'none'}")
    lines += ["", f"{'stream':<26} {'kbps':>7} {'wire':>7} {'B/frame':>8} {'key B':>6} {'delta B':>7} "
              f"{parts[0] + ' err':>15} {parts[1][:10] + ' err':>15} {'PSNR':>6} {'SSIM':>6} {'AKD':>6}"]
    q = report.unquantized
    lines.append(f"{'unquantized codes':<26} {'—':>7} {'—':>7} {'—':>8} {'—':>6} {'—':>7} {'—':>15} {'—':>15} "
                 f"{cell(q.get('psnr'), 2):>6} {cell(q.get('ssim'), 3):>6} {cell(q.get('akd'), 2):>6}")
    for row in report.presets:
        q = row.quality
        errors = [f"{row.code_error[part]['mean']:.4f}/{row.code_error[part]['max']:.4f}"
                  if part in row.code_error else "—" for part in parts]
        lines.append(f"{'codec ' + row.name:<26} {row.kbps:>7.2f} {row.wire_kbps:>7.1f} {row.bytes_per_frame:>8.1f} "
                     f"{row.keyframe_bytes:>6.1f} {row.delta_bytes:>7.1f} {errors[0]:>15} {errors[1]:>15} "
                     f"{cell(q['psnr'], 2):>6} {cell(q['ssim'], 3):>6} {cell(q['akd'], 2):>6}")
    for comparison in report.h264:
        rows = [(f"H.264 {comparison.size}² CRF {point.crf:g}", point) for point in comparison.ladder]
        rows += [(f"H.264 {comparison.size}² at our {m.upper()}", p) for m, p in comparison.matching.items()
                 if p is not None and comparison.how[m] == "interpolated"]
        for label, point in rows:
            lines.append(f"{label:<26} {point.kbps:>7.2f} {'—':>7} {point.kbps * 1000 / 8 / FPS:>8.1f} {'—':>6} "
                         f"{'—':>7} {'—':>15} {'—':>15} {point.psnr:>6.2f} {point.ssim:>6.3f} {cell(point.akd, 2):>6}")
    lines.append("err: mean/max abs difference of the decoded code from the sent one")
    if report.headline_note:
        lines += ["", report.headline_note]
    for comparison in report.h264:
        lines.append(f"H.264 at {comparison.size}² bitrate / ours at equal quality: " + _ratios(comparison))
    if report.headline_ratio is not None:
        lines.append(f"headline (PSNR, H.264 at the output size {report.output_size}²): {report.headline_ratio:.1f}x")
    lines.append(f"({report.seconds:.0f} s)")
    return "\n".join(lines)


def _ratios(comparison: H264Comparison) -> str:
    return ", ".join(f"{m.upper()} {'—' if r is None else f'{r:.1f}x'}"
                     + (" (its lowest rate)" if comparison.how[m] == "lowest rate" else "")
                     for m, r in comparison.ratios.items())


def format_summary(reports: list[CodecBenchReport]) -> str:
    """One line per stream kind: its first preset's kbit/s and quality, and H.264 / ours at equal quality."""
    lines = [f"{'stream kind':<12} {'model':<24} {'preset':<8} {'kbps':>6} {'PSNR':>6} {'SSIM':>6}  "
             "H.264 kbit/s / ours at equal quality"]
    for report in reports:
        ours = report.presets[0]
        ratios = "; ".join(f"at {c.size}²: {_ratios(c)}" for c in report.h264) or "—"
        lines.append(f"{report.stream_kind:<12} {report.model:<24} {ours.name:<8} {ours.kbps:>6.2f} "
                     f"{ours.quality['psnr']:>6.2f} {ours.quality['ssim']:>6.3f}  {ratios}")
    return "\n".join(lines)


def _numbers(text: str | None, kind: type, option: str) -> tuple | None:
    if text is None:
        return None
    try:
        values = tuple(kind(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise SdkError(f"{option} {text!r}: expected comma-separated numbers") from None
    if not values or min(values) < 0:
        raise SdkError(f"{option} {text!r}: expected comma-separated non-negative numbers")
    return values


def _run(args: argparse.Namespace) -> int:
    from ..checkpoint import load_model

    torch.set_grad_enabled(False)
    pipelines = [TalkingHeadPipeline(load_model(name, device=args.device), device=args.device) for name in args.models]
    for pipeline in pipelines:  # every model's presets are checked before the first one runs
        model_presets(pipeline, args.presets)
    h264_cache: H264Cache = {}
    reports = []
    for name, pipeline in zip(args.models, pipelines):
        report = run_codec_bench(pipeline, _model_sha256(name), Path(args.data), args.split, args.presets, args.clips,
                                 args.frames, args.quality_stride, not args.no_akd, not args.no_h264,
                                 _numbers(args.h264_sizes, int, "--h264-sizes"), _numbers(args.crfs, float, "--crfs"),
                                 h264_cache)
        print(format_report(report) + "\n", flush=True)
        reports.append(report)
    print(format_summary(reports))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"streams": [asdict(report) for report in reports]}, indent=1))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("codec", help="code stream kbit/s and quality per preset vs H.264",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="cache/prepared", help="prepared data folder (python -m sdk data prepare)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--models", "--model", nargs="+", default=list(DEFAULT_MODELS),
                        help="models, each measured on its own stream kind (default: default = learned keypoints, "
                             "prior = the semantic code); the H.264 points are shared")
    parser.add_argument("--presets", nargs="+",
                        help="codec presets of every model's stream kind (default: all of each kind); the first is "
                             "the one compared with H.264")
    parser.add_argument("--clips", type=int, help="use at most this many clips")
    parser.add_argument("--frames", type=int, help="use at most this many frames per clip")
    parser.add_argument("--quality-stride", type=int, default=1, help="render and score every N-th frame")
    parser.add_argument("--h264-sizes", help="comma-separated sizes H.264 codes at (default: the output size "
                                             "and the internal resolution)")
    parser.add_argument("--crfs", default=",".join(map(str, H264_CRFS)),
                        help="H.264 CRF ladder, walked from the highest (lowest quality) until it matches ours")
    parser.add_argument("--no-akd", action="store_true", help="skip AKD (the face mesh on every scored frame)")
    parser.add_argument("--no-h264", action="store_true", help="skip the H.264 comparison")
    parser.add_argument("--json", help="also write the report as JSON")
    parser.add_argument("--device", default="cpu")
    parser.set_defaults(run=_run)

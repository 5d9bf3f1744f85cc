"""`python -m sdk bench codec`: the code stream's bitrate and quality against H.264 at equal quality.

On the prepared clips of a split, self-reenactment in absolute mode with each clip's first frame
as the source (as `python -m sdk eval`): every frame is encoded by the model, its code goes through
`sdk.codec` under each preset, and the frame rendered from the decoded code is compared with the
input crop (PSNR, SSIM, AKD) at the output size S (the frames users see); "unquantized" renders the
codes as they left the encoder.

In the same run, H.264 (libx264 via PyAV, preset medium, tune zerolatency, same frame rate) codes
the input crops at two sizes: the output size S, and the model's internal resolution R (crops
averaged down to R², decoded frames enlarged back to S² and scored there, like every other row).
libx264 makes few distinct rates on these clips, so instead of searching the bitrate it encodes a
short ladder of CRF values, lowest quality first, each once, and stops as soon as every metric
reaches ours; the rate H.264 needs for our PSNR, SSIM and AKD is interpolated between the two
ladder points around our value (log bitrate, linear in the metric). Where even its lowest rate
(CRF 51: ~20 kbit/s at 256², ~10 at 128², 25 fps) beats ours, that rate is what it needs, and
the row says so. The headline is H.264 kbit/s / ours at equal PSNR at the output size.

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

from ..codec import PRESETS, CodecConfig, CodeDecoder, CodeEncoder, StreamHeader
from ..data.datasets import PreparedClip, load_frame, read_prepared_manifest
from ..errors import SdkError
from ..media import resize_image
from ..eval.metrics import AKD_RESOLUTION, KeypointDistance
from ..eval.reenactment import MetricSums
from ..models import Keypoints
from ..pipeline import MotionConfig, TalkingHeadPipeline

FPS = 25
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
    keypoint_error_mean: float = 0.0
    keypoint_error_max: float = 0.0
    jacobian_error_mean: float | None = None
    jacobian_error_max: float | None = None
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
    seconds: float = 0.0


@dataclass
class _Clip:
    """What the bench keeps per clip: targets at the output size, codes, landmarks."""
    clip: PreparedClip
    targets: list[np.ndarray]          # (S, S, 3) uint8 per frame
    keypoints: np.ndarray              # (T, K, 2)
    jacobians: np.ndarray              # (T, K, 2, 2)
    landmarks: np.ndarray | None       # (T, 478, 2) at 256², or None
    quality_indices: list[int]


def _model_sha256(model_name: str) -> str:
    from ..checkpoint import CHECKSUM_FILE, MODELS_DIR

    directory = Path(model_name) if Path(model_name).is_dir() else MODELS_DIR / model_name
    return (directory / CHECKSUM_FILE).read_text().split()[0]


def _load_clips(pipeline: TalkingHeadPipeline, data: Path, split: str, max_clips: int | None,
                max_frames: int | None, quality_stride: int, prepared_size: int) -> list[_Clip]:
    clips = read_prepared_manifest(data, split, min_frames=2)[:max_clips]
    loaded = []
    for clip in clips:
        count = clip.frames if max_frames is None else min(clip.frames, max_frames)
        targets, keypoints, jacobians = [], [], []
        for index in range(count):
            frame = load_frame(clip.frame_path(index), pipeline.output_size)
            code = pipeline.encode(frame)  # the encoder sees it averaged down to the internal resolution
            targets.append(frame)
            keypoints.append(code.value[0].cpu().numpy())
            jacobians.append(code.jacobian[0].cpu().numpy())
        landmarks_path = clip.directory / "landmarks.npy"
        landmarks = (np.load(landmarks_path)[:count, :, :2] * (AKD_RESOLUTION / prepared_size)
                     if landmarks_path.is_file() else None)
        loaded.append(_Clip(clip, targets, np.stack(keypoints), np.stack(jacobians), landmarks,
                            list(range(0, count, quality_stride))))
        log.info("encoded %s (%d frames)", clip.id, count)
    return loaded


def _render_quality(pipeline: TalkingHeadPipeline, clips: list[_Clip], akd: KeypointDistance | None,
                    codes: list[tuple[np.ndarray, np.ndarray | None]] | None) -> dict:
    """Quality of frames rendered from `codes` (per clip: keypoints, jacobians; None = unquantized)."""
    quality = MetricSums()
    for position, item in enumerate(clips):
        keypoints, jacobians = (item.keypoints, item.jacobians) if codes is None else codes[position]
        state = pipeline.prepare_source(item.targets[0])
        for index in item.quality_indices:
            jacobian = (jacobians[index] if jacobians is not None
                        else np.broadcast_to(np.eye(2, dtype=np.float32), item.jacobians[index].shape))
            code = Keypoints(torch.from_numpy(np.ascontiguousarray(keypoints[index]))[None].to(pipeline.device),
                             torch.from_numpy(np.ascontiguousarray(jacobian))[None].to(pipeline.device))
            prediction = pipeline.render(state, code)
            quality.add(prediction, item.targets[index],
                        None if item.landmarks is None else item.landmarks[index], akd)
    return quality.summary()


def _run_preset(name: str, config: CodecConfig, header_args: dict, clips: list[_Clip]
                ) -> tuple[PresetResult, list[tuple[np.ndarray, np.ndarray | None]]]:
    header = StreamHeader(config=config, **header_args)
    result = PresetResult(name, asdict(config))
    decoded_codes = []
    sizes, keyframe_sizes, delta_sizes = [], [], []
    kp_errors, jac_errors = [], []
    for item in clips:
        encoder, decoder = CodeEncoder(header), CodeDecoder(header)
        keypoints, jacobians = [], []
        for index in range(len(item.keypoints)):
            packet = encoder.encode(item.keypoints[index], item.jacobians[index], index * 1000 // FPS)
            frame = decoder.decode(packet)
            sizes.append(len(packet))
            (keyframe_sizes if frame.keyframe else delta_sizes).append(len(packet))
            keypoints.append(frame.keypoints)
            kp_errors.append(np.abs(frame.keypoints - item.keypoints[index]))
            if frame.jacobians is not None:
                jacobians.append(frame.jacobians)
                jac_errors.append(np.abs(frame.jacobians - item.jacobians[index]))
        decoded_codes.append((np.stack(keypoints), np.stack(jacobians) if jacobians else None))
    mean = float(np.mean(sizes))
    result.bytes_per_frame = mean
    result.kbps = mean * 8 * FPS / 1000
    result.wire_kbps = ((1 + WIRE_REDUNDANCY) * mean + WIRE_OVERHEAD_BYTES) * 8 * FPS / 1000
    result.keyframe_bytes = float(np.mean(keyframe_sizes))
    result.delta_bytes = float(np.mean(delta_sizes)) if delta_sizes else 0.0
    result.keypoint_error_mean = float(np.mean(kp_errors))
    result.keypoint_error_max = float(np.max(kp_errors))
    if jac_errors:
        result.jacobian_error_mean = float(np.mean(jac_errors))
        result.jacobian_error_max = float(np.max(jac_errors))
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


def _h264_point(clips: list[_Clip], size: int, crf: float, akd: KeypointDistance | None) -> H264Point:
    """H.264 at `crf` on every clip's crops brought to size², scored at the output size (AKD with `akd`)."""
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
                 crfs: tuple[float, ...] = H264_CRFS) -> H264Comparison:
    """H.264 at `size`² against `ours`: the ladder walked from its lowest quality up until H.264
    reaches each of our metrics (AKD, the costly one, only while it has not) and our bitrate."""
    goals = {metric: ours.quality[metric] for metric in METRICS if ours.quality.get(metric) is not None}
    if akd is None:
        goals.pop("akd", None)
    comparison = H264Comparison(size)
    for crf in sorted(crfs, reverse=True):
        akd_needed = "akd" in goals and not any(_reaches(point, "akd", goals["akd"]) for point in comparison.ladder)
        comparison.ladder.append(_h264_point(clips, size, crf, akd if akd_needed else None))
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


def run_codec_bench(pipeline: TalkingHeadPipeline, model_sha256: str, data: Path, split: str = "test",
                    presets: list[str] | None = None, max_clips: int | None = None,
                    max_frames: int | None = None, quality_stride: int = 1, with_akd: bool = True,
                    with_h264: bool = True, h264_sizes: tuple[int, ...] | None = None,
                    crfs: tuple[float, ...] = H264_CRFS) -> CodecBenchReport:
    """`h264_sizes`: the sizes H.264 codes at (None: the output size and the internal resolution)."""
    if h264_sizes is not None and any(size < 16 or size % 2 for size in h264_sizes):
        raise SdkError(f"H.264 sizes must be even and at least 16, got {list(h264_sizes)}")
    if not crfs or any(not 0 <= crf <= 51 for crf in crfs):
        raise SdkError(f"H.264 CRFs must be in [0, 51], got {list(crfs)}")
    started = time.perf_counter()
    pipeline.motion = MotionConfig(mode="absolute")
    from ..eval.reenactment import _prepared_sizes

    prepared_size = max(_prepared_sizes(data))
    clips = _load_clips(pipeline, data, split, max_clips, max_frames, quality_stride, prepared_size)
    cfg = pipeline.model.cfg
    header_args = {"model_id": cfg.name, "model_sha256": model_sha256, "num_kp": cfg.num_kp,
                   "resolution": cfg.resolution, "fps": float(FPS)}
    akd = KeypointDistance() if with_akd else None
    report = CodecBenchReport(cfg.name, cfg.num_kp, cfg.resolution, pipeline.output_size, [c.clip.id for c in clips],
                              sum(len(c.targets) for c in clips), sum(len(c.quality_indices) for c in clips))
    try:
        report.unquantized = _render_quality(pipeline, clips, akd, None)
        for name in presets or list(PRESETS):
            result, codes = _run_preset(name, CodecConfig.preset(name), header_args, clips)
            result.quality = _render_quality(pipeline, clips, akd, codes)
            report.presets.append(result)
            log.info("preset %s: %.2f kbit/s, PSNR %.2f", name, result.kbps, result.quality["psnr"])
        if with_h264:
            ours = report.presets[0]
            sizes = tuple(dict.fromkeys(h264_sizes or (pipeline.output_size, cfg.resolution)))
            report.h264 = [compare_h264(clips, size, ours, akd, crfs) for size in sizes]
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

    lines = [f"codec bench: {report.model} (K={report.num_kp}, {report.resolution}², frames at {report.output_size}²) "
             f"on {len(report.clips)} clips, "
             f"{report.frames} frames coded, quality on {report.quality_frames}; bitrates at {FPS} fps", "",
             f"{'stream':<26} {'kbps':>7} {'wire':>7} {'B/frame':>8} {'key B':>6} {'delta B':>7} "
             f"{'kp err':>15} {'jac err':>15} {'PSNR':>6} {'SSIM':>6} {'AKD':>6}"]
    q = report.unquantized
    lines.append(f"{'unquantized codes':<26} {'—':>7} {'—':>7} {'—':>8} {'—':>6} {'—':>7} {'—':>15} {'—':>15} "
                 f"{cell(q.get('psnr'), 2):>6} {cell(q.get('ssim'), 3):>6} {cell(q.get('akd'), 2):>6}")
    for row in report.presets:
        q = row.quality
        kp = f"{row.keypoint_error_mean:.4f}/{row.keypoint_error_max:.4f}"
        jac = ("—" if row.jacobian_error_mean is None
               else f"{row.jacobian_error_mean:.4f}/{row.jacobian_error_max:.4f}")
        lines.append(f"{'codec ' + row.name:<26} {row.kbps:>7.2f} {row.wire_kbps:>7.1f} {row.bytes_per_frame:>8.1f} "
                     f"{row.keyframe_bytes:>6.1f} {row.delta_bytes:>7.1f} {kp:>15} {jac:>15} "
                     f"{cell(q['psnr'], 2):>6} {cell(q['ssim'], 3):>6} {cell(q['akd'], 2):>6}")
    for comparison in report.h264:
        rows = [(f"H.264 {comparison.size}² CRF {point.crf:g}", point) for point in comparison.ladder]
        rows += [(f"H.264 {comparison.size}² at our {m.upper()}", p) for m, p in comparison.matching.items()
                 if p is not None and comparison.how[m] == "interpolated"]
        for label, point in rows:
            lines.append(f"{label:<26} {point.kbps:>7.2f} {'—':>7} {point.kbps * 1000 / 8 / FPS:>8.1f} {'—':>6} "
                         f"{'—':>7} {'—':>15} {'—':>15} {point.psnr:>6.2f} {point.ssim:>6.3f} {cell(point.akd, 2):>6}")
    if report.headline_note:
        lines += ["", report.headline_note]
    for comparison in report.h264:
        ratios = [f"{m.upper()} {'—' if r is None else f'{r:.1f}x'}"
                  + (" (its lowest rate)" if comparison.how[m] == "lowest rate" else "")
                  for m, r in comparison.ratios.items()]
        lines.append(f"H.264 at {comparison.size}² bitrate / ours at equal quality: " + ", ".join(ratios))
    if report.headline_ratio is not None:
        lines.append(f"headline (PSNR, H.264 at the output size {report.output_size}²): {report.headline_ratio:.1f}x")
    lines.append(f"({report.seconds:.0f} s)")
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
    unknown = [name for name in args.presets if name not in PRESETS]
    if unknown:
        raise SdkError(f"unknown codec preset(s) {', '.join(unknown)} (known: {', '.join(PRESETS)})")
    pipeline = TalkingHeadPipeline(load_model(args.model, device=args.device), device=args.device)
    report = run_codec_bench(pipeline, _model_sha256(args.model), Path(args.data), args.split, args.presets, args.clips,
                             args.frames, args.quality_stride, not args.no_akd, not args.no_h264,
                             _numbers(args.h264_sizes, int, "--h264-sizes"), _numbers(args.crfs, float, "--crfs"))
    print(format_report(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(asdict(report), indent=1))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("codec", help="code stream kbit/s and quality per preset vs H.264",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="cache/prepared", help="prepared data folder (python -m sdk data prepare)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", default="default")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS),
                        help="codec presets; the first is the one compared with H.264")
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

"""`python -m sdk bench live`: end-to-end speed of `live_camera` per runtime backend, unpaced and paced.

Every clip (the test split of the shared data manifest, or given videos, or the bundled clip)
runs through a whole in-process session (capture, face tracking, keypoint encoder, codec,
transport, generator, outputs; headless) once read as fast as the pipeline takes it
("unpaced": the throughput) and once paced like a camera (default 25 fps: the live case, where
frames the pipeline cannot take are dropped). Reported per backend and pacing: rendered fps,
latency p50 / p95 from capture to output (pooled over all frames), the stages' mean ms, frames
dropped per stage, the code stream's kbit/s. The baseline, measured in the same run on the same
backend, is the generator alone (median ms of `render` on one code, on a worker thread as in a
session, nothing else of the session running): the ceiling the end-to-end rate is compared
with ("vs gen-only").

Timings depend on what else the machine runs: the JSON records the CPU count and load average.
"""
from __future__ import annotations

import argparse
import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.prepare import read_source_manifest
from ..errors import SdkError
from ..live import CaptureConfig, LiveConfig, LiveFrame, OutputConfig, live_camera
from ..live.avatars import DEFAULT_PORTRAIT, load_avatars
from ..live.capture import DEFAULT_DRIVING
from ..live.stats import DROP_STAGES
from ..models import TalkingHeadModel, get_config
from ..pipeline import TalkingHeadPipeline
from ..runtime import create_backend
from ..runtime.factory import onnx_runtime_available
from . import median_ms

DEFAULT_MANIFEST = Path(os.environ.get("SDK_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")) \
    / "manifest.csv"
BASELINE_RUNS = 20


@dataclass
class BaselineResult:
    """The backend's stages alone, on one code, nothing else running (median ms)."""
    backend: str
    encoder_ms: float
    generator_ms: float

    @property
    def generator_fps(self) -> float:
        return 1000.0 / self.generator_ms


@dataclass
class RunResult:
    backend: str
    pacing: str
    clips: int = 0
    frames_captured: int = 0
    frames_rendered: int = 0
    frames_dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_STAGES, 0))
    no_face_frames: int = 0
    seconds_rendering: float = 0.0  # summed per clip: first capture -> last output
    fps: float = 0.0
    vs_generator_only: float = 0.0
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    tracker_ms: float = 0.0
    encoder_ms: float = 0.0
    generator_ms: float = 0.0
    kbps: float = 0.0


def _clips(args: argparse.Namespace) -> list[Path]:
    if args.videos:
        return [Path(v) for v in args.videos]
    if args.bundled:
        return [DEFAULT_DRIVING]
    manifest = Path(args.manifest)
    clips = [video.path for video in read_source_manifest(manifest) if video.split == args.split]
    if not clips:
        raise SdkError(f"{manifest}: no videos in split {args.split!r}")
    return clips[:args.max_clips] if args.max_clips else clips


def _model(args: argparse.Namespace) -> TalkingHeadModel:
    if args.random:
        torch.manual_seed(0)
        return TalkingHeadModel(get_config(args.random)).eval()
    from ..checkpoint import load_model
    return load_model(args.model)


def measure_baseline(model: TalkingHeadModel, kind: str, args: argparse.Namespace, runs: int) -> BaselineResult:
    """Encoder and generator alone on the bundled portrait (its own code, so relative motion is a no-op).

    Timed on a worker thread, as the session runs them: torch's intra-op threading differs
    between the main thread and others (on a loaded CPU the main thread's thread team was
    measured 20x slower here), so only this makes the ratio a like-for-like one.
    """
    backend = create_backend(model, kind, args.device, graphs=args.graphs, threads=args.threads,
                             output_size=args.size)
    pipeline = TalkingHeadPipeline(backend)
    crop = load_avatars(DEFAULT_PORTRAIT, backend.output_size)[0].crop
    timings: list[float] = []

    def measure() -> None:
        state = pipeline.prepare_source(crop)
        code = pipeline.encode(crop)
        timings.extend([median_ms(lambda: pipeline.encode(crop), runs, warmup=1),
                        median_ms(lambda: pipeline.render(state, code), runs, warmup=1)])

    worker = threading.Thread(target=measure, name="bench-baseline")
    worker.start()
    worker.join()
    if len(timings) != 2:
        raise SdkError(f"{kind}: the baseline measurement failed (see the traceback above)")
    return BaselineResult(backend.name, *timings)


def measure_run(model: TalkingHeadModel, kind: str, pacing_fps: float | None, clips: list[Path],
                args: argparse.Namespace) -> RunResult:
    result = RunResult(kind, "unpaced" if pacing_fps is None else f"paced {pacing_fps:g} fps")
    latencies: list[float] = []
    weights = {"tracker_ms": 0, "encoder_ms": 0, "generator_ms": 0}
    kbits = 0.0

    def collect(frame: LiveFrame) -> None:
        latencies.append(frame.latency_ms)

    for clip in clips:
        config = LiveConfig(capture=CaptureConfig(camera=clip, paced=pacing_fps is not None, fps=pacing_fps,
                                                  max_frames=args.frames),
                            backend=kind, graphs=args.graphs, device=args.device, threads=args.threads,
                            output_size=args.size, output=OutputConfig(window=False), queue_capacity=args.queue)
        stats = live_camera(config, model=model, on_frame=collect)
        result.backend = stats.backend
        result.clips += 1
        result.frames_captured += stats.frames_captured
        result.frames_rendered += stats.frames_rendered
        result.no_face_frames += stats.no_face_frames
        for stage, count in stats.frames_dropped.items():
            result.frames_dropped[stage] += count
        if stats.fps > 0:
            result.seconds_rendering += stats.frames_rendered / stats.fps
        result.tracker_ms += stats.tracker_ms * stats.frames_sent
        result.encoder_ms += stats.encoder_ms * stats.frames_sent
        result.generator_ms += stats.generator_ms * stats.frames_received
        weights["tracker_ms"] += stats.frames_sent
        weights["encoder_ms"] += stats.frames_sent
        weights["generator_ms"] += stats.frames_received
        kbits += stats.kbps * stats.frames_sent
        print(f"  {clip.name}: {stats.frames_rendered}/{stats.frames_captured} frames at {stats.fps:.1f} fps",
              flush=True)
    for name, weight in weights.items():
        setattr(result, name, getattr(result, name) / weight if weight else 0.0)
    result.kbps = kbits / weights["encoder_ms"] if weights["encoder_ms"] else 0.0
    result.fps = result.frames_rendered / result.seconds_rendering if result.seconds_rendering else 0.0
    if latencies:
        result.latency_ms_p50 = float(np.percentile(latencies, 50))
        result.latency_ms_p95 = float(np.percentile(latencies, 95))
    return result


def format_table(runs: list[RunResult], baselines: dict[str, BaselineResult]) -> str:
    lines = [(f"{'backend':<12} {'pacing':<14} {'fps':>6} {'vs gen-only':>11} {'lat p50':>8} {'lat p95':>8} "
              f"{'track ms':>8} {'enc ms':>7} {'gen ms':>7} {'rendered':>9} {'dropped':>8} {'kbps':>6}")]
    for base in baselines.values():
        lines.append(f"{base.backend:<12} {'generator only':<14} {base.generator_fps:>6.1f} {1.0:>11.2f} "
                     f"{'':>8} {'':>8} {'':>8} {base.encoder_ms:>7.1f} {base.generator_ms:>7.1f}")
    for run in runs:
        p50 = f"{run.latency_ms_p50:.0f}" if run.latency_ms_p50 is not None else "-"
        p95 = f"{run.latency_ms_p95:.0f}" if run.latency_ms_p95 is not None else "-"
        lines.append(f"{run.backend:<12} {run.pacing:<14} {run.fps:>6.1f} {run.vs_generator_only:>11.2f} {p50:>8} "
                     f"{p95:>8} {run.tracker_ms:>8.1f} {run.encoder_ms:>7.1f} {run.generator_ms:>7.1f} "
                     f"{run.frames_rendered:>4}/{run.frames_captured:<4} {sum(run.frames_dropped.values()):>8} "
                     f"{run.kbps:>6.2f}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    clips = _clips(args)
    model = _model(args)
    kinds = args.backends or (["torch", "onnx"] if onnx_runtime_available() else ["torch"])
    load_before = os.getloadavg()
    baselines, runs = {}, []
    for kind in kinds:
        print(f"{kind}: generator-only baseline", flush=True)
        baselines[kind] = measure_baseline(model, kind, args, args.baseline_runs)
        for pacing in (None, args.paced_fps):
            print(f"{kind}: {'unpaced' if pacing is None else f'paced at {pacing:g} fps'}", flush=True)
            run = measure_run(model, kind, pacing, clips, args)
            run.vs_generator_only = run.fps / baselines[kind].generator_fps
            runs.append(run)
    print(format_table(runs, baselines))
    report = {
        "model": model.cfg.name, "random_weights": bool(args.random), "clips": [str(c) for c in clips],
        "graphs": str(args.graphs) if args.graphs else None,
        "frames_per_clip": args.frames, "queue_capacity": args.queue, "threads": args.threads,
        "output_size": args.size or model.cfg.default_output_size,
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": os.getloadavg(), "torch_threads": torch.get_num_threads()},
        "baselines": {kind: {**asdict(base), "generator_fps": base.generator_fps} for kind, base in baselines.items()},
        "runs": [asdict(run) for run in runs],
    }
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {path}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("live", help="end-to-end live fps and latency per backend, unpaced and paced",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", default=str(DEFAULT_MANIFEST), help="shared data manifest (its raw videos)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--videos", nargs="+", help="these videos instead of the manifest's")
    parser.add_argument("--bundled", action="store_true", help="only the bundled clip")
    parser.add_argument("--max-clips", type=int, help="use at most this many clips")
    parser.add_argument("--frames", type=int, default=125, help="frames per clip at most (default 125: 5 s)")
    parser.add_argument("--model", default="default")
    parser.add_argument("--random", metavar="CONFIG", help="a random model of this config instead (e.g. dagan++-tiny)")
    parser.add_argument("--backends", nargs="+", help="runtime backends (default: torch, and onnx when installed)")
    parser.add_argument("--graphs", type=Path, help="export folder (python -m export) for onnx-int8 and tflite")
    parser.add_argument("--paced-fps", type=float, default=25.0, help="the paced run's frame rate")
    parser.add_argument("--queue", type=int, default=LiveConfig.queue_capacity, help="stage queue capacity")
    parser.add_argument("--threads", type=int, help="intra-op threads (default: the runtime's)")
    parser.add_argument("--size", type=int, help="output size of the frames (default: the model's default)")
    parser.add_argument("--baseline-runs", type=int, default=BASELINE_RUNS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the report as JSON")
    parser.set_defaults(run=_run)

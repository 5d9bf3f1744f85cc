"""`python -m sdk bench live`: end-to-end speed of `live_camera` per runtime backend, paced and unpaced,
with and without a second process busy on one core.

Every clip (by default one 256² face clip of the shared data's test split: a person no model here
trained on) runs through a whole in-process session (capture, face tracking, the code: keypoint
encoder, or for face-prior models the semantic code of the tracker's mesh; codec, transport,
generator, outputs; headless) once read as fast as the pipeline takes it
("unpaced": the throughput) and once paced like a camera (default 25 fps: the live case, where
frames the pipeline cannot take are skipped or dropped, and counted per stage). Each of these runs
twice: as the machine is ("quiet") and with the synthetic load ("busy": `sdk.bench.busy_core`, a
busy-loop process pinned to one core, described in the JSON).

Reported per backend, load and pacing: rendered fps, the share of captured frames rendered,
latency p50 / p95 from capture to output (pooled over all frames; unpaced, frames wait in the
queues for the stage ahead, so only the paced latency is a live one), the code stream's kbit/s, drops
per stage, the stages' mean ms in the session, and the baseline measured in the same run on the
same backend and load: the generator alone (median ms of `render` on one code, on a worker thread
with the session's generator threads, nothing else of the session running). Two ratios compare
with it: the session's time per rendered frame (1000 / fps) and the generator's own time inside
the session. Paced runs are checked against the live targets (`TARGETS`).

Timings depend on what else the machine runs: the JSON records the cores, the thread budget and
the load average before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import threading
from contextlib import nullcontext
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
from ..live.stream import stream_kind
from ..media import probe_video
from ..models import TalkingHeadModel, get_config
from ..pipeline import TalkingHeadPipeline
from ..runtime import ThreadBudget, create_backend, model_sha256
from ..runtime.factory import int8_export_available, onnx_runtime_available
from ..runtime.onnx_backend import cached_graphs_dir, has_onnx_graphs
from ..timing import median_ms
from . import SYNTHETIC_LOAD, busy_core

DEFAULT_MANIFEST = Path(os.environ.get("SDK_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")) \
    / "manifest.csv"
BASELINE_RUNS = 20
DEFAULT_FRAMES = 190
DEFAULT_CLIP_SIDE = 256
LOADS = ("quiet", "busy")
# The live targets a paced run is checked against (issue 14).
TARGETS = {"fps_min": 24.0, "rendered_min": 0.95, "latency_p95_ms_max": 120.0, "kbps_max": 4.0}
@dataclass
class BaselineResult:
    """The backend's stages alone, on one code, nothing else of a session running (median ms)."""
    backend: str
    load: str
    encoder_ms: float
    generator_ms: float

    @property
    def generator_fps(self) -> float:
        return 1000.0 / self.generator_ms


@dataclass
class RunResult:
    kind: str
    load: str
    pacing: str
    backend: str = ""
    clips: int = 0
    frames_captured: int = 0
    frames_rendered: int = 0
    frames_dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_STAGES, 0))
    no_face_frames: int = 0
    frames_before_first_face: int = 0
    seconds_rendering: float = 0.0  # summed per clip: first capture -> last output
    fps: float = 0.0
    rendered_share: float = 0.0  # frames rendered / frames captured
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    tracker_ms: float = 0.0
    encoder_ms: float = 0.0
    generator_ms: float = 0.0
    kbps: float = 0.0
    generator_alone_ms: float = 0.0
    frame_vs_generator_alone: float = 0.0  # (1000 / fps) / generator_alone_ms
    generator_vs_alone: float = 0.0  # generator_ms in the session / generator_alone_ms
    targets: dict[str, bool] | None = None  # paced runs: each of TARGETS met

    @property
    def frames_dropped_total(self) -> int:
        return sum(self.frames_dropped.values())


def _clips(args: argparse.Namespace) -> list[Path]:
    if args.videos:
        return [Path(v) for v in args.videos]
    if args.bundled:
        return [DEFAULT_DRIVING]
    manifest = Path(args.manifest)
    clips = []
    for video in read_source_manifest(manifest):
        if video.split != args.split or not video.path.is_file():
            continue
        info = probe_video(video.path)
        if args.side and (info.width, info.height) != (args.side, args.side):
            continue
        if info.frame_count and info.frame_count < args.frames:
            continue
        clips.append(video.path)
    if not clips:
        size = f"{args.side}² " if args.side else ""
        raise SdkError(f"{manifest}: no {size}videos of at least {args.frames} frames in split {args.split!r} "
                       "(pass --videos, --bundled, --side 0 or fewer --frames)")
    return clips[:args.max_clips] if args.max_clips else clips


def _model(args: argparse.Namespace) -> TalkingHeadModel:
    if args.random:
        torch.manual_seed(0)
        return TalkingHeadModel(get_config(args.random)).eval()
    from ..checkpoint import load_model
    return load_model(args.model)


def default_kinds(model: TalkingHeadModel, args: argparse.Namespace) -> list[str]:
    """torch; onnx with ONNX Runtime; onnx-int8 when its graphs are in --graphs or the cache or can be
    made (the first run makes them, minutes); tflite when --graphs has its graphs."""
    kinds = ["torch"]
    if onnx_runtime_available():
        kinds.append("onnx")
        size = args.size or model.cfg.default_output_size
        cached = cached_graphs_dir(None, model_sha256(model), size)
        if ((args.graphs is not None and has_onnx_graphs(args.graphs, "int8")) or has_onnx_graphs(cached, "int8")
                or int8_export_available()):
            kinds.append("onnx-int8")
    if args.graphs is not None and (Path(args.graphs) / "tflite" / "fp32").is_dir():
        kinds.append("tflite")
    return kinds


def _graphs_for(kind: str, args: argparse.Namespace) -> Path | None:
    """--graphs where it holds the kind's graphs; else None (onnx kinds then use the cache)."""
    if args.graphs is None:
        return None
    precision = {"onnx": "fp32", "onnx-int8": "int8"}.get(kind)
    if precision is not None and not has_onnx_graphs(args.graphs, precision):
        return None
    return Path(args.graphs)


def measure_baseline(model: TalkingHeadModel, kind: str, load: str, args: argparse.Namespace,
                     budget: ThreadBudget) -> BaselineResult:
    """Encoder and generator alone on the bundled portrait (its own code, so relative motion is a no-op).

    Learned keypoints: the encoder is the keypoint network on the crop. Face-prior models: the
    encoder is the semantic code of the portrait's face mesh (found once, not timed: the session's
    tracker finds it there), and the generator renders the avatar rigged on that mesh.
    Timed on a worker thread with the session's threads, as the session runs them.
    """
    backend = create_backend(model, kind, args.device, graphs=_graphs_for(kind, args), threads=budget,
                             output_size=args.size)
    pipeline = TalkingHeadPipeline(backend)
    crop = load_avatars(DEFAULT_PORTRAIT, backend.output_size)[0].crop
    mesh = _portrait_mesh(crop) if pipeline.is_semantic else None
    timings: list[float] = []

    def measure() -> None:
        state = pipeline.prepare_source(crop, mesh)
        code = pipeline.encode(crop, mesh)
        timings.extend([median_ms(lambda: pipeline.encode(crop, mesh), args.baseline_runs, warmup=2),
                        median_ms(lambda: pipeline.render(state, code), args.baseline_runs, warmup=2)])

    worker = threading.Thread(target=measure, name="bench-baseline")
    worker.start()
    worker.join()
    if len(timings) != 2:
        raise SdkError(f"{kind}: the baseline measurement failed (see the traceback above)")
    return BaselineResult(backend.name, load, *timings)


def _portrait_mesh(crop: np.ndarray) -> np.ndarray:
    """(478, 3) the face mesh of the bundled portrait's crop, in its pixels."""
    from ..face import FaceLandmarker  # mediapipe: only face-prior models need it here

    with FaceLandmarker() as landmarker:
        mesh = landmarker.from_image(crop)
    if mesh is None:
        raise SdkError(f"{DEFAULT_PORTRAIT}: no face mesh found in the bundled portrait")
    return mesh


def measure_run(model: TalkingHeadModel, kind: str, load: str, pacing_fps: float | None, clips: list[Path],
                args: argparse.Namespace, budget: ThreadBudget) -> RunResult:
    result = RunResult(kind, load, "unpaced" if pacing_fps is None else f"paced {pacing_fps:g} fps")
    latencies: list[float] = []
    weights = {"tracker_ms": 0, "encoder_ms": 0, "generator_ms": 0}
    kbits = 0.0

    def collect(frame: LiveFrame) -> None:
        latencies.append(frame.latency_ms)

    for clip in clips:
        # The stream's rate is the pacing rate in both runs, so kbit/s compare.
        capture = CaptureConfig(camera=clip, paced=pacing_fps is not None, fps=args.paced_fps, max_frames=args.frames)
        config = LiveConfig(capture=capture, backend=kind, graphs=_graphs_for(kind, args), device=args.device,
                            threads=budget, output_size=args.size, output=OutputConfig(window=False, progress=False),
                            queue_capacity=args.queue)
        stats = live_camera(config, model=model, on_frame=collect)
        result.backend = stats.backend
        result.clips += 1
        result.frames_captured += stats.frames_captured
        result.frames_rendered += stats.frames_rendered
        result.no_face_frames += stats.no_face_frames
        result.frames_before_first_face += stats.frames_before_first_face
        for stage, count in stats.frames_dropped.items():
            result.frames_dropped[stage] = result.frames_dropped.get(stage, 0) + count
        if stats.fps > 0:
            result.seconds_rendering += stats.frames_rendered / stats.fps
        result.tracker_ms += stats.tracker_ms * stats.frames_sent
        result.encoder_ms += stats.encoder_ms * stats.frames_sent
        result.generator_ms += stats.generator_ms * stats.frames_received
        weights["tracker_ms"] += stats.frames_sent
        weights["encoder_ms"] += stats.frames_sent
        weights["generator_ms"] += stats.frames_received
        kbits += stats.kbps * stats.frames_sent
        print(f"  {clip.name}: {stats.frames_rendered}/{stats.frames_captured} frames at {stats.fps:.1f} fps, "
              f"dropped {stats.frames_dropped}", flush=True)
    for name, weight in weights.items():
        setattr(result, name, getattr(result, name) / weight if weight else 0.0)
    result.kbps = kbits / weights["encoder_ms"] if weights["encoder_ms"] else 0.0
    result.fps = result.frames_rendered / result.seconds_rendering if result.seconds_rendering else 0.0
    result.rendered_share = result.frames_rendered / result.frames_captured if result.frames_captured else 0.0
    if latencies:
        result.latency_ms_p50 = float(np.percentile(latencies, 50))
        result.latency_ms_p95 = float(np.percentile(latencies, 95))
    return result


def compare_with_baseline(run: RunResult, baseline: BaselineResult) -> None:
    run.generator_alone_ms = baseline.generator_ms
    if run.fps > 0:
        run.frame_vs_generator_alone = (1000.0 / run.fps) / baseline.generator_ms
    run.generator_vs_alone = run.generator_ms / baseline.generator_ms
    if run.pacing != "unpaced":
        run.targets = {"fps": run.fps >= TARGETS["fps_min"],
                       "rendered": run.rendered_share >= TARGETS["rendered_min"],
                       "latency_p95": run.latency_ms_p95 is not None
                       and run.latency_ms_p95 <= TARGETS["latency_p95_ms_max"],
                       "kbps": run.kbps <= TARGETS["kbps_max"]}


DROP_ABBREVIATIONS = {"capture": "cap", "scheduler": "sch", "transport": "net", "decode": "dec",
                      "generator": "gen", "output": "out"}


def format_table(runs: list[RunResult]) -> str:
    header = (f"{'backend':<15} {'load':<8} {'pacing':<13} {'fps':>5} {'rendered':>13} {'p50':>5} {'p95':>5} "
              f"{'kbps':>5} {'trk':>5} {'enc':>5} {'gen':>5} {'alone':>6} {'frame/alone':>11} {'gen/alone':>9} "
              f"{'targets':>7}  drops")
    lines = [header, "-" * len(header)]
    for run in runs:
        p50 = f"{run.latency_ms_p50:.0f}" if run.latency_ms_p50 is not None else "-"
        p95 = f"{run.latency_ms_p95:.0f}" if run.latency_ms_p95 is not None else "-"
        rendered = f"{run.frames_rendered}/{run.frames_captured} {100 * run.rendered_share:3.0f}%"
        targets = "-" if run.targets is None else ("met" if all(run.targets.values()) else
                                                   f"{sum(run.targets.values())}/{len(run.targets)}")
        drops = " ".join(f"{DROP_ABBREVIATIONS.get(stage, stage)} {count}"
                         for stage, count in run.frames_dropped.items() if count)
        lines.append(f"{run.backend:<15} {run.load:<8} {run.pacing:<13} {run.fps:>5.1f} {rendered:>13} {p50:>5} "
                     f"{p95:>5} {run.kbps:>5.2f} {run.tracker_ms:>5.1f} {run.encoder_ms:>5.1f} "
                     f"{run.generator_ms:>5.1f} {run.generator_alone_ms:>6.1f} {run.frame_vs_generator_alone:>11.2f} "
                     f"{run.generator_vs_alone:>9.2f} {targets:>7}  {drops or '-'}")
    lines.append("ms: mean per frame in the session (trk: tracking + crop, enc: the code: keypoint encoder, or the "
                 "face prior's semantic code of the mesh; gen: generator); "
                 "alone: the generator alone (median); frame/alone: 1000/fps over it; drops: "
                 + ", ".join(f"{short} = {stage}" for stage, short in DROP_ABBREVIATIONS.items()))
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    clips = _clips(args)
    model = _model(args)
    stream = stream_kind(model.cfg)  # a model no stream kind carries fails here, before any timing
    kinds = args.backends or default_kinds(model, args)
    budget = ThreadBudget.uniform(args.threads) if args.threads else ThreadBudget.auto()
    load_before = os.getloadavg()
    baselines: dict[str, BaselineResult] = {}
    runs: list[RunResult] = []
    synthetic_load = None
    for load_name in args.loads:
        with busy_core() if load_name == "busy" else nullcontext() as core:
            if load_name == "busy":
                synthetic_load = {**SYNTHETIC_LOAD, "core": core}
            for kind in kinds:
                print(f"{kind}, load {load_name}: generator alone", flush=True)
                baseline = measure_baseline(model, kind, load_name, args, budget)
                baselines[f"{kind} {load_name}"] = baseline
                for pacing in (None, args.paced_fps):
                    print(f"{kind}, load {load_name}: {'unpaced' if pacing is None else f'paced at {pacing:g} fps'}",
                          flush=True)
                    run = measure_run(model, kind, load_name, pacing, clips, args, budget)
                    compare_with_baseline(run, baseline)
                    runs.append(run)
    print(format_table(runs))
    report = {
        "model": model.cfg.name, "stream_kind": stream, "random_weights": bool(args.random), "clips": [str(c) for c in clips],
        "graphs": str(args.graphs) if args.graphs else None, "frames_per_clip": args.frames,
        "paced_fps": args.paced_fps, "queue_capacity": args.queue, "threads": budget.as_dict(),
        "output_size": args.size or model.cfg.default_output_size,
        "synthetic_load": synthetic_load,
        "targets": TARGETS,
        "machine": {"cpus": os.cpu_count(), "cores_available": budget.cores, "load_average_before": load_before,
                    "load_average_after": os.getloadavg()},
        "baselines": {key: {**asdict(base), "generator_fps": base.generator_fps} for key, base in baselines.items()},
        "runs": [{**asdict(run), "frames_dropped_total": run.frames_dropped_total} for run in runs],
    }
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {path}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("live", help="end-to-end live fps, latency and drops per backend, paced and "
                                                "unpaced, with and without a busy core",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", default=str(DEFAULT_MANIFEST), help="shared data manifest (its raw videos)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--side", type=int, default=DEFAULT_CLIP_SIDE,
                        help="only the manifest's square videos of this side (0: any)")
    parser.add_argument("--videos", nargs="+", help="these videos instead of the manifest's")
    parser.add_argument("--bundled", action="store_true", help="only the bundled clip")
    parser.add_argument("--max-clips", type=int, default=1, help="use at most this many clips (0: all)")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES,
                        help=f"frames per clip at most (default {DEFAULT_FRAMES})")
    parser.add_argument("--model", default="default")
    parser.add_argument("--random", metavar="CONFIG", help="a random model of this config instead (e.g. dagan++-tiny)")
    parser.add_argument("--backends", nargs="+",
                        help="runtime backends (default: torch, onnx and onnx-int8 when ONNX Runtime is installed "
                             "(INT8 graphs made into the cache on first use), tflite when --graphs has them)")
    parser.add_argument("--graphs", type=Path, help="export folder (python -m export) with ONNX / TFLite graphs")
    parser.add_argument("--loads", nargs="+", choices=LOADS, default=list(LOADS),
                        help="quiet: the machine as it is; busy: with a busy-loop process pinned to one core")
    parser.add_argument("--paced-fps", type=float, default=25.0, help="the paced run's frame rate")
    parser.add_argument("--queue", type=int, default=LiveConfig.queue_capacity, help="stage queue capacity")
    parser.add_argument("--threads", type=int, help="intra-op threads of every stage (default: ThreadBudget.auto)")
    parser.add_argument("--size", type=int, help="output size of the frames (default: the model's default)")
    parser.add_argument("--baseline-runs", type=int, default=BASELINE_RUNS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the report as JSON")
    parser.set_defaults(run=_run)

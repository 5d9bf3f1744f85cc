"""The live microphone's figures (issue 13): rendered fps, audio-to-frame latency and code stream rate, per backend.

    python bench/live_mic.py [--audio FILE] [--seconds 10] [--backends torch,onnx-int8] [--model prior]
        [--encoder-backends torch,onnx,onnx-int8,tflite --graphs DIR] [--json out/live_mic.json]

Each backend (`--backend` of `python -m sdk live --mic`: the renderer's and the audio encoder's)
runs `sdk.live_microphone` twice on the same speech, headless, in-process:
- `paced`: the file as a real-time microphone (what a user gets): rendered fps, audio-to-frame
  latency p50 / p95 (a frame's audio captured -> frame output, lookahead included), code kbit/s,
  drops, audio underruns / overruns;
- `unpaced`: the audio as fast as the renderer takes it (the sender waits for the generator with
  the camera scheduler's `GeneratorGate`, which can still let a code or two be dropped): the fps
  this CPU can render, the headroom over 25 fps.
Then the audio encoder alone (`--encoder-backends`): median ms of one live expression window and
one motion clip, and per frame. The first backend of each list is the baseline: every row's fps
and latency (encoder: ms) are also given as a ratio to it. Targets (issue 13): >= 25 fps
rendered (the paced run drops no frame and the unpaced one renders >= 25 fps), latency p95 <=
250 ms (paced), code stream <= 1.5 kbit/s. Default speech: the shared data's last speech clip
(the INT8 audio graphs calibrate on the first ones). The machine's load average is recorded: on
a CPU shared with other jobs (training here), the figures move with that load.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

TARGET_FPS = 25.0
TARGET_LATENCY_P95_MS = 250.0
TARGET_KBPS = 1.5


def run(kind: str, paced: bool, audio: Path, frames: int, model: str, threads: int | None) -> dict:
    from sdk.live import CaptureConfig, LiveConfig, OutputConfig
    from sdk.live.microphone import MicrophoneConfig, live_microphone

    config = LiveConfig(model=model, backend=kind, threads=threads,
                        capture=CaptureConfig(paced=paced, max_frames=frames), output=OutputConfig(window=False))
    stats = live_microphone(config, MicrophoneConfig(source=audio)).to_dict()
    keys = ("backend", "audio_backend", "fps", "frames_captured", "frames_rendered", "frames_dropped_total",
            "frames_dropped", "audio_to_frame_latency_ms_p50", "audio_to_frame_latency_ms_p95", "kbps", "generator_ms",
            "audio_coder_ms", "audio_underruns", "audio_overruns", "lookahead_ms", "stop_reason")
    return {"kind": kind, "mode": "paced" if paced else "unpaced", **{key: stats[key] for key in keys}}


def encoder_ms(kinds: list[str], graphs: Path | None, samples, runs: int) -> dict[str, dict[str, float]]:
    """The audio encoder alone, per backend kind: median ms of one expression window and one motion
    clip on windows of the speech, and per 25 fps frame (expression + motion / T)."""
    import numpy as np

    from sdk.audio.live import window_of
    from sdk.audio.model_file import load_audio_model
    from sdk.runtime.audio_backend import create_audio_backend
    from sdk.timing import median_ms

    model = load_audio_model("default")
    config = model.config
    clip = config.motion_space.clip_frames
    frames = [25 * second for second in range(1, max(2, len(samples) // 16000))]
    expression_windows = [window_of(samples, config.expression_live.window, j, 1, config.mel) for j in frames]
    motion_windows = [window_of(samples, config.motion.window, j, clip, config.mel) for j in frames]
    state, offset = np.zeros(6), np.zeros(config.motion_space.features)
    timings = {}
    for kind in kinds:
        backend = create_audio_backend(model, kind, graphs=graphs if kind == "tflite" else None)
        windows, clips = itertools.cycle(expression_windows), itertools.cycle(motion_windows)
        expression = median_ms(lambda: backend.expression(next(windows)), runs)
        motion = median_ms(lambda: backend.motion(next(clips), state, offset), runs)
        timings[kind] = {"expression_ms": expression, "motion_ms": motion, "per_frame_ms": expression + motion / clip}
    return timings


def table(rows: list[dict]) -> str:
    from export.table import format_table

    baseline = {row["mode"]: row for row in rows if row["kind"] == rows[0]["kind"]}

    def ratio(row: dict, key: str) -> str:
        base = baseline[row["mode"]][key]
        return f"{row[key] / base:.2f}x" if base and row[key] is not None else "-"

    body = []
    for row in rows:
        paced = row["mode"] == "paced"  # unpaced, the whole file is "captured" at once: no latency to speak of
        latency = [f"{row['audio_to_frame_latency_ms_p50']:.0f}", f"{row['audio_to_frame_latency_ms_p95']:.0f}",
                   ratio(row, "audio_to_frame_latency_ms_p95")] if paced else ["-", "-", "-"]
        body.append([row["kind"], row["mode"], f"{row['fps']:.1f}", ratio(row, "fps"),
                     f"{row['frames_rendered']}/{row['frames_captured']}", str(row["frames_dropped_total"]), *latency,
                     f"{row['kbps']:.2f}", f"{row['generator_ms']:.1f}", f"{row['audio_coder_ms']:.2f}",
                     f"{row['audio_underruns']}/{row['audio_overruns']}"])
    return format_table(["backend", "mode", "fps", "fps vs base", "rendered", "drops", "lat p50 ms", "lat p95 ms",
                         "p95 vs base", "kbit/s", "generator ms", "audio ms", "under/overruns"], body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio", type=Path, default=None, help="speech file (default: a shared speech clip)")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio per run (default 10)")
    parser.add_argument("--backends", default="torch,onnx-int8",
                        help="comma-separated kinds; the first is the baseline")
    parser.add_argument("--model", default="prior", help="face-prior renderer (default: the shipped prior)")
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads per stage (default: ThreadBudget.auto)")
    parser.add_argument("--encoder-backends", default="torch,onnx,onnx-int8",
                        help="audio encoder kinds timed alone (tflite needs --graphs); the first is the baseline")
    parser.add_argument("--graphs", type=Path, default=None, help="export folder with tflite audio graphs")
    parser.add_argument("--runs", type=int, default=100, help="timed calls per audio graph (median)")
    parser.add_argument("--json", type=Path, default=Path("out/live_mic.json"))
    args = parser.parse_args(argv)

    from export.audio import verify_speech

    audio = verify_speech(args.audio)
    frames = max(1, round(args.seconds * 25))
    rows = [run(kind, paced, audio, frames, args.model, args.threads)
            for kind in args.backends.split(",") for paced in (True, False)]
    from export.table import format_table
    from sdk.audio.source import load_audio

    kinds = args.encoder_backends.split(",")
    encoder = encoder_ms(kinds, args.graphs, load_audio(audio).samples, args.runs)
    print(f"{audio}, {frames} frames per run, load average {os.getloadavg()[0]:.2f} (1 min)\n")
    print(table(rows))
    base = encoder[kinds[0]]["per_frame_ms"]
    print("\naudio encoder alone (median ms, 1 thread)\n" + format_table(
        ["backend", "expression window", "motion clip", "per frame", "vs " + kinds[0]],
        [[kind, f"{t['expression_ms']:.2f}", f"{t['motion_ms']:.2f}", f"{t['per_frame_ms']:.2f}",
          f"{t['per_frame_ms'] / base:.2f}x"] for kind, t in encoder.items()]))
    by_mode = {(row["kind"], row["mode"]): row for row in rows}
    # 25 fps rendered: the paced run renders every frame and the unpaced one could go at least that fast
    verdict = {kind: {"fps": by_mode[kind, "paced"]["frames_dropped_total"] == 0
                      and by_mode[kind, "unpaced"]["fps"] >= TARGET_FPS,
                      "latency_p95": by_mode[kind, "paced"]["audio_to_frame_latency_ms_p95"] <= TARGET_LATENCY_P95_MS,
                      "kbps": by_mode[kind, "paced"]["kbps"] <= TARGET_KBPS}
               for kind in dict.fromkeys(row["kind"] for row in rows)}
    print("\ntargets: " + "; ".join(f"{kind}: " + ", ".join(f"{name} {'ok' if ok else 'MISSED'}"
                                                                   for name, ok in checks.items())
                                           for kind, checks in verdict.items()))
    document = {"audio": str(audio), "frames_per_run": frames, "load_average": list(os.getloadavg()),
                "cpu_count": os.cpu_count(), "baseline": rows[0]["kind"],
                "targets": {"fps": TARGET_FPS, "latency_p95_ms": TARGET_LATENCY_P95_MS, "kbps": TARGET_KBPS},
                "rows": rows, "verdict": verdict, "audio_encoder_ms": encoder}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=1) + "\n")
    print(f"\n{args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

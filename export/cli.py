"""`python -m export ...`: export, `verify DIR` and `bench DIR`; thin argument parsing over the library."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from sdk.cli import run_command

from .request import BUNDLE_PLATFORMS, FORMATS, GRAPH_SETS, PRECISIONS, ExportRequest, parse_choices

EXPORT_EPILOG = """examples:
  python -m export --model default --format onnx,tflite,coreml --precision fp32,fp16 --out exports/default
  python -m export --model runs/gen/best_model --format onnx,tflite --precision fp32,int8 --size 512 --out exports/512
  python -m export --model runs/prior/best_model --graphs receiver --bundle android --out exports/android \
      --bundle-dir android-demo/app/src/main
  python -m export --model default --format coreml --precision fp16 --bundle ios --out exports/ios
  python -m export --audio --format onnx,tflite,coreml --precision fp32,int8 --out exports/default
  python -m export verify exports/default
  python -m export bench exports/default --threads 1,2 --runs 50 --json out/export_bench.json"""


def export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m export", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXPORT_EPILOG,
        description="Export a model's on-device graphs (keypoint encoder, source encoder, generator) "
                    "to ONNX, TFLite and Core ML. Subcommands: `verify DIR`, `bench DIR`.")
    parser.add_argument("--model", default="default", help="'default', a shipped model name, or a model folder")
    parser.add_argument("--format", default=None,
                        help=f"comma-separated: {','.join(FORMATS)} (default: onnx; with --bundle, its platform's: "
                             + ", ".join(f"{platform} {fmt}" for platform, fmt in BUNDLE_PLATFORMS.items()) + ")")
    parser.add_argument("--precision", default="fp32",
                        help=f"comma-separated: {','.join(PRECISIONS)} (default: fp32; int8 via quantization)")
    parser.add_argument("--size", type=int, default=None,
                        help="output size S of the rendered frames (a multiple of the model's internal resolution "
                             "with the composite head; default: the model's default output size)")
    parser.add_argument("--graphs", default="all", choices=GRAPH_SETS,
                        help="which graphs: sender (the keypoint encoder; a face-prior 'prior' model has none, its "
                             "sender needs only the prior file), receiver (source encoder + generator) or all "
                             "(default)")
    parser.add_argument("--out", required=True, help="export folder (created; export.json lists its files)")
    parser.add_argument("--bundle", choices=tuple(BUNDLE_PLATFORMS),
                        help="also lay the files out for the demo app: android (TFLite under assets/talking_head/) "
                             "or ios (Core ML under Resources/talking_head/), with bundle.json (metadata, stream "
                             "parameters) and the face prior; one --precision")
    parser.add_argument("--bundle-dir", default=None,
                        help="where the bundle's assets/ or Resources/ folder goes (default: OUT/<platform>; e.g. "
                             "android-demo/app/src/main)")
    parser.add_argument("--calibration", default=None,
                        help="int8 calibration frames: a prepared folder, a folder of portraits or a video "
                             "(default: cache/prepared if prepared, else the bundled driving clip); with --audio: "
                             "speech, an audio file or folder (default: the shared data's train speech)")
    parser.add_argument("--audio", nargs="?", const="default", default=None, metavar="AUDIO_MODEL",
                        help="export the audio-to-code model's graphs instead (log-mel + live expression net, log-mel "
                             "+ head motion nets) into OUT/audio/ (default model: sdk/assets/audio)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (converter tracebacks)")
    return parser


def verify_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m export verify",
                                     description="Run every exported graph that can run here on real test frames "
                                                 "and compare with torch (max abs error, rendered-frame PSNR).")
    parser.add_argument("directory", help="an export folder written by `python -m export`")
    parser.add_argument("--model", help="torch model to compare with (default: the one in export.json)")
    parser.add_argument("--data", help="prepared data folder for test frames (default: a shared-data test clip)")
    parser.add_argument("--frames", type=int, default=6, help="frames: one source, the rest driving (default 6)")
    parser.add_argument("--audio-model",
                        help="audio graphs: the torch audio model (default: the one in audio/export.json)")
    parser.add_argument("--audio-clip", help="audio graphs: speech to verify on (default: a shared speech clip)")
    parser.add_argument("--json", help="report path (default: DIR/verify.json)")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def bench_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m export bench",
                                     description="Per-graph latency of the ONNX / TFLite exports against torch.")
    parser.add_argument("directory", help="an export folder written by `python -m export`")
    parser.add_argument("--model", help="torch model (default: the one in export.json)")
    parser.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per graph (median; default 50)")
    parser.add_argument("--json", help="write the timings as JSON here")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in ("verify", "bench") else "export"
    parser = {"export": export_parser, "verify": verify_parser, "bench": bench_parser}[command]()
    args = parser.parse_args(argv[1:] if command != "export" else argv)
    verb = {"export": _export, "verify": _verify, "bench": _bench}[command]
    return run_command(lambda: verb(args), args.verbose, logging.WARNING)


def _export(args: argparse.Namespace) -> int:
    if args.audio is not None:
        return _export_audio(args)
    from .int8 import calibration_note
    from .run import run_export, summary_table

    formats = args.format if args.format is not None else BUNDLE_PLATFORMS.get(args.bundle, "onnx")
    request = ExportRequest(args.model, parse_choices(formats, FORMATS, "format"),
                            parse_choices(args.precision, PRECISIONS, "precision"), Path(args.out), args.size,
                            args.calibration and Path(args.calibration), args.graphs, args.bundle,
                            args.bundle_dir and Path(args.bundle_dir))
    if "int8" in request.precisions:
        print(f"int8: {calibration_note(request.calibration)}", flush=True)
    manifest = run_export(request, show_progress=not args.no_progress)
    print(summary_table(manifest))
    failed = [entry for entry in manifest.entries if entry.status != "ok"]
    print(f"\n{len(manifest.entries) - len(failed)} of {len(manifest.entries)} graphs exported to {args.out} "
          f"(model {manifest.model_id}, sha256 {manifest.model_sha256[:12]}, output {manifest.output_size}², "
          f"bitstream v{manifest.bitstream_version})")
    if manifest.face_prior is not None:
        print(f"face prior {manifest.face_prior.sha256[:12]}: {Path(args.out) / manifest.face_prior.path}")
    if request.bundle is not None:
        from .bundle import bundle_folder

        print(f"{request.bundle} bundle: {bundle_folder(request.bundle_root, request.bundle)}")
    return 1 if failed else 0


def _export_audio(args: argparse.Namespace) -> int:
    from .audio import run_audio_export
    from .run import summary_table

    manifest = run_audio_export(args.audio, parse_choices(args.format or "onnx", FORMATS, "format"),
                                parse_choices(args.precision, PRECISIONS, "precision"), Path(args.out),
                                args.calibration and Path(args.calibration), show_progress=not args.no_progress)
    print(summary_table(manifest))
    failed = [entry for entry in manifest.entries if entry.status != "ok"]
    print(f"\n{len(manifest.entries) - len(failed)} of {len(manifest.entries)} audio graphs in {args.out}/audio "
          f"(audio model {manifest.audio_model_sha256[:12]}, face prior {manifest.prior_sha256[:12]})")
    return 1 if failed else 0


def _verify(args: argparse.Namespace) -> int:
    from .audio import audio_report_table, has_audio_export, verify_audio_export
    from .verify import report_table, verify_export

    document, passed = {}, True
    if (Path(args.directory) / "export.json").is_file() or not has_audio_export(args.directory):
        report = verify_export(args.directory, args.model, args.data, args.frames)
        print(f"{report.model_id} on {report.frames} frames of {report.clip}\n")
        print(report_table(report))
        document, passed = report.to_dict(), report.passed
    if has_audio_export(args.directory):
        audio = verify_audio_export(args.directory, args.audio_model, args.audio_clip and Path(args.audio_clip))
        print(f"\naudio graphs on {audio.frames} frames ({audio.clips} motion clips) of {audio.clip}\n")
        print(audio_report_table(audio))
        document["audio"], passed = audio.to_dict(), passed and audio.passed
    out = Path(args.json) if args.json else Path(args.directory) / "verify.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1) + "\n")
    print(f"\n{'PASSED' if passed else 'FAILED'}; report: {out}")
    return 0 if passed else 1


def _bench(args: argparse.Namespace) -> int:
    from .bench import bench_export, bench_table, timings_json
    from .request import ExportError

    try:
        threads = tuple(int(part) for part in args.threads.split(","))
    except ValueError:
        raise ExportError(f"--threads {args.threads!r}: expected comma-separated integers") from None
    timings = bench_export(args.directory, threads, args.runs, args.model)
    print(bench_table(timings))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(timings_json(timings), indent=1) + "\n")
    return 0

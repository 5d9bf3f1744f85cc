"""`python -m sdk audio prepare|devices` and `python -m sdk speak`.

    python -m sdk audio prepare --data cache/prepared --out cache/audio [--prior default]
    python -m sdk audio devices
    python -m sdk speak --portrait IMG --audio FILE --out OUT.mp4 [--seed N] [--motion-scale S] [--samples N]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import SdkError


def _run_prepare(args: argparse.Namespace) -> int:
    from ..training.audio_data import load_audio_clips, prepare_audio_data

    path = prepare_audio_data(args.data, args.out, args.prior)
    manifest, clips = load_audio_clips(args.out)
    for split in ("train", "test"):
        chosen = [clip for clip in clips if clip.split == split]
        print(f"{split}: {len(chosen)} clips, {sum(c.frames for c in chosen)} frames at 25 fps "
              f"({sum(int(c.valid.sum()) for c in chosen)} with a good mesh)")
    print(f"{path}")
    return 0


def _run_devices(args: argparse.Namespace) -> int:
    from .source import list_input_devices

    devices = list_input_devices()
    for device in devices:
        print(f"{device['index']}: {device['name']} ({device['channels']} ch, {device['rate']:.0f} Hz)")
    if not devices:
        print("no audio input devices")
    return 0


def _run_speak(args: argparse.Namespace) -> int:
    from .speak import SpeakConfig, speak

    try:
        config = SpeakConfig(seed=args.seed, motion_scale=args.motion_scale, samples=args.samples,
                             epsilon=args.epsilon, live_window=args.live_window)
    except ValueError as exc:
        raise SdkError(f"speak: {exc}") from None
    for path in speak(args.portrait, args.audio, args.out, config, renderer=args.model, audio_model=args.audio_model,
                      show_progress=not args.no_progress):
        print(path)
    return 0


def add_audio_verbs(subparsers: argparse._SubParsersAction) -> None:
    """Add `audio prepare`, `audio devices` and `speak` to the `python -m sdk` parser."""
    audio = subparsers.add_parser("audio", help="audio-driven avatar: training data, input devices")
    actions = audio.add_subparsers(dest="audio_action", metavar="ACTION", required=True)
    prepare = actions.add_parser("prepare", help="per-frame semantic codes + log-mel of every clip with audio")
    prepare.add_argument("--data", type=Path, default=Path("cache/prepared"), help="prepared data folder")
    prepare.add_argument("--out", type=Path, default=Path("cache/audio"), help="cache folder to write")
    prepare.add_argument("--prior", default="default", help="face prior (default: sdk/assets/prior)")
    prepare.set_defaults(run=_run_prepare)
    devices = actions.add_parser("devices", help="list the microphones PortAudio sees")
    devices.set_defaults(run=_run_devices)

    speak = subparsers.add_parser("speak", help="animate a portrait from speech (one frame per 40 ms, audio muxed)")
    speak.add_argument("--portrait", required=True, type=Path, help="portrait image (one face)")
    speak.add_argument("--audio", required=True, type=Path, help="speech: WAV, MP3, FLAC, M4A or a video's track")
    speak.add_argument("--out", required=True, type=Path, help="output .mp4 (with --samples N: OUT_0.mp4 ...)")
    speak.add_argument("--seed", type=int, default=0, help="picks the head motion sample (default 0)")
    speak.add_argument("--motion-scale", type=float, default=1.0, metavar="S",
                       help="head motion amplitude (1 as learned, 0 a still head)")
    speak.add_argument("--samples", type=int, default=1, metavar="N", help="N videos with different head motions")
    speak.add_argument("--epsilon", type=float, default=0.5, help="sampling radius around the audio's motion centre, in "
                       "units of the spread of real motions around it (default 0.5: about the real videos' motion)")
    speak.add_argument("--live-window", action="store_true", help="use the live (42.5 ms lookahead) expression net")
    speak.add_argument("--model", default="prior", help="face-prior renderer model (default: the shipped prior)")
    speak.add_argument("--audio-model", default="default", help="audio-to-code model (default: sdk/assets/audio)")
    speak.add_argument("--no-progress", action="store_true", help="no progress bar")
    speak.set_defaults(run=_run_speak)

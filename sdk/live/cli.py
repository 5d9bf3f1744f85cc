"""`python -m sdk live`: a thin wrapper over `live_camera` (arguments -> LiveConfig -> stats JSON)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..codec import PRESETS, SEMANTIC_PRESETS
from ..pipeline import MotionConfig
from ..prior import Edits
from ..runtime import BACKEND_KINDS
from .avatars import DEFAULT_PORTRAIT
from .capture import DEFAULT_DRIVING, CaptureConfig
from .config import LiveConfig, TransportConfig
from .controls import KEY_BINDINGS
from .errors import LiveError
from .outputs import OutputConfig
from .session import live_camera
from .views.browser import DEFAULT_HOST, DEFAULT_PORT
from .views.virtual_camera import AUTO_DEVICE


def parse_address(text: str) -> tuple[str, int]:
    """"HOST:PORT" (IPv6 as "[::1]:PORT") -> (host, port); argparse.ArgumentTypeError otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (e.g. 127.0.0.1:9000), got {text!r}")
    return host, int(port)


def parse_serve_address(text: str) -> tuple[str, int]:
    """"PORT" (on 127.0.0.1) or "HOST:PORT" for the browser view."""
    return parse_address(f"{DEFAULT_HOST}:{text}" if text.isdigit() else text)


def parse_frame_size(text: str) -> tuple[int, int]:
    """"WxH" -> (width, height)."""
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit()):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT (e.g. 640x480), got {text!r}")
    return int(width), int(height)


def config_from_args(args: argparse.Namespace) -> LiveConfig:
    kind = args.transport or ("udp" if args.listen or args.connect else "inproc")
    return LiveConfig(
        capture=CaptureConfig(camera=args.camera, paced=not args.unpaced, fps=args.fps, max_frames=args.frames),
        portrait=Path(args.portrait) if args.portrait else None,
        model=args.model or ("prior" if args.mic is not None else "default"), backend=args.backend,
        graphs=Path(args.graphs) if args.graphs else None,
        device=args.device, threads=args.threads, output_size=args.size, paste_back=args.paste_back,
        motion=MotionConfig(mode=args.motion), codec=args.codec, edits=Edits.parse(args.edit),
        transport=TransportConfig(kind=kind, listen=args.listen, connect=args.connect,
                                  key_file=Path(args.key_file) if args.key_file else None,
                                  session_timeout_s=args.session_timeout),
        output=OutputConfig(window=not args.headless, out_path=Path(args.out) if args.out else None,
                            side_by_side=args.side_by_side, virtual_camera=args.virtual_camera,
                            virtual_camera_size=args.virtual_camera_size, serve=args.serve,
                            progress=args.progress),
        queue_capacity=args.queue)


def _run(args: argparse.Namespace) -> int:
    if args.transport == "inproc" and (args.listen or args.connect):
        raise LiveError("--listen / --connect run one half of a udp session; drop --transport inproc")
    try:
        config = config_from_args(args)
    except ValueError as exc:  # an option combination the config refuses
        raise LiveError(str(exc)) from None
    if args.mic is not None:
        from .microphone import MicrophoneConfig, live_microphone

        try:
            microphone = MicrophoneConfig(source=args.mic or None, audio_model=args.audio_model, seed=args.seed,
                                          epsilon=args.epsilon, motion_scale=args.motion_scale)
        except ValueError as exc:
            raise LiveError(str(exc)) from None
        stats = live_microphone(config, microphone)
    else:
        stats = live_camera(config)
    document = stats.to_dict()
    if args.stats_json:
        path = Path(args.stats_json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=1) + "\n")
    print(json.dumps(document, indent=1))
    return 0


def add_live_verb(subparsers: argparse._SubParsersAction) -> None:
    keys = "; ".join(f"{key}: {what}" for key, what in KEY_BINDINGS.items())
    parser = subparsers.add_parser(
        "live", help="animate a portrait live from a camera (or a video), in-process or over UDP",
        description="Camera -> face tracking -> codes (learned keypoints, or a face-prior model's head pose + "
                    "expression from the tracked mesh) -> transport -> generator -> window / "
                    f"video / stats. Window keys: {keys}. With --transport udp, --connect runs the "
                    "sender half (camera -> network) and --listen the receiver half (network -> outputs).")
    parser.add_argument("--camera", default=str(DEFAULT_DRIVING),
                        help="device index (0), video file or stream URL (default: the bundled clip)")
    parser.add_argument("--portrait", default=None,
                        help=f"portrait image or folder of portraits (default: {DEFAULT_PORTRAIT.name}; "
                             "a --listen receiver without one animates the sender's portrait)")
    parser.add_argument("--model", default=None, help="'default', a shipped model name, or a model folder (default: "
                        "'default'; with --mic the face-prior 'prior')")
    parser.add_argument("--mic", nargs="?", const="", default=None, metavar="DEVICE|FILE",
                        help="drive the avatar by speech instead of a camera: a PortAudio input device (index or "
                             "name; none given: the default input; `python -m sdk audio devices` lists them) or an "
                             "audio file paced as a microphone; --backend picks the audio encoder's backend too")
    parser.add_argument("--audio-model", default="default",
                        help="--mic: audio-to-code model (default: sdk/assets/audio)")
    parser.add_argument("--seed", type=int, default=0, help="--mic: picks the head motion sample (default 0)")
    parser.add_argument("--motion-scale", type=float, default=1.0, metavar="S",
                        help="--mic: head motion amplitude (1 as learned, 0 a still head)")
    parser.add_argument("--epsilon", type=float, default=0.5, help="--mic: head motion sampling radius (as speak)")
    parser.add_argument("--backend", choices=BACKEND_KINDS, default="auto",
                        help="runtime backend (auto: times torch, onnx, onnx-int8 and, with --graphs, tflite "
                             "at start and takes the fastest; the stats JSON says which and why)")
    parser.add_argument("--graphs", default=None,
                        help="export folder (python -m export): its ONNX fp32 / INT8 and TFLite graphs; without "
                             "one, ONNX graphs are made into the cache on first use (INT8: minutes, once)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads of every stage (default: per stage, from the cores this "
                             "process may use: ThreadBudget.auto; 2 cores: 1 each)")
    parser.add_argument("--size", type=int, default=None,
                        help="output size S of rendered frames: a multiple of the model's internal resolution "
                             "(default: the model's default output size)")
    parser.add_argument("--paste-back", action="store_true",
                        help="paste the animated face into the whole portrait (on the rendering end)")
    parser.add_argument("--headless", action="store_true", help="no window")
    parser.add_argument("--frames", type=int, default=None, help="stop after N captured frames (receiver: N codes)")
    parser.add_argument("--out", default=None, help="also write the output to this video (.mp4)")
    parser.add_argument("--side-by-side", action="store_true", help="show the driver's crop left of the avatar")
    parser.add_argument("--stats-json", default=None, help="write the session's stats to this JSON file")
    parser.add_argument("--virtual-camera", nargs="?", const=AUTO_DEVICE, default=None, metavar="DEVICE",
                        help="also send the avatar to a virtual webcam for video-call apps (pyvirtualcam: "
                             "v4l2loopback on Linux, OBS's virtual camera on macOS / Windows); DEVICE e.g. "
                             "/dev/video10 (default: the first one found)")
    parser.add_argument("--virtual-camera-size", type=parse_frame_size, default=(640, 480), metavar="WxH",
                        help="the virtual camera's frame size; the avatar is fitted into it (default: 640x480)")
    parser.add_argument("--serve", nargs="?", type=parse_serve_address, metavar="[HOST:]PORT", default=None,
                        const=(DEFAULT_HOST, DEFAULT_PORT),
                        help="serve a page with the input, the avatar and live stats (default "
                             f"{DEFAULT_HOST}:{DEFAULT_PORT}: this machine only)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="a progress bar on stderr (default: for headless runs on a video file, "
                             "when stderr is a terminal)")
    parser.add_argument("--unpaced", action="store_true",
                        help="read a video file as fast as the pipeline takes it (benchmarks)")
    parser.add_argument("--fps", type=float, default=None, help="the stream's frame rate: a video file is paced at it, a camera "
                             "delivering faster is held to it (default: the rate the file or camera reports)")
    parser.add_argument("--motion", choices=["relative", "absolute"], default="relative")
    parser.add_argument("--codec", choices=list(dict.fromkeys([*PRESETS, *SEMANTIC_PRESETS])), default="default",
                        help=f"code stream preset of the model's stream kind (learned-keypoint models: "
                             f"{', '.join(PRESETS)}; face-prior models: {', '.join(SEMANTIC_PRESETS)})")
    parser.add_argument("--edit", default="", metavar="EDITS",
                        help="face-prior models: pose and expression edits where frames are rendered (the stream "
                             "is the driver's), e.g. yaw=15,pitch=-5,smile=0.5,mouth_open=1,eyes_closed=1,"
                             "freeze=pose|expression|all; the window's keys change them")
    parser.add_argument("--transport", choices=["inproc", "udp"], default=None,
                        help="inproc: both halves here (default); udp: over UDP (both halves on "
                             "127.0.0.1 unless --listen or --connect)")
    ends = parser.add_mutually_exclusive_group()
    ends.add_argument("--listen", type=parse_address, default=None, metavar="HOST:PORT",
                      help="run the receiver half, receiving on HOST:PORT")
    ends.add_argument("--connect", type=parse_address, default=None, metavar="HOST:PORT",
                      help="run the sender half, sending to the receiver at HOST:PORT")
    parser.add_argument("--key-file", default=None,
                        help="pre-shared session key (64 hex digits) for --listen / --connect; "
                             "the listening end creates it when missing")
    parser.add_argument("--session-timeout", type=float, default=30.0,
                        help="seconds to wait for the other end to start the session")
    parser.add_argument("--queue", type=int, default=LiveConfig.queue_capacity,
                        help="frames each stage queue holds before dropping the oldest")
    parser.set_defaults(run=_run)

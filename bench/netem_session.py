"""A two-process UDP session between two network namespaces with 5 % loss and 40±20 ms delay.

    python bench/netem_session.py [--duration 120] [--codes real|synthetic] [--json out/netem_session.json]

Topology: namespaces tx and rx joined through a middle namespace (tx <-veth-> mid <-veth-> rx).
The impairment is `tc netem delay 40ms 20ms loss 5%` on the mid namespace's two veths (both
directions) where the kernel has netem; where it does not (e.g. a VM kernel without sch_netem),
a relay process in mid applies the same impairment to each datagram (uniform delay in
[20, 60] ms, as netem's jitter without a distribution table, and 5 % independent loss), and
the report says so. The sender (in tx) encodes codes with the real codec at 25 fps and sends them
with `UdpSender`; the receiver (in rx) decodes them out of `UdpReceiver` the way the live
pipeline does (render from the last good code) and measures capture-to-decode latency.

Needs root and `ip` (iproute2); exits with code 77 and the reason when namespaces cannot be made.
Prints a table and writes JSON: rendered/sent ratio, latency p50/p95/max, first vs last quarter
p95 (latency must not grow), transport and codec counters.
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import select
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

NAMESPACE_UNAVAILABLE = 77
FPS = 25
PORT = 47000
TX_ADDRESS, MID_TX_ADDRESS, MID_RX_ADDRESS, RX_ADDRESS = "10.77.1.1", "10.77.1.2", "10.77.2.1", "10.77.2.2"


class NamespaceUnavailable(RuntimeError):
    pass


def _ip(*args: str, namespace: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    command = (["ip", "netns", "exec", namespace] if namespace else []) + list(args)
    result = subprocess.run(command, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise NamespaceUnavailable(f"`{' '.join(command)}` failed: {result.stderr.strip() or result.stdout.strip()}")
    return result


@contextmanager
def topology(tag: str, use_netem: str):
    """Create tx, mid, rx namespaces and veths; yield (names, impairment used); always tear down."""
    names = {role: f"thsdk-{role}-{tag}" for role in ("tx", "mid", "rx")}
    created: list[str] = []
    try:
        for name in names.values():
            _ip("ip", "netns", "add", name)
            created.append(name)
            _ip("ip", "link", "set", "lo", "up", namespace=name)
        for side, (left, right, left_address, right_address) in {
                "a": ("tx", "mid", TX_ADDRESS, MID_TX_ADDRESS), "b": ("mid", "rx", MID_RX_ADDRESS, RX_ADDRESS)}.items():
            left_dev, right_dev = f"th{side}{tag}l"[:15], f"th{side}{tag}r"[:15]
            _ip("ip", "link", "add", left_dev, "netns", names[left], "type", "veth", "peer", "name", right_dev,
                "netns", names[right])
            for namespace, device, address in ((names[left], left_dev, left_address),
                                               (names[right], right_dev, right_address)):
                _ip("ip", "addr", "add", f"{address}/24", "dev", device, namespace=namespace)
                _ip("ip", "link", "set", device, "up", namespace=namespace)
        _ip("ip", "route", "add", "10.77.2.0/24", "via", MID_TX_ADDRESS, namespace=names["tx"])
        _ip("ip", "route", "add", "10.77.1.0/24", "via", MID_RX_ADDRESS, namespace=names["rx"])
        impairment = "relay"
        if use_netem in ("auto", "netem"):
            devices = [f"tha{tag}r"[:15], f"thb{tag}l"[:15]]  # mid's two ends: both directions
            results = [_ip("tc", "qdisc", "add", "dev", device, "root", "netem", "delay", "40ms", "20ms", "loss", "5%",
                           namespace=names["mid"], check=False) for device in devices]
            if all(r.returncode == 0 for r in results):
                _ip("sysctl", "-qw", "net.ipv4.ip_forward=1", namespace=names["mid"])
                impairment = "tc netem"
            elif use_netem == "netem":
                raise NamespaceUnavailable(f"tc netem unavailable: {results[0].stderr.strip()}")
        yield names, impairment
    finally:
        for name in created:
            _ip("ip", "netns", "del", name, check=False)


# -- the relay (only where tc netem is missing) ------------------------------------------------------

def run_relay(args: argparse.Namespace) -> None:
    """Forward datagrams tx <-> rx with 5 % loss and a uniform 20..60 ms delay in each direction."""
    rng = random.Random(args.seed)
    from_sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    from_sender.bind((MID_TX_ADDRESS, PORT))
    to_receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    to_receiver.bind((MID_RX_ADDRESS, 0))
    sender_address = None
    queue: list[tuple[float, int, socket.socket, bytes, tuple]] = []
    order = 0
    counts = {"forwarded": 0, "dropped": 0}
    deadline = time.monotonic() + args.duration + 10
    while time.monotonic() < deadline:
        timeout = max(0.0, min(queue[0][0] - time.monotonic(), 0.05)) if queue else 0.05
        readable, _, _ = select.select([from_sender, to_receiver], [], [], timeout)
        for sock in readable:
            data, source = sock.recvfrom(65535)
            if sock is from_sender:
                sender_address = source
                out, target = to_receiver, (RX_ADDRESS, PORT)
            elif sender_address is not None:
                out, target = from_sender, sender_address
            else:
                continue
            if rng.random() < args.loss:
                counts["dropped"] += 1
                continue
            heapq.heappush(queue, (time.monotonic() + rng.uniform(args.delay_ms - args.jitter_ms,
                                                                  args.delay_ms + args.jitter_ms) / 1000,
                                   order, out, data, target))
            order += 1
        while queue and queue[0][0] <= time.monotonic():
            _, _, out, data, target = heapq.heappop(queue)
            out.sendto(data, target)
            counts["forwarded"] += 1
        if args.stop_file and Path(args.stop_file).exists():
            break
    Path(args.out).write_text(json.dumps(counts))


# -- sender and receiver --------------------------------------------------------------------------------

def _header(codes: dict[str, np.ndarray]):
    from sdk.codec import CodecConfig, StreamHeader

    num_kp = codes["keypoints"].shape[1]
    return StreamHeader(str(codes["model_id"]), str(codes["model_sha256"]), num_kp, int(codes["resolution"]),
                        float(FPS), CodecConfig())


def run_sender(args: argparse.Namespace) -> None:
    from sdk.codec import CodeEncoder
    from sdk.transport import UdpSender, load_session_key

    codes = dict(np.load(args.codes_file))
    header = _header(codes)
    encoder = CodeEncoder(header)
    sender = UdpSender((args.host, PORT), load_session_key(args.key_file), start_timeout_s=30)
    sender.start_session(header.to_bytes(), None)
    frames = len(codes["keypoints"])
    start = time.monotonic()
    index = 0
    while time.monotonic() - start < args.duration:
        position = index % frames
        timestamp = int(time.time() * 1000) - args.epoch_ms  # capture time on the clock both sides share
        sender.send(encoder.encode(codes["keypoints"][position], codes["jacobians"][position], timestamp))
        index += 1
        time.sleep(max(0.0, start + index / FPS - time.monotonic()))
    sender.close()
    Path(args.out).write_text(json.dumps({"frames_sent": index, "transport": sender.stats.as_dict(),
                                          "codec": vars(encoder.stats)}))


def run_receiver(args: argparse.Namespace) -> None:
    from sdk.codec import CodecError, CodeDecoder, StreamHeader
    from sdk.transport import UdpReceiver, load_session_key

    receiver = UdpReceiver(("0.0.0.0", PORT), load_session_key(args.key_file))
    session = receiver.wait_session(min(60.0, args.duration + 30))
    decoder = CodeDecoder(StreamHeader.from_bytes(session.header))
    latencies: list[tuple[float, float]] = []  # (seconds since start, ms)
    ticks = fresh_ticks = 0
    start = time.monotonic()
    stop_at = start + args.duration + 3
    next_tick = start
    while time.monotonic() < stop_at and not receiver.peer_closed:
        next_tick += 1 / FPS
        fresh = False
        # everything due before the next render tick; the renderer never waits longer than that
        while (packet := receiver.receive(max(0.0, next_tick - time.monotonic()))) is not None:
            try:
                frame = decoder.decode(packet)
            except CodecError:
                continue  # counted in decoder.stats; the renderer keeps the last good code
            fresh = True
            latencies.append((time.monotonic() - start,
                              time.time() * 1000 - args.epoch_ms - frame.timestamp_ms))
        ticks += 1
        fresh_ticks += fresh
    receiver.close()
    Path(args.out).write_text(json.dumps({"latencies": latencies, "ticks": ticks, "fresh_ticks": fresh_ticks,
                                          "transport": receiver.stats.as_dict(), "codec": vars(decoder.stats)}))


# -- orchestration ------------------------------------------------------------------------------------

def make_codes(kind: str, path: Path) -> None:
    """Codes to send: from the default model on a real test clip, or a synthetic head-like walk."""
    if kind == "real":
        import torch

        from sdk.checkpoint import CHECKSUM_FILE, MODELS_DIR, load_model
        from sdk.media import iter_video
        from sdk.pipeline import TalkingHeadPipeline

        torch.set_grad_enabled(False)
        model = load_model("default")
        pipeline = TalkingHeadPipeline(model)
        from sdk.face import FaceTracker, TrackerConfig

        tracker = FaceTracker(TrackerConfig())
        keypoints, jacobians = [], []
        for frame in iter_video(Path(__file__).resolve().parents[1] / "sdk" / "assets" / "driving.mp4"):
            box = tracker.update(frame).box
            if box is None:
                continue
            code = pipeline.encode(box.crop(frame, 256))
            keypoints.append(code.value[0].numpy())
            jacobians.append(code.jacobian[0].numpy())
        sha = (MODELS_DIR / "default" / CHECKSUM_FILE).read_text().split()[0]
        np.savez(path, keypoints=np.stack(keypoints), jacobians=np.stack(jacobians), model_id=model.cfg.name,
                 model_sha256=sha, resolution=model.cfg.resolution)
        return
    rng = np.random.default_rng(0)
    frames, num_kp = 250, 15
    base = rng.uniform(-0.6, 0.6, (num_kp, 2))
    walk = np.cumsum(rng.normal(0, 0.01, (frames, 1, 2)), axis=0)
    keypoints = np.clip(base + walk + rng.normal(0, 0.004, (frames, num_kp, 2)), -1, 1)
    jacobians = np.eye(2) + 0.1 * rng.normal(size=(1, num_kp, 2, 2)) + np.cumsum(
        rng.normal(0, 0.01, (frames, num_kp, 2, 2)), axis=0)
    np.savez(path, keypoints=keypoints.astype(np.float32), jacobians=jacobians.astype(np.float32),
             model_id="synthetic", model_sha256="00" * 32, resolution=128)


def summarize(sender: dict, receiver: dict, relay: dict | None, impairment: str, duration: float) -> dict:
    latencies = np.array([ms for _, ms in receiver["latencies"]]) if receiver["latencies"] else np.zeros(0)
    times = np.array([t for t, _ in receiver["latencies"]]) if receiver["latencies"] else np.zeros(0)

    def p(values: np.ndarray, q: float) -> float | None:
        return float(np.percentile(values, q)) if len(values) else None

    quarter = duration / 4
    return {
        "impairment": impairment + ": 5 % loss, 40±20 ms delay each direction",
        "duration_s": duration,
        "frames_sent": sender["frames_sent"],
        "frames_decoded": len(latencies),
        "rendered_ratio": len(latencies) / max(sender["frames_sent"], 1),
        "render_ticks": receiver["ticks"],
        "fresh_tick_ratio": receiver["fresh_ticks"] / max(receiver["ticks"], 1),
        "latency_ms_p50": p(latencies, 50), "latency_ms_p95": p(latencies, 95),
        "latency_ms_max": float(latencies.max()) if len(latencies) else None,
        "latency_ms_p95_first_quarter": p(latencies[times < quarter], 95),
        "latency_ms_p95_last_quarter": p(latencies[times > duration - quarter], 95),
        "latency_ms_p95_per_10s": [p(latencies[(times >= t) & (times < t + 10)], 95)
                                   for t in range(0, int(duration), 10)],
        "code_kbps": 8 * sender["codec"]["bytes"] / max(sender["frames_sent"], 1) * FPS / 1000,
        "wire_kbps_sent": 8 * sender["transport"]["wire_bytes"] / duration / 1000,
        "sender": sender["transport"], "receiver": receiver["transport"], "decoder": receiver["codec"],
        "relay": relay,
    }


def format_summary(summary: dict) -> str:
    def fmt(value):
        return "—" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))

    keys = ["impairment", "duration_s", "frames_sent", "frames_decoded", "rendered_ratio", "fresh_tick_ratio",
            "latency_ms_p50", "latency_ms_p95", "latency_ms_max", "latency_ms_p95_first_quarter",
            "latency_ms_p95_last_quarter", "code_kbps", "wire_kbps_sent"]
    lines = [f"{key:<30} {fmt(summary[key])}" for key in keys]
    lines.append(f"{'latency_ms_p95_per_10s':<30} " + " ".join(fmt(v) for v in summary["latency_ms_p95_per_10s"]))
    lines.append("receiver: " + ", ".join(f"{k} {v}" for k, v in summary["receiver"].items()))
    lines.append("decoder:  " + ", ".join(f"{k} {v}" for k, v in summary["decoder"].items()))
    if summary["relay"]:
        lines.append("relay:    " + ", ".join(f"{k} {v}" for k, v in summary["relay"].items()))
    return "\n".join(lines)


def orchestrate(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("netem session: network namespaces need root", file=sys.stderr)
        return NAMESPACE_UNAVAILABLE
    from sdk.transport import SessionKey

    tag = f"{os.getpid() % 100000}"
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        key_file = SessionKey.generate().save(work_dir / "session.key")
        codes = Path(args.codes_file) if args.codes_file else work_dir / "codes.npz"
        if not args.codes_file:
            make_codes(args.codes, codes)
        try:
            with topology(tag, args.impairment) as (names, impairment):
                epoch_ms = int(time.time() * 1000)
                common = [sys.executable, __file__, "--duration", str(args.duration), "--epoch-ms", str(epoch_ms),
                          "--key-file", str(key_file), "--codes-file", str(codes)]
                processes = {}

                def spawn(role: str, namespace: str, *extra: str) -> None:
                    processes[role] = subprocess.Popen(
                        ["ip", "netns", "exec", namespace, *common, "--role", role,
                         "--out", str(work_dir / f"{role}.json"), *extra])

                target = RX_ADDRESS
                if impairment == "relay":
                    spawn("relay", names["mid"], "--stop-file", str(work_dir / "stop"))
                    target = MID_TX_ADDRESS
                spawn("receive", names["rx"])
                time.sleep(0.5)  # the receiver binds first (the sender retransmits anyway)
                spawn("send", names["tx"], "--host", target)
                limit = args.duration + 90
                for role in ("send", "receive"):
                    processes[role].wait(timeout=limit)
                (work_dir / "stop").touch()
                if "relay" in processes:
                    processes["relay"].wait(timeout=30)
                failed = [role for role, process in processes.items() if process.returncode != 0]
                if failed:
                    print(f"netem session: {', '.join(failed)} failed", file=sys.stderr)
                    return 1
                results = {role: json.loads((work_dir / f"{role}.json").read_text()) for role in processes}
        except NamespaceUnavailable as exc:
            print(f"netem session: network namespaces unavailable: {exc}", file=sys.stderr)
            return NAMESPACE_UNAVAILABLE
    summary = summarize(results["send"], results["receive"], results.get("relay"), impairment, args.duration)
    print(format_summary(summary))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of frames to send")
    parser.add_argument("--codes", choices=["real", "synthetic"], default="real",
                        help="real: the default model's codes of sdk/assets/driving.mp4; synthetic: a random walk")
    parser.add_argument("--impairment", choices=["auto", "netem", "relay"], default="auto",
                        help="tc netem where the kernel has it (auto), or the relay process")
    parser.add_argument("--json", help="write the summary as JSON")
    # internal: the three processes
    parser.add_argument("--role", choices=["send", "receive", "relay"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--host", help=argparse.SUPPRESS)
    parser.add_argument("--epoch-ms", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--key-file", help=argparse.SUPPRESS)
    parser.add_argument("--codes-file", help=argparse.SUPPRESS)
    parser.add_argument("--stop-file", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--loss", type=float, default=0.05, help=argparse.SUPPRESS)
    parser.add_argument("--delay-ms", type=float, default=40.0, help=argparse.SUPPRESS)
    parser.add_argument("--jitter-ms", type=float, default=20.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "send":
        run_sender(args)
    elif args.role == "receive":
        run_receiver(args)
    elif args.role == "relay":
        run_relay(args)
    else:
        return orchestrate(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Swift package ios-demo/ (issue 15 item 3) against the Python SDK, in the Debian trixie tree
that has Swift (ios-demo/scripts/make_swift_chroot.sh; .ci/run makes it): one `swift test` run with

- the golden vectors of tests/golden/ and the bad-input cases (in the package's own tests);
- random property cases written here by the SDK (random headers of the three kinds, codes, impaired
  packets, motion; >= 10,000 decodes compared) for PropertyTests;
- a UDP loopback session for LoopbackTests: the SDK's `UdpSender` streams a clip (the synthetic
  head-like walk of bench/netem_session.py, K = 15 with Jacobians), encrypted, to the Swift receiver,
  whose every decoded code must equal the Python receiver's; the Swift sender then streams the
  packets it received back to the SDK's `UdpReceiver`.

Skips, saying why, without root (chroot) or without the tree.

    python tests/test_swift.py --write-cases PATH [--cases N]   # the property cases (the macOS workflow)
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from test_native_core import (PYTHON_CODECS, impaired, motion_cases, python_decode, python_encode, random_header,
                              random_inputs)

from sdk.codec import CodeDecoder, CodeEncoder, StreamHeader, read_stream_header

ROOT = Path(__file__).resolve().parents[1]
TREE = Path(os.environ.get("THK_SWIFT_TREE", "/opt/swift-trixie"))
RUNNER = ROOT / "ios-demo" / "scripts" / "swift_in_tree.sh"
PROPERTY_CASES = int(os.environ.get("THK_PROPERTY_CASES", "10000"))
SWIFT_TIMEOUT_S = 1800  # a first build of the package under load takes minutes


def write_cases(path: Path, decodes: int, seed: int = 21) -> dict[str, int]:
    """Random streams (as tests/test_native_core.py makes them for the C core) with what the SDK
    makes of them, one JSON line each, until `decodes` decoder outcomes are recorded; then 200
    motion cases."""
    rng = np.random.default_rng(seed)
    counts = {"streams": 0, "encodes": 0, "decodes": 0}
    with path.open("w") as out:
        while counts["decodes"] < decodes:
            header_bytes = random_header(rng)
            header = read_stream_header(header_bytes)
            python_encoder, python_decoder = PYTHON_CODECS[type(header)]
            encoder = python_encoder(header)
            frames, packets = [], []
            for values, timestamp, force in random_inputs(rng, header, int(rng.integers(1, 40))):
                if force:
                    encoder.force_keyframe()
                if isinstance(header, StreamHeader):  # float32 values (a hybrid stream's keypoints: Float() of them)
                    values = values.astype(np.float32)
                packet = python_encode(encoder, header, values, timestamp)
                frames.append({"values": [float(v) for v in values], "timestamp": timestamp, "force": force,
                               "packet": packet.hex()})
                packets.append(packet)
            decoder = python_decoder(header)
            outcomes = []
            for packet in impaired(rng, packets):
                status, frame = python_decode(decoder, packet)
                outcome = {"packet": packet.hex(), "status": status}
                if frame is not None:
                    outcome.update(zip(("sequence", "timestamp", "keyframe", "values"), frame))
                outcomes.append(outcome)
            out.write(json.dumps({"header": header_bytes.hex(), "frames": frames, "clamped": encoder.stats.clamped_values,
                                  "bytes": encoder.stats.bytes, "decodes": outcomes,
                                  "decoder_stats": decoder.stats.__dict__}) + "\n")
            counts["streams"] += 1
            counts["encodes"] += len(frames)
            counts["decodes"] += len(outcomes)
        for case in motion_cases(200, 2):
            out.write(json.dumps({"motion": case}) + "\n")
    return counts


def netem_session():
    """bench/netem_session.py as a module: its synthetic clip (`make_codes`) and stream header (`_header`)."""
    spec = importlib.util.spec_from_file_location("netem_session", ROOT / "bench" / "netem_session.py")
    netem = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(netem)
    return netem


class PythonEnd(threading.Thread):
    """A thread that runs `target` and keeps its exception for the test to raise."""

    def __init__(self, target):
        super().__init__(daemon=True)
        self._target_function, self.error, self.result = target, None, None

    def run(self) -> None:
        try:
            self.result = self._target_function()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            self.error = error


def python_receive(receiver, timeout_s: float = 60.0) -> list[tuple]:
    """Every frame of one session through the SDK's receiver and decoder, until BYE."""
    from sdk.codec import StreamHeader

    session = receiver.wait_session(timeout_s)
    decoder = CodeDecoder(StreamHeader.from_bytes(session.header))
    decoded, quiet_since = [], time.monotonic()
    while time.monotonic() - quiet_since < 5:
        packet = receiver.receive(0.1)
        if packet is None:
            if receiver.peer_closed:
                break
            continue
        quiet_since = time.monotonic()
        decoded.append(python_decode(decoder, packet))
    return decoded


def stream_clip(port: int, key, header_bytes: bytes, packets: list[bytes]) -> None:
    from sdk.transport import UdpSender

    sender = UdpSender(("127.0.0.1", port), key, start_timeout_s=60)
    sender.start_session(header_bytes, None)
    for packet in packets:
        sender.send(packet)
        time.sleep(0.002)
    sender.close()


@pytest.fixture(scope="module")
def swift_run():
    if os.geteuid() != 0:
        pytest.skip("the swift tree runs through chroot, which needs root")
    if not (TREE / "usr/libexec/swift/bin/swift").exists():
        pytest.skip(f"no swift tree at {TREE} (Debian has no Swift before trixie; make it with "
                    "ios-demo/scripts/make_swift_chroot.sh, as .ci/run does where debootstrap and the disk allow)")
    from sdk.transport import SessionKey, UdpReceiver

    inside = Path("/var/tmp/thk-swift-run") / secrets.token_hex(4)   # the tree's path
    folder = TREE / inside.relative_to("/")                           # the same folder seen from here
    folder.mkdir(parents=True)
    counts = write_cases(folder / "cases.jsonl", PROPERTY_CASES)

    netem = netem_session()
    netem.make_codes("synthetic", folder / "clip.npz")
    codes = dict(np.load(folder / "clip.npz"))
    header = netem._header(codes)
    encoder = CodeEncoder(header)
    packets = [encoder.encode(kp, jac, 40 * index) for index, (kp, jac) in
               enumerate(zip(codes["keypoints"], codes["jacobians"]))]
    key = SessionKey.generate()
    (folder / "secret").write_text(key.hex() + "\n")

    # the Python receiver's codes of the clip, over UDP on loopback first
    reference = UdpReceiver(("127.0.0.1", 0), key)
    python_side = PythonEnd(lambda: python_receive(reference))
    python_side.start()
    stream_clip(reference.address[1], key, header.to_bytes(), packets)
    python_side.join(90)
    reference.close()
    assert python_side.error is None, python_side.error
    expected = python_side.result
    assert [status for status, _ in expected] == [0] * len(packets), "the Python receiver lost frames on loopback"
    (folder / "expected.jsonl").write_text("".join(
        json.dumps({"sequence": s, "timestamp_ms": t, "keyframe": k, "values": v}) + "\n"
        for _, (s, t, k, v) in expected))

    # the Swift receiver: the sender waits for the port it listens on; the Python receiver for its sender
    def send_to_swift() -> None:
        port_file, deadline = folder / "swift_port", time.monotonic() + SWIFT_TIMEOUT_S
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline:
                raise TimeoutError("the Swift receiver never listened")
            time.sleep(0.05)
        stream_clip(int(port_file.read_text()), key, header.to_bytes(), packets)

    back = UdpReceiver(("127.0.0.1", 0), key)
    (folder / "python_port").write_text(f"{back.address[1]}\n")
    to_swift, from_swift = PythonEnd(send_to_swift), PythonEnd(lambda: python_receive(back, timeout_s=SWIFT_TIMEOUT_S))
    to_swift.start()
    from_swift.start()
    env = {**os.environ, "THK_SWIFT_CASES": str(inside / "cases.jsonl"), "THK_LOOPBACK_DIR": str(inside),
           "THK_SWIFT_TREE": str(TREE)}
    try:
        result = subprocess.run(["bash", str(RUNNER), "test", "--disable-swift-testing"], capture_output=True, text=True,
                                env=env, timeout=SWIFT_TIMEOUT_S)
    finally:
        back.close()
    from_swift.join(30)
    yield {"result": result, "folder": folder, "counts": counts, "expected": expected, "to_swift": to_swift,
           "from_swift": from_swift, "packets": packets}
    shutil.rmtree(folder)


def test_swift_test_passes_every_test(swift_run):
    result = swift_run["result"]
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    summary = re.findall(r"Executed (\d+) tests?, with (\d+) failures?", output)
    assert summary and summary[-1][1] == "0", output[-3000:]
    skipped = [line for line in output.splitlines() if "Test skipped" in line]
    assert not skipped, "Swift tests skipped: " + "\n".join(skipped)


def test_property_cases_equal_python(swift_run):
    output = swift_run["result"].stdout + swift_run["result"].stderr
    match = re.search(r"property cases: (\d+) streams, (\d+) encodes, (\d+) decodes \((\d+) ok\), (\d+) motion", output)
    assert match, output[-3000:]
    streams, encodes, decodes, ok, motion = map(int, match.groups())
    assert decodes == swift_run["counts"]["decodes"] >= PROPERTY_CASES
    assert encodes == swift_run["counts"]["encodes"] and motion == 200
    print(f"Swift vs Python: {encodes} encodes, {decodes} decodes ({ok} ok), {motion} motion cases, {streams} streams")


def test_loopback_codes_equal_python_receiver(swift_run):
    assert swift_run["to_swift"].error is None, swift_run["to_swift"].error
    lines = (swift_run["folder"] / "swift_decoded.jsonl").read_text().splitlines()
    swift = [json.loads(line) for line in lines]
    expected = [frame for _, frame in swift_run["expected"]]
    assert len(swift) == len(expected) == len(swift_run["packets"])
    for got, (sequence, timestamp, keyframe, values) in zip(swift, expected):
        assert (got["sequence"], got["timestamp_ms"], got["keyframe"]) == (sequence, timestamp, keyframe)
        assert got["values"] == values
    stats = json.loads((swift_run["folder"] / "swift_stats.json").read_text())
    assert stats["forged"] == 0 and stats["sessions"] == 1 and stats["lost"] == 0


def test_swift_sender_to_python_receiver(swift_run):
    assert swift_run["from_swift"].error is None, swift_run["from_swift"].error
    assert swift_run["from_swift"].result == swift_run["expected"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Write the Swift package's property cases from the Python SDK.")
    parser.add_argument("--write-cases", type=Path, required=True)
    parser.add_argument("--cases", type=int, default=PROPERTY_CASES, help="decoder outcomes to record (default %(default)s)")
    args = parser.parse_args()
    print(write_cases(args.write_cases, args.cases))

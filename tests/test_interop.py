"""Interop (issue 15 item 4): the SDK's UDP sender streams a clip's codes, encrypted, over real UDP on
loopback to three receivers in turn: the Python SDK's (`sdk.transport.UdpReceiver` + `CodeDecoder`),
the C core's (native/tests/udp_receive.c) and the JVM binding's (android-demo's ReceiveTool, where
its toolchain is installed; it skips saying which tool is missing).

The codes come from the exported sender graph (the tiny model's TFLite keypoint encoder on frames of
the bundled driving clip), as an app's sender makes them. Every code the C and JVM receivers decode
equals the Python receiver's bit for bit; their relative motion (docs/motion.md, in the core) agrees
with the Python's within its documented tolerance; and the frames the exported TFLite generator
renders from their codes and motion are the Python receiver's frames.
"""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sdk import media
from sdk.checkpoint import load_model, save_model
from sdk.codec import CodecConfig, CodeDecoder, CodeEncoder, StreamHeader
from sdk.live.capture import DEFAULT_DRIVING
from sdk.live.receiver import code_to_keypoints
from sdk.live.stream import stream_header
from sdk.models.motion import Keypoints, keypoint_hull_area, relative_keypoints
from sdk.runtime import create_backend, model_sha256
from sdk.transport import SessionKey, UdpReceiver, UdpSender

from test_android_jvm import ROOT, android_build, jvm_command

pytestmark = pytest.mark.usefixtures("single_thread")

CLIP_FRAMES = 40
SEND_GAP_S = 0.002  # between frames: loopback would take them faster, but a receiver's socket buffer is finite


@dataclass(frozen=True)
class Stream:
    header: bytes
    portrait: bytes           # PNG, as a live sender sends its avatar
    packets: list[bytes]
    source: Keypoints         # the portrait's keypoints from the exported source encoder
    state: object             # the generator's per-avatar inputs


@dataclass(frozen=True)
class Received:
    """What one receiver decoded: per frame (sequence, timestamp, keyframe, float32 values) and, for the
    native receivers, their relative motion (value (K, 2), jacobian (K, 2, 2)) per frame."""
    frames: list[tuple[int, int, bool, np.ndarray]]
    motion: list[tuple[np.ndarray, np.ndarray]]
    summary: str


@pytest.fixture(scope="module")
def model_dir(tiny_model, tmp_path_factory):
    directory = tmp_path_factory.mktemp("interop-model") / "tiny"
    save_model(tiny_model, directory)
    return directory


@pytest.fixture(scope="module")
def model(model_dir):
    """The tiny model as the export reads it back (its sha256 is the one the graphs carry)."""
    return load_model(model_dir)


@pytest.fixture(scope="module")
def backend(model, model_dir, tmp_path_factory):
    """The tiny model's three graphs exported to TFLite (fp32) and run by LiteRT (ai-edge-litert)."""
    from export.cli import main

    out = tmp_path_factory.mktemp("interop-export")
    assert main(["--model", str(model_dir), "--format", "tflite", "--precision", "fp32", "--out", str(out),
                 "--no-progress"]) == 0
    return create_backend(model, "tflite", graphs=out)


def image_tensor(image: np.ndarray, side: int) -> torch.Tensor:
    return media.to_tensor(media.resize_image(image, side, side))


@pytest.fixture(scope="module")
def stream(backend, model) -> Stream:
    frames = []
    for frame in media.iter_video(DEFAULT_DRIVING):
        frames.append(np.ascontiguousarray(frame[::2, ::2]))
        if len(frames) == CLIP_FRAMES:
            break
    cfg = model.cfg
    header = stream_header(cfg, model_sha256(model), 25.0, CodecConfig())
    encoder = CodeEncoder(header)
    packets = []
    for index, frame in enumerate(frames):
        code = backend.encode(image_tensor(frame, cfg.resolution))  # the exported sender graph
        packets.append(encoder.encode(code.value[0].numpy(), code.jacobian[0].numpy(), 40 * index))
    portrait = frames[0]
    state = backend.prepare_source(image_tensor(portrait, backend.output_size))
    ok, png = cv2.imencode(".png", cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR))
    assert ok
    return Stream(header.to_bytes(), png.tobytes(), packets, state.keypoints, state)


def send(port: int, key: SessionKey, stream: Stream) -> None:
    """The SDK's sender: handshake, the session start (header + portrait), one datagram per frame, BYE."""
    sender = UdpSender(("127.0.0.1", port), key, retransmit_s=0.05)
    try:
        sender.start_session(stream.header, stream.portrait, timeout_s=30)
        for packet in stream.packets:
            sender.send(packet)
            time.sleep(SEND_GAP_S)
    finally:
        sender.close()


@pytest.fixture(scope="module")
def python_received(stream) -> Received:
    key = SessionKey.generate()
    receiver = UdpReceiver(("127.0.0.1", 0), key)
    thread = threading.Thread(target=send, args=(receiver.address[1], key, stream))
    thread.start()
    try:
        start = receiver.wait_session(timeout_s=30)
        assert start.header == stream.header and start.portrait == stream.portrait
        decoder = CodeDecoder(stream_header_of(stream))
        frames, deadline = [], time.monotonic() + 30
        while time.monotonic() < deadline:
            packet = receiver.receive(timeout_s=0.2)
            if packet is None:
                if receiver.peer_closed:
                    break
                continue
            code = decoder.decode(packet)
            values = np.concatenate([code.keypoints.ravel(), code.jacobians.ravel()]).astype(np.float32)
            frames.append((code.sequence, code.timestamp_ms, code.keyframe, values))
    finally:
        thread.join()
        receiver.close()
    return Received(frames, [], str(receiver.stats.as_dict()))


def stream_header_of(stream: Stream) -> StreamHeader:
    return StreamHeader.from_bytes(stream.header)


def native_receive(command: list[str], stream: Stream, key: SessionKey) -> Received:
    """Run a native receiver (it prints its port first), stream to it, and parse what it printed."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline().split()
        assert first[:1] == ["port"], first + [process.stderr.read()]
        send(int(first[1]), key, stream)
        output, errors = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, errors
    lines = output.splitlines()
    assert lines[0].split()[2] == stream.header.hex() and int(lines[0].split()[3]) == len(stream.portrait)

    def floats(text: str) -> np.ndarray:
        return np.array([int(v, 16) for v in text.split(",")], np.uint32).view(np.float32)

    frames, motion = [], []
    for line in lines[1:-1]:
        parts = line.split()
        assert parts[0] == "frame", line
        frames.append((int(parts[1]), int(parts[2]), parts[3] == "1", floats(parts[4])))
        motion.append((floats(parts[5]), floats(parts[6])))
    assert lines[-1].startswith("counts"), lines[-1]
    return Received(frames, motion, lines[-1])


@pytest.fixture(scope="module")
def source_file(stream, tmp_path_factory):
    """The avatar's keypoints and Jacobians for the native receivers' motion (float32 LE)."""
    path = tmp_path_factory.mktemp("interop-source") / "source.f32"
    values = np.concatenate([stream.source.value[0].numpy().ravel(), stream.source.jacobian[0].numpy().ravel()])
    path.write_bytes(values.astype("<f4").tobytes())
    return path


@pytest.fixture(scope="module", params=["c", "jvm"])
def native_received(request, stream, source_file, tmp_path_factory) -> tuple[str, Received]:
    key = SessionKey.generate()
    if request.param == "c":
        if shutil.which("make") is None or shutil.which("cc") is None:
            pytest.skip("no make or C compiler here")
        if not any(Path(folder, "sodium.h").exists() for folder in ("/usr/include", "/usr/local/include")):
            pytest.skip("libsodium's headers are missing (Debian: libsodium-dev; .ci/run installs it)")
        build = tmp_path_factory.mktemp("interop-native")
        subprocess.run(["make", "-s", "-C", str(ROOT / "native"), f"BUILD={build}", "udp_receive"], check=True,
                       capture_output=True)
        command = [str(build / "udp_receive"), key.hex(), str(source_file), "20"]
    else:
        out = android_build("jvm", tmp_path_factory)
        command = jvm_command(out, "org.talkinghead.core.tools.ReceiveTool") + [
            "--key", key.hex(), "--source", str(source_file), "--timeout", "20"]
    return request.param, native_receive(command, stream, key)


def test_every_code_equals_the_python_receivers(native_received, python_received, stream):
    name, received = native_received
    assert len(python_received.frames) == len(stream.packets) == CLIP_FRAMES, python_received.summary
    assert len(received.frames) == CLIP_FRAMES, received.summary
    for (sequence, timestamp, keyframe, values), expected in zip(received.frames, python_received.frames):
        assert (sequence, timestamp, keyframe) == expected[:3]
        assert values.view(np.uint32).tolist() == expected[3].view(np.uint32).tolist()  # bit for bit
    print(f"{name}: {len(received.frames)} codes equal to the Python receiver's; {received.summary}")


def python_motion(python_received: Received, stream: Stream) -> list[Keypoints]:
    """What the Python receiver drives the generator with (TalkingHeadPipeline.driving_keypoints:
    relative motion against the first code, Jacobians, movement-scale adaptation)."""
    header = stream_header_of(stream)
    decoder = CodeDecoder(header)
    codes = [code_to_keypoints(decoder.decode(packet), torch.device("cpu")) for packet in stream.packets]
    anchor = codes[0]
    source_area, anchor_area = keypoint_hull_area(stream.source), keypoint_hull_area(anchor)
    assert len(codes) == len(python_received.frames)
    return [relative_keypoints(code, anchor, stream.source, True, True, source_area, anchor_area) for code in codes]


def test_rendered_frames_equal_the_python_receivers(native_received, python_received, stream, backend):
    """The native receivers' motion within docs/motion.md's tolerance of the Python's; the frames the
    TFLite generator renders from it equal the Python receiver's (to rounding), and from their codes
    with the Python's motion, bit for bit."""
    name, received = native_received
    k = stream.source.value.shape[1]
    expected = python_motion(python_received, stream)
    worst_motion = worst_pixel = 0.0
    for (value, jacobian), reference, (_, _, _, values) in zip(received.motion, expected, received.frames):
        np.testing.assert_allclose(value.reshape(k, 2), reference.value[0].numpy(), rtol=5e-7, atol=1e-6)
        np.testing.assert_allclose(jacobian.reshape(k, 2, 2), reference.jacobian[0].numpy(), rtol=5e-7, atol=1e-6)
        worst_motion = max(worst_motion, float(np.abs(value.reshape(k, 2) - reference.value[0].numpy()).max()))
        mine = media.to_image(backend.render(stream.state, Keypoints(torch.from_numpy(value.reshape(1, k, 2)),
                                                                     torch.from_numpy(jacobian.reshape(1, k, 2, 2)))))
        python = media.to_image(backend.render(stream.state, reference))
        difference = np.abs(mine.astype(int) - python.astype(int))
        assert difference.max() <= 1, (name, difference.max())
        worst_pixel = max(worst_pixel, float(difference.max()))
    # the same codes through the Python's motion: the same frames exactly (the codes are bit-equal)
    header = stream_header_of(stream)
    for (_, _, _, values), reference in zip(received.frames[:5], expected[:5]):
        decoded = Keypoints(torch.from_numpy(values[:2 * k].reshape(1, k, 2)),
                            torch.from_numpy(values[2 * k:6 * k].reshape(1, k, 2, 2)))
        anchor = code_to_keypoints(CodeDecoder(header).decode(stream.packets[0]), torch.device("cpu"))
        moved = relative_keypoints(decoded, anchor, stream.source, True, True, keypoint_hull_area(stream.source),
                                   keypoint_hull_area(anchor))
        assert np.array_equal(media.to_image(backend.render(stream.state, moved)),
                              media.to_image(backend.render(stream.state, reference)))
    print(f"{name}: {len(received.frames)} frames rendered by the TFLite generator; motion within "
          f"{worst_motion:.2g} of the Python's, pixels within {worst_pixel:.0f} level")


def test_the_jvm_senders_session_reaches_the_python_receiver(stream, tmp_path_factory):
    """The other direction, through the core's sender (thk_sender via the JVM binding): the SDK's
    receiver completes the handshake, gets the header and portrait, and every packet in order."""
    out = android_build("jvm", tmp_path_factory)
    portrait = tmp_path_factory.mktemp("interop-portrait") / "portrait.png"
    portrait.write_bytes(stream.portrait)
    key = SessionKey.generate()
    receiver = UdpReceiver(("127.0.0.1", 0), key)
    command = jvm_command(out, "org.talkinghead.core.tools.SendTool") + [
        "--key", key.hex(), "--port", str(receiver.address[1]), "--header", stream.header.hex(),
        "--portrait", str(portrait)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        process.stdin.write("".join(packet.hex() + "\n" for packet in stream.packets))
        process.stdin.close()
        start = receiver.wait_session(timeout_s=30)
        assert start.header == stream.header and start.portrait == stream.portrait
        packets, deadline = [], time.monotonic() + 30
        while time.monotonic() < deadline and not (receiver.peer_closed and len(packets) == len(stream.packets)):
            packet = receiver.receive(timeout_s=0.2)
            if packet is not None:
                packets.append(packet)
            elif receiver.peer_closed:
                break
        assert process.wait(timeout=30) == 0, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
        receiver.close()
    assert packets == stream.packets
    stats = receiver.stats
    assert (stats.sessions, stats.forged, stats.malformed, stats.lost) == (1, 0, 0, 0)
    print(f"jvm sender -> python receiver: {len(packets)} packets; {process.stdout.read().strip()}")

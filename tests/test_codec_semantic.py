"""The semantic-code stream kind (docs/bitstream.md §11, §12): header, round trip, loss, prior identity,
golden vectors, hostile bytes, and bench/semantic_codec.py on a tiny prepared set.

    python tests/test_codec_semantic.py --write-golden   # regenerate tests/golden/codec_semantic_v2.json
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdk.codec import (SEMANTIC_PRESETS, CodecConfig, CodecError, CodeDecoder, CodeEncoder, MissingReferenceError,
                       PriorMismatchError, SemanticCodecConfig, SemanticCodeDecoder, SemanticCodeEncoder,
                       SemanticFrameCode, SemanticStreamHeader, StalePacketError, StreamHeader, read_stream_header)
from sdk.codec.config import EXPRESSION_LIMIT, POSE_LIMITS
from sdk.errors import SdkError

PRIOR_SHA = "5546106d5748432175ef785c0f3575b1953ab0b49a2d5af59ffd7e3fae18bdbc"
MODEL_SHA = "0123456789abcdef" * 4
E = 8
GOLDEN = Path(__file__).resolve().parent / "golden" / "codec_semantic_v2.json"


@dataclass(frozen=True)
class StubPrior:
    """What the codec reads of a `sdk.prior.FacePrior`: its file's sha256 and its E."""
    sha256: str | None = PRIOR_SHA
    components: int = 32


def make_header(config: SemanticCodecConfig = SemanticCodecConfig(), dims: int = E) -> SemanticStreamHeader:
    return SemanticStreamHeader("dagan++-mobile", MODEL_SHA, PRIOR_SHA, dims, 128, 25.0, config)


def smooth_codes(frames: int, dims: int = E, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A head-like random walk: pose (T, 6) (degrees, keypoint units, log scale), expression (T, dims)."""
    rng = np.random.default_rng(seed)
    start = np.array([5.0, -3.0, 2.0, 0.02, 0.05, np.log(0.55)])
    walk = np.cumsum(rng.normal(0, 1, (frames, 6)) * [0.6, 0.6, 0.4, 0.005, 0.005, 0.004], axis=0)
    expression = np.cumsum(rng.normal(0, 0.05, (frames, dims)), axis=0) + rng.normal(0, 0.3, dims)
    return start + walk, expression


def largest(config: SemanticCodecConfig) -> np.ndarray:
    """(6 + 1,) the largest magnitude each pose number and a coefficient decode to: the limit in whole steps."""
    units = np.array(config.step_units())
    return np.array([*POSE_LIMITS, EXPRESSION_LIMIT]) * 65536 // units * units / 65536


def max_error(config: SemanticCodecConfig) -> np.ndarray:
    """(6 + 1,) the largest quantization error of each pose number and of a coefficient."""
    return (0.5 + config.hysteresis) * np.array([*config.pose_steps, config.expression_step]) + 1e-12


# -- header -------------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", sorted(SEMANTIC_PRESETS))
@pytest.mark.parametrize("dims", [0, 16, 255])
def test_header_round_trip(preset, dims):
    header = make_header(SemanticCodecConfig.preset(preset), dims)
    data = header.to_bytes()
    assert data[:6] == b"THKC\x02\x01" and len(data) == 65 + len("dagan++-mobile")
    assert SemanticStreamHeader.from_bytes(data) == header == read_stream_header(data)


def test_read_stream_header_tells_the_kinds_apart_and_old_streams_still_decode():
    old = StreamHeader("dagan++-mobile", MODEL_SHA, 15, 128, 25.0, CodecConfig())
    assert isinstance(read_stream_header(old.to_bytes()), StreamHeader)
    assert old.to_bytes()[4] == 1  # the learned-keypoint kind keeps its version-1 header, byte for byte
    packet = CodeEncoder(old).encode(np.zeros((15, 2)), np.broadcast_to(np.eye(2), (15, 2, 2)), 0)
    assert CodeDecoder(read_stream_header(old.to_bytes())).decode(packet).keyframe
    semantic = make_header().to_bytes()
    with pytest.raises(CodecError, match="semantic-code stream"):
        StreamHeader.from_bytes(semantic)
    with pytest.raises(CodecError, match="learned-keypoint stream"):
        SemanticStreamHeader.from_bytes(old.to_bytes())


def _patched(data: bytes, offset: int, value: bytes) -> bytes:
    """`data` with `value` at `offset` and a valid CRC again."""
    body = data[:offset] + value + data[offset + len(value):-4]
    return body + struct.pack("<I", zlib.crc32(body))


def test_header_rejects_what_the_spec_lists():
    """docs/bitstream.md §11.2: every listed defect (with a valid CRC) is a CodecError."""
    data = make_header().to_bytes()
    step = lambda index, units: (14 + 4 * index, struct.pack("<I", units))  # noqa: E731
    cases = [(4, b"\x03", "version 3"), (5, b"\x02", "kind 2"), (6, b"\x02", "flags"), (6, b"\x81", "flags"),
             (8, b"\x00\x00", "resolution"), (10, b"\x00\x00\x00\x00", "frame rate"),
             (*step(0, 0), r"pose_steps\[0\]"), (*step(2, 180 * 65536 + 1), r"pose_steps\[2\]"),
             (*step(6, 0), "expression_step"), (*step(6, 16 * 65536 + 1), "expression_step"),
             (42, b"\x00", "keyframe_interval"), (42, b"\x80", "keyframe_interval"), (53, b"\xff", "UTF-8")]
    for offset, value, match in cases:
        with pytest.raises(CodecError, match=match):
            SemanticStreamHeader.from_bytes(_patched(data, offset, value))
    with pytest.raises(CodecError, match="CRC"):
        SemanticStreamHeader.from_bytes(data[:-5] + bytes([data[-5] ^ 1]) + data[-4:])
    with pytest.raises(CodecError, match="magic"):
        read_stream_header(b"XXXX" + data[4:])
    with pytest.raises(CodecError, match="expected"):
        SemanticStreamHeader.from_bytes(data + b"\x00")
    for short in (data[:3], data[:6], data[:40]):
        with pytest.raises(CodecError, match="shorter"):
            read_stream_header(short)
    for not_bytes in ("THKC", None, 40):
        with pytest.raises(CodecError, match="bytes"):
            read_stream_header(not_bytes)  # type: ignore[arg-type]


def test_header_validates_fields():
    with pytest.raises(CodecError, match="prior_sha256"):
        SemanticStreamHeader("m", MODEL_SHA, "xyz", E, 128, 25.0)
    with pytest.raises(CodecError, match="16 hex digits"):
        SemanticStreamHeader("m", MODEL_SHA, "abcd", E, 128, 25.0)
    with pytest.raises(CodecError, match="expression_dims"):
        SemanticStreamHeader("m", MODEL_SHA, PRIOR_SHA, 256, 128, 25.0)
    with pytest.raises(CodecError, match="fps"):
        SemanticStreamHeader("m", MODEL_SHA, PRIOR_SHA, E, 128, 0.0)
    header = SemanticStreamHeader("m", MODEL_SHA, PRIOR_SHA.upper(), E, 128, 25.0)
    assert header.prior_sha256 == PRIOR_SHA[:16] and header.model_sha256 == MODEL_SHA[:16]


def test_config_validation_and_presets():
    with pytest.raises(CodecError, match="6"):
        SemanticCodecConfig(pose_steps=(1.0, 1.0))
    with pytest.raises(CodecError, match="2\\^-16"):
        SemanticCodecConfig(expression_step=1 / 3)
    with pytest.raises(CodecError, match="limit 180"):
        SemanticCodecConfig(pose_steps=(181.0, 1, 1, 1 / 512, 1 / 512, 1 / 128))
    with pytest.raises(CodecError, match="keyframe_interval"):
        SemanticCodecConfig(keyframe_interval=128)
    with pytest.raises(CodecError, match="hysteresis"):
        SemanticCodecConfig(hysteresis=0.1)
    with pytest.raises(CodecError, match="reference"):
        SemanticCodecConfig(reference="next")
    with pytest.raises(CodecError, match="unknown semantic codec preset"):
        SemanticCodecConfig.preset("ultra")
    assert SemanticCodecConfig.preset("default") == SemanticCodecConfig()
    with pytest.raises(CodecError, match="expression_dims"):
        SemanticCodecConfig(expression_dims=256)
    assert SemanticCodecConfig(pose_steps=[1.0] * 6).pose_steps == (1.0,) * 6  # any sequence, kept as a tuple


def test_presets_are_encoder_settings_not_format_changes():
    """The default preset (issue 12: E = 16, coarser steps) is one more setting the version-2 header
    carries; the former default stays selectable as "fine", and "robust" is still its keyframe-
    referenced twin (the golden vectors hold their headers)."""
    fine = SemanticCodecConfig.preset("fine")
    assert (fine.pose_steps, fine.expression_step, fine.keyframe_interval, fine.hysteresis, fine.expression_dims) == (
        (0.625, 0.625, 0.25, 1 / 512, 1 / 512, 5 / 1024), 5 / 64, 25, 0.25, None)
    assert SemanticCodecConfig.preset("robust") == dataclasses.replace(fine, reference="keyframe")
    default = SemanticCodecConfig.preset("default")
    assert default.expression_dims == 16 and default.keyframe_interval == 50
    # A header's config holds the E it sends, so a parsed header equals the one written.
    header = make_header(default, 5)
    assert header.config.expression_dims == 5 and header.config.pose_steps == default.pose_steps
    assert SemanticStreamHeader.from_bytes(header.to_bytes()) == header
    unbounded = dataclasses.replace(default, expression_dims=None)
    assert make_header(default, 5).to_bytes() == make_header(unbounded, 5).to_bytes()


def test_header_for_prior_and_the_prior_check():
    header = SemanticStreamHeader.for_prior(StubPrior(), "m", MODEL_SHA, 128, 25.0, expression_dims=16)
    assert (header.prior_sha256, header.expression_dims) == (PRIOR_SHA[:16], 16)
    # Without an explicit E: the config's (the default preset sends 16), at most the prior's; None: all of them.
    assert SemanticStreamHeader.for_prior(StubPrior(), "m", MODEL_SHA, 128, 25.0).expression_dims == 16
    every = SemanticStreamHeader.for_prior(StubPrior(), "m", MODEL_SHA, 128, 25.0, SemanticCodecConfig.preset("fine"))
    assert every.expression_dims == 32 and every.config.expression_dims == 32
    few = SemanticStreamHeader.for_prior(StubPrior(components=8), "m", MODEL_SHA, 128, 25.0)
    assert few.expression_dims == few.config.expression_dims == 8
    with pytest.raises(CodecError, match="has 32"):
        SemanticStreamHeader.for_prior(StubPrior(), "m", MODEL_SHA, 128, 25.0, expression_dims=33)
    with pytest.raises(CodecError, match="loaded from"):
        SemanticStreamHeader.for_prior(StubPrior(sha256=None), "m", MODEL_SHA, 128, 25.0)
    header.check_prior(PRIOR_SHA, 16)
    with pytest.raises(PriorMismatchError, match="load the same prior file on both ends") as info:
        header.check_prior("ff" * 32, 32)
    assert PRIOR_SHA[:16] in str(info.value) and "ffffffffffffffff" in str(info.value)
    with pytest.raises(PriorMismatchError, match="without a file"):
        header.check_prior(None, 32)
    with pytest.raises(PriorMismatchError, match="16 expression coefficients"):
        header.check_prior(PRIOR_SHA, 8)
    with pytest.raises(PriorMismatchError):
        SemanticCodeDecoder(header, StubPrior(sha256="ab" * 32))
    assert issubclass(PriorMismatchError, CodecError) and issubclass(CodecError, SdkError)


def test_the_shipped_prior_identifies_its_streams():
    from sdk.prior import load_prior

    prior = load_prior("default")
    header = SemanticStreamHeader.for_prior(prior, "m", MODEL_SHA, 128, 25.0, expression_dims=16)
    decoder = SemanticCodeDecoder(header, prior)
    assert decoder.expression_dims == prior.components


def test_codecs_refuse_a_header_of_the_other_kind():
    old = StreamHeader("m", MODEL_SHA, 15, 128, 25.0)
    with pytest.raises(CodecError, match="SemanticStreamHeader"):
        SemanticCodeEncoder(old)  # type: ignore[arg-type]
    with pytest.raises(CodecError, match="SemanticStreamHeader"):
        SemanticCodeDecoder(old)  # type: ignore[arg-type]
    with pytest.raises(CodecError, match="use SemanticCodeDecoder"):
        CodeDecoder(make_header())  # type: ignore[arg-type]
    with pytest.raises(CodecError, match="use SemanticCodeEncoder"):
        CodeEncoder(make_header())  # type: ignore[arg-type]


# -- round trip -----------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", sorted(SEMANTIC_PRESETS))
def test_round_trip_within_quantization_error(preset):
    config = SemanticCodecConfig.preset(preset)
    header = make_header(config)
    pose, expression = smooth_codes(80)
    encoder, decoder = SemanticCodeEncoder(header), SemanticCodeDecoder(header)
    limits = max_error(config)
    for index in range(len(pose)):
        timestamp = 500 + index * 40 + (index % 3)
        frame = decoder.decode(encoder.encode(pose[index], expression[index], timestamp))
        assert isinstance(frame, SemanticFrameCode)
        assert (frame.sequence, frame.timestamp_ms, frame.keyframe) == (
            index, timestamp, index % config.keyframe_interval == 0)
        assert frame.pose.dtype == np.float64 and frame.expression.shape == (E,)
        assert (np.abs(frame.pose - pose[index]) <= limits[:6]).all()
        assert (np.abs(frame.expression - expression[index]) <= limits[6]).all()
        if frame.keyframe:  # a keyframe is plain rounding
            steps = np.array(config.pose_steps)
            assert np.array_equal(frame.pose, np.rint(pose[index] / steps) * steps)
    assert decoder.stats.decoded == len(pose) and encoder.stats.clamped_values == 0
    assert encoder.stats.bytes / len(pose) < 12  # a few bytes per frame


def test_receiver_zero_fills_and_pose_only_streams():
    header = SemanticStreamHeader.for_prior(StubPrior(), "m", MODEL_SHA, 128, 25.0, expression_dims=4)
    pose, expression = smooth_codes(3, dims=32)
    encoder, decoder = SemanticCodeEncoder(header), SemanticCodeDecoder(header, StubPrior())
    frame = decoder.decode(encoder.encode(pose[0], expression[0], 0))  # the first 4 of 32 are sent
    assert frame.expression.shape == (32,) and not frame.expression[4:].any()
    assert np.abs(frame.expression[:4] - expression[0, :4]).max() <= max_error(header.config)[6]
    pose_only = make_header(dims=0)
    encoder, decoder = SemanticCodeEncoder(pose_only), SemanticCodeDecoder(pose_only)
    for index in range(3):
        frame = decoder.decode(encoder.encode(pose[index], np.zeros(0), index * 40))
        assert frame.expression.shape == (0,)
        assert (np.abs(frame.pose - pose[index]) <= max_error(pose_only.config)[:6]).all()


def test_encoder_rejects_bad_input():
    encoder = SemanticCodeEncoder(make_header())
    pose, expression = smooth_codes(1)
    with pytest.raises(CodecError, match="pose must be"):
        encoder.encode(pose[0, :5], expression[0], 0)
    with pytest.raises(CodecError, match=f"E' >= {E}"):
        encoder.encode(pose[0], expression[0, :3], 0)
    with pytest.raises(CodecError, match="E' >= "):
        encoder.encode(pose[0], expression[:, :], 0)
    with pytest.raises(CodecError, match="NaN"):
        encoder.encode(np.full(6, np.nan), expression[0], 0)
    with pytest.raises(CodecError, match="NaN"):
        encoder.encode(pose[0], np.full(E, np.inf), 0)
    with pytest.raises(CodecError, match="timestamp"):
        encoder.encode(pose[0], expression[0], -1)
    with pytest.raises(CodecError, match="timestamp"):
        encoder.encode(pose[0], expression[0], 1.5)  # type: ignore[arg-type]
    assert encoder.stats.frames == 0


def test_out_of_range_values_are_clamped_and_counted():
    encoder, decoder = SemanticCodeEncoder(make_header()), SemanticCodeDecoder(make_header())
    pose = np.array([200.0, -190.0, 0.0, 5.0, 0.0, -9.0])
    expression = np.zeros(E)
    expression[:2] = (20.0, -17.0)
    frame = decoder.decode(encoder.encode(pose, expression, 0))
    top = largest(SemanticCodecConfig())
    assert frame.pose.tolist() == [top[0], -top[1], 0.0, top[3], 0.0, -top[5]]
    assert frame.expression[:2].tolist() == [top[6], -top[6]]
    assert encoder.stats.clamped_values == 6


def test_large_jumps_use_the_escape_code():
    """A head turning across the whole range in one frame: residuals far beyond the tables."""
    header = make_header(SemanticCodecConfig.preset("high"))
    encoder, decoder = SemanticCodeEncoder(header), SemanticCodeDecoder(header)
    poses = [np.array([-170.0, 80, -170, -3.9, 3.9, -3.9]), np.array([170.0, -80, 170, 3.9, -3.9, 3.9])]
    for index, pose in enumerate(poses):
        expression = np.full(E, 15.0 * (-1) ** index)
        frame = decoder.decode(encoder.encode(pose, expression, index * 40))
        assert (np.abs(frame.pose - pose) <= max_error(header.config)[:6]).all()
        assert (np.abs(frame.expression - expression) <= max_error(header.config)[6]).all()


def test_forced_keyframe_and_large_timestamp_jump():
    header = make_header()
    encoder, decoder = SemanticCodeEncoder(header), SemanticCodeDecoder(header)
    pose, expression = smooth_codes(4)
    assert decoder.decode(encoder.encode(pose[0], expression[0], 0)).keyframe
    encoder.force_keyframe()
    assert decoder.decode(encoder.encode(pose[1], expression[1], 40)).keyframe
    assert not decoder.decode(encoder.encode(pose[2], expression[2], 80)).keyframe
    frame = decoder.decode(encoder.encode(pose[3], expression[3], 10 ** 9))
    assert frame.keyframe and frame.timestamp_ms == 10 ** 9
    assert encoder.stats.keyframes == decoder.stats.keyframes == 3


# -- loss ---------------------------------------------------------------------------------------

def _stream(config: SemanticCodecConfig, frames: int, dims: int = E) -> tuple[SemanticStreamHeader, list[bytes]]:
    header = make_header(config, dims)
    pose, expression = smooth_codes(frames, dims)
    encoder = SemanticCodeEncoder(header)
    return header, [encoder.encode(pose[i], expression[i], i * 40) for i in range(frames)]


def test_previous_frame_prediction_stops_at_a_loss_until_the_next_keyframe():
    header, packets = _stream(SemanticCodecConfig(keyframe_interval=10), 30)
    decoder = SemanticCodeDecoder(header)
    decoded = []
    for index, packet in enumerate(packets):
        if index == 13:
            continue  # lost
        try:
            decoded.append(decoder.decode(packet).sequence)
        except MissingReferenceError as exc:
            assert "was not received" in str(exc)
    assert decoded == [*range(13), *range(20, 30)]
    assert decoder.stats.missing_reference == 6


def test_keyframe_prediction_loses_only_the_lost_frame():
    header, packets = _stream(SemanticCodecConfig.preset("robust"), 60)
    decoder = SemanticCodeDecoder(header)
    assert [decoder.decode(p).sequence for i, p in enumerate(packets) if i != 13] == [i for i in range(60) if i != 13]


def test_lost_keyframe_blocks_its_deltas_and_stale_packets_are_refused():
    header, packets = _stream(SemanticCodecConfig(reference="keyframe", keyframe_interval=10), 30)
    decoder = SemanticCodeDecoder(header)
    for packet in packets[:10]:
        decoder.decode(packet)
    for packet in packets[11:20]:
        with pytest.raises(MissingReferenceError, match="keyframe #1"):
            decoder.decode(packet)
    assert decoder.decode(packets[20]).keyframe
    with pytest.raises(StalePacketError, match="not newer"):
        decoder.decode(packets[20])
    assert (decoder.stats.missing_reference, decoder.stats.stale) == (9, 1)


# -- the worked example (docs/bitstream.md §12) and golden vectors ---------------------------------

EXAMPLE_CONFIG = SemanticCodecConfig((1.0, 1.0, 0.25, 1 / 512, 1 / 512, 1 / 128), 1 / 8, 25, "previous", 0.25)
EXAMPLE_HEADER_HEX = ("54 48 4b 43 02 01 01 02 80 00 a8 61 00 00 00 00 01 00 00 00 01 00 00 40 00 00 80 00 00 00 "
                      "80 00 00 00 00 02 00 00 00 20 00 00 19 40 55 46 10 6d 57 48 43 21 04 64 65 6d 6f 00 11 "
                      "22 33 44 55 66 77 ed 71 2d 48")
EXAMPLE_FRAMES = [  # (pose, expression, timestamp ms, packet hex)
    ([10.2, -4.9, 1.1, 0.05, -0.1, -0.4], [0.7, -0.3], 0, "80 00 00 00 59 7d 8b 31 22 3c 60"),
    ([10.9, -5.1, 1.0, 0.053, -0.1, -0.41], [0.85, -0.3], 40, "01 00 24 e6"),
]


def test_worked_example_bytes():
    header = SemanticStreamHeader("demo", "00112233445566778899aabbccddeeff" * 2, PRIOR_SHA, 2, 128, 25.0,
                                  EXAMPLE_CONFIG)
    assert header.to_bytes().hex(" ") == EXAMPLE_HEADER_HEX
    encoder, decoder = SemanticCodeEncoder(header), SemanticCodeDecoder(header)
    frames = []
    for pose, expression, timestamp, packet_hex in EXAMPLE_FRAMES:
        packet = encoder.encode(np.array(pose), np.array(expression), timestamp)
        assert packet.hex(" ") == packet_hex
        frames.append(decoder.decode(packet))
    assert frames[0].pose.tolist() == [10.0, -5.0, 1.0, 26 / 512, -51 / 512, -51 / 128]
    assert frames[0].expression.tolist() == [6 / 8, -2 / 8]
    assert frames[1].pose.tolist() == [11.0, -5.0, 1.0, 27 / 512, -51 / 512, -52 / 128]
    assert frames[1].expression.tolist() == [7 / 8, -2 / 8]


def golden_streams() -> list[dict]:
    """The golden vectors: streams of every preset shape (both references, E = 0 / 5 / 16), with a
    forced keyframe, a clamped value, escapes and timestamp jitter; inputs are rounded to 1e-6 so
    they are exact decimal numbers."""
    specs = [("fine", 5, 30, 1), ("high", 16, 12, 2), ("robust", 0, 12, 3), ("low", 5, 12, 4)]
    streams = []
    for preset, dims, frames, seed in specs:
        header = SemanticStreamHeader("dagan++-mobile", MODEL_SHA, PRIOR_SHA, dims, 128, 25.0,
                                      SemanticCodecConfig.preset(preset))
        pose, expression = smooth_codes(frames, max(dims, 1), seed)
        pose, expression = np.round(pose, 6), np.round(expression[:, :dims], 6)
        pose[3, 0] = 200.0  # clamped to 180
        if frames > 10:
            pose[10] *= -1  # a jump: escape codes
        encoder, decoder = SemanticCodeEncoder(header), SemanticCodeDecoder(header)
        records = []
        for index in range(frames):
            if index == 7:
                encoder.force_keyframe()
            timestamp = 1000 + index * 40 + (index % 3)
            packet = encoder.encode(pose[index], expression[index], timestamp)
            frame = decoder.decode(packet)
            records.append({"pose": pose[index].tolist(), "expression": expression[index].tolist(),
                            "timestamp_ms": timestamp, "force_keyframe": index == 7, "packet": packet.hex(),
                            "decoded": {"sequence": frame.sequence, "timestamp_ms": frame.timestamp_ms,
                                        "keyframe": frame.keyframe, "pose": frame.pose.tolist(),
                                        "expression": frame.expression.tolist()}})
        streams.append({"preset": preset, "header": header.to_bytes().hex(), "expression_dims": dims,
                        "frames": records})
    return streams


def test_golden_vectors():
    """tests/golden/codec_semantic_v2.json: what the native core (issue 15) must reproduce byte for byte.
    A failure means the codec changed: a bitstream change needs a new version (docs/bitstream.md §10)."""
    golden = json.loads(GOLDEN.read_text())
    assert [(s["preset"], s["expression_dims"]) for s in golden["streams"]] == [
        ("fine", 5), ("high", 16), ("robust", 0), ("low", 5)]  # "fine" was the default before issue 12's E = 16 one
    for stream in golden["streams"]:
        header = SemanticStreamHeader("dagan++-mobile", MODEL_SHA, PRIOR_SHA, stream["expression_dims"], 128, 25.0,
                                      SemanticCodecConfig.preset(stream["preset"]))
        assert header.to_bytes().hex() == stream["header"]
        encoder = SemanticCodeEncoder(header)  # the stored inputs give the stored packets
        for record in stream["frames"]:
            if record["force_keyframe"]:
                encoder.force_keyframe()
            packet = encoder.encode(np.array(record["pose"]), np.array(record["expression"]), record["timestamp_ms"])
            assert packet.hex() == record["packet"]
        decoder = SemanticCodeDecoder(SemanticStreamHeader.from_bytes(bytes.fromhex(stream["header"])))
        for record in stream["frames"]:  # decoding the stored bytes alone gives the stored frames
            frame = decoder.decode(bytes.fromhex(record["packet"]))
            assert {**dataclasses.asdict(frame), "pose": frame.pose.tolist(),
                    "expression": frame.expression.tolist()} == record["decoded"]


def write_golden() -> None:
    GOLDEN.parent.mkdir(exist_ok=True)
    about = ("Golden vectors of the semantic-code stream (docs/bitstream.md §11), written by "
             "`python tests/test_codec_semantic.py --write-golden`. Per stream: the header bytes (hex), then per "
             "frame the encoder's input (pose, expression, timestamp_ms; force_keyframe: the sender asked for a "
             "keyframe before this frame), the packet it wrote (hex) and what a "
             "decoder returns for it (decoded values are exactly q * step / 65536). Pose numbers: yaw, pitch, "
             "roll (degrees), tx, ty (keypoint units), log_scale.")
    GOLDEN.write_text(json.dumps({"about": about, "streams": golden_streams()}, indent=1) + "\n")


# -- hostile input -----------------------------------------------------------------------------------

code_frames = st.tuples(st.lists(st.floats(-200, 200), min_size=6, max_size=6),
                        st.lists(st.floats(-20, 20), min_size=E, max_size=E))


@given(st.lists(code_frames, min_size=1, max_size=6), st.sampled_from(sorted(SEMANTIC_PRESETS)),
       st.integers(0, 1 << 40), st.lists(st.integers(0, 5000), min_size=6, max_size=6))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_property_round_trip(frames, preset, start, gaps):
    config = SemanticCodecConfig.preset(preset)
    header = make_header(config)
    encoder, decoder = SemanticCodeEncoder(header), SemanticCodeDecoder(header)
    limits = np.repeat(largest(config), [1] * 6 + [E])
    errors = np.repeat(max_error(config), [1] * 6 + [E])
    timestamp = start
    for (pose, expression), gap in zip(frames, gaps):
        pose, expression = np.array(pose), np.array(expression)
        timestamp += gap
        frame = decoder.decode(encoder.encode(pose, expression, timestamp))
        assert frame.timestamp_ms == timestamp
        wanted = np.clip(np.concatenate([pose, expression]), -limits, limits)
        assert (np.abs(np.concatenate([frame.pose, frame.expression]) - wanted) <= errors).all()


def decode_or_codec_error(decoder: SemanticCodeDecoder, data: bytes) -> None:
    """Decoding hostile bytes ends in a SemanticFrameCode within the limits or a CodecError, nothing else."""
    try:
        frame = decoder.decode(data)
    except CodecError:
        return
    assert (np.abs(frame.pose) <= np.array(POSE_LIMITS)).all() and (np.abs(frame.expression) <= EXPRESSION_LIMIT).all()
    assert frame.sequence >= 0 and frame.timestamp_ms >= 0


def parse_or_codec_error(data: bytes) -> None:
    try:
        header = read_stream_header(data)
    except CodecError:
        return
    assert header.to_bytes() == data  # anything accepted is canonical


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_never_crash_the_decoder(data):
    parse_or_codec_error(data)
    parse_or_codec_error(b"THKC\x02\x01" + data)
    header, packets = _stream(SemanticCodecConfig(), 3)
    decode_or_codec_error(SemanticCodeDecoder(header), data)   # no reference yet
    decoder = SemanticCodeDecoder(header)
    decoder.decode(packets[0])
    decode_or_codec_error(decoder, data)                       # with a keyframe to refer to
    decode_or_codec_error(decoder, bytes([1, 0]) + data)       # a delta of the keyframe
    decode_or_codec_error(decoder, b"\x80\x01\x05\x00" + data)  # a keyframe
    assert sum(dataclasses.asdict(decoder.stats).values()) >= 4  # every outcome is counted


@given(st.integers(0, 4), st.integers(0, 8 * 40 - 1), st.integers(1, 8), st.binary(max_size=4),
       st.sampled_from(sorted(SEMANTIC_PRESETS)))
@settings(max_examples=300, deadline=None)
def test_mutated_packets_and_headers_never_crash(which, bit, cut, tail, preset):
    header, packets = _stream(dataclasses.replace(SemanticCodecConfig.preset(preset), keyframe_interval=3), 5)
    decoder = SemanticCodeDecoder(header)
    for packet in packets[:which]:
        decoder.decode(packet)
    packet = bytearray(packets[which])
    packet[(bit // 8) % len(packet)] ^= 1 << (bit % 8)
    for candidate in (bytes(packet), packets[which][:-cut], packets[which] + tail):
        decode_or_codec_error(decoder, candidate)
    data = bytearray(header.to_bytes())
    data[(bit // 8) % len(data)] ^= 1 << (bit % 8)
    parse_or_codec_error(bytes(data))
    parse_or_codec_error(_patched(header.to_bytes(), (bit // 8) % 60, bytes([bit % 256])))  # defects past the CRC


def test_decoder_rejects_non_bytes_and_trailing_bytes():
    header, packets = _stream(SemanticCodecConfig(), 2)
    decoder = SemanticCodeDecoder(header)
    with pytest.raises(CodecError, match="bytes"):
        decoder.decode("not bytes")  # type: ignore[arg-type]
    with pytest.raises(CodecError, match="trailing"):
        decoder.decode(packets[0] + b"\x55" * 8)
    assert decoder.decode(packets[0]).keyframe and decoder.stats.malformed == 2


# -- bench/semantic_codec.py ----------------------------------------------------------------------------

def test_semantic_codec_bench_runs_tiny(prepared_small, tmp_path, capsys):
    """The measurement end to end on the tiny prepared set's test clip, a few frames, with the baseline,
    and rendered with a tiny random face-prior model beside the learned one (Fig. 7's table)."""
    import torch

    from sdk.checkpoint import save_model
    from sdk.models import TalkingHeadModel, get_config

    spec = importlib.util.spec_from_file_location("semantic_codec",
                                                  Path(__file__).resolve().parents[1] / "bench" / "semantic_codec.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules["semantic_codec"] = bench  # its dataclasses resolve their annotations through it
    torch.manual_seed(0)
    prior_model = save_model(TalkingHeadModel(get_config("dagan++-tiny-prior")).eval(), tmp_path / "prior", half=False)
    try:
        spec.loader.exec_module(bench)
        out = tmp_path / "semantic.json"
        assert bench.main(["--data", str(prepared_small), "--presets", "default", "low", "--dims", "0,8",
                           "--frames", "6", "--json", str(out), "--render-model", str(prior_model),
                           "--render-clips", "1", "--render-frames", "7", "--render-stride", "3",
                           "--render-learned-presets", "default"]) == 0
        report = json.loads(out.read_text())
        # each preset at every --dims, and the default preset at its own E too
        assert [(row["preset"], row["dims"]) for row in report["rows"]] == [
            ("default", 0), ("default", 8), ("default", 16), ("low", 0), ("low", 8)]
        assert report["frames"] == 6 and all(row["kbps"] > 0 for row in report["rows"])
        assert all(row["quantization_px"]["all"] >= 0 and row["prior_px"]["mouth"] > 0 for row in report["rows"])
        # what the stream loses of the whole code grows as fewer coefficients are sent
        default = {row["dims"]: row["code_px"]["all"] for row in report["rows"] if row["preset"] == "default"}
        assert default[0] > default[16] > 0 and default[8] >= default[16]
        assert report["baseline"]["kbps"] > 0 and report["baseline"]["num_kp"] > 0
        render = report["render"]
        assert render["model"] == "dagan++-tiny-prior" and render["learned_model"] == report["baseline"]["model"]
        assert [(row["code"], row["preset"], row["dims"]) for row in render["rows"]] == [
            # the tiny model takes 16 coefficients
            ("semantic", "uncoded", 16), ("semantic", "default", 16), ("semantic", "low", 16),
            ("learned", "uncoded", None), ("learned", "default", None)]
        for row in render["rows"]:
            assert row["quality"]["frames"] == 2 and row["quality"]["psnr"] > 0  # frames 3 and 6
            assert (row["kbps"] > 0) == (row["preset"] != "uncoded")
        printed = capsys.readouterr().out
        assert "| default | 8 |" in printed and "| semantic | default | 16 |" in printed
        assert "| learned | uncoded | - |" in printed and "target: default preset <= 1.2 kbit/s" in printed
        assert bench.main(["--data", str(prepared_small), "--dims", "33", "--no-baseline",
                           "--json", str(out)]) == 2
        assert "error: --dims [33]" in capsys.readouterr().err
        learned = TalkingHeadModel(get_config("dagan++-tiny")).eval()
        learned_model = save_model(learned, tmp_path / "learned", half=False)
        assert bench.main(["--data", str(prepared_small), "--presets", "default", "--dims", "8", "--no-baseline",
                           "--frames", "4", "--json", str(out), "--render-model", str(learned_model)]) == 2
        assert "uses learned keypoints; give a face-prior model" in capsys.readouterr().err
    finally:
        del sys.modules["semantic_codec"]


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-golden"]:
        sys.exit(__doc__)
    write_golden()
    print(f"wrote {GOLDEN}")

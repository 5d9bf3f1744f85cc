"""The code stream: header, quantization round trip, loss behaviour, and hostile bytes."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdk.codec import (PRESETS, CodecConfig, CodecError, CodeDecoder, CodeEncoder, FrameCode, MissingReferenceError,
                       StalePacketError, StreamHeader)
from sdk.codec.arithmetic import ArithmeticDecoder, ArithmeticEncoder
from sdk.codec.entropy import GroupState, decode_values, encode_values
from sdk.codec.varint import decode_varint, encode_varint
from sdk.errors import SdkError

SHA = "0123456789abcdef" * 4
K = 10


def make_header(config: CodecConfig = CodecConfig(), num_kp: int = K, extra_dims: int = 0) -> StreamHeader:
    return StreamHeader("dagan++-mobile", SHA, num_kp, 128, 25.0, config, extra_dims)


def smooth_codes(frames: int, num_kp: int = K, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A head-like random walk: keypoints (T, K, 2) in [-1, 1], Jacobians (T, K, 2, 2) near identity."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(-0.6, 0.6, (num_kp, 2))
    drift = np.cumsum(rng.normal(0, 0.01, (frames, 1, 2)), axis=0)
    keypoints = np.clip(base + drift + rng.normal(0, 0.004, (frames, num_kp, 2)), -1, 1)
    jacobians = np.eye(2) + 0.1 * rng.normal(size=(1, num_kp, 2, 2)) + np.cumsum(
        rng.normal(0, 0.01, (frames, num_kp, 2, 2)), axis=0)
    return keypoints.astype(np.float32), jacobians.astype(np.float32)


def max_error(config: CodecConfig, step: float) -> float:
    return (0.5 + config.hysteresis) * step + 1e-6


# -- header -------------------------------------------------------------------------------------

def test_header_round_trip_for_every_preset():
    for name in PRESETS:
        header = make_header(CodecConfig.preset(name), extra_dims=3 if name == "default" else 0)
        data = header.to_bytes()
        assert data[:4] == b"THKC"
        assert StreamHeader.from_bytes(data) == header


def test_header_rejects_corruption_with_codec_error():
    data = make_header().to_bytes()
    with pytest.raises(CodecError, match="magic"):
        StreamHeader.from_bytes(b"XXXX" + data[4:])
    with pytest.raises(CodecError, match="version"):
        StreamHeader.from_bytes(data[:4] + b"\x09" + data[5:])
    with pytest.raises(CodecError, match="CRC"):
        StreamHeader.from_bytes(data[:-5] + bytes([data[-5] ^ 1]) + data[-4:])
    with pytest.raises(CodecError, match="shorter"):
        StreamHeader.from_bytes(data[:10])
    with pytest.raises(CodecError, match="expected"):
        StreamHeader.from_bytes(data + b"\x00")
    assert issubclass(CodecError, SdkError)


def test_header_rejects_what_the_spec_lists_and_non_bytes():
    """docs/bitstream.md §2: every listed defect (with a valid CRC) is a CodecError, as is a non-bytes header."""
    import struct
    import zlib

    data = make_header().to_bytes()

    def patched(offset: int, value: bytes) -> bytes:
        body = data[:offset] + value + data[offset + len(value):-4]
        return body + struct.pack("<I", zlib.crc32(body))

    for offset, value, match in [(5, b"\x0a", "flags"), (5, b"\x1b", "flags"), (5, b"\x0f", "extra-dims"),
                                 (6, b"\x00", "num_kp"), (8, b"\x00\x00", "resolution"),
                                 (10, b"\x00\x00\x00\x00", "frame rate"), (14, b"\x00\x00", "keypoint_step"),
                                 (20, b"\x00", "keyframe_interval"), (20, b"\x80", "keyframe_interval")]:
        with pytest.raises(CodecError, match=match):
            StreamHeader.from_bytes(patched(offset, value))
    with pytest.raises(CodecError, match="UTF-8"):
        StreamHeader.from_bytes(patched(23, b"\xff"))
    for not_bytes in ("THKC", None, 40):
        with pytest.raises(CodecError, match="bytes"):
            StreamHeader.from_bytes(not_bytes)  # type: ignore[arg-type]


def test_header_validates_fields():
    with pytest.raises(CodecError, match="hex"):
        make_header().__class__("m", "xyz", K, 128, 25.0)
    with pytest.raises(CodecError, match="16 hex digits"):
        StreamHeader("m", "abcd", K, 128, 25.0)
    with pytest.raises(CodecError, match="num_kp"):
        StreamHeader("m", SHA, 0, 128, 25.0)
    with pytest.raises(CodecError, match="fps"):
        StreamHeader("m", SHA, K, 128, 0.0)
    assert StreamHeader("m", SHA, K, 128, 25.0).model_sha256 == SHA[:16]  # keeps the 8-byte prefix


def test_config_validation_and_presets():
    with pytest.raises(CodecError, match="2\\^-16"):
        CodecConfig(keypoint_step=1 / 3)
    with pytest.raises(CodecError, match="keyframe_interval"):
        CodecConfig(keyframe_interval=0)
    with pytest.raises(CodecError, match="hysteresis"):
        CodecConfig(hysteresis=0.1)
    with pytest.raises(CodecError, match="reference"):
        CodecConfig(reference="next")
    with pytest.raises(CodecError, match="unknown codec preset"):
        CodecConfig.preset("ultra")
    assert CodecConfig.preset("default") == CodecConfig()


# -- round trip -----------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_round_trip_within_quantization_error(preset):
    config = CodecConfig.preset(preset)
    header = make_header(config)
    keypoints, jacobians = smooth_codes(60)
    encoder, decoder = CodeEncoder(header), CodeDecoder(header)
    for index in range(len(keypoints)):
        timestamp = 1000 + index * 40 + (index % 3)  # camera jitter around the nominal period
        frame = decoder.decode(encoder.encode(keypoints[index], jacobians[index], timestamp))
        assert isinstance(frame, FrameCode)
        assert (frame.sequence, frame.timestamp_ms) == (index, timestamp)
        assert frame.keyframe == (index % config.keyframe_interval == 0)
        assert frame.keypoints.dtype == np.float32 and frame.keypoints.shape == (K, 2)
        assert np.abs(frame.keypoints - keypoints[index]).max() <= max_error(config, config.keypoint_step)
        if config.jacobians:
            assert np.abs(frame.jacobians - jacobians[index]).max() <= max_error(config, config.jacobian_step)
        else:
            assert frame.jacobians is None
    assert decoder.stats.decoded == len(keypoints)
    assert encoder.stats.frames == len(keypoints) and encoder.stats.clamped_values == 0


def test_default_stream_is_a_few_bytes_per_frame():
    header = make_header()
    keypoints, jacobians = smooth_codes(100)
    encoder = CodeEncoder(header)
    sizes = [len(encoder.encode(keypoints[i], jacobians[i], i * 40)) for i in range(100)]
    assert max(sizes[1:25]) < 40 < sizes[0]  # deltas far smaller than the keyframe


def test_extra_dims_round_trip_and_validation():
    header = make_header(extra_dims=4)
    assert StreamHeader.from_bytes(header.to_bytes()).extra_dims == 4
    encoder, decoder = CodeEncoder(header), CodeDecoder(header)
    keypoints, jacobians = smooth_codes(5)
    extra = np.linspace(-3, 3, 4, dtype=np.float32)
    for index in range(5):
        frame = decoder.decode(encoder.encode(keypoints[index], jacobians[index], index * 40, extra + index * 0.1))
        assert np.abs(frame.extra - (extra + index * 0.1)).max() <= max_error(header.config, header.config.extra_step)
    with pytest.raises(CodecError, match="extra"):
        encoder.encode(keypoints[0], jacobians[0], 0)


def test_encoder_rejects_bad_input():
    encoder = CodeEncoder(make_header())
    keypoints, jacobians = smooth_codes(1)
    with pytest.raises(CodecError, match="keypoints must be"):
        encoder.encode(keypoints[0, :3], jacobians[0], 0)
    with pytest.raises(CodecError, match="Jacobians"):
        encoder.encode(keypoints[0], None, 0)
    with pytest.raises(CodecError, match="NaN"):
        encoder.encode(np.full((K, 2), np.nan), jacobians[0], 0)
    with pytest.raises(CodecError, match="timestamp"):
        encoder.encode(keypoints[0], jacobians[0], -1)
    with pytest.raises(CodecError, match="reserves none"):
        encoder.encode(keypoints[0], jacobians[0], 0, np.zeros(2))


def test_out_of_range_values_are_clamped_and_counted():
    encoder, decoder = CodeEncoder(make_header()), CodeDecoder(make_header())
    keypoints, jacobians = smooth_codes(1)
    keypoints[0, 0] = (3.0, -2.0)
    jacobians[0, 1] = -50.0  # all four entries of keypoint 1
    frame = decoder.decode(encoder.encode(keypoints[0], jacobians[0], 0))
    assert tuple(frame.keypoints[0]) == (1.0, -1.0) and (frame.jacobians[1] == -8.0).all()
    assert encoder.stats.clamped_values == 6


def test_forced_keyframe_and_large_timestamp_jump():
    header = make_header()
    encoder, decoder = CodeEncoder(header), CodeDecoder(header)
    keypoints, jacobians = smooth_codes(4)
    assert decoder.decode(encoder.encode(keypoints[0], jacobians[0], 0)).keyframe
    encoder.force_keyframe()
    assert decoder.decode(encoder.encode(keypoints[1], jacobians[1], 40)).keyframe
    assert not decoder.decode(encoder.encode(keypoints[2], jacobians[2], 80)).keyframe
    frame = decoder.decode(encoder.encode(keypoints[3], jacobians[3], 10 ** 9))  # a paused camera
    assert frame.keyframe and frame.timestamp_ms == 10 ** 9


# -- loss ---------------------------------------------------------------------------------------

def _stream(config: CodecConfig, frames: int) -> tuple[StreamHeader, list[bytes], np.ndarray]:
    header = make_header(config)
    keypoints, jacobians = smooth_codes(frames)
    encoder = CodeEncoder(header)
    return header, [encoder.encode(keypoints[i], jacobians[i], i * 40) for i in range(frames)], keypoints


def test_previous_frame_prediction_stops_at_a_loss_until_the_next_keyframe():
    header, packets, keypoints = _stream(CodecConfig(keyframe_interval=10), 30)
    decoder = CodeDecoder(header)
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
    header, packets, _ = _stream(CodecConfig(reference="keyframe", keyframe_interval=10), 30)
    decoder = CodeDecoder(header)
    decoded = [decoder.decode(p).sequence for i, p in enumerate(packets) if i != 13]
    assert decoded == [i for i in range(30) if i != 13]


def test_lost_keyframe_blocks_its_deltas_and_never_aliases():
    header, packets, _ = _stream(CodecConfig(reference="keyframe", keyframe_interval=10), 30)
    decoder = CodeDecoder(header)
    for packet in packets[:10]:
        decoder.decode(packet)
    for packet in packets[11:20]:  # keyframe 10 lost: its deltas name keyframe #1, we hold #0
        with pytest.raises(MissingReferenceError, match="keyframe #1"):
            decoder.decode(packet)
    assert decoder.decode(packets[20]).keyframe
    assert decoder.stats.missing_reference == 9


def test_stale_and_duplicate_packets_are_refused():
    header, packets, _ = _stream(CodecConfig(), 5)
    decoder = CodeDecoder(header)
    for packet in packets[:3]:
        decoder.decode(packet)
    with pytest.raises(StalePacketError, match="not newer"):
        decoder.decode(packets[2])
    with pytest.raises(StalePacketError, match="not newer"):
        decoder.decode(packets[0])
    assert decoder.stats.stale == 2
    assert decoder.decode(packets[3]).sequence == 3


def test_packets_of_another_stream_are_refused():
    other = make_header(CodecConfig(keyframe_interval=5))
    _, packets, _ = _stream(CodecConfig(keyframe_interval=50), 10)
    decoder = CodeDecoder(other)
    decoder.decode(packets[0])
    with pytest.raises(CodecError):
        for packet in packets[5:]:  # distance 5.. is not a valid delta under interval 5
            decoder.decode(packet)


# -- building blocks --------------------------------------------------------------------------------

@given(st.lists(st.integers(-(1 << 22), 1 << 22), max_size=40), st.integers(0, 3000))  # |residuals| < 2^22
@settings(max_examples=150, deadline=None)
def test_entropy_coder_round_trip(values, prior):
    encoder = ArithmeticEncoder()
    encode_values(encoder, values, GroupState.prior(prior))
    data = encoder.finish()
    assert not data.endswith(b"\x00")
    assert decode_values(ArithmeticDecoder(data), len(values), GroupState.prior(prior)) == values


@given(st.integers(0, (1 << 63) - 1))
def test_varint_round_trip(value):
    data = encode_varint(value)
    assert decode_varint(data + b"\xff", 0) == (value, len(data))


def test_varint_errors():
    with pytest.raises(CodecError, match="truncated"):
        decode_varint(b"\x80", 0)
    with pytest.raises(CodecError, match="longer"):
        decode_varint(b"\x80" * 10, 0)


# -- hostile input -----------------------------------------------------------------------------------

code_arrays = st.tuples(
    st.lists(st.floats(-1, 1, width=32), min_size=2 * K, max_size=2 * K),
    st.lists(st.floats(-8, 8, width=32), min_size=4 * K, max_size=4 * K))


@given(st.lists(code_arrays, min_size=1, max_size=6), st.sampled_from(sorted(PRESETS)),
       st.integers(0, 1 << 40), st.lists(st.integers(0, 5000), min_size=6, max_size=6))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_property_round_trip(frames, preset, start, gaps):
    config = CodecConfig.preset(preset)
    header = make_header(config)
    encoder, decoder = CodeEncoder(header), CodeDecoder(header)
    timestamp = start
    for (keypoints, jacobians), gap in zip(frames, gaps):
        keypoints = np.array(keypoints, np.float32).reshape(K, 2)
        jacobians = np.array(jacobians, np.float32).reshape(K, 2, 2)
        timestamp += gap
        frame = decoder.decode(encoder.encode(keypoints, jacobians, timestamp))
        assert frame.timestamp_ms == timestamp
        assert np.abs(frame.keypoints - keypoints).max() <= max_error(config, config.keypoint_step)
        if config.jacobians:
            assert np.abs(frame.jacobians - jacobians).max() <= max_error(config, config.jacobian_step)


def _decode_or_codec_error(decoder: CodeDecoder, data: bytes) -> None:
    try:
        frame = decoder.decode(data)
    except CodecError:
        return
    assert np.all(np.abs(frame.keypoints) <= 1) and frame.sequence >= 0 and frame.timestamp_ms >= 0


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_never_crash_the_decoder(data):
    header, packets, _ = _stream(CodecConfig(), 3)
    _decode_or_codec_error(CodeDecoder(header), data)      # no reference yet
    decoder = CodeDecoder(header)
    decoder.decode(packets[0])
    _decode_or_codec_error(decoder, data)                   # with a keyframe to refer to
    _decode_or_codec_error(decoder, bytes([1, 0]) + data)   # a delta of the keyframe
    counts = dataclasses.asdict(decoder.stats)
    assert sum(counts.values()) >= 3                        # every outcome is counted


@given(st.integers(0, 4), st.integers(0, 8 * 60 - 1), st.integers(1, 8), st.binary(max_size=4))
@settings(max_examples=300, deadline=None)
def test_mutated_packets_never_crash_the_decoder(which, bit, cut, tail):
    header, packets, _ = _stream(CodecConfig(keyframe_interval=3), 5)
    decoder = CodeDecoder(header)
    for packet in packets[:which]:
        decoder.decode(packet)
    packet = bytearray(packets[which])
    packet[(bit // 8) % len(packet)] ^= 1 << (bit % 8)
    for candidate in (bytes(packet), packets[which][:-cut], packets[which] + tail):
        _decode_or_codec_error(decoder, candidate)


def test_decoder_rejects_non_bytes_and_trailing_bytes():
    header, packets, _ = _stream(CodecConfig(), 2)
    decoder = CodeDecoder(header)
    with pytest.raises(CodecError, match="bytes"):
        decoder.decode("not bytes")  # type: ignore[arg-type]
    with pytest.raises(CodecError, match="trailing"):
        decoder.decode(packets[0] + b"\x55" * 8)
    assert decoder.decode(packets[0]).keyframe


def test_worked_example_bytes():
    """docs/bitstream.md §9, byte for byte."""
    header = StreamHeader("demo", "00112233445566778899aabbccddeeff" * 2, 2, 128, 25.0, CodecConfig())
    assert header.to_bytes().hex(" ") == ("54 48 4b 43 01 0b 02 00 80 00 a8 61 00 00 00 04 00 08 00 04 19 40 04 "
                                          "64 65 6d 6f 00 11 22 33 44 55 66 77 3b c9 d6 26")
    encoder, decoder = CodeEncoder(header), CodeDecoder(header)
    keyframe = encoder.encode(np.array([[-0.25, 0.125], [0.3, -0.1]]),
                              np.array([np.eye(2), [[0.9, 0.05], [-0.1, 1.1]]]), 0)
    delta = encoder.encode(np.array([[-0.23, 0.13], [0.33, -0.09]]),
                           np.array([[[1.0, 0.02], [0, 0.95]], [[0.9, 0.05], [-0.1, 1.1]]]), 41)
    assert keyframe.hex(" ") == "80 00 00 00 21 e5 f3 84 42 49 f2 e0"
    assert delta.hex(" ") == "01 00 8a 4e 40 98"
    decoder.decode(keyframe)
    frame = decoder.decode(delta)
    assert frame.timestamp_ms == 41 and frame.keypoints.tolist() == [[-15 / 64, 8 / 64], [21 / 64, -6 / 64]]
    assert frame.jacobians[0].tolist() == [[1.0, 0.0], [0.0, 30 / 32]]


def test_codec_bench_runs_tiny(prepared_small):
    """`python -m sdk bench codec` end to end on one prepared clip, a few frames, a tiny model."""
    import torch

    from sdk.bench.codec import format_report, run_codec_bench
    from sdk.cli import build_parser
    from sdk.models import TalkingHeadModel, get_config
    from sdk.pipeline import TalkingHeadPipeline

    args = build_parser().parse_args(["bench", "codec", "--clips", "1", "--frames", "6", "--presets", "default"])
    assert args.frames == 6 and callable(args.run)
    torch.manual_seed(0)
    pipeline = TalkingHeadPipeline(TalkingHeadModel(get_config("dagan++-tiny")))
    with torch.inference_mode():
        report = run_codec_bench(pipeline, "00" * 32, prepared_small, "test", ["default", "robust"], max_clips=1,
                                 max_frames=6, quality_stride=2, crfs=(51, 30))
    assert report.frames == 6 and report.quality_frames == 3
    assert [row.name for row in report.presets] == ["default", "robust"]
    assert all(row.kbps > 0 and row.quality["frames"] == 3 for row in report.presets)
    # H.264 at the output size (2R = 128) and at the internal resolution, CRF 51 first.
    assert [comparison.size for comparison in report.h264] == [128, 64]
    for comparison in report.h264:
        assert comparison.ladder[0].crf == 51 and comparison.ladder[0].kbps > 0
        assert comparison.at_our_bitrate is not None and set(comparison.ratios) >= {"psnr", "ssim"}
    assert report.h264[0].ladder[0].kbps > report.h264[1].ladder[0].kbps
    assert report.headline_ratio == report.h264[0].ratios["psnr"]
    text = format_report(report)
    assert "codec default" in text and "H.264 128² CRF 51" in text and "H.264 64² CRF 51" in text
    with pytest.raises(SdkError, match="CRFs must be in"):
        run_codec_bench(pipeline, "00" * 32, prepared_small, crfs=(60,))


def test_h264_ladder_matching():
    """Equal quality on a CRF ladder: interpolated in log bitrate, its lowest rate when that already beats
    ours, None when its best does not reach ours; quality at a bitrate below the ladder is the lowest rate's."""
    from sdk.bench.codec import H264Point, at_bitrate, h264_round_trip, match_on_ladder

    ladder = [H264Point(64, 51, 10.0, 24.0, 0.70, 3.0), H264Point(64, 45, 40.0, 28.0, 0.80, 2.0)]
    point, how = match_on_ladder(ladder, "psnr", 26.0)
    assert how == "interpolated" and point.kbps == pytest.approx(20.0) and point.crf is None
    assert match_on_ladder(ladder, "psnr", 22.0) == (ladder[0], "lowest rate")
    assert match_on_ladder(ladder, "akd", 2.5)[0].kbps == pytest.approx(20.0)  # lower is better
    assert match_on_ladder(ladder, "ssim", 0.9) == (None, "not reached")
    assert at_bitrate(ladder, 2.0) is ladder[0] and at_bitrate(ladder, 20.0).psnr == pytest.approx(26.0)
    # libx264 at constant quality: a higher CRF gives fewer bits.
    rng = np.random.default_rng(0)
    frames = [np.clip(128 + rng.normal(0, 20, (32, 32, 3)), 0, 255).astype(np.uint8) for _ in range(5)]
    (decoded, coarse), (_, fine) = h264_round_trip(frames, 51), h264_round_trip(frames, 20)
    assert len(decoded) == 5 and decoded[0].shape == (32, 32, 3) and 0 < coarse < fine


def test_values_beyond_the_int64_range_are_clamped_and_counted():
    from sdk.codec.layout import quantize_values

    levels, clamped = quantize_values(np.array([1e30, -1e30, 0.0]), 1, 100, None, 0.5)
    assert levels.tolist() == [100, -100, 0] and clamped == 2

"""Fuzz the hybrid stream's parsers at scale: no input may raise anything but CodecError.

    python tests/test_codec_hybrid_fuzz.py --runs 1000000  # atheris (coverage-guided), if installed
    python tests/test_codec_hybrid_fuzz.py --runs 200000 --hypothesis  # hypothesis otherwise

The hybrid counterpart of tests/test_codec_semantic_fuzz.py, on the harness of tests/fuzz_codec.py:
each input drives a fresh decoder through the stream-header parser (`read_stream_header`, any kind;
the bytes as they are, and after a valid version-2 kind-2 prefix, so the fields past the magic are
reached), then a valid keyframe (so delta packets have a reference), then the fuzzed bytes as a
packet, as a delta packet of that keyframe and as a keyframe. The corpus is seeded with valid
packets of every preset, E = 0 / 5 / 16, with and without Jacobians. Under pytest,
`test_fuzz_harness_runs` only checks the harness on its seeds and a few hundred mutations (the
hostile-input tests proper are in test_codec_hybrid.py).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from sdk.codec import (HYBRID_PRESETS, CodecError, HybridCodecConfig, HybridCodeDecoder, HybridCodeEncoder,
                       HybridStreamHeader, read_stream_header)
from sdk.codec.config import EXPRESSION_LIMIT, POSE_LIMITS

from fuzz_codec import fuzz_main, run_hypothesis

K = 5
HEADERS = [HybridStreamHeader("dagan++-mobile-hybrid", "ab" * 32, "cd" * 32, dims, K, 128, 25.0,
                              dataclasses.replace(HybridCodecConfig.preset(name), jacobians=dims != 5))
           for name in sorted(HYBRID_PRESETS) for dims in (0, 5, 16)]


def _valid_packets(header: HybridStreamHeader, frames: int = 6) -> list[bytes]:
    rng = np.random.default_rng(header.expression_dims)
    encoder = HybridCodeEncoder(header)
    scale = np.array([30.0, 20.0, 20.0, 0.5, 0.5, 1.0])
    return [encoder.encode(rng.normal(0, 1, 6) * scale, rng.normal(0, 1, header.expression_dims),
                           rng.uniform(-1, 1, (K, 2)), np.eye(2) + rng.normal(0, 0.3, (K, 2, 2)), index * 40)
            for index in range(frames)]


STREAMS = [(header, header.to_bytes(), _valid_packets(header)) for header in HEADERS]
counts = {"inputs": 0, "decoded": 0, "codec_errors": 0, "headers": 0}
REPORT_EVERY = 50_000


def one_input(data: bytes) -> None:
    counts["inputs"] += 1
    if counts["inputs"] % REPORT_EVERY == 0:
        print(f"REPORT {counts}", flush=True)
    if not data:
        return
    header, header_bytes, packets = STREAMS[data[0] % len(STREAMS)]
    body = data[1:]
    for candidate in (body, header_bytes[:6] + body):  # any bytes; a version-2 kind-2 header's fields
        try:
            read_stream_header(candidate)
            counts["headers"] += 1
        except CodecError:
            pass
    decoder = HybridCodeDecoder(header)
    decoder.decode(packets[0])
    for candidate in (body, bytes([1 + (data[0] >> 4) % 8, 0]) + body, b"\x80\x00" + body):
        try:
            frame = decoder.decode(candidate)
        except CodecError:
            counts["codec_errors"] += 1
            continue
        counts["decoded"] += 1
        assert (np.abs(frame.pose) <= np.array(POSE_LIMITS)).all() and frame.timestamp_ms >= 0
        assert (np.abs(frame.expression) <= EXPRESSION_LIMIT).all() and (np.abs(frame.keypoints) <= 1).all()
        assert (frame.jacobians is None) != header.config.jacobians
        assert frame.jacobians is None or (np.abs(frame.jacobians) <= 8).all()


def _seeds() -> list[bytes]:
    return [bytes([index]) + data for index, (_, header_bytes, packets) in enumerate(STREAMS)
            for data in (header_bytes, *packets)]


def test_fuzz_harness_runs():
    for seed in _seeds():
        one_input(seed)
    run_hypothesis(one_input, _seeds(), 300)
    assert counts["decoded"] > 0 and counts["codec_errors"] > 0 and counts["headers"] > 0


if __name__ == "__main__":
    fuzz_main(__doc__.split("\n\n")[0], one_input, _seeds(), counts)

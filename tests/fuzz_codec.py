"""Fuzz the codec's parsers: no input may raise anything but CodecError (not collected by pytest).

    python tests/fuzz_codec.py --runs 1000000            # atheris (coverage-guided), if installed
    python tests/fuzz_codec.py --runs 200000 --hypothesis # hypothesis at scale otherwise

Each input drives a fresh decoder through: the stream header parser, then a valid keyframe (so
delta packets have a reference), then the fuzzed bytes as a packet, as a delta packet of that
keyframe, and as a keyframe. The corpus is seeded with valid packets of every preset. Prints the
number of inputs run (atheris: libFuzzer's "Done N runs" and a REPORT line every 50 000 inputs).
"""
from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sdk.codec import PRESETS, CodecConfig, CodecError, CodeDecoder, CodeEncoder, StreamHeader

K = 15
HEADERS = [StreamHeader("dagan++-mobile", "ab" * 32, K, 128, 25.0, CodecConfig.preset(name), 2 if i % 2 else 0)
           for i, name in enumerate(sorted(PRESETS))]


def _valid_packets(header: StreamHeader, frames: int = 6) -> list[bytes]:
    rng = np.random.default_rng(0)
    encoder = CodeEncoder(header)
    packets = []
    for index in range(frames):
        keypoints = rng.uniform(-1, 1, (K, 2))
        jacobians = np.eye(2) + rng.normal(0, 0.3, (K, 2, 2))
        extra = rng.normal(0, 1, header.extra_dims) if header.extra_dims else None
        packets.append(encoder.encode(keypoints, jacobians, index * 40, extra))
    return packets


STREAMS = [(header, _valid_packets(header)) for header in HEADERS]
counts = {"inputs": 0, "decoded": 0, "codec_errors": 0}
REPORT_EVERY = 50_000


def one_input(data: bytes) -> None:
    counts["inputs"] += 1
    if counts["inputs"] % REPORT_EVERY == 0:
        print(f"REPORT {counts}", flush=True)
    if not data:
        return
    header, packets = STREAMS[data[0] % len(STREAMS)]
    body = data[1:]
    try:
        StreamHeader.from_bytes(body)
    except CodecError:
        pass
    decoder = CodeDecoder(header)
    decoder.decode(packets[0])
    for candidate in (body, bytes([1 + (data[0] >> 4) % 8, 0]) + body, b"\x80\x00" + body):
        try:
            frame = decoder.decode(candidate)
        except CodecError:
            counts["codec_errors"] += 1
            continue
        counts["decoded"] += 1
        assert np.all(np.abs(frame.keypoints) <= 1) and frame.timestamp_ms >= 0


def seeds() -> list[bytes]:
    """The corpus: a selector byte (which stream) + each valid packet of that stream."""
    return [bytes([index]) + packet for index, (_, packets) in enumerate(STREAMS) for packet in packets]


# ----------------------------------------------------------------------------------------------
# The harness, shared with tests/test_codec_semantic_fuzz.py: an input is a selector byte + a body.


def mutate(packet: bytes, flips: list[int]) -> bytearray:
    data = bytearray(packet)
    for bit in flips:
        data[(bit // 8) % len(data)] ^= 1 << (bit % 8)
    return data


def run_atheris(one_input: Callable[[bytes], None], corpus_seeds: list[bytes], runs: int) -> None:
    """Coverage-guided fuzzing of `one_input` (libFuzzer exits the process; it prints "Done N runs")."""
    import atheris

    import sdk.codec

    atheris.instrument_func(one_input)  # and every function and method of sdk.codec, for coverage feedback
    for module in [m for name, m in sys.modules.items() if name.startswith(sdk.codec.__name__)]:
        for value in vars(module).values():
            if getattr(value, "__module__", None) != module.__name__:
                continue
            for member in (vars(value).values() if isinstance(value, type) else [value]):
                function = getattr(member, "fget", None) or getattr(member, "__func__", None) or member
                if inspect.isfunction(function):
                    atheris.instrument_func(function)
    corpus = Path(tempfile.mkdtemp(prefix="fuzz_codec_corpus_"))
    for index, seed in enumerate(corpus_seeds):
        (corpus / f"seed_{index}").write_bytes(seed)
    atheris.Setup([sys.argv[0], f"-runs={runs}", "-max_len=256", str(corpus)], one_input)
    atheris.Fuzz()


def run_hypothesis(one_input: Callable[[bytes], None], corpus_seeds: list[bytes], runs: int) -> None:
    """`runs` inputs: a random selector + random bytes or a seed's body with a few bits flipped and cut."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    bodies = [seed[1:] for seed in corpus_seeds]
    mutated = st.builds(lambda seed, flips, cut: bytes(mutate(seed, flips))[:cut],
                        st.sampled_from(bodies), st.lists(st.integers(0, 8 * 80 - 1), max_size=4), st.integers(0, 90))

    @given(st.integers(0, 255), st.one_of(st.binary(max_size=200), mutated))
    @settings(max_examples=runs, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def fuzz(selector, body):
        one_input(bytes([selector]) + body)

    fuzz()


def fuzz_main(description: str, one_input: Callable[[bytes], None], corpus_seeds: list[bytes],
              counts: dict[str, int]) -> None:
    """The command line of a fuzz script: --runs N [--hypothesis]; atheris when installed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--hypothesis", action="store_true", help="use hypothesis even if atheris is installed")
    args = parser.parse_args()
    started = time.perf_counter()
    try:
        if args.hypothesis:
            raise ImportError
        import atheris  # noqa: F401
    except ImportError:
        run_hypothesis(one_input, corpus_seeds, args.runs)
        engine = "hypothesis"
    else:
        run_atheris(one_input, corpus_seeds, args.runs)
        engine = "atheris"
    print(f"{engine}: {counts} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    fuzz_main(__doc__.split("\n\n")[0], one_input, seeds(), counts)

"""The native core (native/, issue 15 item 1) against the Python SDK: golden vectors and random
property cases through both, in both directions (decoder and encoder), plus its own C tests.

Builds native/ with the system C compiler into a temporary folder (skips, saying why, without a
compiler or libsodium's headers) and calls it through ctypes.

    python tests/test_native_core.py --write-golden   # regenerate tests/golden/{codec_learned_v1,
                                                       # transport_v1,motion_v1}.json from the SDK
    THK_PROPERTY_CASES=100000 python -m pytest -q tests/test_native_core.py   # more random cases
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdk.codec import (CodecConfig, CodecError, CodeDecoder, CodeEncoder, HybridCodecConfig, HybridCodeDecoder,
                       HybridCodeEncoder, HybridStreamHeader, MissingReferenceError, SemanticCodecConfig,
                       SemanticCodeDecoder, SemanticCodeEncoder, SemanticStreamHeader, StalePacketError, StreamHeader,
                       read_stream_header)
from sdk.codec.config import EXPRESSION_LIMIT, POSE_LIMITS

ROOT = Path(__file__).resolve().parent.parent
NATIVE = ROOT / "native"
GOLDEN = Path(__file__).resolve().parent / "golden"
LEARNED_GOLDEN = GOLDEN / "codec_learned_v1.json"
SEMANTIC_GOLDEN = GOLDEN / "codec_semantic_v2.json"
HYBRID_GOLDEN = GOLDEN / "codec_hybrid_v2.json"
TRANSPORT_GOLDEN = GOLDEN / "transport_v1.json"
MOTION_GOLDEN = GOLDEN / "motion_v1.json"
MODEL_SHA = "0123456789abcdef" * 4
PRIOR_SHA = "5546106d5748432175ef785c0f3575b1953ab0b49a2d5af59ffd7e3fae18bdbc"
PROPERTY_CASES = int(os.environ.get("THK_PROPERTY_CASES", "10000"))

OK, MALFORMED, MISSING_REFERENCE, STALE = 0, -20, -21, -22
MAX_KP, MAX_VALUES = 255, 6 + 255 + 6 * 255  # THK_MAX_VALUES: the hybrid kind's 6 + E + 6K
KIND_HYBRID = 3  # thk_header.kind


# -- ctypes mirror of native/include/thk.h ------------------------------------------------------------

class Header(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("reference", ctypes.c_int), ("resolution", ctypes.c_uint32),
                ("fps_millihertz", ctypes.c_uint32), ("keyframe_interval", ctypes.c_uint32),
                ("hysteresis256", ctypes.c_uint32), ("model_id_length", ctypes.c_uint32),
                ("model_id", ctypes.c_char * 256), ("model_sha_prefix", ctypes.c_uint8 * 8),
                ("num_kp", ctypes.c_uint32), ("extra_dims", ctypes.c_uint32), ("jacobians", ctypes.c_int),
                ("kp_step", ctypes.c_uint32), ("jac_step", ctypes.c_uint32), ("extra_step", ctypes.c_uint32),
                ("expression_dims", ctypes.c_uint32), ("pose_steps", ctypes.c_uint32 * 6),
                ("expression_step", ctypes.c_uint32), ("prior_sha_prefix", ctypes.c_uint8 * 8)]


class Frame(ctypes.Structure):
    _fields_ = [("sequence", ctypes.c_uint64), ("timestamp_ms", ctypes.c_uint64), ("keyframe", ctypes.c_int),
                ("keyframe_id", ctypes.c_uint8), ("code", ctypes.c_int32 * MAX_VALUES)]


class DecoderStats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in ("decoded", "keyframes", "missing_reference", "stale",
                                                     "malformed")]


class Decoder(ctypes.Structure):
    _fields_ = [("header", Header), ("stats", DecoderStats), ("has_keyframe", ctypes.c_int),
                ("has_last", ctypes.c_int), ("keyframe", Frame), ("last", Frame)]


class EncoderStats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in ("frames", "keyframes", "bytes", "keyframe_bytes",
                                                     "clamped_values")]


class Encoder(ctypes.Structure):
    _fields_ = [("header", Header), ("stats", EncoderStats), ("force_keyframe", ctypes.c_int),
                ("has_keyframe", ctypes.c_int), ("keyframe", Frame), ("previous", ctypes.c_int32 * MAX_VALUES)]


class JitterCounts(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in ("lost", "reordered", "late", "overflow", "duplicates",
                                                     "oversized")]


class Jitter(ctypes.Structure):
    _fields_ = [("gap_wait_s", ctypes.c_double), ("capacity", ctypes.c_int), ("counts", JitterCounts),
                ("next_number", ctypes.c_uint64), ("highest", ctypes.c_int64), ("held", ctypes.c_int),
                ("opaque", ctypes.c_uint8 * 0)]  # the slots: sized by thk_struct_size


class Window(ctypes.Structure):
    _fields_ = [("highest", ctypes.c_int64), ("seen", ctypes.c_uint64 * 4)]


class ReceiverStats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in ("received", "recovered", "delivered", "duplicates", "too_old",
                                                     "forged", "truncated", "garbage", "other_session", "malformed")]


class FrameReceiver(ctypes.Structure):  # its head: the jitter slots and the rest are sized by thk_struct_size
    _fields_ = [("forward_key", ctypes.c_uint8 * 32), ("session_id", ctypes.c_uint32), ("stats", ReceiverStats),
                ("window", Window), ("jitter", Jitter)]


def _built(tmp_path_factory) -> Path:
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        pytest.skip("no C compiler (cc, gcc or clang) on this machine: the native core cannot be built")
    if shutil.which("make") is None:
        pytest.skip("no make on this machine: the native core's Makefile cannot run")
    if not any(Path(p, "sodium.h").exists() for p in ("/usr/include", "/usr/local/include")):
        pytest.skip("libsodium's headers are missing (Debian: apt-get install libsodium-dev; .ci/run installs it)")
    build = tmp_path_factory.mktemp("native-build")
    result = subprocess.run(["make", "-s", "-C", str(NATIVE), f"BUILD={build}", f"CC={compiler}", "all"],
                            capture_output=True, text=True)
    assert result.returncode == 0, f"make failed:\n{result.stdout}\n{result.stderr}"
    return build


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    return _built(tmp_path_factory)


@pytest.fixture(scope="module")
def lib(build):
    library = ctypes.CDLL(str(build / "libthk.so"))
    library.thk_struct_size.restype = ctypes.c_size_t
    library.thk_max_packet_bytes.restype = ctypes.c_size_t
    library.thk_status_name.restype = ctypes.c_char_p
    P, size, u32, u64, dbl, i = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint32, ctypes.c_uint64,
                                 ctypes.c_double, ctypes.c_int)
    for name, argtypes in {  # every size_t and 64-bit argument must be declared for ctypes to pass it whole
        "thk_header_parse": [P, P, size], "thk_header_write": [P, P, size, P],
        "thk_decoder_decode": [P, P, size, P],
        "thk_encoder_encode_learned": [P, P, P, P, u64, P, size, P],
        "thk_encoder_encode_semantic": [P, P, P, u64, P, size, P],
        "thk_encoder_encode_hybrid": [P, P, P, P, P, u64, P, size, P],
        "thk_derive_hello_key": [P, size, P, P], "thk_derive_session_keys": [P, size, P, P, P, P],
        "thk_datagram_seal": [P, i, u32, u32, P, P, size, P, size, P],
        "thk_frame_receiver_init": [P, P, u32, dbl, i], "thk_frame_receiver_handle": [P, P, size, dbl],
        "thk_frame_receiver_pop": [P, dbl, P, size, P], "thk_jitter_init": [P, dbl, i],
        "thk_jitter_push": [P, u64, P, size, dbl], "thk_jitter_pop": [P, dbl, P, size, P],
        "thk_replay_check": [P, u64], "thk_replay_commit": [P, u64], "thk_hull_area": [P, u32, P],
        "thk_movement_scale": [dbl, dbl, P],
        "thk_relative_motion": [u32, P, P, P, P, P, P, ctypes.c_float, i, P, P],
    }.items():
        getattr(library, name).argtypes = argtypes
    assert library.thk_crypto_init() == 0
    return library


def _buffer(data: bytes):
    return (ctypes.c_uint8 * max(1, len(data))).from_buffer_copy(data or b"\0")


class NativeDecoder:
    def __init__(self, lib, header_bytes: bytes):
        self.lib = lib
        self.header = Header()
        assert lib.thk_header_parse(ctypes.byref(self.header), _buffer(header_bytes), len(header_bytes)) == OK
        self.decoder = Decoder()
        self.frame = Frame()
        assert lib.thk_decoder_init(ctypes.byref(self.decoder), ctypes.byref(self.header)) == OK

    def decode(self, packet: bytes) -> tuple[int, tuple | None]:
        status = self.lib.thk_decoder_decode(ctypes.byref(self.decoder), _buffer(packet), len(packet),
                                             ctypes.byref(self.frame))
        if status != OK:
            return status, None
        frame = self.frame
        return OK, (frame.sequence, frame.timestamp_ms, bool(frame.keyframe), self.dequantized())

    def dequantized(self) -> list[float]:
        h = self.header
        if h.kind == 1:
            k = h.num_kp
            kp, jac, extra = (ctypes.c_float * (2 * k))(), (ctypes.c_float * (4 * k))(), (ctypes.c_float * 256)()
            assert self.lib.thk_frame_dequantize_learned(ctypes.byref(h), ctypes.byref(self.frame), kp, jac,
                                                         extra) == OK
            return list(kp) + (list(jac) if h.jacobians else []) + list(extra)[:h.extra_dims]
        pose, expression = (ctypes.c_double * 6)(), (ctypes.c_double * 256)()
        if h.kind == KIND_HYBRID:
            k = h.num_kp
            kp, jac = (ctypes.c_float * (2 * k))(), (ctypes.c_float * (4 * k))()
            assert self.lib.thk_frame_dequantize_hybrid(ctypes.byref(h), ctypes.byref(self.frame), pose, expression,
                                                        kp, jac) == OK
            return list(pose) + list(expression)[:h.expression_dims] + list(kp) + (list(jac) if h.jacobians else [])
        assert self.lib.thk_frame_dequantize_semantic(ctypes.byref(h), ctypes.byref(self.frame), pose,
                                                      expression) == OK
        return list(pose) + list(expression)[:h.expression_dims]

    @property
    def stats(self) -> dict[str, int]:
        return {name: getattr(self.decoder.stats, name) for name, _ in DecoderStats._fields_}


class NativeEncoder:
    def __init__(self, lib, header_bytes: bytes):
        self.lib = lib
        self.header = Header()
        assert lib.thk_header_parse(ctypes.byref(self.header), _buffer(header_bytes), len(header_bytes)) == OK
        self.encoder = Encoder()
        assert lib.thk_encoder_init(ctypes.byref(self.encoder), ctypes.byref(self.header)) == OK
        self.capacity = lib.thk_max_packet_bytes(ctypes.byref(self.header))
        self.out = (ctypes.c_uint8 * self.capacity)()

    def force_keyframe(self) -> None:
        self.lib.thk_encoder_force_keyframe(ctypes.byref(self.encoder))

    def encode_learned(self, keypoints, jacobians, extra, timestamp: int) -> bytes:
        kp = np.ascontiguousarray(keypoints, np.float32).ravel()
        jac = np.ascontiguousarray(jacobians if jacobians is not None else np.zeros(1), np.float32).ravel()
        ext = np.ascontiguousarray(extra if extra is not None else np.zeros(1), np.float32).ravel()
        written = ctypes.c_size_t()
        ptr = ctypes.POINTER(ctypes.c_float)
        status = self.lib.thk_encoder_encode_learned(
            ctypes.byref(self.encoder), kp.ctypes.data_as(ptr), jac.ctypes.data_as(ptr),
            ext.ctypes.data_as(ptr) if extra is not None else None, ctypes.c_uint64(timestamp), self.out,
            self.capacity, ctypes.byref(written))
        assert status == OK, self.lib.thk_status_name(status)
        return bytes(self.out[:written.value])

    def encode_semantic(self, pose, expression, timestamp: int) -> bytes:
        p = np.ascontiguousarray(pose, np.float64)
        e = np.ascontiguousarray(expression if len(expression) else np.zeros(1), np.float64)
        written = ctypes.c_size_t()
        ptr = ctypes.POINTER(ctypes.c_double)
        status = self.lib.thk_encoder_encode_semantic(ctypes.byref(self.encoder), p.ctypes.data_as(ptr),
                                                      e.ctypes.data_as(ptr), ctypes.c_uint64(timestamp), self.out,
                                                      self.capacity, ctypes.byref(written))
        assert status == OK, self.lib.thk_status_name(status)
        return bytes(self.out[:written.value])

    def encode_hybrid(self, pose, expression, keypoints, jacobians, timestamp: int) -> bytes:
        p = np.ascontiguousarray(pose, np.float64)
        e = np.ascontiguousarray(expression if len(expression) else np.zeros(1), np.float64)
        kp = np.ascontiguousarray(keypoints, np.float32).ravel()
        jac = np.ascontiguousarray(jacobians if jacobians is not None else np.zeros(1), np.float32).ravel()
        written = ctypes.c_size_t()
        doubles, floats = ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_float)
        status = self.lib.thk_encoder_encode_hybrid(ctypes.byref(self.encoder), p.ctypes.data_as(doubles),
                                                    e.ctypes.data_as(doubles), kp.ctypes.data_as(floats),
                                                    jac.ctypes.data_as(floats), ctypes.c_uint64(timestamp), self.out,
                                                    self.capacity, ctypes.byref(written))
        assert status == OK, self.lib.thk_status_name(status)
        return bytes(self.out[:written.value])

    def encode(self, header, values, timestamp: int) -> bytes:
        """One frame of flat `values` (code_arrays' layout) through this kind's encode call."""
        arrays = code_arrays(header, values)
        if isinstance(header, SemanticStreamHeader):
            return self.encode_semantic(*arrays, timestamp)
        if isinstance(header, HybridStreamHeader):
            return self.encode_hybrid(*arrays, timestamp)
        keypoints, jacobians, extra = arrays
        return self.encode_learned(keypoints, jacobians, extra, timestamp)


# A kind's Python encoder and decoder.
PYTHON_CODECS = {StreamHeader: (CodeEncoder, CodeDecoder),
                 SemanticStreamHeader: (SemanticCodeEncoder, SemanticCodeDecoder),
                 HybridStreamHeader: (HybridCodeEncoder, HybridCodeDecoder)}


def code_arrays(header, values) -> tuple:
    """A frame's flat values (learned: 2K keypoints, [4K Jacobians], D extra; semantic: 6 pose, E
    expression; hybrid: 6 pose, E expression, 2K keypoints, [4K Jacobians]) as the encoder's arrays."""
    values = np.asarray(values)
    if isinstance(header, SemanticStreamHeader):
        return values[:6], values[6:]
    offset = 6 + header.expression_dims if isinstance(header, HybridStreamHeader) else 0
    k = header.num_kp
    keypoints = values[offset:offset + 2 * k].reshape(k, 2)
    jac = 4 * k if header.config.jacobians else 0
    jacobians = values[offset + 2 * k:offset + 2 * k + jac].reshape(k, 2, 2) if jac else None
    if isinstance(header, HybridStreamHeader):
        return values[:6], values[6:offset], keypoints, jacobians
    return keypoints, jacobians, values[offset + 2 * k + jac:] if header.extra_dims else None


def python_encode(encoder, header, values, timestamp: int) -> bytes:
    arrays = code_arrays(header, values)
    if isinstance(header, StreamHeader):
        keypoints, jacobians, extra = arrays
        return encoder.encode(keypoints, jacobians, timestamp, extra)
    return encoder.encode(*arrays, timestamp)


def python_decode(decoder, packet: bytes) -> tuple[int, tuple | None]:
    """The Python decoder's outcome in the native core's terms: (status, (sequence, timestamp, keyframe, values))."""
    try:
        frame = decoder.decode(packet)
    except MissingReferenceError:
        return MISSING_REFERENCE, None
    except StalePacketError:
        return STALE, None
    except CodecError:
        return MALFORMED, None
    values = list(frame.pose) + list(frame.expression) if hasattr(frame, "pose") else []
    if hasattr(frame, "keypoints"):
        values += (frame.keypoints.ravel().tolist() + ([] if frame.jacobians is None else frame.jacobians.ravel().tolist())
                   + ([] if getattr(frame, "extra", None) is None else frame.extra.tolist()))
    return OK, (frame.sequence, frame.timestamp_ms, frame.keyframe, [float(v) for v in values])


# -- the C tests and the struct mirror ----------------------------------------------------------------

def test_c_tests_pass(build):
    result = subprocess.run([str(build / "test_core")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failures" in result.stdout


def test_struct_mirror_matches_the_header(lib):
    """The ctypes mirror above is what a JNI or Swift binding has to keep in step: sizes must agree."""
    for index, struct in enumerate([Header, Frame, Decoder, Encoder]):
        assert lib.thk_struct_size(index) == ctypes.sizeof(struct), struct.__name__


# -- golden vectors -------------------------------------------------------------------------------------

def learned_streams() -> list[dict]:
    """Learned-keypoint streams of every preset (K = 10 / 15 / 4 / 1, D = 0 / 3), with a forced keyframe,
    clamped values, a jump (escape codes), timestamp jitter and a timestamp jump (keyframe)."""
    specs = [("default", 10, 3, 24, 1), ("low", 15, 0, 14, 2), ("high", 4, 0, 14, 3), ("robust", 4, 0, 14, 4),
             ("no-jacobians", 1, 0, 14, 5)]
    streams = []
    for preset, k, dims, frames, seed in specs:
        header = StreamHeader("dagan++-mobile", MODEL_SHA, k, 128, 25.0, CodecConfig.preset(preset), dims)
        rng = np.random.default_rng(seed)
        keypoints = np.clip(rng.uniform(-0.6, 0.6, (1, k, 2)) + np.cumsum(rng.normal(0, 0.02, (frames, k, 2)), 0), -1, 1)
        jacobians = np.eye(2) + np.cumsum(rng.normal(0, 0.03, (frames, k, 2, 2)), 0)
        extra = np.cumsum(rng.normal(0, 0.1, (frames, dims)), 0)
        keypoints[3, 0, 0], jacobians[4, 0, 0, 0] = 1.7, 9.5   # clamped to 1 and 8
        keypoints[10] *= -1                                     # a jump: escape codes
        keypoints, jacobians, extra = (np.round(a, 6).astype(np.float32) for a in (keypoints, jacobians, extra))
        encoder, decoder = CodeEncoder(header), CodeDecoder(header)
        records = []
        for index in range(frames):
            if index == 7:
                encoder.force_keyframe()
            timestamp = 1000 + index * 40 + (index % 3) + (5_000_000 if index >= 12 else 0)
            packet = encoder.encode(keypoints[index], jacobians[index], timestamp, extra[index] if dims else None)
            _, (sequence, ts, keyframe, values) = python_decode(decoder, packet)
            records.append({"keypoints": keypoints[index].tolist(), "jacobians": jacobians[index].tolist(),
                            "extra": extra[index].tolist(), "timestamp_ms": timestamp, "force_keyframe": index == 7,
                            "packet": packet.hex(), "decoded": {"sequence": sequence, "timestamp_ms": ts,
                                                                 "keyframe": keyframe, "values": values}})
        streams.append({"preset": preset, "num_kp": k, "extra_dims": dims, "header": header.to_bytes().hex(),
                        "clamped": encoder.stats.clamped_values, "frames": records})
    return streams


def transport_vectors() -> dict:
    """Keys and sealed datagrams of a fixed session (secret, salts, session id chosen here)."""
    from sdk.transport import SessionKey, wire
    from sdk.transport.crypto import hello_cipher, seal, session_ciphers
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    secret, salt_s, salt_r, session = bytes(range(32)), bytes(range(100, 116)), bytes(range(200, 216)), 0x1234ABCD
    key = SessionKey(secret)

    def derived(salt: bytes, purpose: bytes) -> str:
        return HKDF(hashes.SHA256(), 32, salt, b"talking-head-sdk transport v1 " + purpose).derive(secret).hex()

    forward, backward = session_ciphers(key, salt_s, salt_r)
    hello = hello_cipher(key, salt_s)
    packets = [bytes([0x80, 0, 0, 0, 0x21, 0xE5]), bytes([1, 0, 0x8A, 0x4E]), bytes([2, 0, 0x40]), bytes([3, 0])]
    datagrams = []
    for number, packet in enumerate(packets):
        earlier = packets[max(0, number - 2):number][::-1]
        plaintext = wire.pack_frame(packet, earlier)
        aad = wire.prefix(wire.FRAME, session, number)
        datagrams.append({"type": wire.FRAME, "number": number, "plaintext": plaintext.hex(),
                          "datagram": (aad + seal(forward, wire.FRAME, number, plaintext, aad)).hex()})
    for packet_type, cipher, salt, plaintext in [(wire.HELLO, hello, salt_s, b"\x01"),
                                                 (wire.CHALLENGE, backward, salt_r, b""), (wire.BYE, forward, b"", b"")]:
        aad = wire.prefix(packet_type, session, 0, salt)
        datagrams.append({"type": packet_type, "number": 0, "plaintext": plaintext.hex(),
                          "datagram": (aad + seal(cipher, packet_type, 0, plaintext, aad)).hex()})
    return {"secret": secret.hex(), "sender_salt": salt_s.hex(), "receiver_salt": salt_r.hex(), "session_id": session,
            "hello_key": derived(salt_s, b"hello"), "forward_key": derived(salt_s + salt_r, b"sender to receiver"),
            "backward_key": derived(salt_s + salt_r, b"receiver to sender"), "datagrams": datagrams}


def motion_cases(count: int, seed: int) -> list[dict]:
    """Random driving / anchor / source codes and what sdk.models.motion makes of them."""
    import torch

    from sdk.models.motion import Keypoints, keypoint_hull_area, relative_keypoints

    rng = np.random.default_rng(seed)
    cases = []
    for index in range(count):
        k = int(rng.integers(3, 16))
        arrays = {name: rng.uniform(-0.9, 0.9, (1, k, 2)).astype(np.float32) for name in ("driving", "anchor", "source")}
        jac = {name: (np.eye(2) + rng.normal(0, 0.3, (1, k, 2, 2))).astype(np.float32)
               for name in ("driving", "anchor", "source")}
        kp = {name: Keypoints(torch.from_numpy(arrays[name]), torch.from_numpy(jac[name])) for name in arrays}
        use_jacobian, adapt = bool(index % 2 == 0), bool(index % 3 != 2)
        source_area, anchor_area = keypoint_hull_area(kp["source"]), keypoint_hull_area(kp["anchor"])
        moved = relative_keypoints(kp["driving"], kp["anchor"], kp["source"], use_jacobian, adapt, source_area,
                                   anchor_area)
        cases.append({"k": k, "use_jacobian": use_jacobian, "adapt_movement_scale": adapt,
                      **{name: arrays[name][0].tolist() for name in arrays},
                      **{f"{name}_jacobian": jac[name][0].tolist() for name in jac},
                      "source_area": float(source_area[0]), "anchor_area": float(anchor_area[0]),
                      "value": moved.value[0].numpy().tolist(), "jacobian": moved.jacobian[0].numpy().tolist()})
    return cases


def write_golden() -> None:
    about = ("written by `python tests/test_native_core.py --write-golden` from the Python SDK; "
             "checked against the native core (native/) by tests/test_native_core.py.")
    LEARNED_GOLDEN.write_text(_json({"about": "Golden vectors of the learned-keypoint stream (docs/bitstream.md "
                                                   "sections 1-9): per stream the header (hex), per frame the encoder's "
                                                   "float32 input, the packet and the decoded frame (values: keypoints, "
                                                   "Jacobians, extra, flattened); " + about,
                                          "streams": learned_streams()}))
    TRANSPORT_GOLDEN.write_text(_json({"about": "Keys and sealed datagrams of docs/transport.md for a fixed "
                                                     "secret, salts and session id; " + about,
                                            **transport_vectors()}))
    MOTION_GOLDEN.write_text(_json({"about": "Receiver-side motion (docs/motion.md) of random codes; " + about,
                                    "cases": motion_cases(12, 0)}))


def _json(document: dict) -> str:
    """One line per frame or case: small files that still diff well."""
    lines = []
    for key, value in document.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            items = []
            for item in value:
                if "frames" in item:
                    head = json.dumps({k: v for k, v in item.items() if k != "frames"})[:-1]
                    frames = ",\n   ".join(json.dumps(frame, separators=(",", ":")) for frame in item["frames"])
                    items.append(f'{head}, "frames": [\n   {frames}]}}')
                else:
                    items.append(json.dumps(item, separators=(",", ":")))
            lines.append(f' {json.dumps(key)}: [\n  ' + ",\n  ".join(items) + "]")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def test_learned_golden_vectors(lib):
    """Both directions: the stored float32 inputs give the stored packets; the stored packets decode
    to the stored frames; and the Python still reproduces the file (a change needs a new version)."""
    golden = json.loads(LEARNED_GOLDEN.read_text())
    assert golden["streams"] == learned_streams()
    for stream in golden["streams"]:
        header = bytes.fromhex(stream["header"])
        encoder, decoder = NativeEncoder(lib, header), NativeDecoder(lib, header)
        for record in stream["frames"]:
            if record["force_keyframe"]:
                encoder.force_keyframe()
            packet = encoder.encode_learned(record["keypoints"], record["jacobians"],
                                            record["extra"] if stream["extra_dims"] else None, record["timestamp_ms"])
            assert packet.hex() == record["packet"]
            decoded = record["decoded"]
            assert decoder.decode(packet) == (OK, (decoded["sequence"], decoded["timestamp_ms"], decoded["keyframe"],
                                                   decoded["values"]))
        assert encoder.encoder.stats.clamped_values == stream["clamped"]


def test_semantic_golden_vectors(lib):
    golden = json.loads(SEMANTIC_GOLDEN.read_text())
    for stream in golden["streams"]:
        header = bytes.fromhex(stream["header"])
        encoder, decoder = NativeEncoder(lib, header), NativeDecoder(lib, header)
        for record in stream["frames"]:
            if record["force_keyframe"]:
                encoder.force_keyframe()
            packet = encoder.encode_semantic(record["pose"], record["expression"], record["timestamp_ms"])
            assert packet.hex() == record["packet"]
            decoded = record["decoded"]
            assert decoder.decode(bytes.fromhex(record["packet"])) == (
                OK, (decoded["sequence"], decoded["timestamp_ms"], decoded["keyframe"],
                     decoded["pose"] + decoded["expression"]))


def test_hybrid_golden_vectors(lib):
    golden = json.loads(HYBRID_GOLDEN.read_text())
    assert len(golden["streams"]) == 3
    for stream in golden["streams"]:
        header = bytes.fromhex(stream["header"])
        encoder, decoder = NativeEncoder(lib, header), NativeDecoder(lib, header)
        assert (decoder.header.kind, decoder.header.num_kp, bool(decoder.header.jacobians),
                decoder.header.expression_dims) == (KIND_HYBRID, stream["num_kp"], stream["jacobians"],
                                                    stream["expression_dims"])
        for record in stream["frames"]:
            if record["force_keyframe"]:
                encoder.force_keyframe()
            packet = encoder.encode_hybrid(record["pose"], record["expression"][:stream["expression_dims"]],
                                           record["keypoints"], record["jacobians"] if stream["jacobians"] else None,
                                           record["timestamp_ms"])
            assert packet.hex() == record["packet"]
            decoded = record["decoded"]
            assert decoder.decode(bytes.fromhex(record["packet"])) == (
                OK, (decoded["sequence"], decoded["timestamp_ms"], decoded["keyframe"],
                     decoded["pose"] + decoded["expression"] + np.ravel(decoded["keypoints"]).tolist()
                     + (np.ravel(decoded["jacobians"]).tolist() if stream["jacobians"] else [])))


def test_transport_golden_vectors(lib):
    golden = json.loads(TRANSPORT_GOLDEN.read_text())
    assert {k: v for k, v in golden.items() if k != "about"} == transport_vectors()
    secret, salt_s, salt_r = (bytes.fromhex(golden[name]) for name in ("secret", "sender_salt", "receiver_salt"))
    hello, forward, backward = (ctypes.c_uint8 * 32)(), (ctypes.c_uint8 * 32)(), (ctypes.c_uint8 * 32)()
    assert lib.thk_derive_hello_key(secret, 32, salt_s, hello) == OK
    assert lib.thk_derive_session_keys(secret, 32, salt_s, salt_r, forward, backward) == OK
    assert (bytes(hello).hex(), bytes(forward).hex(), bytes(backward).hex()) == (
        golden["hello_key"], golden["forward_key"], golden["backward_key"])
    for wrong in (31, 33, 0):
        assert lib.thk_derive_session_keys(secret, wrong, salt_s, salt_r, forward, backward) == -40  # key length
    keys = {1: hello, 2: backward, 5: forward, 6: forward}
    out = (ctypes.c_uint8 * 512)()
    written = ctypes.c_size_t()
    for item in golden["datagrams"]:
        plaintext = bytes.fromhex(item["plaintext"])
        salt = {1: salt_s, 2: salt_r}.get(item["type"])
        assert lib.thk_datagram_seal(keys[item["type"]], item["type"], golden["session_id"], item["number"], salt,
                                     _buffer(plaintext), len(plaintext), out, 512, ctypes.byref(written)) == OK
        assert bytes(out[:written.value]).hex() == item["datagram"]
    # the receiver's path: the FRAME datagrams in order, one lost (its copy delivers it), one replayed
    receiver = ctypes.create_string_buffer(lib.thk_struct_size(5))
    assert lib.thk_frame_receiver_init(receiver, forward, golden["session_id"], ctypes.c_double(0.06), 16) == OK
    frames = [bytes.fromhex(item["datagram"]) for item in golden["datagrams"] if item["type"] == 5]
    statuses = [lib.thk_frame_receiver_handle(receiver, frame, len(frame), ctypes.c_double(0.0))
                for frame in [frames[0], frames[2], frames[2], frames[3]]]
    assert statuses == [OK, OK, -44, OK]  # -44: duplicate
    delivered = []
    while lib.thk_frame_receiver_pop(receiver, ctypes.c_double(0.0), out, 512, ctypes.byref(written)) == 1:
        delivered.append(bytes(out[:written.value]))
    packets = [bytes.fromhex(item["plaintext"]) for item in golden["datagrams"] if item["type"] == 5]
    assert delivered == [packets[0][1:], bytes([1, 0, 0x8A, 0x4E]), bytes([2, 0, 0x40]), bytes([3, 0])]


def test_motion_matches_python(lib):
    golden = json.loads(MOTION_GOLDEN.read_text())
    assert len(golden["cases"]) == 12
    ptr = ctypes.POINTER(ctypes.c_float)
    worst = 0.0
    for case in golden["cases"] + motion_cases(100, 1):  # the stored cases, then fresh ones from the Python
        k = case["k"]
        arrays = {name: np.ascontiguousarray(case[name], np.float32) for name in
                  ("driving", "anchor", "source", "driving_jacobian", "anchor_jacobian", "source_jacobian")}
        source_area, anchor_area = ctypes.c_double(), ctypes.c_double()
        assert lib.thk_hull_area(arrays["source"].ctypes.data_as(ptr), k, ctypes.byref(source_area)) == OK
        assert lib.thk_hull_area(arrays["anchor"].ctypes.data_as(ptr), k, ctypes.byref(anchor_area)) == OK
        assert np.float32(source_area.value) == np.float32(case["source_area"])
        assert np.float32(anchor_area.value) == np.float32(case["anchor_area"])
        scale = ctypes.c_float(1.0)
        if case["adapt_movement_scale"]:
            assert lib.thk_movement_scale(source_area, anchor_area, ctypes.byref(scale)) == OK
        value, jacobian = np.zeros((k, 2), np.float32), np.zeros((k, 2, 2), np.float32)
        assert lib.thk_relative_motion(k, *(arrays[name].ctypes.data_as(ptr) for name in
                                            ("driving", "driving_jacobian", "anchor", "anchor_jacobian", "source",
                                             "source_jacobian")), scale, int(case["use_jacobian"]),
                                       value.ctypes.data_as(ptr), jacobian.ctypes.data_as(ptr)) == OK
        expected_value, expected_jacobian = np.float32(case["value"]), np.float32(case["jacobian"])
        np.testing.assert_allclose(value, expected_value, rtol=5e-7, atol=1e-6)
        np.testing.assert_allclose(jacobian, expected_jacobian, rtol=5e-7, atol=1e-6)
        worst = max(worst, float(np.abs(jacobian - expected_jacobian).max()), float(np.abs(value - expected_value).max()))
    print(f"largest motion difference from the Python: {worst:.3g}")


# -- random property cases --------------------------------------------------------------------------------

KINDS = ("learned", "semantic", "hybrid")


def random_header(rng, kind: str | None = None) -> bytes:
    """A random header of `kind` (None: one of KINDS at random)."""
    kind = kind or KINDS[int(rng.integers(0, 3))]
    reference = "previous" if rng.random() < 0.6 else "keyframe"
    interval, hysteresis = int(rng.integers(1, 128)) if rng.random() < 0.3 else int(rng.integers(2, 30)), \
        int(rng.integers(0, 256)) / 256
    if kind == "learned":
        steps = [int(rng.integers(1, 65536)) if rng.random() < 0.2 else int(rng.choice([512, 1024, 2048, 4096]))
                 for _ in range(3)]
        config = CodecConfig(steps[0] / 65536, bool(rng.random() < 0.8), steps[1] / 65536, steps[2] / 65536, interval,
                             reference, hysteresis)
        return StreamHeader("m", MODEL_SHA, int(rng.integers(1, 20)), 128, float(rng.choice([25.0, 30.0, 12.5])),
                            config, int(rng.integers(0, 5)) if rng.random() < 0.3 else 0).to_bytes()
    pose = [int(rng.integers(1, 65536 * limit // 50 + 2)) for limit in POSE_LIMITS]
    config = SemanticCodecConfig(tuple(p / 65536 for p in pose), int(rng.integers(1, 65536 * EXPRESSION_LIMIT // 50))
                                 / 65536, interval, reference, hysteresis)
    if kind == "semantic":
        return SemanticStreamHeader("m", MODEL_SHA, PRIOR_SHA, int(rng.integers(0, 20)), 128, 25.0, config).to_bytes()
    steps = [int(rng.integers(1, 65536)) if rng.random() < 0.2 else int(rng.choice([512, 1024, 2048, 4096]))
             for _ in range(2)]
    hybrid = HybridCodecConfig(config, steps[0] / 65536, bool(rng.random() < 0.8), steps[1] / 65536)
    return HybridStreamHeader("m", MODEL_SHA, PRIOR_SHA, int(rng.integers(0, 20)), int(rng.integers(1, 20)), 128,
                              float(rng.choice([25.0, 30.0, 12.5])), hybrid).to_bytes()


def random_inputs(rng, header, frames: int):
    """Per frame (values, timestamp, force_keyframe): smooth walks with wild outliers and jumps."""
    spread = []
    if not isinstance(header, StreamHeader):
        spread += [30.0, 30.0, 30.0, 0.5, 0.5, 0.5] + [3.0] * header.expression_dims
    if not isinstance(header, SemanticStreamHeader):
        k = header.num_kp
        spread += [0.7] * (2 * k) + ([2.0] * (4 * k) if header.config.jacobians else [])
    if isinstance(header, StreamHeader):
        spread += [5.0] * header.extra_dims
    spread = np.array(spread)
    values = rng.uniform(-1, 1, len(spread)) * spread
    timestamp = int(rng.integers(0, 1 << 40))
    out = []
    for _ in range(frames):
        if rng.random() < 0.1:
            values = rng.uniform(-3, 3, len(spread)) * spread          # a jump, beyond the limits sometimes
        else:
            values = values + rng.normal(0, 0.02, len(spread)) * spread * rng.choice([0.01, 0.1, 1.0])
        timestamp += int(rng.choice([40, 40, 33, 41, 0, 3, 2_000_000])) if rng.random() < 0.98 else 0
        out.append((values.copy(), timestamp, bool(rng.random() < 0.05)))
    return out


def impaired(rng, packets: list[bytes]) -> list[bytes]:
    """The packets with loss, duplicates, reordering, bit flips, truncation, extension and random bytes."""
    out = []
    for packet in packets:
        roll = rng.random()
        if roll < 0.05:
            continue
        if roll < 0.10:
            out.append(packet)
        elif roll < 0.15 and out:
            out.insert(len(out) - 1, packet)
            continue
        elif roll < 0.22:
            data = bytearray(packet)
            data[int(rng.integers(0, len(data)))] ^= 1 << int(rng.integers(0, 8))
            packet = bytes(data)
        elif roll < 0.26:
            packet = packet[:int(rng.integers(0, len(packet)))]
        elif roll < 0.29:
            packet = packet + bytes(rng.integers(0, 256, int(rng.integers(1, 4)), dtype=np.uint8))
        elif roll < 0.31:
            packet = bytes(rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8))
        out.append(packet)
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_property_streams_through_both_codecs(lib, kind):
    """Random headers of each kind, random codes (with clamping, escapes, forced and timestamp
    keyframes) through both encoders (same bytes, same clamp counts), then the packets with
    random impairments through both decoders (same outcome, same frame, same counters):
    PROPERTY_CASES packets per kind."""
    rng = np.random.default_rng(15 + KINDS.index(kind))
    packets_compared = decoded_ok = 0
    while packets_compared < PROPERTY_CASES:
        header_bytes = random_header(rng, kind)
        header = read_stream_header(header_bytes)
        python_encoder, python_decoder = PYTHON_CODECS[type(header)]
        py_encoder = python_encoder(header)
        c_encoder = NativeEncoder(lib, header_bytes)
        packets = []
        for values, timestamp, force in random_inputs(rng, header, int(rng.integers(1, 40))):
            if force:
                py_encoder.force_keyframe()
                c_encoder.force_keyframe()
            packet = python_encode(py_encoder, header, values, timestamp)
            assert c_encoder.encode(header, values, timestamp) == packet
            packets.append(packet)
        assert c_encoder.encoder.stats.clamped_values == py_encoder.stats.clamped_values
        assert c_encoder.encoder.stats.bytes == py_encoder.stats.bytes
        py_decoder = python_decoder(header)
        c_decoder = NativeDecoder(lib, header_bytes)
        for packet in impaired(rng, packets):
            expected = python_decode(py_decoder, packet)
            assert c_decoder.decode(packet) == expected, (header_bytes.hex(), packet.hex())
            decoded_ok += expected[0] == OK
            packets_compared += 1
        assert c_decoder.stats == py_decoder.stats.__dict__
    assert decoded_ok > PROPERTY_CASES // 3


def test_property_headers_accept_and_reject_alike(lib):
    """Mutated headers (bit flips, every byte value at a field, truncation, a fixed CRC): the native
    parser accepts exactly what read_stream_header accepts, and writes accepted ones back byte for byte."""
    import zlib

    rng = np.random.default_rng(16)
    parsed, out, written = Header(), (ctypes.c_uint8 * 400)(), ctypes.c_size_t()
    accepted = 0
    for case in range(3000):
        data = bytearray(random_header(rng))
        roll = case % 4
        if roll == 0:
            data[int(rng.integers(0, len(data)))] ^= 1 << int(rng.integers(0, 8))
        elif roll == 1:
            data[int(rng.integers(4, (65 if data[5] == 2 else 60) if data[4] == 2 else 31))] = int(rng.integers(0, 256))
        elif roll == 2:
            data = data[:int(rng.integers(0, len(data) + 1))]
        if roll != 2 and rng.random() < 0.8 and len(data) > 8:  # re-seal so the field checks, not the CRC, decide
            data[-4:] = zlib.crc32(bytes(data[:-4])).to_bytes(4, "little")
        data = bytes(data)
        try:
            read_stream_header(data)
            python_ok = True
        except CodecError:
            python_ok = False
        status = lib.thk_header_parse(ctypes.byref(parsed), _buffer(data), len(data))
        assert (status == OK) == python_ok, (data.hex(), lib.thk_status_name(status))
        if python_ok:
            accepted += 1
            assert lib.thk_header_write(ctypes.byref(parsed), out, 400, ctypes.byref(written)) == OK
            assert bytes(out[:written.value]) == data
    assert accepted > 300


def test_property_jitter_buffer_orders_alike(lib):
    """Random arrivals (loss, duplicates, reordering, bursts) and reads at random times through
    sdk.transport.jitter and thk_jitter: the same packets out in the same order, the same counters."""
    from sdk.transport.jitter import JitterBuffer, JitterConfig

    rng = np.random.default_rng(17)
    jitter = ctypes.create_string_buffer(lib.thk_struct_size(4))
    view = Jitter.from_buffer(jitter)
    out, length = (ctypes.c_uint8 * 4096)(), ctypes.c_size_t()
    for _ in range(300):
        capacity, gap = int(rng.integers(1, 20)), float(rng.choice([0.0, 0.02, 0.06]))
        python = JitterBuffer(JitterConfig(gap, capacity))
        assert lib.thk_jitter_init(jitter, ctypes.c_double(gap), capacity) == OK
        now, number = 0.0, 0
        for _ in range(int(rng.integers(5, 80))):
            now += float(rng.choice([0.0, 0.01, 0.04, 0.1]))
            if rng.random() < 0.6:
                arrival = max(0, number + int(rng.integers(-6, 3)))
                number += 1
                payload = arrival.to_bytes(4, "little")
                python.push(arrival, payload, now)
                assert lib.thk_jitter_push(jitter, ctypes.c_uint64(arrival), payload, 4, ctypes.c_double(now)) == OK
            else:
                expected = python.pop(now)
                status = lib.thk_jitter_pop(jitter, ctypes.c_double(now), out, 4096, ctypes.byref(length))
                assert (bytes(out[:length.value]) if status == 1 else None) == expected
            counts = python.counts
            assert (view.counts.lost, view.counts.reordered, view.counts.late, view.counts.overflow,
                    view.counts.duplicates, view.next_number, view.held) == (
                counts.lost, counts.reordered, counts.late, counts.overflow, counts.duplicates, python.next_number,
                len(python))


def test_property_replay_window_alike(lib):
    from sdk.transport.crypto import ReplayWindow

    rng = np.random.default_rng(18)
    verdicts = {0: "new", -44: "duplicate", -45: "too_old"}
    for _ in range(50):
        python, native = ReplayWindow(), Window()
        lib.thk_replay_init(ctypes.byref(native))
        top = 0
        for _ in range(200):
            top += int(rng.choice([0, 1, 1, 2, 70, 300]))
            number = max(0, top - int(rng.integers(0, 300)))
            verdict = python.check(number)
            assert verdicts[lib.thk_replay_check(ctypes.byref(native), ctypes.c_uint64(number))] == verdict
            if verdict == "new" and rng.random() < 0.9:
                python.commit(number)
                lib.thk_replay_commit(ctypes.byref(native), ctypes.c_uint64(number))


def test_oversized_frame_packet_is_received_refused_and_said(lib):
    """An authentic FRAME whose packet is over a jitter slot: the Python receives and holds it (any size);
    the core counts it received, keeps its number in the replay window, refuses it in the jitter buffer
    (counted oversized) and says so: THK_E_OVERSIZED, not OK, since its frame will never be delivered."""
    from sdk.transport.jitter import JitterBuffer, JitterConfig

    key, session, slot = bytes(range(32)), 7, 2048
    receiver = ctypes.create_string_buffer(lib.thk_struct_size(5))
    view = FrameReceiver.from_buffer(receiver)
    assert lib.thk_frame_receiver_init(receiver, key, session, ctypes.c_double(0.06), 16) == OK
    out, written = (ctypes.c_uint8 * 4096)(), ctypes.c_size_t()

    def frame(number: int, packet: bytes) -> bytes:
        plaintext = bytes([0]) + packet  # no redundant copies
        assert lib.thk_datagram_seal(key, 5, session, number, None, plaintext, len(plaintext), out, 4096,
                                     ctypes.byref(written)) == OK
        return bytes(out[:written.value])

    big, fits = bytes(range(256)) * 8 + b"\x01", bytes(slot)
    datagram = frame(0, big)
    assert lib.thk_frame_receiver_handle(receiver, datagram, len(datagram), ctypes.c_double(0.0)) == -48  # oversized
    assert (view.stats.received, view.jitter.counts.oversized, view.jitter.held) == (1, 1, 0)
    assert lib.thk_frame_receiver_handle(receiver, datagram, len(datagram), ctypes.c_double(0.0)) == -44  # duplicate
    datagram = frame(1, fits)
    assert lib.thk_frame_receiver_handle(receiver, datagram, len(datagram), ctypes.c_double(0.0)) == OK
    assert lib.thk_frame_receiver_pop(receiver, ctypes.c_double(0.1), out, 4096, ctypes.byref(written)) == 1
    assert bytes(out[:written.value]) == fits  # frame 0 given up after the gap wait, as lost
    assert (view.stats.received, view.stats.duplicates, view.jitter.counts.lost) == (2, 1, 1)
    python = JitterBuffer(JitterConfig(0.06, 16))
    python.push(0, big, 0.0)
    assert python.pop(0.0) == big  # the documented difference: the Python holds any size


def test_bad_input_never_crashes_and_is_counted(lib):
    """Arbitrary bytes as headers, packets and datagrams: defined error codes, counters, no crash."""
    rng = np.random.default_rng(19)
    parsed = Header()
    for header_bytes in (StreamHeader("m", MODEL_SHA, 10, 128, 25.0).to_bytes(),
                         HybridStreamHeader("m", MODEL_SHA, PRIOR_SHA, 16, 5, 128, 25.0).to_bytes()):
        decoder = NativeDecoder(lib, header_bytes)
        for _ in range(2000):
            data = bytes(rng.integers(0, 256, int(rng.integers(0, 80)), dtype=np.uint8))
            assert lib.thk_header_parse(ctypes.byref(parsed), _buffer(data), len(data)) in (-10, -11, -12, -13, -14, -15)
            assert decoder.decode(data)[0] in (OK, MALFORMED, MISSING_REFERENCE, STALE)
        stats = decoder.stats
        assert stats["decoded"] + stats["malformed"] + stats["missing_reference"] + stats["stale"] == 2000
    receiver = ctypes.create_string_buffer(lib.thk_struct_size(5))
    assert lib.thk_frame_receiver_init(receiver, bytes(32), 7, ctypes.c_double(0.06), 16) == OK
    for _ in range(2000):
        data = bytes(rng.integers(0, 256, int(rng.integers(0, 120)), dtype=np.uint8))
        if rng.random() < 0.5 and len(data) > 9:
            data = bytes([5, 7, 0, 0, 0]) + data[5:]  # a FRAME of the session: fails authentication
        assert lib.thk_frame_receiver_handle(receiver, data, len(data), ctypes.c_double(0.0)) in (
            -41, -42, -43, -46)  # truncated, garbage, forged, other session
    assert lib.thk_frame_receiver_init(receiver, bytes(32), 7, ctypes.c_double(-1.0), 16) == -1  # argument
    assert lib.thk_frame_receiver_init(receiver, bytes(32), 7, ctypes.c_double(0.06), 65) == -1


# -- the line driver, natively and on arm64 under qemu ------------------------------------------------------

def vector_script(streams: int) -> tuple[str, list[str]]:
    """Commands for native/tests/vectors.c (the golden streams of the three kinds, then `streams` random
    ones with impaired packets) and the lines the Python SDK expects: packet hex per encode, the
    status per decode."""
    commands, expected = [], []

    def run_stream(header_bytes: bytes, frames: list[tuple[list[float], int, bool]]) -> None:
        header = read_stream_header(header_bytes)
        python_encoder, python_decoder = PYTHON_CODECS[type(header)]
        encoder, decoder = python_encoder(header), python_decoder(header)
        commands.append(f"H {header_bytes.hex()}")
        expected.append("0")
        packets = []
        for values, timestamp, force in frames:
            if force:
                encoder.force_keyframe()
                commands.append("F")
            # the driver reads float64 and gives the learned parts float32 of them: the Python gets the same
            values = np.asarray(values, np.float32 if isinstance(header, StreamHeader) else np.float64)
            packet = python_encode(encoder, header, values, timestamp)
            commands.append(f"E {timestamp} " + " ".join(repr(float(v)) for v in values))
            expected.append(packet.hex())
            packets.append(packet)
        for packet in impaired(rng, packets):
            commands.append(f"D {packet.hex()}")
            expected.append(str(python_decode(decoder, packet)[0]))

    rng = np.random.default_rng(20)
    for stream in json.loads(LEARNED_GOLDEN.read_text())["streams"]:
        run_stream(bytes.fromhex(stream["header"]),
                   [(np.concatenate([np.ravel(f["keypoints"]), np.ravel(f["jacobians"]) if stream["preset"] != "no-jacobians"
                                     else [], f["extra"]]).tolist(), f["timestamp_ms"], f["force_keyframe"])
                    for f in stream["frames"]])
    for stream in json.loads(SEMANTIC_GOLDEN.read_text())["streams"]:
        run_stream(bytes.fromhex(stream["header"]),
                   [(f["pose"] + f["expression"], f["timestamp_ms"], f["force_keyframe"]) for f in stream["frames"]])
    for stream in json.loads(HYBRID_GOLDEN.read_text())["streams"]:
        run_stream(bytes.fromhex(stream["header"]),
                   [(f["pose"] + f["expression"][:stream["expression_dims"]] + np.ravel(f["keypoints"]).tolist()
                     + (np.ravel(f["jacobians"]).tolist() if stream["jacobians"] else []), f["timestamp_ms"],
                     f["force_keyframe"]) for f in stream["frames"]])
    for _ in range(streams):
        header_bytes = random_header(rng)
        run_stream(header_bytes, [(v.tolist(), t, f) for v, t, f in
                                  random_inputs(rng, read_stream_header(header_bytes), int(rng.integers(1, 30)))])
    return "\n".join(commands) + "\n", expected


def _check_driver_output(output: str, expected: list[str]) -> None:
    lines = output.splitlines()
    assert len(lines) == len(expected)
    for line, want in zip(lines, expected):
        assert line.split()[0] == want if len(want) <= 3 else line == want


@pytest.fixture(scope="module")
def script() -> tuple[str, list[str]]:
    return vector_script(150)


def test_line_driver_matches_python(build, script):
    commands, expected = script
    result = subprocess.run([str(build / "vectors")], input=commands, capture_output=True, text=True, check=True)
    _check_driver_output(result.stdout, expected)


def test_arm64_under_qemu_matches(build, script, tmp_path):
    """The codec and motion built for arm64 (no libsodium there: the transport is x86-64 only here):
    its C tests, then the same commands give the same lines, byte for byte, as on x86-64."""
    cross, qemu = shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64")
    if cross is None or qemu is None:
        pytest.skip("no arm64 cross compiler or qemu-user (Debian: gcc-aarch64-linux-gnu, qemu-user)")
    subprocess.run(["make", "-s", "-C", str(NATIVE), f"BUILD={tmp_path}", f"CC={cross}", "codec"], check=True,
                   capture_output=True)
    run = [qemu, "-L", "/usr/aarch64-linux-gnu"]
    tests = subprocess.run(run + [str(tmp_path / "test_codec")], capture_output=True, text=True)
    assert tests.returncode == 0 and "0 failures" in tests.stdout, tests.stdout + tests.stderr
    commands, expected = script
    arm = subprocess.run(run + [str(tmp_path / "vectors")], input=commands, capture_output=True, text=True, check=True)
    x86 = subprocess.run([str(build / "vectors")], input=commands, capture_output=True, text=True, check=True)
    assert arm.stdout == x86.stdout
    _check_driver_output(arm.stdout, expected)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-golden"]:
        sys.exit("usage: python tests/test_native_core.py --write-golden")
    write_golden()

"""The sender's side of the code stream: one packet per frame (layout in docs/bitstream.md §4)."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .arithmetic import ArithmeticEncoder
from .errors import CodecError
from .header import StreamHeader
from .layout import CodedFrame, CodeLayout, QuantizedCode
from .varint import encode_varint

KEYFRAME_MARKER = 0x80
MAX_TIMESTAMP_RESIDUAL = 1 << 20  # a delta frame further off its nominal time becomes a keyframe


@dataclass
class EncoderStats:
    frames: int = 0
    keyframes: int = 0
    bytes: int = 0
    keyframe_bytes: int = 0
    clamped_values: int = 0  # values outside their range (e.g. a Jacobian entry beyond ±8), clamped


class CodeEncoder:
    """Quantizes, predicts and entropy-codes codes; numbers the frames itself (from 0)."""

    def __init__(self, header: StreamHeader):
        self.header = header
        self.layout = CodeLayout(header)
        self._stats = EncoderStats()  # frames / keyframes encoded: the next sequence number / keyframe id
        self._keyframe: CodedFrame | None = None
        self._previous: QuantizedCode | None = None
        self._force_keyframe = False

    @property
    def stats(self) -> EncoderStats:
        return replace(self._stats)

    def force_keyframe(self) -> None:
        """Make the next frame a keyframe (e.g. when a receiver joins or reports loss)."""
        self._force_keyframe = True

    def encode(self, keypoints: np.ndarray, jacobians: np.ndarray | None, timestamp_ms: int,
               extra: np.ndarray | None = None) -> bytes:
        """keypoints (K, 2) in [-1, 1] x first, jacobians (K, 2, 2) (ignored when the header has
        none), extra (D,) when the header reserves D > 0 dims -> one packet."""
        keypoints, jacobians, extra = self._check(keypoints, jacobians, timestamp_ms, extra)
        config = self.header.config
        stats = self._stats
        sequence = stats.frames
        key = self._keyframe
        distance = sequence - key.sequence if key is not None else 0
        residual = 0
        keyframe = key is None or self._force_keyframe or distance >= config.keyframe_interval
        if not keyframe:
            residual = timestamp_ms - self.layout.predicted_timestamp(key.timestamp_ms, distance)
            keyframe = abs(residual) > MAX_TIMESTAMP_RESIDUAL
        reference = None
        if not keyframe:
            reference = self._previous if config.reference == "previous" else key.code
        code, clamped = self.layout.quantize(keypoints, jacobians, extra, reference)
        coder = ArithmeticEncoder()
        if keyframe:
            key_id = stats.keyframes % 256
            prefix = bytes([KEYFRAME_MARKER, key_id]) + encode_varint(sequence) + encode_varint(timestamp_ms)
            self.layout.write(coder, code, None)
            self._keyframe = CodedFrame(key_id, sequence, timestamp_ms, code)
            self._force_keyframe = False
        else:
            assert key is not None
            prefix = bytes([distance, key.keyframe_id])
            self.layout.write_timestamp_residual(coder, residual)
            self.layout.write(coder, code, reference)
        packet = prefix + coder.finish()
        self._previous = code
        stats.frames += 1
        stats.bytes += len(packet)
        stats.clamped_values += clamped
        if keyframe:
            stats.keyframes += 1
            stats.keyframe_bytes += len(packet)
        return packet

    def _check(self, keypoints: np.ndarray, jacobians: np.ndarray | None, timestamp_ms: int,
               extra: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        k = self.header.num_kp
        keypoints = np.asarray(keypoints, dtype=np.float32)
        if keypoints.shape != (k, 2):
            raise CodecError(f"encode: keypoints must be ({k}, 2), got {keypoints.shape}")
        arrays = [keypoints]
        if self.header.config.jacobians:
            if jacobians is None:
                raise CodecError("encode: the stream carries Jacobians but none were given")
            jacobians = np.asarray(jacobians, dtype=np.float32)
            if jacobians.shape != (k, 2, 2):
                raise CodecError(f"encode: jacobians must be ({k}, 2, 2), got {jacobians.shape}")
            arrays.append(jacobians)
        else:
            jacobians = None
        if self.header.extra_dims:
            if extra is None:
                raise CodecError(f"encode: the stream reserves {self.header.extra_dims} extra dims; pass extra")
            extra = np.asarray(extra, dtype=np.float32)
            if extra.shape != (self.header.extra_dims,):
                raise CodecError(f"encode: extra must be ({self.header.extra_dims},), got {extra.shape}")
            arrays.append(extra)
        elif extra is not None:
            raise CodecError("encode: extra dims given but the stream header reserves none")
        if not all(np.isfinite(a).all() for a in arrays):
            raise CodecError("encode: code contains NaN or infinity")
        if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, (int, np.integer)) or not (
                0 <= timestamp_ms < 1 << 63):
            raise CodecError(f"encode: timestamp_ms must be an integer >= 0, got {timestamp_ms!r}")
        return keypoints, jacobians, extra

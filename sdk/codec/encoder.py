"""The sender's side of the code stream: one packet per frame (layout in docs/bitstream.md §4, §11, §13)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .arithmetic import ArithmeticEncoder
from .errors import CodecError
from .header import HybridStreamHeader, SemanticStreamHeader, StreamHeader, require_kind
from .hybrid_layout import HybridLayout, HybridQuantized
from .layout import CodedFrame, CodeLayout, QuantizedCode
from .semantic_layout import SemanticLayout, SemanticQuantized
from .varint import encode_varint

Quantized = QuantizedCode | SemanticQuantized | HybridQuantized
KEYFRAME_MARKER = 0x80
MAX_TIMESTAMP_RESIDUAL = 1 << 20  # a delta frame further off its nominal time becomes a keyframe


@dataclass
class EncoderStats:
    frames: int = 0
    keyframes: int = 0
    bytes: int = 0
    keyframe_bytes: int = 0
    clamped_values: int = 0  # values outside their range (e.g. a Jacobian entry beyond ±8), clamped


class _PacketEncoder:
    """The packet framing every stream kind shares (docs/bitstream.md §4): keyframe choice,
    numbering, timestamps, references; the kind's layout quantizes and codes the payload."""

    def __init__(self, header: StreamHeader | SemanticStreamHeader | HybridStreamHeader,
                 layout: CodeLayout | SemanticLayout | HybridLayout):
        self.header = header
        self.layout = layout
        self._stats = EncoderStats()  # frames / keyframes encoded: the next sequence number / keyframe id
        self._keyframe: CodedFrame | None = None
        self._previous: Quantized | None = None
        self._force_keyframe = False

    @property
    def stats(self) -> EncoderStats:
        return replace(self._stats)

    def force_keyframe(self) -> None:
        """Make the next frame a keyframe (e.g. when a receiver joins or reports loss)."""
        self._force_keyframe = True

    def _encode(self, quantize: Callable[[Quantized | None], tuple[Quantized, int]], timestamp_ms: int) -> bytes:
        """One packet of the frame that `quantize(reference)` gives the integer code of."""
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
        code, clamped = quantize(reference)
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


class CodeEncoder(_PacketEncoder):
    """Quantizes, predicts and entropy-codes codes; numbers the frames itself (from 0)."""

    def __init__(self, header: StreamHeader):
        require_kind(header, StreamHeader, _ENCODERS)
        super().__init__(header, CodeLayout(header))

    def encode(self, keypoints: np.ndarray, jacobians: np.ndarray | None, timestamp_ms: int,
               extra: np.ndarray | None = None) -> bytes:
        """keypoints (K, 2) in [-1, 1] x first, jacobians (K, 2, 2) (ignored when the header has
        none), extra (D,) when the header reserves D > 0 dims -> one packet."""
        keypoints, jacobians, extra = self._check(keypoints, jacobians, timestamp_ms, extra)
        return self._encode(lambda reference: self.layout.quantize(keypoints, jacobians, extra, reference),
                            timestamp_ms)

    def _check(self, keypoints: np.ndarray, jacobians: np.ndarray | None, timestamp_ms: int,
               extra: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        keypoints, jacobians = _keypoint_arrays(self.header, keypoints, jacobians)
        arrays = [keypoints] + ([] if jacobians is None else [jacobians])
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
        _check_timestamp(timestamp_ms)
        return keypoints, jacobians, extra


class SemanticCodeEncoder(_PacketEncoder):
    """The sender's side of a semantic-code stream: `encode(pose, expression, timestamp_ms)`
    per frame (e.g. the `sdk.prior.SemanticEncoder` code of the frame's mesh)."""

    def __init__(self, header: SemanticStreamHeader):
        require_kind(header, SemanticStreamHeader, _ENCODERS)
        super().__init__(header, SemanticLayout(header))

    def encode(self, pose: np.ndarray, expression: np.ndarray, timestamp_ms: int) -> bytes:
        """pose (6,) yaw, pitch, roll (degrees), tx, ty, log_scale; expression (E',) with E' >= the
        header's E (its first E coefficients are sent: the basis is ordered) -> one packet."""
        pose, expression = _semantic_arrays(self.header.expression_dims, pose, expression)
        _check_timestamp(timestamp_ms)
        return self._encode(lambda reference: self.layout.quantize(pose, expression, reference), timestamp_ms)


class HybridCodeEncoder(_PacketEncoder):
    """The sender's side of a hybrid stream: `encode(pose, expression, keypoints, jacobians,
    timestamp_ms)` per frame (a hybrid model's `sdk.pipeline.HybridCode`)."""

    def __init__(self, header: HybridStreamHeader):
        require_kind(header, HybridStreamHeader, _ENCODERS)
        super().__init__(header, HybridLayout(header))

    def encode(self, pose: np.ndarray, expression: np.ndarray, keypoints: np.ndarray, jacobians: np.ndarray | None,
               timestamp_ms: int) -> bytes:
        """pose (6,) and expression (E',) as `SemanticCodeEncoder.encode`; keypoints (K, 2) in
        [-1, 1] x first and jacobians (K, 2, 2) (ignored when the header has none) as
        `CodeEncoder.encode` -> one packet."""
        pose, expression = _semantic_arrays(self.header.expression_dims, pose, expression)
        keypoints, jacobians = _keypoint_arrays(self.header, keypoints, jacobians)
        if not (np.isfinite(keypoints).all() and (jacobians is None or np.isfinite(jacobians).all())):
            raise CodecError("encode: code contains NaN or infinity")
        _check_timestamp(timestamp_ms)
        return self._encode(lambda reference: self.layout.quantize(pose, expression, keypoints, jacobians, reference),
                            timestamp_ms)


_ENCODERS = {StreamHeader: "CodeEncoder", SemanticStreamHeader: "SemanticCodeEncoder",
             HybridStreamHeader: "HybridCodeEncoder"}


def _semantic_arrays(dims: int, pose: np.ndarray, expression: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pose (6,) and the first `dims` of expression (E',) as float64, checked (finite too)."""
    pose = np.asarray(pose, dtype=np.float64)
    expression = np.asarray(expression, dtype=np.float64)
    if pose.shape != (6,):
        raise CodecError(f"encode: pose must be (6,) (yaw, pitch, roll, tx, ty, log_scale), got {pose.shape}")
    if expression.ndim != 1 or len(expression) < dims:
        raise CodecError(f"encode: expression must be (E',) with E' >= {dims} (the coefficients the stream "
                         f"sends), got {expression.shape}")
    expression = expression[:dims]
    if not (np.isfinite(pose).all() and np.isfinite(expression).all()):
        raise CodecError("encode: code contains NaN or infinity")
    return pose, expression


def _keypoint_arrays(header: StreamHeader | HybridStreamHeader, keypoints: np.ndarray, jacobians: np.ndarray | None
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """keypoints (K, 2) and, when the stream carries them, jacobians (K, 2, 2) as float32, shapes checked."""
    k = header.num_kp
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if keypoints.shape != (k, 2):
        raise CodecError(f"encode: keypoints must be ({k}, 2), got {keypoints.shape}")
    if not header.config.jacobians:
        return keypoints, None
    if jacobians is None:
        raise CodecError("encode: the stream carries Jacobians but none were given")
    jacobians = np.asarray(jacobians, dtype=np.float32)
    if jacobians.shape != (k, 2, 2):
        raise CodecError(f"encode: jacobians must be ({k}, 2, 2), got {jacobians.shape}")
    return keypoints, jacobians


def _check_timestamp(timestamp_ms: int) -> None:
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, (int, np.integer)) or not (
            0 <= timestamp_ms < 1 << 63):
        raise CodecError(f"encode: timestamp_ms must be an integer >= 0, got {timestamp_ms!r}")

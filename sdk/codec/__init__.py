"""The compact code stream: a stream header once, then one small packet per frame.

- `CodecConfig` (the bitrate knob; `CodecConfig.preset(name)`), `StreamHeader` (to_bytes /
  from_bytes), `FrameCode` (one decoded frame), `CodeEncoder(header).encode(...) -> bytes`,
  `CodeDecoder(header).decode(packet) -> FrameCode`, `CodecError` (subclasses
  `MissingReferenceError` after a lost packet, `StalePacketError` for duplicates).
- Works on numpy: keypoints (K, 2) float32 in [-1, 1] x first, Jacobians (K, 2, 2).
- The semantic-code kind (version 2): head pose + expression coefficients of `sdk.prior`.
  `SemanticCodecConfig` (`.preset(name)`: steps, prediction and E, the coefficients sent; the
  default sends 16 of 32 at <= 1.2 kbit/s), `SemanticStreamHeader` (`.for_prior(prior, ...)`),
  `SemanticCodeEncoder(header).encode(pose, expression, timestamp_ms) -> bytes`,
  `SemanticCodeDecoder(header, prior).decode(packet) -> SemanticFrameCode` (a receiver holding
  another prior gets `PriorMismatchError`).
- The hybrid kind (version 2 kind 2): the semantic code plus a hybrid model's K learned keypoints
  [+ Jacobians]. `HybridCodecConfig` (`.preset(name)`: the semantic presets' names),
  `HybridStreamHeader` (`.for_prior(prior, ..., num_kp, ...)`),
  `HybridCodeEncoder(header).encode(pose, expression, keypoints, jacobians, timestamp_ms)`,
  `HybridCodeDecoder(header, prior).decode(packet) -> HybridFrameCode`.
`read_stream_header(data)` parses any kind.
The byte-exact format is docs/bitstream.md.
"""
from __future__ import annotations

from .config import HYBRID_PRESETS, PRESETS, SEMANTIC_PRESETS, CodecConfig, HybridCodecConfig, SemanticCodecConfig
from .decoder import CodeDecoder, DecoderStats, HybridCodeDecoder, SemanticCodeDecoder
from .encoder import CodeEncoder, EncoderStats, HybridCodeEncoder, SemanticCodeEncoder
from .errors import CodecError, MissingReferenceError, PriorMismatchError, StalePacketError
from .frame import FrameCode, HybridFrameCode, SemanticFrameCode
from .header import HybridStreamHeader, SemanticStreamHeader, StreamHeader, read_stream_header

__all__ = ["HYBRID_PRESETS", "PRESETS", "SEMANTIC_PRESETS", "CodeDecoder", "CodeEncoder", "CodecConfig", "CodecError",
           "DecoderStats", "EncoderStats", "FrameCode", "HybridCodeDecoder", "HybridCodeEncoder", "HybridCodecConfig",
           "HybridFrameCode", "HybridStreamHeader", "MissingReferenceError", "PriorMismatchError",
           "SemanticCodeDecoder", "SemanticCodeEncoder", "SemanticCodecConfig", "SemanticFrameCode",
           "SemanticStreamHeader", "StalePacketError", "StreamHeader", "read_stream_header"]

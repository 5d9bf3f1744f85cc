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
  another prior gets `PriorMismatchError`). `read_stream_header(data)` parses either kind.
The byte-exact format is docs/bitstream.md.
"""
from __future__ import annotations

from .config import PRESETS, SEMANTIC_PRESETS, CodecConfig, SemanticCodecConfig
from .decoder import CodeDecoder, DecoderStats, SemanticCodeDecoder
from .encoder import CodeEncoder, EncoderStats, SemanticCodeEncoder
from .errors import CodecError, MissingReferenceError, PriorMismatchError, StalePacketError
from .frame import FrameCode, SemanticFrameCode
from .header import SemanticStreamHeader, StreamHeader, read_stream_header

__all__ = ["PRESETS", "SEMANTIC_PRESETS", "CodeDecoder", "CodeEncoder", "CodecConfig", "CodecError", "DecoderStats",
           "EncoderStats", "FrameCode", "MissingReferenceError", "PriorMismatchError", "SemanticCodeDecoder",
           "SemanticCodeEncoder", "SemanticCodecConfig", "SemanticFrameCode", "SemanticStreamHeader",
           "StalePacketError", "StreamHeader", "read_stream_header"]

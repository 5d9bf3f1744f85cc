"""The compact code stream: a stream header once, then one small packet per frame.

- `CodecConfig` (the bitrate knob; `CodecConfig.preset(name)`), `StreamHeader` (to_bytes /
  from_bytes), `FrameCode` (one decoded frame), `CodeEncoder(header).encode(...) -> bytes`,
  `CodeDecoder(header).decode(packet) -> FrameCode`, `CodecError` (subclasses
  `MissingReferenceError` after a lost packet, `StalePacketError` for duplicates).
- Works on numpy: keypoints (K, 2) float32 in [-1, 1] x first, Jacobians (K, 2, 2).
The byte-exact format is docs/bitstream.md.
"""
from __future__ import annotations

from .config import PRESETS, CodecConfig
from .decoder import CodeDecoder, DecoderStats
from .encoder import CodeEncoder, EncoderStats
from .errors import CodecError, MissingReferenceError, StalePacketError
from .frame import FrameCode
from .header import StreamHeader

__all__ = ["PRESETS", "CodeDecoder", "CodeEncoder", "CodecConfig", "CodecError", "DecoderStats", "EncoderStats",
           "FrameCode", "MissingReferenceError", "StalePacketError", "StreamHeader"]

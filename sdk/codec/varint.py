"""Unsigned LEB128 varints (7 bits per byte, least significant group first, high bit = more)."""
from __future__ import annotations

from .errors import CodecError

MAX_BYTES = 9  # values below 2^63


def encode_varint(value: int) -> bytes:
    if not 0 <= value < 1 << 63:
        raise CodecError(f"varint value {value} outside 0 .. 2^63-1")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes, offset: int) -> tuple[int, int]:
    """(value, offset after it); raises CodecError when truncated or longer than 9 bytes."""
    value = 0
    for index in range(MAX_BYTES):
        if offset + index >= len(data):
            raise CodecError("truncated varint")
        byte = data[offset + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, offset + index + 1
    raise CodecError("varint longer than 9 bytes")

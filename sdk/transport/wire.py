"""Datagram layout (docs/transport.md is the normative text).

Every datagram starts with a 9-byte clear prefix, which is also the AEAD associated data:

    0  1  type (HELLO 1, CHALLENGE 2, START 3, START_ACK 4, FRAME 5, BYE 6)
    1  4  session id (random, chosen by the sender)
    5  4  packet number (u32 LE; one counter per type and direction, from 0)
    HELLO and CHALLENGE add a 16-byte random salt to the prefix. The rest is ChaCha20-Poly1305
    ciphertext with its 16-byte tag.

The session start (stream header + optional portrait) is one blob split into START chunks:
    blob  = header length (u32) | header | has portrait (u8 0/1) | portrait bytes
    chunk = chunk index (u16) | chunk count (u16) | blob length (u32) | bytes
    ack   = chunk count (u16) | bitmap of received chunks (bit i of byte i // 8 = chunk i)

A FRAME's plaintext carries copies of the R packets sent before it (redundancy, so one lost
datagram costs no frame):
    frame = R (u8, 0..3) | R × (length (u16) | packet of frame number-1-i) | this frame's packet
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

HELLO, CHALLENGE, START, START_ACK, FRAME, BYE = 1, 2, 3, 4, 5, 6
PACKET_TYPES = (HELLO, CHALLENGE, START, START_ACK, FRAME, BYE)
PROTOCOL_VERSION = 1

PREFIX = struct.Struct("<BII")
SALT_BYTES = 16
CHUNK_HEADER = struct.Struct("<HHI")
CHUNK_BYTES = 1024          # data per START chunk: one chunk stays under the 1280-byte IPv6 minimum MTU
MAX_BLOB_BYTES = 8 << 20    # session start (header + portrait) at most 8 MiB
MAX_NUMBER = 0xFFFFFFFF
MAX_REDUNDANCY = 3
MAX_FRAME_BYTES = 0xFFFF  # a frame packet's length must fit the u16 of its redundant copies


@dataclass(frozen=True)
class Datagram:
    """A parsed, not yet authenticated datagram."""
    type: int
    session_id: int
    number: int
    salt: bytes       # HELLO/CHALLENGE only, else b""
    aad: bytes        # the clear prefix
    sealed: bytes     # ciphertext + tag


def prefix(packet_type: int, session_id: int, number: int, salt: bytes = b"") -> bytes:
    return PREFIX.pack(packet_type, session_id, number) + salt


def parse(data: bytes) -> Datagram | None:
    """Split a datagram into its parts; None when it is too short or of an unknown type."""
    if len(data) < PREFIX.size:
        return None
    packet_type, session_id, number = PREFIX.unpack_from(data)
    if packet_type not in PACKET_TYPES:
        return None
    clear = PREFIX.size + (SALT_BYTES if packet_type in (HELLO, CHALLENGE) else 0)
    if len(data) < clear:
        return None
    return Datagram(packet_type, session_id, number, bytes(data[PREFIX.size:clear]), bytes(data[:clear]),
                    bytes(data[clear:]))


def pack_start_blob(header: bytes, portrait: bytes | None) -> bytes:
    return struct.pack("<I", len(header)) + header + (b"\x00" if portrait is None else b"\x01" + portrait)


def unpack_start_blob(blob: bytes) -> tuple[bytes, bytes | None] | None:
    if len(blob) < 5:
        return None
    (header_length,) = struct.unpack_from("<I", blob)
    if 4 + header_length + 1 > len(blob):
        return None
    header = blob[4:4 + header_length]
    flag = blob[4 + header_length]
    rest = blob[5 + header_length:]
    if flag == 0 and not rest:
        return header, None
    if flag == 1:
        return header, rest
    return None


def split_chunks(blob: bytes) -> list[bytes]:
    count = max(1, -(-len(blob) // CHUNK_BYTES))
    return [CHUNK_HEADER.pack(index, count, len(blob)) + blob[index * CHUNK_BYTES:(index + 1) * CHUNK_BYTES]
            for index in range(count)]


def parse_chunk(plaintext: bytes) -> tuple[int, int, int, bytes] | None:
    """(index, count, blob length, data) of a well-formed chunk, else None."""
    if len(plaintext) < CHUNK_HEADER.size:
        return None
    index, count, length = CHUNK_HEADER.unpack_from(plaintext)
    data = plaintext[CHUNK_HEADER.size:]
    if not (index < count and length <= MAX_BLOB_BYTES and count == max(1, -(-length // CHUNK_BYTES))):
        return None
    expected = min(CHUNK_BYTES, length - index * CHUNK_BYTES)
    return (index, count, length, data) if len(data) == expected else None


def pack_ack(count: int, received: set[int]) -> bytes:
    bitmap = bytearray(-(-count // 8))
    for index in received:
        bitmap[index // 8] |= 1 << (index % 8)
    return struct.pack("<H", count) + bytes(bitmap)


def parse_ack(plaintext: bytes) -> tuple[int, set[int]] | None:
    if len(plaintext) < 2:
        return None
    (count,) = struct.unpack_from("<H", plaintext)
    bitmap = plaintext[2:]
    if len(bitmap) != -(-count // 8):
        return None
    return count, {i for i in range(count) if bitmap[i // 8] >> (i % 8) & 1}


def pack_frame(packet: bytes, earlier: list[bytes]) -> bytes:
    """`earlier`: packets of the previous frames, most recent first."""
    parts = [bytes([len(earlier)])]
    for copy in earlier:
        parts += [struct.pack("<H", len(copy)), copy]
    return b"".join(parts + [packet])


def parse_frame(plaintext: bytes) -> tuple[bytes, list[bytes]] | None:
    """(this frame's packet, earlier packets most recent first), or None when inconsistent."""
    if not plaintext or plaintext[0] > MAX_REDUNDANCY:
        return None
    offset, earlier = 1, []
    for _ in range(plaintext[0]):
        if offset + 2 > len(plaintext):
            return None
        (length,) = struct.unpack_from("<H", plaintext, offset)
        if offset + 2 + length > len(plaintext):
            return None
        earlier.append(plaintext[offset + 2:offset + 2 + length])
        offset += 2 + length
    return plaintext[offset:], earlier

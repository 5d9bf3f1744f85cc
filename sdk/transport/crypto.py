"""Per-session keys, sealing and opening datagrams, and the replay window.

Keys: HKDF-SHA256 over the pre-shared secret. The HELLO key uses the sender's random salt; the
two session keys (sender->receiver, receiver->sender) use both ends' random salts, so a session
can only be completed by a receiver that answered this very HELLO: recorded packets of an old
session never authenticate again.
Nonces: 12 bytes = packet type (1) | three zero bytes | packet number (u64 LE). Each key is used
by one direction of one session, and every (type, number) pair is sent at most once, so a nonce
never repeats under a key.
"""
from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .keys import SessionKey

TAG_BYTES = 16
_LABEL = b"talking-head-sdk transport v1 "


def _derive(key: SessionKey, salt: bytes, purpose: bytes) -> ChaCha20Poly1305:
    material = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_LABEL + purpose).derive(key.secret)
    return ChaCha20Poly1305(material)


def hello_cipher(key: SessionKey, sender_salt: bytes) -> ChaCha20Poly1305:
    return _derive(key, sender_salt, b"hello")


def session_ciphers(key: SessionKey, sender_salt: bytes, receiver_salt: bytes
                    ) -> tuple[ChaCha20Poly1305, ChaCha20Poly1305]:
    """(sender->receiver, receiver->sender) ciphers of one session."""
    salt = sender_salt + receiver_salt
    return _derive(key, salt, b"sender to receiver"), _derive(key, salt, b"receiver to sender")


def nonce(packet_type: int, number: int) -> bytes:
    return struct.pack("<B3xQ", packet_type, number)


def seal(cipher: ChaCha20Poly1305, packet_type: int, number: int, plaintext: bytes, aad: bytes) -> bytes:
    return cipher.encrypt(nonce(packet_type, number), plaintext, aad)


def open_sealed(cipher: ChaCha20Poly1305, packet_type: int, number: int, sealed: bytes, aad: bytes) -> bytes | None:
    """The plaintext, or None when the tag does not verify (forged, corrupted, other key)."""
    if len(sealed) < TAG_BYTES:
        return None
    try:
        return cipher.decrypt(nonce(packet_type, number), sealed, aad)
    except InvalidTag:
        return None


class ReplayWindow:
    """Accepts each packet number once, within a sliding window of the newest `size` numbers.

    check-then-commit: `check` says whether a number is new, `commit` records it; only packets
    that authenticated are committed, so forged packets cannot move the window.
    """

    def __init__(self, size: int = 256):
        self.size = size
        self.highest = -1
        self.seen = 0  # bit i set: number (highest - i) was accepted

    def check(self, number: int) -> str:
        """"new", "duplicate" (seen inside the window) or "too_old" (below the window)."""
        if number > self.highest:
            return "new"
        offset = self.highest - number
        if offset >= self.size:
            return "too_old"
        return "duplicate" if self.seen >> offset & 1 else "new"

    def commit(self, number: int) -> None:
        if number > self.highest:
            shift = number - self.highest
            self.seen = ((self.seen << shift) | 1) & ((1 << self.size) - 1) if shift < self.size else 1
            self.highest = number
        else:
            self.seen |= 1 << (self.highest - number)

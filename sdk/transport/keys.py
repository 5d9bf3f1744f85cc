"""The pre-shared secret both ends hold; per-session keys are derived from it (see `crypto`)."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .errors import TransportError

KEY_BYTES = 32


@dataclass(frozen=True, repr=False)
class SessionKey:
    """A 32-byte pre-shared secret. Its repr never shows the bytes."""

    secret: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes):
            raise TransportError(f"a session key is {KEY_BYTES} bytes, got {type(self.secret).__name__}")
        if len(self.secret) != KEY_BYTES:
            raise TransportError(f"a session key is {KEY_BYTES} bytes, got {len(self.secret)}")

    @classmethod
    def generate(cls) -> SessionKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_hex(cls, text: str) -> SessionKey:
        try:
            secret = bytes.fromhex(text.strip())
        except ValueError:
            raise TransportError("session key: not a hex string") from None
        if len(secret) != KEY_BYTES:
            raise TransportError(f"session key: {len(secret)} bytes of hex, expected {KEY_BYTES} "
                                 f"({2 * KEY_BYTES} hex digits)")
        return cls(secret)

    def hex(self) -> str:
        return self.secret.hex()

    def save(self, path: str | Path) -> Path:
        """Write the key as hex to a new file readable by its owner only."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(self.hex() + "\n")
        return path

    def __repr__(self) -> str:
        return "SessionKey(<secret>)"


def load_session_key(path: str | Path) -> SessionKey:
    """Read a key file holding 64 hex digits (as written by `SessionKey.save`)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise TransportError(f"{path}: cannot read the session key file ({exc})") from None
    try:
        return SessionKey.from_hex(text)
    except TransportError as exc:
        raise TransportError(f"{path}: {exc}") from None

"""Errors of the transport: only misuse and timeouts raise; bad packets are dropped and counted."""
from __future__ import annotations

from ..errors import SdkError


class TransportError(SdkError):
    """A key file, address or argument that the transport cannot use."""


class SessionTimeoutError(TransportError):
    """No session started (or was acknowledged) within the time the caller allowed."""

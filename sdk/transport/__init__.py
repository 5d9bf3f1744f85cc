"""Transport of the code stream: authenticated, encrypted datagrams with a reliable session start.

- `SessionKey` / `load_session_key`: the 32-byte pre-shared secret; each session derives its own keys.
- `PacketSender.start_session(header, portrait)` delivers the stream header (and the portrait)
  reliably; `send(packet)` sends one codec packet per frame, unreliably.
- `PacketReceiver.wait_session(timeout_s)` returns the `SessionStart`; `receive(timeout_s)` returns
  the next frame packet in order from a small jitter buffer, or None when nothing is due.
- `inproc_pair(key)` (in-process, optional simulated `Impairment`), `UdpSender` / `UdpReceiver`.
Wire format, handshake and counters: docs/transport.md.
"""
from __future__ import annotations

from .endpoints import PacketReceiver, PacketSender, ReceiverStats, SenderStats, SessionStart
from .errors import SessionTimeoutError, TransportError
from .jitter import JitterConfig
from .keys import SessionKey, load_session_key
from .links import Impairment, inproc_links
from .udp import UdpReceiver, UdpSender


def inproc_pair(key: SessionKey, impairment: Impairment = Impairment(), jitter: JitterConfig = JitterConfig(),
                retransmit_s: float = 0.05, start_timeout_s: float = 10.0, redundancy: int = 2
                ) -> tuple[PacketSender, PacketReceiver]:
    """A connected (sender, receiver) in one process; each end may live in its own thread."""
    sender_link, receiver_link = inproc_links(impairment)
    return (PacketSender(sender_link, key, retransmit_s, start_timeout_s, redundancy),
            PacketReceiver(receiver_link, key, jitter))


__all__ = ["Impairment", "JitterConfig", "PacketReceiver", "PacketSender", "ReceiverStats", "SenderStats",
           "SessionKey", "SessionStart", "SessionTimeoutError", "TransportError", "UdpReceiver", "UdpSender",
           "inproc_pair", "load_session_key"]

"""UDP ends: the receiver listens on an address, the sender connects to it."""
from __future__ import annotations

from .endpoints import PacketReceiver, PacketSender
from .jitter import JitterConfig
from .keys import SessionKey
from .links import UdpLink


class UdpSender(PacketSender):
    """A `PacketSender` over a UDP socket connected to `address` (host, port)."""

    def __init__(self, address: tuple[str, int], key: SessionKey, retransmit_s: float = 0.1,
                 start_timeout_s: float = 10.0, redundancy: int = 2):
        super().__init__(UdpLink(address, listen=False), key, retransmit_s, start_timeout_s, redundancy)


class UdpReceiver(PacketReceiver):
    """A `PacketReceiver` listening on `address` (host, port; port 0 picks a free one, see `.address`)."""

    def __init__(self, address: tuple[str, int], key: SessionKey, jitter: JitterConfig = JitterConfig()):
        super().__init__(UdpLink(address, listen=True), key, jitter)

    @property
    def address(self) -> tuple[str, int]:
        return self.link.address

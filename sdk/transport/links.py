"""Datagram links under the endpoints: in-process (with simulated impairments) and UDP.

A link moves whole datagrams, may lose, delay, duplicate or reorder them, and never raises for
what the network does. `recv` returns (datagram, peer) or None after `timeout_s`; `send(data,
peer)` sends to `peer` (the address a datagram came from) or to the link's default peer.
"""
from __future__ import annotations

import heapq
import itertools
import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import TransportError

MAX_DATAGRAM = 65535


class DatagramLink(Protocol):
    def send(self, data: bytes, peer: Any = None) -> None: ...
    def recv(self, timeout_s: float) -> tuple[bytes, Any] | None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Impairment:
    """What the simulated network does to each datagram (independently, from a seeded RNG).

    delay_s ± jitter_s: uniform one-way delay; jitter larger than the frame interval reorders.
    """

    loss: float = 0.0
    duplicate: float = 0.0
    delay_s: float = 0.0
    jitter_s: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.loss <= 1 and 0 <= self.duplicate <= 1 and 0 <= self.jitter_s <= self.delay_s):
            raise ValueError(f"Impairment: need 0 <= loss, duplicate <= 1 and 0 <= jitter_s <= delay_s, got {self}")


class InprocPipe:
    """One direction of an in-process link: a time-ordered queue of datagrams."""

    def __init__(self, impairment: Impairment = Impairment()):
        self.impairment = impairment
        self._random = random.Random(impairment.seed)
        self._queue: list[tuple[float, int, bytes]] = []
        self._order = itertools.count()
        self._ready = threading.Condition()
        self.closed = False

    def put(self, data: bytes) -> None:
        """Send through the impairments."""
        imp = self.impairment
        if self._random.random() < imp.loss:
            return
        copies = 2 if self._random.random() < imp.duplicate else 1
        for _ in range(copies):
            delay = imp.delay_s + self._random.uniform(-imp.jitter_s, imp.jitter_s)
            self.inject(bytes(data), delay)

    def inject(self, data: bytes, delay_s: float = 0.0) -> None:
        """Deliver `data` as is (tests use it for forged or replayed datagrams)."""
        with self._ready:
            heapq.heappush(self._queue, (time.monotonic() + delay_s, next(self._order), data))
            self._ready.notify_all()

    def get(self, timeout_s: float) -> bytes | None:
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._ready:
            while True:
                now = time.monotonic()
                if self._queue and self._queue[0][0] <= now:
                    return heapq.heappop(self._queue)[2]
                if now >= deadline or self.closed:
                    return None
                wake = deadline if not self._queue else min(deadline, self._queue[0][0])
                self._ready.wait(wake - now)

    def close(self) -> None:
        with self._ready:
            self.closed = True
            self._ready.notify_all()


class InprocLink:
    """One end of an in-process link: sends into `outbound`, receives from `inbound`."""

    def __init__(self, outbound: InprocPipe, inbound: InprocPipe):
        self.outbound = outbound
        self.inbound = inbound

    def send(self, data: bytes, peer: Any = None) -> None:
        if not self.outbound.closed:
            self.outbound.put(data)

    def recv(self, timeout_s: float) -> tuple[bytes, Any] | None:
        data = self.inbound.get(timeout_s)
        return None if data is None else (data, None)

    def close(self) -> None:
        self.inbound.close()


def inproc_links(impairment: Impairment = Impairment()) -> tuple[InprocLink, InprocLink]:
    """(sender end, receiver end); both directions get the same impairments (acks are lost too)."""
    forward = InprocPipe(impairment)
    backward = InprocPipe(Impairment(impairment.loss, impairment.duplicate, impairment.delay_s,
                                     impairment.jitter_s, impairment.seed + 1))
    return InprocLink(forward, backward), InprocLink(backward, forward)


def _resolve(address: tuple[str, int]) -> tuple[Any, ...]:
    try:
        host, port = address
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_DGRAM)
    except (ValueError, TypeError, OSError) as exc:
        raise TransportError(f"UDP address {address!r}: cannot resolve ({exc})") from None
    return infos[0]


class UdpLink:
    """A UDP socket: bound (`listen=True`, the receiver) or connected to one peer (the sender)."""

    def __init__(self, address: tuple[str, int], listen: bool):
        family, kind, proto, _, resolved = _resolve(address)
        self.socket = socket.socket(family, kind, proto)
        self.default_peer = None if listen else resolved
        try:
            if listen:
                self.socket.bind(resolved)
            else:
                self.socket.connect(resolved)
        except OSError as exc:
            self.socket.close()
            raise TransportError(f"UDP {'listen on' if listen else 'connect to'} {address!r}: {exc}") from None

    @property
    def address(self) -> tuple[str, int]:
        """The local address (useful after binding port 0)."""
        return self.socket.getsockname()[:2]

    def send(self, data: bytes, peer: Any = None) -> None:
        try:
            if peer is None and self.default_peer is not None:
                self.socket.send(data)
            elif peer is not None:
                self.socket.sendto(data, peer)
        except OSError:
            pass  # ICMP port unreachable, full buffers, no route: a lost datagram, as UDP allows

    def recv(self, timeout_s: float) -> tuple[bytes, Any] | None:
        self.socket.settimeout(max(timeout_s, 0.0))
        try:
            return self.socket.recvfrom(MAX_DATAGRAM)
        except (socket.timeout, BlockingIOError):
            return None
        except OSError:
            # e.g. ECONNREFUSED from an earlier send to a port nobody listens on yet; wait a
            # little so a caller polling until its deadline does not spin
            time.sleep(min(max(timeout_s, 0.0), 0.01))
            return None

    def close(self) -> None:
        self.socket.close()

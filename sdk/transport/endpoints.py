"""The two ends of a session over any datagram link.

Sender:   HELLO (until CHALLENGE) -> START chunks (until all acknowledged) -> FRAME ... -> BYE
Receiver: answers HELLO with CHALLENGE, acknowledges START chunks, puts FRAMEs through the
          replay window and the jitter buffer.
Whatever arrives that does not authenticate or does not fit is dropped and counted in `stats`;
only misuse (wrong argument types, sending before a session) and timeouts raise.
Both ends work when called (no background thread): the receiver handles datagrams inside
`wait_session` and `receive`, the sender inside `start_session` and `send`.
"""
from __future__ import annotations

import collections
import secrets
import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from . import wire
from .crypto import TAG_BYTES, ReplayWindow, hello_cipher, open_sealed, seal, session_ciphers
from .errors import SessionTimeoutError, TransportError
from .jitter import JitterBuffer, JitterConfig, JitterCounts
from .keys import SessionKey
from .links import DatagramLink

MAX_PENDING_HANDSHAKES = 8
RECOVERED_MEMORY = 64  # frame numbers remembered as recovered, so a late original is not counted twice


def _sealed(cipher: ChaCha20Poly1305, packet_type: int, session_id: int, number: int, plaintext: bytes,
            salt: bytes = b"") -> bytes:
    """A whole datagram: the clear prefix (also the AEAD's associated data), then ciphertext and tag."""
    aad = wire.prefix(packet_type, session_id, number, salt)
    return aad + seal(cipher, packet_type, number, plaintext, aad)


def _opened(cipher: ChaCha20Poly1305, datagram: wire.Datagram) -> bytes | None:
    """The datagram's plaintext, or None when it does not authenticate under `cipher`."""
    return open_sealed(cipher, datagram.type, datagram.number, datagram.sealed, datagram.aad)


@dataclass(frozen=True)
class SessionStart:
    """What the sender delivered reliably before the first frame."""
    header: bytes
    portrait: bytes | None


@dataclass
class SenderStats:
    frames_sent: int = 0
    frame_bytes: int = 0        # codec packet bytes handed to `send`
    wire_bytes: int = 0         # every datagram sent, with prefix, tag and retransmissions
    hellos_sent: int = 0
    start_chunks_sent: int = 0  # first transmissions and retransmissions
    start_retransmits: int = 0
    sessions_started: int = 0
    dropped: int = 0            # inbound datagrams that did not authenticate or did not fit

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class ReceiverStats:
    received: int = 0           # authentic frame datagrams accepted
    recovered: int = 0          # frames whose own datagram was lost, taken from a later one's copy
    delivered: int = 0          # frame packets returned by `receive`
    lost: int = 0               # frame numbers skipped because they did not arrive in time
    reordered: int = 0
    late: int = 0
    overflow: int = 0
    duplicates: int = 0         # replayed or network-duplicated packets (already seen)
    too_old: int = 0            # packet numbers below the replay window
    forged: int = 0             # failed authentication: forged, corrupted, another key or session keys
    truncated: int = 0          # shorter than the clear prefix plus the tag
    garbage: int = 0            # unknown packet type or a type this end never receives
    other_session: int = 0      # frames of a session that is not the active one
    malformed: int = 0          # authentic but inconsistent contents (a broken sender)
    handshakes: int = 0         # HELLOs answered
    sessions: int = 0           # session starts completed

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _add_jitter_counts(stats: ReceiverStats, counts: JitterCounts) -> None:
    """Fold a session's jitter-buffer counters into the receiver's."""
    stats.lost += counts.lost
    stats.reordered += counts.reordered
    stats.late += counts.late
    stats.overflow += counts.overflow
    stats.duplicates += counts.duplicates


class PacketSender:
    """Sends one session at a time: `start_session` (reliable), then `send` per frame (unreliable)."""

    def __init__(self, link: DatagramLink, key: SessionKey, retransmit_s: float = 0.1,
                 start_timeout_s: float = 10.0, redundancy: int = 2):
        """redundancy: how many earlier frame packets each FRAME datagram repeats (0..3)."""
        if not isinstance(key, SessionKey):
            raise TransportError(f"expected a SessionKey, got {type(key).__name__}")
        if not 0 <= redundancy <= wire.MAX_REDUNDANCY:
            raise TransportError(f"redundancy must be 0..{wire.MAX_REDUNDANCY}, got {redundancy}")
        self.link = link
        self._earlier: collections.deque[bytes] = collections.deque(maxlen=redundancy)
        self.key = key
        self.retransmit_s = retransmit_s
        self.start_timeout_s = start_timeout_s
        self._stats = SenderStats()
        self._lock = threading.Lock()
        self._session_id: int | None = None
        self._forward: ChaCha20Poly1305 | None = None
        self._frame_number = 0
        self._closed = False
        self._closing = threading.Event()  # set by `close` without the lock: cancels a waiting start_session

    @property
    def stats(self) -> SenderStats:
        with self._lock:
            return replace(self._stats)

    @property
    def session_id(self) -> int | None:
        return self._session_id

    def _send_datagram(self, data: bytes) -> None:
        self._stats.wire_bytes += len(data)
        self.link.send(data)

    def start_session(self, header: bytes, portrait: bytes | None = None, timeout_s: float | None = None) -> None:
        """Handshake and deliver `header` (+ `portrait`) reliably; blocks until acknowledged.

        Raises SessionTimeoutError when the receiver does not answer within `timeout_s`
        (default `start_timeout_s`), TransportError when `close` is called meanwhile (from
        another thread; it takes effect within a retransmission interval, at most 1 s).
        """
        if not isinstance(header, (bytes, bytearray)) or not isinstance(portrait, (bytes, bytearray, type(None))):
            raise TransportError("start_session: header and portrait must be bytes (portrait may be None)")
        blob = wire.pack_start_blob(bytes(header), None if portrait is None else bytes(portrait))
        if len(blob) > wire.MAX_BLOB_BYTES:
            raise TransportError(f"start_session: header + portrait are {len(blob)} bytes, more than "
                                 f"{wire.MAX_BLOB_BYTES}")
        with self._lock:
            if self._closed:
                raise TransportError("start_session: the sender is closed")
            deadline = time.monotonic() + (self.start_timeout_s if timeout_s is None else timeout_s)
            session_id = secrets.randbits(32)
            salt = secrets.token_bytes(wire.SALT_BYTES)
            self._session_id, self._forward, self._frame_number = None, None, 0
            self._earlier.clear()
            forward, backward = self._handshake(session_id, salt, deadline)
            self._deliver_start(session_id, forward, backward, wire.split_chunks(blob), deadline)
            self._session_id, self._forward = session_id, forward
            self._stats.sessions_started += 1

    def _handshake(self, session_id: int, salt: bytes, deadline: float
                   ) -> tuple[ChaCha20Poly1305, ChaCha20Poly1305]:
        hello = hello_cipher(self.key, salt)
        number = 0
        wait = self.retransmit_s
        while True:
            self._send_datagram(_sealed(hello, wire.HELLO, session_id, number, bytes([wire.PROTOCOL_VERSION]), salt))
            self._stats.hellos_sent += 1
            number += 1
            answer_until = min(deadline, time.monotonic() + wait)
            while (datagram := self._next(answer_until)) is not None:
                if datagram.type != wire.CHALLENGE or datagram.session_id != session_id:
                    self._stats.dropped += 1
                    continue
                forward, backward = session_ciphers(self.key, salt, datagram.salt)
                if _opened(backward, datagram) is None:
                    self._stats.dropped += 1
                    continue
                return forward, backward
            self._check_not_closing()
            if time.monotonic() >= deadline:
                raise SessionTimeoutError("start_session: no receiver answered the handshake in time "
                                          "(is it listening, with the same key?)")
            wait = min(wait * 1.5, 1.0)

    def _deliver_start(self, session_id: int, forward: ChaCha20Poly1305, backward: ChaCha20Poly1305,
                       chunks: list[bytes], deadline: float) -> None:
        missing = set(range(len(chunks)))
        number = 0
        first_round = True
        while missing:
            for index in sorted(missing):
                self._send_datagram(_sealed(forward, wire.START, session_id, number, chunks[index]))
                number += 1
                self._stats.start_chunks_sent += 1
                self._stats.start_retransmits += 0 if first_round else 1
            first_round = False
            answer_until = min(deadline, time.monotonic() + self.retransmit_s)
            while missing and (datagram := self._next(answer_until)) is not None:
                plaintext = None
                if datagram.type == wire.START_ACK and datagram.session_id == session_id:
                    plaintext = _opened(backward, datagram)
                ack = None if plaintext is None else wire.parse_ack(plaintext)
                if ack is None or ack[0] != len(chunks):
                    if not (datagram.type == wire.CHALLENGE and datagram.session_id == session_id):
                        self._stats.dropped += 1  # a repeated CHALLENGE is expected, not counted
                    continue
                missing -= ack[1]
            if missing:
                self._check_not_closing()
                if time.monotonic() >= deadline:
                    raise SessionTimeoutError(f"start_session: {len(missing)} of {len(chunks)} session-start "
                                              "chunks not acknowledged in time")

    def _check_not_closing(self) -> None:
        if self._closing.is_set():
            raise TransportError("start_session: the sender was closed before the session started")

    def _next(self, until: float) -> wire.Datagram | None:
        """The next parseable inbound datagram before `until`, or None."""
        while (remaining := until - time.monotonic()) > 0:
            item = self.link.recv(remaining)
            if item is None:
                return None
            datagram = wire.parse(item[0])
            if datagram is not None:
                return datagram
            self._stats.dropped += 1
        return None

    def send(self, packet: bytes) -> None:
        """Send one frame packet (unreliable: it may be lost; the receiver counts it)."""
        if not isinstance(packet, (bytes, bytearray)):
            raise TransportError(f"send: a packet is bytes, got {type(packet).__name__}")
        if len(packet) > wire.MAX_FRAME_BYTES:
            raise TransportError(f"send: a frame packet is at most {wire.MAX_FRAME_BYTES} bytes, got {len(packet)}")
        with self._lock:
            if self._forward is None or self._session_id is None:
                raise TransportError("send: no session; call start_session first")
            if self._frame_number > wire.MAX_NUMBER:
                raise TransportError("send: this session used all 2^32 frame numbers; start a new session")
            packet = bytes(packet)
            plaintext = wire.pack_frame(packet, list(self._earlier))
            self._send_datagram(_sealed(self._forward, wire.FRAME, self._session_id, self._frame_number, plaintext))
            self._earlier.appendleft(packet)  # a no-op without redundancy (maxlen 0)
            self._frame_number += 1
            self._stats.frames_sent += 1
            self._stats.frame_bytes += len(packet)
            self._drain()

    def _drain(self) -> None:
        """Late acknowledgements and challenges are expected after the start; nothing else."""
        while (item := self.link.recv(0.0)) is not None:
            datagram = wire.parse(item[0])
            if datagram is None or datagram.session_id != self._session_id or datagram.type not in (
                    wire.CHALLENGE, wire.START_ACK):
                self._stats.dropped += 1

    def close(self) -> None:
        """Tell the receiver the session ended (BYE, sent a few times since it may be lost).

        Safe from any thread; a `start_session` still waiting for the receiver gives up.
        """
        self._closing.set()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._forward is not None and self._session_id is not None:
                for number in range(3):
                    self._send_datagram(_sealed(self._forward, wire.BYE, self._session_id, number, b""))
            self.link.close()


@dataclass
class _Session:
    """A handshake answered by the receiver; `start` is set once its blob is complete."""
    session_id: int
    receiver_salt: bytes
    forward: ChaCha20Poly1305
    backward: ChaCha20Poly1305
    peer: Any
    chunks: dict[int, bytes]
    start: SessionStart | None = None
    ack_number: int = 0
    challenges: int = 0


class PacketReceiver:
    """Receives one session at a time: `wait_session` for its start, then `receive` per frame."""

    def __init__(self, link: DatagramLink, key: SessionKey, jitter: JitterConfig = JitterConfig()):
        if not isinstance(key, SessionKey):
            raise TransportError(f"expected a SessionKey, got {type(key).__name__}")
        self.link = link
        self.key = key
        self.jitter_config = jitter
        self._stats = ReceiverStats()
        self._lock = threading.Lock()
        self._pending: dict[int, _Session] = {}    # answered handshakes by session id, oldest first
        self._active: _Session | None = None
        self._waiting: _Session | None = None      # completed, not yet returned by wait_session
        self._window = ReplayWindow()
        self._jitter = JitterBuffer(jitter)
        self._recovered: set[int] = set()  # frame numbers taken from copies, so originals are not "late"
        self._bye = False

    @property
    def stats(self) -> ReceiverStats:
        """A snapshot of the counters (earlier sessions included)."""
        stats = replace(self._stats)
        _add_jitter_counts(stats, self._jitter.counts)
        return stats

    @property
    def session_waiting(self) -> bool:
        """A new session has started and waits for `wait_session` (frames of it are dropped until then)."""
        return self._waiting is not None

    @property
    def peer_closed(self) -> bool:
        """The sender closed the active session (BYE)."""
        return self._bye

    def wait_session(self, timeout_s: float) -> SessionStart:
        """Block until a session start is complete; make it the active session and return it."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._waiting is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SessionTimeoutError(f"wait_session: no session started within {timeout_s:g} s")
                self._handle_next(remaining)
            session, self._waiting = self._waiting, None
            self._activate(session)
            assert session.start is not None
            return session.start

    def receive(self, timeout_s: float = 0.0) -> bytes | None:
        """The next frame packet in order, or None when none is due within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                payload = self._jitter.pop(time.monotonic())
                if payload is not None:
                    self._stats.delivered += 1
                    return payload
                if self._handle_next(0.0):  # what already arrived first, without waiting
                    continue
                now = time.monotonic()
                if now >= deadline:
                    return None
                gap = self._jitter.gap_deadline()
                self._handle_next(max(min(deadline, gap if gap is not None else deadline) - now, 0.0))

    def close(self) -> None:
        self.link.close()

    def _activate(self, session: _Session) -> None:
        """Make `session` the one whose frames are accepted; counts of the previous one are kept."""
        if session is self._active:
            return
        _add_jitter_counts(self._stats, self._jitter.counts)
        self._active = session
        self._pending.pop(session.session_id, None)
        self._window = ReplayWindow()
        self._jitter = JitterBuffer(self.jitter_config)
        self._recovered = set()
        self._bye = False

    def _handle_next(self, timeout_s: float) -> bool:
        """Handle one datagram if one arrives within `timeout_s`; False when none did."""
        item = self.link.recv(timeout_s)
        if item is None:
            return False
        data, peer = item
        datagram = wire.parse(data)
        if datagram is None:
            if len(data) >= wire.PREFIX.size and data[0] not in wire.PACKET_TYPES:
                self._stats.garbage += 1
            else:
                self._stats.truncated += 1
            return True
        if len(datagram.sealed) < TAG_BYTES:
            self._stats.truncated += 1
        elif datagram.type == wire.HELLO:
            self._on_hello(datagram, peer)
        elif datagram.type == wire.START:
            self._on_start(datagram, peer)
        elif datagram.type in (wire.FRAME, wire.BYE):
            self._on_frame(datagram)
        else:
            self._stats.garbage += 1
        return True

    def _session(self, session_id: int) -> _Session | None:
        if self._active is not None and self._active.session_id == session_id:
            return self._active
        return self._pending.get(session_id)

    def _on_hello(self, datagram: wire.Datagram, peer: Any) -> None:
        plaintext = _opened(hello_cipher(self.key, datagram.salt), datagram)
        if plaintext is None:
            self._stats.forged += 1
            return
        if plaintext != bytes([wire.PROTOCOL_VERSION]):
            self._stats.malformed += 1
            return
        session = self._session(datagram.session_id)
        if session is None:
            receiver_salt = secrets.token_bytes(wire.SALT_BYTES)
            forward, backward = session_ciphers(self.key, datagram.salt, receiver_salt)
            session = _Session(datagram.session_id, receiver_salt, forward, backward, peer, {})
            self._pending[datagram.session_id] = session
            while len(self._pending) > MAX_PENDING_HANDSHAKES:
                self._pending.pop(next(iter(self._pending)))
            self._stats.handshakes += 1
        session.peer = peer
        self.link.send(_sealed(session.backward, wire.CHALLENGE, session.session_id, session.challenges, b"",
                               session.receiver_salt), peer)
        session.challenges += 1

    def _on_start(self, datagram: wire.Datagram, peer: Any) -> None:
        session = self._session(datagram.session_id)
        if session is None:
            self._stats.other_session += 1
            return
        plaintext = _opened(session.forward, datagram)
        if plaintext is None:
            self._stats.forged += 1
            return
        chunk = wire.parse_chunk(plaintext)
        if chunk is None or (session.chunks and next(iter(session.chunks.values()))[1:3] != chunk[1:3]):
            self._stats.malformed += 1
            return
        index, count, length, _ = chunk
        session.chunks[index] = chunk
        session.peer = peer
        if session.start is None and len(session.chunks) == count:
            blob = b"".join(session.chunks[i][3] for i in range(count))
            parts = wire.unpack_start_blob(blob)
            if parts is None or len(blob) != length:
                self._stats.malformed += 1
                session.chunks.clear()
                return
            session.start = SessionStart(*parts)
            self._stats.sessions += 1
            if self._active is None:
                self._activate(session)
                self._waiting = session
            elif session is not self._active:
                self._waiting = session
        ack = wire.pack_ack(count, set(session.chunks))
        self.link.send(_sealed(session.backward, wire.START_ACK, session.session_id, session.ack_number, ack), peer)
        session.ack_number += 1

    def _on_frame(self, datagram: wire.Datagram) -> None:
        session = self._active
        if session is None or datagram.session_id != session.session_id:
            self._stats.other_session += 1
            return
        if datagram.type == wire.BYE:
            if _opened(session.forward, datagram) is None:
                self._stats.forged += 1
            else:
                self._bye = True
            return
        verdict = self._window.check(datagram.number)
        if verdict != "new":
            if verdict == "duplicate":
                self._stats.duplicates += 1
            else:
                self._stats.too_old += 1
            return
        plaintext = _opened(session.forward, datagram)
        if plaintext is None:
            self._stats.forged += 1
            return
        frame = wire.parse_frame(plaintext)
        if frame is None:
            self._stats.malformed += 1
            return
        self._window.commit(datagram.number)
        self._stats.received += 1
        now = time.monotonic()
        packet, earlier = frame
        # copies of earlier frames first (oldest first), so a recovered frame is not "reordered"
        for distance in range(len(earlier), 0, -1):
            number = datagram.number - distance
            if (number >= self._jitter.next_number and self._window.check(number) == "new"
                    and number not in self._recovered and not self._jitter.holds(number)):
                self._jitter.push(number, earlier[distance - 1], now)
                self._recovered.add(number)
                self._stats.recovered += 1
        if datagram.number in self._recovered:
            self._recovered.discard(datagram.number)  # its copy was already used
        else:
            self._jitter.push(datagram.number, packet, now)
        if len(self._recovered) > 2 * RECOVERED_MEMORY:
            self._recovered = {n for n in self._recovered if n >= self._jitter.next_number - RECOVERED_MEMORY}

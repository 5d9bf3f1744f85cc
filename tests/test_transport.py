"""Transport: session start, frames through loss/reorder/duplication, and hostile datagrams."""
from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from sdk.errors import SdkError
from sdk.transport import (Impairment, JitterConfig, PacketReceiver, PacketSender, SessionKey, SessionStart,
                           SessionTimeoutError, TransportError, UdpReceiver, UdpSender, inproc_pair,
                           load_session_key)
from sdk.transport import wire
from sdk.transport.crypto import ReplayWindow
from sdk.transport.jitter import JitterBuffer
from sdk.transport.links import InprocLink

HEADER = b"THKC-header-bytes"


def start(sender: PacketSender, receiver: PacketReceiver, portrait: bytes | None = None,
          header: bytes = HEADER) -> SessionStart:
    """Run the receiver's wait_session in a thread while the sender starts the session."""
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.update(start=receiver.wait_session(10.0)))
    thread.start()
    sender.start_session(header, portrait, timeout_s=10.0)
    thread.join()
    return result["start"]  # type: ignore[return-value]


def drain(receiver: PacketReceiver, until_s: float = 0.3) -> list[bytes]:
    """Everything the receiver delivers until nothing arrives for `until_s`."""
    packets = []
    while (packet := receiver.receive(until_s)) is not None:
        packets.append(packet)
    return packets


def record(sender: PacketSender) -> list[bytes]:
    """Datagrams the in-process sender puts on the wire, as sent."""
    sent: list[bytes] = []
    pipe = sender.link.outbound
    original = pipe.put
    pipe.put = lambda data: (sent.append(bytes(data)), original(data))[1]
    return sent


# -- keys ---------------------------------------------------------------------------------------

def test_session_key_round_trips_and_hides_itself(tmp_path):
    key = SessionKey.generate()
    assert SessionKey.from_hex(key.hex()) == key and len(key.hex()) == 64
    assert key.hex() not in repr(key)
    path = key.save(tmp_path / "keys" / "session.key")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_session_key(path) == key


def test_session_key_errors_name_the_problem(tmp_path):
    with pytest.raises(TransportError, match="hex"):
        SessionKey.from_hex("zz" * 32)
    with pytest.raises(TransportError, match="expected 32"):
        SessionKey.from_hex("ab" * 16)
    with pytest.raises(TransportError, match="cannot read"):
        load_session_key(tmp_path / "missing.key")
    (tmp_path / "short.key").write_text("abcd")
    with pytest.raises(TransportError, match="short.key"):
        load_session_key(tmp_path / "short.key")
    assert issubclass(TransportError, SdkError) and issubclass(SessionTimeoutError, TransportError)


# -- a clean session ---------------------------------------------------------------------------------

def test_session_start_and_frames_in_order():
    sender, receiver = inproc_pair(SessionKey.generate())
    portrait = os.urandom(5000)  # several chunks
    session = start(sender, receiver, portrait)
    assert session == SessionStart(HEADER, portrait)
    for index in range(20):
        sender.send(b"frame %d" % index)
    assert drain(receiver) == [b"frame %d" % i for i in range(20)]
    stats = receiver.stats
    assert (stats.received, stats.delivered, stats.lost, stats.sessions) == (20, 20, 0, 1)
    assert sender.stats.frames_sent == 20 and sender.stats.frame_bytes == sum(len(b"frame %d" % i) for i in range(20))
    sender.close()
    assert receiver.receive(0.2) is None and receiver.peer_closed


def test_portrait_none_and_large_portrait_through_heavy_loss():
    sender, receiver = inproc_pair(SessionKey.generate())
    assert start(sender, receiver, None).portrait is None
    lossy_sender, lossy_receiver = inproc_pair(SessionKey.generate(), Impairment(loss=0.3, seed=3))
    portrait = os.urandom(60_000)
    assert start(lossy_sender, lossy_receiver, portrait).portrait == portrait
    assert lossy_sender.stats.start_retransmits > 0


def test_send_before_start_and_bad_arguments_raise():
    sender, _ = inproc_pair(SessionKey.generate())
    with pytest.raises(TransportError, match="start_session"):
        sender.send(b"x")
    with pytest.raises(TransportError, match="bytes"):
        sender.start_session("not bytes")  # type: ignore[arg-type]
    with pytest.raises(TransportError, match="SessionKey"):
        PacketSender(sender.link, "secret")  # type: ignore[arg-type]
    with pytest.raises(TransportError, match="redundancy"):
        inproc_pair(SessionKey.generate(), redundancy=9)


# -- timeouts ---------------------------------------------------------------------------------------

def test_timeouts_raise_or_return_none_and_never_stall():
    sender, receiver = inproc_pair(SessionKey.generate())
    started = time.monotonic()
    with pytest.raises(SessionTimeoutError, match="no session"):
        receiver.wait_session(0.2)
    with pytest.raises(SessionTimeoutError, match="handshake"):
        sender.start_session(HEADER, timeout_s=0.3)
    assert receiver.receive(0.1) is None
    assert time.monotonic() - started < 3


def test_close_cancels_a_start_session_waiting_for_the_receiver():
    sender, _ = inproc_pair(SessionKey.generate())  # nobody answers the handshake
    threading.Timer(0.2, sender.close).start()
    started = time.monotonic()
    with pytest.raises(TransportError, match="closed before the session started"):
        sender.start_session(HEADER, timeout_s=30.0)
    assert time.monotonic() - started < 3
    with pytest.raises(TransportError, match="closed"):
        sender.start_session(HEADER)


def test_receiver_with_another_key_never_answers():
    sender, _ = inproc_pair(SessionKey.generate())
    _, stranger = inproc_pair(SessionKey.generate())
    sender.link.outbound = stranger.link.inbound  # the sender talks to a receiver holding another key
    with pytest.raises(SessionTimeoutError):
        sender.start_session(HEADER, timeout_s=0.3)
    with pytest.raises(SessionTimeoutError):
        stranger.wait_session(0.1)
    assert stranger.stats.forged >= 1 and stranger.stats.handshakes == 0


# -- the network's doing ---------------------------------------------------------------------------

def _lossy_run(redundancy: int, frames: int = 200):
    impairment = Impairment(loss=0.1, duplicate=0.1, delay_s=0.02, jitter_s=0.015, seed=7)
    sender, receiver = inproc_pair(SessionKey.generate(), impairment, JitterConfig(gap_wait_s=0.05),
                                   redundancy=redundancy)
    start(sender, receiver)
    delivered: list[bytes] = []
    for index in range(frames):
        sender.send(index.to_bytes(4, "little"))
        time.sleep(0.002)  # frames closer than the jitter: the network reorders them
        while (packet := receiver.receive(0.0)) is not None:
            delivered.append(packet)
    sender.close()
    delivered += drain(receiver)
    return [int.from_bytes(p, "little") for p in delivered], receiver.stats


def test_loss_reorder_and_duplicates_are_handled_and_counted():
    numbers, stats = _lossy_run(redundancy=0)
    assert numbers == sorted(set(numbers))            # in order, each once
    assert stats.lost > 0 and stats.reordered > 0 and stats.duplicates > 0
    assert stats.delivered == len(numbers)
    # every frame is delivered or counted, except lost ones at the very end (no later frame shows the gap)
    assert 200 - 5 <= len(numbers) + stats.lost + stats.overflow <= 200


def test_redundancy_recovers_isolated_losses():
    numbers, stats = _lossy_run(redundancy=2)
    plain_numbers, plain = _lossy_run(redundancy=0)
    assert stats.recovered > 0
    assert stats.lost < plain.lost and len(numbers) > len(plain_numbers)


def test_jitter_buffer_orders_waits_and_gives_up():
    buffer = JitterBuffer(JitterConfig(gap_wait_s=0.05, capacity=4))
    buffer.push(1, b"1", now=0.0)
    assert buffer.pop(now=0.01) is None                # frame 0 may still come
    buffer.push(0, b"0", now=0.02)
    assert [buffer.pop(0.02), buffer.pop(0.02)] == [b"0", b"1"]
    buffer.push(3, b"3", now=1.0)
    assert buffer.pop(1.01) is None and buffer.gap_deadline() == pytest.approx(1.05)
    assert buffer.pop(1.06) == b"3" and buffer.counts.lost == 1
    buffer.push(2, b"2", now=1.1)
    assert buffer.counts.late == 1
    for number in range(10, 15):  # a gap (4..9) and more frames than the capacity: the gap is given up
        buffer.push(number, b"x", now=2.0)
    assert buffer.counts.lost == 1 + 6 and buffer.counts.overflow == 0 and buffer.pop(2.0) == b"x"
    for number in range(15, 20):  # the reader falls behind: its oldest frames are dropped
        buffer.push(number, b"x", now=2.0)
    assert len(buffer) == 4 and buffer.counts.overflow == 5 and buffer.next_number == 16


def test_replay_window():
    window = ReplayWindow(size=8)
    for number in (0, 1, 5):
        assert window.check(number) == "new"
        window.commit(number)
    assert window.check(1) == "duplicate" and window.check(3) == "new"
    window.commit(100)
    assert window.check(5) == "too_old" and window.check(99) == "new" and window.check(100) == "duplicate"


# -- hostile datagrams -------------------------------------------------------------------------------

def test_forged_replayed_truncated_and_garbage_datagrams_are_dropped_and_counted():
    sender, receiver = inproc_pair(SessionKey.generate(), redundancy=0)
    sent = record(sender)
    start(sender, receiver)
    for index in range(3):
        sender.send(b"frame %d" % index)
    assert drain(receiver, 0.1) == [b"frame 0", b"frame 1", b"frame 2"]
    frames = [d for d in sent if d[0] == wire.FRAME]
    inject = receiver.link.inbound.inject
    forged = bytearray(frames[2])
    forged[5] = 8                                                 # a new number under an old tag
    inject(bytes(forged))
    forged[5], forged[-1] = 9, forged[-1] ^ 0x01                  # and a tampered tag
    inject(bytes(forged))
    inject(frames[1])                                             # replayed
    inject(frames[0][:20])                                        # truncated: no room for a tag
    inject(frames[0][:4])                                         # shorter than the prefix
    inject(b"\xee" * 40)                                          # unknown type
    inject(os.urandom(64)[:1] + b"\x00" * 3)
    assert drain(receiver, 0.1) == []
    stats = receiver.stats
    assert (stats.forged, stats.duplicates, stats.truncated, stats.garbage) == (2, 1, 3, 1)
    sender.send(b"frame 3")                                       # the session goes on
    assert drain(receiver, 0.1) == [b"frame 3"]


def test_packets_of_another_session_or_key_are_dropped():
    key = SessionKey.generate()
    sender, receiver = inproc_pair(key)
    start(sender, receiver)
    # a second sender with the same key but its own session, on the same wire (it hears the
    # receiver's answers on the first sender's side of the link)
    intruder = PacketSender(InprocLink(receiver.link.inbound, sender.link.inbound), key)
    intruder_thread = threading.Thread(target=lambda: intruder.start_session(b"other", timeout_s=5))
    intruder_thread.start()
    while intruder_thread.is_alive():
        receiver.receive(0.01)  # the receiver answers the new handshake while in its session
    intruder.send(b"intruder frame")
    sender.send(b"own frame")
    assert drain(receiver, 0.1) == [b"own frame"]
    assert receiver.stats.other_session == 1 and receiver.session_waiting
    # a sender with another key: its handshake never authenticates
    stranger = PacketSender(InprocLink(receiver.link.inbound, sender.link.inbound), SessionKey.generate())
    with pytest.raises(SessionTimeoutError):
        stranger.start_session(b"x", timeout_s=0.2)
    assert drain(receiver, 0.1) == []
    assert receiver.stats.forged >= 1
    # the waiting session becomes the active one when asked for
    assert receiver.wait_session(0.1).header == b"other"


def test_arbitrary_datagrams_never_raise():
    sender, receiver = inproc_pair(SessionKey.generate())
    start(sender, receiver)
    for size in range(0, 120, 3):
        for first in (wire.HELLO, wire.START, wire.FRAME, wire.BYE, wire.CHALLENGE, 0xAB):
            receiver.link.inbound.inject(bytes([first]) + os.urandom(size))
            sender.link.inbound.inject(bytes([first]) + os.urandom(size))
    assert drain(receiver, 0.1) == []
    sender.send(b"still fine")
    assert drain(receiver, 0.1) == [b"still fine"]
    assert sender.stats.dropped > 0


# -- UDP ----------------------------------------------------------------------------------------------

def test_udp_session_with_garbage_on_the_port():
    key = SessionKey.generate()
    receiver = UdpReceiver(("127.0.0.1", 0), key)
    sender = UdpSender(receiver.address, key)
    try:
        garbage = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for size in (0, 1, 9, 30, 500):
            garbage.sendto(os.urandom(size), receiver.address)
        assert start(sender, receiver, b"portrait").portrait == b"portrait"
        for index in range(10):
            sender.send(b"udp %d" % index)
            garbage.sendto(os.urandom(40), receiver.address)
        assert drain(receiver, 0.2) == [b"udp %d" % i for i in range(10)]
        stats = receiver.stats
        assert stats.truncated + stats.garbage + stats.forged + stats.other_session >= 15
        garbage.close()
    finally:
        sender.close()
        receiver.close()


def test_udp_address_errors():
    with pytest.raises(TransportError, match="cannot resolve"):
        UdpSender(("no-such-host.invalid", 9), SessionKey.generate())
    with pytest.raises(TransportError, match="listen"):
        UdpReceiver(("203.0.113.1", 9), SessionKey.generate())  # not an address of this machine

"""The receiver half: packets -> codes (network thread), codes -> avatar frames (generator thread).

The network thread decodes every packet in order (delta codes depend on the previous one), with
the decoder of the stream's kind (learned keypoints, the semantic code or both), and queues the codes;
the generator takes the oldest queued code, so when it is slower than the stream the queue drops
the oldest code and latency stays bounded. When no packet is due the
outputs keep showing the last frame; nothing is rendered twice. Face-prior models render the
decoded semantic code on the avatar's own mesh, with the session's edits on top (`LiveControls`).
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..codec import (CodecError, CodeDecoder, FrameCode, HybridCodeDecoder, HybridFrameCode, SemanticCodeDecoder,
                     SemanticFrameCode)
from ..face.crop import PasteCanvas
from ..models import Keypoints
from ..pipeline import Code, HybridCode, TalkingHeadPipeline
from ..prior import MotionDelta, SemanticCode
from ..transport import PacketReceiver
from .avatars import AvatarRing
from .controls import LiveControls
from .queues import POLL_S, DropOldestQueue, GeneratorGate
from .sender import SentFrameLog
from .stats import StageTimer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceivedCode:
    """A decoded code and when it arrived; `captured_at` is on this process's time.monotonic()
    clock: exact when the sender runs in this process, else estimated (see LiveStats)."""

    code: FrameCode | SemanticFrameCode | HybridFrameCode
    arrived_at: float
    captured_at: float


@dataclass(frozen=True)
class RenderedFrame:
    """The avatar moved by one code: RGB uint8 (S, S, 3), or the whole portrait with it pasted in
    (paste-back), and whose portrait it is."""

    received: ReceivedCode
    avatar: np.ndarray
    avatar_name: str


@dataclass
class ReceiverCounts:
    packets: int = 0
    packet_bytes: int = 0
    decoded: int = 0
    undecodable: int = 0
    end: str = ""  # why receiving stopped: "sender closed", "sender silent", "stopped"


class CodeReceiver:
    """The network thread: transport -> codec decoder -> queue of codes."""

    def __init__(self, transport: PacketReceiver, decoder: CodeDecoder | SemanticCodeDecoder | HybridCodeDecoder,
                 sent_log: SentFrameLog | None,
                 idle_timeout_s: float | None, first_packet_timeout_s: float | None):
        """Timeouts end the session after that long without a packet (None: never, for a sender
        in this process, which says when it is done)."""
        self.transport = transport
        self.decoder = decoder
        self.sent_log = sent_log
        self.idle_timeout_s = idle_timeout_s
        self.first_packet_timeout_s = first_packet_timeout_s
        self.counts = ReceiverCounts()
        self.first_arrival: float | None = None  # time.monotonic() of the first packet
        self._clock_offset: float | None = None  # min(arrival - sender time) seen, for estimated latency

    def run(self, out: DropOldestQueue[ReceivedCode], stop: threading.Event, sender_done: threading.Event) -> None:
        """Receive until the sender closes, goes silent, or `stop`; then close `out`.

        `sender_done` is set by a sender in this process once it sent its last packet (its
        closing message could in principle be lost on UDP); `stop` ends at once.
        """
        last_packet = time.monotonic()
        drain_s = self.transport.jitter_config.gap_wait_s + POLL_S
        try:
            while not stop.is_set():
                closing = self.transport.peer_closed or sender_done.is_set()
                packet = self.transport.receive(drain_s if closing else POLL_S)
                now = time.monotonic()
                if packet is None:
                    if closing:
                        self.counts.end = "sender closed"
                        return
                    timeout = self.idle_timeout_s if self.counts.packets else self.first_packet_timeout_s
                    if timeout is not None and now - last_packet > timeout:
                        self.counts.end = "sender silent"
                        log.warning("no packet from the sender for %.1f s: ending the session", timeout)
                        return
                    continue
                last_packet = now
                self.first_arrival = self.first_arrival or now
                self.counts.packets += 1
                self.counts.packet_bytes += len(packet)
                try:
                    code = self.decoder.decode(packet)
                except CodecError:
                    self.counts.undecodable += 1  # e.g. its reference was lost; the next keyframe resyncs
                    continue
                self.counts.decoded += 1
                out.put(ReceivedCode(code, now, self._captured_at(code, now)))
            self.counts.end = "stopped"
        finally:
            out.close()

    def _captured_at(self, code: FrameCode | SemanticFrameCode | HybridFrameCode, arrived_at: float) -> float:
        sent = self.sent_log.get(code.sequence) if self.sent_log is not None else None
        if sent is not None:
            return sent.captured_at
        sender_time = code.timestamp_ms / 1000
        offset = arrived_at - sender_time
        self._clock_offset = offset if self._clock_offset is None else min(self._clock_offset, offset)
        return sender_time + self._clock_offset


def code_to_keypoints(code: FrameCode | HybridFrameCode, device: torch.device) -> Keypoints:
    """A decoded code's (learned) keypoints -> Keypoints (1, K, 2), (1, K, 2, 2); identity Jacobians
    when the stream has none."""
    value = torch.from_numpy(np.ascontiguousarray(code.keypoints, dtype=np.float32))[None]
    if code.jacobians is None:
        jacobian = torch.eye(2).expand(1, value.shape[1], 2, 2).clone()
    else:
        jacobian = torch.from_numpy(np.ascontiguousarray(code.jacobians, dtype=np.float32))[None]
    return Keypoints(value.to(device), jacobian.to(device))


def pipeline_code(code: FrameCode | SemanticFrameCode | HybridFrameCode, device: torch.device) -> Code:
    """A decoded frame -> the code `TalkingHeadPipeline.render` takes (Keypoints, SemanticCode or HybridCode)."""
    if isinstance(code, SemanticFrameCode):
        return SemanticCode(code.pose, code.expression)
    if isinstance(code, HybridFrameCode):
        return HybridCode(SemanticCode(code.pose, code.expression), code_to_keypoints(code, device))
    return code_to_keypoints(code, device)


class AvatarRenderer:
    """The generator thread: codes -> frames of the current avatar, with relative motion (and the
    controls' edits, face-prior models); with `paste_back` each frame is pasted into the avatar's
    whole portrait (`Avatar.portrait`)."""

    def __init__(self, pipeline: TalkingHeadPipeline, avatars: AvatarRing, controls: LiveControls,
                 paste_back: bool = False):
        self.pipeline = pipeline
        self.avatars = avatars
        self.controls = controls
        self.paste_back = paste_back
        self.rendering = StageTimer()
        self.reanchors = 0
        self.avatar_switches = 0
        self.edit_changes = 0
        self._states: dict[int, object] = {}
        self._canvases: dict[int, PasteCanvas] = {}
        # Warm-up: the first render pays for lazy initialisation; it must not count as a live frame.
        state = self.prepare_current()
        if self.pipeline.is_semantic:  # hybrid: the learned keypoints where they are
            self.pipeline.render_motion(state, MotionDelta.identity(0), state.learned)
        else:
            self.pipeline.render(state, state.keypoints)
        self.pipeline.reset_anchor()

    def prepare_current(self) -> object:
        """The current avatar's source state, computed once per avatar."""
        index = self.avatars.index
        if index not in self._states:
            self._states[index] = self.pipeline.prepare_source(self.avatars.current.crop)
        return self._states[index]

    def run(self, codes: DropOldestQueue[ReceivedCode], out: DropOldestQueue[RenderedFrame],
            abort: threading.Event, gate: GeneratorGate | None = None) -> None:
        """Render codes until `codes` is finished or `abort`; `gate` learns when a render runs."""
        try:
            while not abort.is_set():
                self._apply_requests()
                received = codes.get(POLL_S)
                if received is None:
                    if codes.finished:
                        return
                    continue
                with gate.rendering(received.code.sequence) if gate is not None else contextlib.nullcontext():
                    out.put(self.render(received))
        finally:
            out.close()

    def render(self, received: ReceivedCode) -> RenderedFrame:
        state = self.prepare_current()
        tick = time.perf_counter()
        avatar = self.pipeline.render(state, pipeline_code(received.code, self.pipeline.device))
        self.rendering.add(time.perf_counter() - tick)
        if self.paste_back:
            avatar = self._canvas().paste(avatar)
        return RenderedFrame(received, avatar, self.avatars.current.name)

    def _canvas(self) -> PasteCanvas:
        """The current avatar's whole portrait to paste into, made once per avatar."""
        index = self.avatars.index
        if index not in self._canvases:
            current = self.avatars.current
            assert current.portrait is not None and current.box is not None  # LiveConfig checks it
            self._canvases[index] = PasteCanvas.of(current.portrait, current.box)
        return self._canvases[index]

    def _apply_requests(self) -> None:
        reanchor, steps = self.controls.take_generator_requests()
        if reanchor:
            self.pipeline.reset_anchor()
            self.reanchors += 1
        if steps and len(self.avatars.avatars) > 1:
            self.avatars.step(steps)
            self.avatar_switches += 1
            log.info("avatar: %s", self.avatars.current.name)
        edits = self.controls.take_edits()
        if edits is not None and edits != self.pipeline.edits:
            self.pipeline.edits = edits
            self.edit_changes += 1

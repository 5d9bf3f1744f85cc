"""The sender half, per frame: track the face, crop it, encode its code, pack it, send.

The code is the model's: learned keypoints (the keypoint encoder on the crop), for face-prior
models the semantic code of the tracker's own mesh (`TalkingHeadPipeline.encode(crop, mesh)`: no
second landmarker, no network), for hybrid ones both (the mesh's code and the crop's learned
keypoints); a mesh the prior cannot trust repeats the last good code, counted
by status in `pipeline.encoder_stats`. Frames without a face send the last good code again (a
cheap delta packet), so the receiver holds the avatar still, keeps its frame rate, and moves on
when the face returns; until the first face there is no code to send and those frames are
counted, not sent. With a generator in this process, the sender takes a frame only when the
generator is not behind (`GeneratorGate`): frames skipped meanwhile are never tracked or encoded.
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

import numpy as np

from ..codec import CodeEncoder, HybridCodeEncoder, SemanticCodeEncoder
from ..face import FaceTracker
from ..models import Keypoints
from ..pipeline import Code, HybridCode, TalkingHeadPipeline
from ..prior import SemanticCode
from ..transport import PacketSender
from .capture import CapturedFrame
from .queues import POLL_S, DropOldestQueue, GeneratorGate
from .stats import StageTimer

StreamEncoder = CodeEncoder | SemanticCodeEncoder | HybridCodeEncoder


@dataclass(frozen=True)
class SentFrame:
    """What the sender knows about a frame it sent, for a receiver in the same process:
    capture time (time.monotonic() seconds), the face crop RGB uint8 (S, S, 3) or None, and
    whether the face was missing (the code is the last good one again)."""

    captured_at: float
    crop: np.ndarray | None
    no_face: bool


class SentFrameLog:
    """The most recent sent frames by codec sequence number (thread-safe, bounded).

    Lets a receiver in the same process measure capture -> output latency on one clock and show
    the driver's crop beside the avatar. Codes never carry images; this stays in the process.
    """

    def __init__(self, capacity: int = 256):
        self._frames: collections.OrderedDict[int, SentFrame] = collections.OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def add(self, sequence: int, frame: SentFrame) -> None:
        with self._lock:
            self._frames[sequence] = frame
            while len(self._frames) > self._capacity:
                self._frames.popitem(last=False)

    def get(self, sequence: int) -> SentFrame | None:
        with self._lock:
            return self._frames.get(sequence)


@dataclass
class SenderCounts:
    sent: int = 0               # packets sent (one per frame once a face has been seen)
    no_face_frames: int = 0
    before_first_face: int = 0  # no code yet (no face, or no mesh the prior trusts, so far): not sent
    packet_bytes: int = 0


class CodeSender:
    """Runs the sender half on frames from a queue until the queue is finished or `abort` is set."""

    def __init__(self, pipeline: TalkingHeadPipeline, tracker: FaceTracker, transport: PacketSender,
                 log: SentFrameLog | None = None):
        self.pipeline = pipeline
        self.tracker = tracker
        self.transport = transport
        self.log = log
        self.encoder: StreamEncoder | None = None  # given to `run`, once the header is fixed
        self.epoch = 0.0  # time.monotonic() of stream timestamp 0
        self.gate: GeneratorGate | None = None  # given to `run`
        self.counts = SenderCounts()
        self.tracking = StageTimer()
        self.encoding = StageTimer()
        self._last_code: tuple[np.ndarray, ...] | None = None

    def run(self, frames: DropOldestQueue[CapturedFrame], abort: threading.Event,
            encoder: StreamEncoder, epoch: float, gate: GeneratorGate | None = None) -> None:
        """Process frames until `frames` is finished or `abort`; `epoch` is stream time 0.

        gate: the in-process generator's; while it is behind, frames wait in `frames` (whose
        drops then count as "scheduler") instead of being tracked and encoded.
        """
        self.encoder, self.epoch, self.gate = encoder, epoch, gate
        while not abort.is_set():
            if gate is not None and gate.behind():
                with frames.drops_counted_as("scheduler"):
                    gate.wait_until_caught_up(abort)
            frame = frames.get(POLL_S)
            if frame is None:
                if frames.finished:
                    return
                continue
            self.process(frame)

    def process(self, frame: CapturedFrame) -> None:
        assert self.encoder is not None, "CodeSender.process runs inside run()"
        size = self.pipeline.output_size  # the driver panel's size; the encoder averages it down to R
        tick = time.perf_counter()
        track = self.tracker.update(frame.image, frame.captured_at - self.epoch)
        crop = track.box.crop(frame.image, size) if track.box is not None else None
        self.tracking.add(time.perf_counter() - tick)
        if track.face_found:
            mesh = track.box.points_to_crop(track.landmarks, size) if self.pipeline.is_semantic else None
            tick = time.perf_counter()
            code = self.pipeline.encode(crop, mesh)
            self.encoding.add(time.perf_counter() - tick)
            if code is not None:  # None: the prior has trusted no mesh yet
                self._last_code = code_arrays(code)
        else:
            self.counts.no_face_frames += 1
        if self._last_code is None:
            self.counts.before_first_face += 1
            return
        timestamp_ms = max(0, round(1000 * (frame.captured_at - self.epoch)))
        sequence = self.counts.sent
        packet = self.encoder.encode(*self._last_code, timestamp_ms)
        if self.log is not None:
            self.log.add(sequence, SentFrame(frame.captured_at, crop, not track.face_found))
        if self.gate is not None:
            self.gate.sent(sequence)
        self.transport.send(packet)
        self.counts.sent += 1
        self.counts.packet_bytes += len(packet)


def code_arrays(code: Code) -> tuple[np.ndarray, ...]:
    """What the stream's encoder takes of a code: (keypoints (K, 2), Jacobians (K, 2, 2)),
    (pose (6,), expression (E,)), or for a hybrid code (pose, expression, keypoints, Jacobians)."""
    if isinstance(code, HybridCode):
        return code_arrays(code.semantic) + code_arrays(code.learned)
    if isinstance(code, SemanticCode):
        return code.pose, code.expression
    if isinstance(code, Keypoints):
        return code.value[0].cpu().numpy(), code.jacobian[0].cpu().numpy()
    raise TypeError(f"no code stream carries a {type(code).__name__}")

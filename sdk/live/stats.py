"""What a live session did, in one object: counts per stage, rates, latency and stage timings.

Every frame captured ends up either rendered or counted: dropped by a stage (`frames_dropped`)
or held back because no face had been seen yet (`frames_before_first_face`). For a session
that ran to its end with both halves in this process,

    frames_captured == frames_rendered + sum(frames_dropped.values()) + frames_before_first_face
"""
from __future__ import annotations

import collections
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# Stages that can drop a frame, in pipeline order.
DROP_STAGES = ("capture", "scheduler", "transport", "decode", "generator", "output")


@dataclass
class LiveStats:
    """Counters and figures of one `live_camera` session (or of the half that ran here).

    mode: "inproc", "udp-loopback" (both halves here, over UDP on 127.0.0.1), "udp-sender" or
        "udp-receiver".
    frames_dropped: per stage: "capture" (the encoder was busy: oldest frame dropped; or a
        camera delivered faster than its rate: the surplus skipped),
        "transport" (lost, late or overflowing packets), "decode" (packets the codec could not
        decode, e.g. a delta frame whose reference was lost), "generator" (the generator was
        busy: oldest code dropped), "output" (the outputs were busy: oldest frame dropped).
    no_face_frames: frames without a face; each was sent as the last good code again (the
        avatar holds still), or held back when no face had been seen yet.
    flagged_mesh_frames: face-prior models (empty otherwise): frames with a face whose mesh the
        prior did not trust, by status ("missing": NaN points, "out_of_range": a profile beyond
        the prior's yaw / pitch, "poor_fit": a distorted mesh); each was sent as the last good
        code again, or held back before the first good mesh (then in frames_before_first_face).
    fps: frames rendered per second from the first capture (or arrival) to the last output.
    kbps, bytes_per_frame: the code stream (codec packets) at the stream's nominal frame rate;
        wire_kbps: every datagram sent (encryption, handshake, retransmissions) per wall second.
    latency_ms_p50/_p95: capture -> frame handed to the outputs. latency_clock: "shared" when
        this process captured the frame; "estimated" on a receiver half, where the sender's
        clock is unknown: relative to the fastest packet's transit (so transit beyond it counts,
        the fixed part does not).
    tracker_ms, encoder_ms, generator_ms: mean per frame of face tracking + crop, the code
        (keypoint encoder, or the face prior's code of the tracked mesh), and relative motion
        (+ edits) + generator.
    output_size: the side S of rendered frames; paste_back: they were pasted into the whole
        portrait; portrait_upscaled: an avatar's face had fewer than S² pixels (upscaled crop).
    threads: the `ThreadBudget` the stages ran with (intra-op threads per stage, and the cores).
    backend_choice: with backend "auto", what it timed and picked (`BackendChoice.as_dict`;
        for a face-prior model, torch with the "reason").
    edits: the receiver's edits at the end (`Edits.parse` text, "" for none); edit_changes: how
        often the keys (or `LiveControls`) changed them.
    codec: "stream": the stream's kind ("keypoints" or "semantic"), its expression_dims (E sent;
        semantic only) and the codec setting; "encoder" / "decoder": their counters.
    """

    mode: str = ""
    model: str = ""
    backend: str = ""
    camera: str = ""
    avatar: str = ""
    frames_captured: int = 0
    frames_sent: int = 0
    frames_received: int = 0
    frames_rendered: int = 0
    frames_dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_STAGES, 0))
    no_face_frames: int = 0
    frames_before_first_face: int = 0
    flagged_mesh_frames: dict[str, int] = field(default_factory=dict)
    fps: float = 0.0
    capture_fps: float = 0.0
    kbps: float = 0.0
    wire_kbps: float = 0.0
    bytes_per_frame: float = 0.0
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    latency_ms_max: float | None = None
    latency_clock: str = "shared"
    tracker_ms: float = 0.0
    encoder_ms: float = 0.0
    generator_ms: float = 0.0
    output_size: int = 0
    paste_back: bool = False
    portrait_upscaled: bool = False
    seconds: float = 0.0
    stop_reason: str = ""
    reanchors: int = 0
    avatar_switches: int = 0
    edits: str = ""
    edit_changes: int = 0
    threads: dict[str, int] = field(default_factory=dict)
    backend_choice: dict[str, Any] | None = None
    transport: dict[str, Any] = field(default_factory=dict)
    codec: dict[str, Any] = field(default_factory=dict)

    @property
    def frames_dropped_total(self) -> int:
        return sum(self.frames_dropped.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with `frames_dropped_total` added."""
        return {**asdict(self), "frames_dropped_total": self.frames_dropped_total}


class LatencyLog:
    """Latencies in ms of the most recent frames (bounded, for sessions that run for hours)."""

    def __init__(self, capacity: int = 100_000):
        self._values: collections.deque[float] = collections.deque(maxlen=capacity)

    def add(self, milliseconds: float) -> None:
        self._values.append(milliseconds)

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(np.fromiter(self._values, float), q)) if self._values else None

    @property
    def maximum(self) -> float | None:
        return max(self._values) if self._values else None


@dataclass
class StageTimer:
    """Total seconds spent and calls made in one stage; `mean_ms` per call."""

    seconds: float = 0.0
    calls: int = 0

    def add(self, seconds: float) -> None:
        self.seconds += seconds
        self.calls += 1

    @property
    def mean_ms(self) -> float:
        return 1000.0 * self.seconds / self.calls if self.calls else 0.0

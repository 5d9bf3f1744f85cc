"""The receiver's jitter buffer: frames out in sequence order, gaps given up after a short wait.

A frame that arrives while an earlier one is missing is held until the missing one arrives or
`JitterConfig.gap_wait_s` has passed since the held frames arrived; then the gap is counted as
lost and play moves on. The buffer never holds more than `capacity` frames: when the reader
falls behind, a gap holding frames up is given up, else the oldest frame is dropped and
counted, so latency stays bounded.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JitterConfig:
    gap_wait_s: float = 0.06   # how long a later frame waits for a missing one (reordering tolerance)
    capacity: int = 16         # frames held at most

    def __post_init__(self) -> None:
        if self.gap_wait_s < 0 or self.capacity < 1:
            raise ValueError(f"JitterConfig: gap_wait_s >= 0 and capacity >= 1 required, got {self}")


@dataclass
class JitterCounts:
    lost: int = 0          # frame numbers never delivered because they did not arrive in time
    reordered: int = 0     # frames that arrived after a later-numbered frame (still delivered in order)
    late: int = 0          # frames that arrived after play had moved past them (dropped)
    overflow: int = 0      # frames dropped because the reader fell behind by more than `capacity`
    duplicates: int = 0    # a number already held (the replay window normally stops these first)


class JitterBuffer:
    """Frame numbers start at 0 per session; payloads are opaque bytes."""

    def __init__(self, config: JitterConfig = JitterConfig()):
        self.config = config
        self.counts = JitterCounts()
        self.next_number = 0
        self.highest = -1
        self._held: dict[int, tuple[float, bytes]] = {}  # number -> (arrival time, payload)

    def __len__(self) -> int:
        return len(self._held)

    def push(self, number: int, payload: bytes, now: float) -> None:
        if number < self.next_number:
            self.counts.late += 1
            return
        if number in self._held:
            self.counts.duplicates += 1
            return
        if number < self.highest:
            self.counts.reordered += 1
        self.highest = max(self.highest, number)
        self._held[number] = (now, payload)
        if len(self._held) > self.config.capacity:
            oldest = min(self._held)
            if oldest != self.next_number:  # a gap holds the frames up: give it up, drop nothing
                self.counts.lost += oldest - self.next_number
            else:                           # the reader is behind: drop its oldest frame
                del self._held[oldest]
                self.counts.overflow += 1
                oldest += 1
            self.next_number = oldest

    def holds(self, number: int) -> bool:
        return number in self._held

    def pop(self, now: float) -> bytes | None:
        """The next frame in order if it is due, else None."""
        if not self._held:
            return None
        if self.next_number not in self._held:
            deadline = self.gap_deadline()
            if deadline is None or now < deadline:
                return None
            first = min(self._held)
            self.counts.lost += first - self.next_number
            self.next_number = first
        _, payload = self._held.pop(self.next_number)
        self.next_number += 1
        return payload

    def gap_deadline(self) -> float | None:
        """When the current gap will be given up (None when nothing waits on a gap)."""
        if not self._held or self.next_number in self._held:
            return None
        return min(arrival for arrival, _ in self._held.values()) + self.config.gap_wait_s

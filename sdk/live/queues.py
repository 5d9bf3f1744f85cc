"""The hand-offs between the stages of a live session: bounded queues, and the generator gate.

A live stream must not build up latency: when the consumer falls behind, the producer's `put`
drops the OLDEST waiting item (the freshest frame is the one worth showing) and counts it, so
a queue never holds more than `capacity` items and every drop shows up in the stats, under the
label of why it happened (`DropOldestQueue.drops_counted_as`).

`GeneratorGate` is the scheduler's hand-off from the sender to a generator in the same process:
while the generator is rendering and a code already waits for it, the sender takes no new frame,
so no frame is tracked and encoded only for its code to be dropped at the generator; the camera's
newest frame replaces the waiting one meanwhile (latest frame wins), and those drops count as
"scheduler".
"""
from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")
POLL_S = 0.05  # how often a stage waiting on a queue looks at its stop flags
# How long a code sent to an in-process generator may be in transit (a starved network thread,
# the jitter buffer) before the sender stops waiting for it to arrive (it may have been lost).
TRANSIT_GRACE_S = 0.1


class DropOldestQueue(Generic[T]):
    """A FIFO of at most `capacity` items for one producer and one consumer thread.

    The producer calls `put` (drops the oldest item when full) or `put_waiting` (waits for room:
    for sources that are not live, e.g. an unpaced video file) and finally `close`; the consumer
    calls `get` until `finished`.
    """

    def __init__(self, capacity: int, name: str):
        if capacity < 1:
            raise ValueError(f"queue {name!r}: capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.name = name
        self.drops: collections.Counter[str] = collections.Counter()  # by label; `name` unless relabelled
        self._drop_label = name
        self._items: collections.deque[T] = collections.deque()
        self._changed = threading.Condition()
        self._closed = False

    @property
    def dropped(self) -> int:
        """Items dropped, whatever the label."""
        with self._changed:
            return sum(self.drops.values())

    def put(self, item: T) -> None:
        """Append `item`; when full, drop the oldest waiting item and count it."""
        with self._changed:
            if len(self._items) >= self.capacity:
                self._items.popleft()
                self.drops[self._drop_label] += 1
            self._items.append(item)
            self._changed.notify_all()

    @contextmanager
    def drops_counted_as(self, label: str) -> Iterator[None]:
        """Count the drops during the block under `label` (the consumer says why it is not taking items)."""
        with self._changed:
            previous, self._drop_label = self._drop_label, label
        try:
            yield
        finally:
            with self._changed:
                self._drop_label = previous

    def put_waiting(self, item: T, cancel: threading.Event) -> bool:
        """Append `item` once there is room; False (item not queued) if `cancel` is set first."""
        with self._changed:
            while len(self._items) >= self.capacity:
                if cancel.is_set():
                    return False
                self._changed.wait(POLL_S)
            self._items.append(item)
            self._changed.notify_all()
            return True

    def get(self, timeout_s: float) -> T | None:
        """The oldest item, or None when none arrives within `timeout_s` (see `finished`)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not self._items:
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    return None
                self._changed.wait(remaining)
            item = self._items.popleft()
            self._changed.notify_all()
            return item

    def close(self) -> None:
        """The producer is done: `get` returns what is left, then `finished` becomes true."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def finished(self) -> bool:
        with self._changed:
            return self._closed and not self._items

    def __len__(self) -> int:
        with self._changed:
            return len(self._items)

    def newest(self) -> T | None:
        """The most recently queued item still waiting (left in the queue), or None."""
        with self._changed:
            return self._items[-1] if self._items else None


class GeneratorGate:
    """Whether an in-process generator is behind: a newer code than the one it renders already
    waits for it (queued, or sent and still in transit), or two wait while it is between renders.

    The sender calls `sent` for each code and `wait_until_caught_up` before it takes a frame;
    the generator wraps each render in `rendering`. A code counts as in transit for at most
    `transit_grace_s` after it was sent (a lost packet must not hold the sender for good).
    """

    def __init__(self, codes: DropOldestQueue[T], sequence_of: Callable[[T], int],
                 transit_grace_s: float = TRANSIT_GRACE_S):
        """codes: the generator's queue; sequence_of: a queued item's code sequence number."""
        self._codes = codes
        self._sequence_of = sequence_of
        self._grace_s = transit_grace_s
        self._changed = threading.Condition()
        self._rendering = False
        self._last_taken = -1  # the sequence number the generator took last
        self._last_sent = -1
        self._last_sent_at = 0.0
        self.holds = 0  # times the sender waited

    def sent(self, sequence: int) -> None:
        """The sender hands code `sequence` to the transport."""
        with self._changed:
            self._last_sent, self._last_sent_at = sequence, time.monotonic()

    def behind(self) -> bool:
        with self._changed:
            return self._behind_for(time.monotonic()) is not None

    def _behind_for(self, now: float) -> float | None:
        """None when not behind; else how long (s) to wait before looking again."""
        queued = len(self._codes)
        newest = self._codes.newest()
        arrived = self._last_taken if newest is None else max(self._last_taken, self._sequence_of(newest))
        transit_left = self._last_sent_at + self._grace_s - now
        in_transit = self._last_sent > arrived and transit_left > 0
        waiting = queued + in_transit
        if waiting < (1 if self._rendering else 2):
            return None
        return min(POLL_S, transit_left) if in_transit else POLL_S

    @contextmanager
    def rendering(self, sequence: int) -> Iterator[None]:
        """The generator renders code `sequence`, which it took from the queue."""
        with self._changed:
            self._rendering, self._last_taken = True, sequence
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._rendering = False
                self._changed.notify_all()

    def wait_until_caught_up(self, abort: threading.Event) -> None:
        """Return once the generator is not behind (or `abort` is set)."""
        with self._changed:
            wait_s = self._behind_for(time.monotonic())
            if wait_s is not None:
                self.holds += 1
            while wait_s is not None and not abort.is_set():
                self._changed.wait(wait_s)
                wait_s = self._behind_for(time.monotonic())

"""The bounded queue between two stages of a live session.

A live stream must not build up latency: when the consumer falls behind, the producer's `put`
drops the OLDEST waiting item (the freshest frame is the one worth showing) and counts it, so
a queue never holds more than `capacity` items and every drop shows up in the stats.
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Generic, TypeVar

T = TypeVar("T")
POLL_S = 0.05  # how often a stage waiting on a queue looks at its stop flags


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
        self.dropped = 0
        self._items: collections.deque[T] = collections.deque()
        self._changed = threading.Condition()
        self._closed = False

    def put(self, item: T) -> None:
        """Append `item`; when full, drop the oldest waiting item and count it."""
        with self._changed:
            if len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._changed.notify_all()

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

"""Steering a running session: quit, re-anchor the neutral pose, switch avatar, toggle the input view.

The window's keys call these methods; an app (or an `on_frame` callback) can call them too, from
any thread. The generator thread applies `reanchor` and avatar steps before its next frame.
"""
from __future__ import annotations

import threading

# key -> what it does (shown in the window title and by `python -m sdk live --help`)
KEY_BINDINGS: dict[str, str] = {
    "q": "quit (also Esc)",
    "a": "re-anchor: the current pose becomes the neutral pose (also space)",
    "n": "next avatar from the portrait folder",
    "p": "previous avatar",
    "s": "show the input crop side by side (toggle)",
}
ESCAPE = 27


class LiveControls:
    """Thread-safe requests to a running `live_camera` session."""

    def __init__(self, side_by_side: bool = False):
        self._lock = threading.Lock()
        self._quit = threading.Event()
        self._reanchor = False
        self._avatar_steps = 0
        self._side_by_side = side_by_side

    def quit(self) -> None:
        """Stop capturing; frames already in flight are still rendered, then the session ends."""
        self._quit.set()

    @property
    def quit_requested(self) -> threading.Event:
        return self._quit

    def reanchor(self) -> None:
        """The next rendered code becomes the driver's neutral pose for relative motion."""
        with self._lock:
            self._reanchor = True

    def next_avatar(self) -> None:
        with self._lock:
            self._avatar_steps += 1

    def previous_avatar(self) -> None:
        with self._lock:
            self._avatar_steps -= 1

    def toggle_side_by_side(self) -> None:
        with self._lock:
            self._side_by_side = not self._side_by_side

    @property
    def side_by_side(self) -> bool:
        with self._lock:
            return self._side_by_side

    def take_generator_requests(self) -> tuple[bool, int]:
        """(re-anchor?, avatar steps) asked since the last call; for the generator thread."""
        with self._lock:
            requests = (self._reanchor, self._avatar_steps)
            self._reanchor, self._avatar_steps = False, 0
            return requests

    def handle_key(self, key: int) -> bool:
        """Apply a key code from `cv2.waitKey` (-1: none); True if it was one of KEY_BINDINGS."""
        if key < 0:
            return False
        char = chr(key & 0xFF).lower()
        if key & 0xFF == ESCAPE or char == "q":
            self.quit()
        elif char in ("a", " "):
            self.reanchor()
        elif char == "n":
            self.next_avatar()
        elif char == "p":
            self.previous_avatar()
        elif char == "s":
            self.toggle_side_by_side()
        else:
            return False
        return True

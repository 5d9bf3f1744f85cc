"""Steering a running session: quit, re-anchor the neutral pose, switch avatar, toggle the input view,
and (face-prior models) nudge the pose and expression edits.

The window's keys call these methods; an app (or an `on_frame` callback) can call them too, from
any thread. The generator thread applies `reanchor`, avatar steps and edits before its next frame.
Edits act on the receiver only (`TalkingHeadPipeline.edits`): the code stream is the driver's.
"""
from __future__ import annotations

import dataclasses
import logging
import threading

from ..errors import SdkError
from ..prior import CONTROL_NAMES, CONTROL_SPECS, Edits

log = logging.getLogger(__name__)

ANGLE_STEP = 5.0  # degrees per key press
CONTROL_STEP = 0.25  # control level per key press
FREEZE_CYCLE = ("none", "pose", "expression", "all")

# key -> what it does (shown in the window title, up to " (", and by `python -m sdk live --help`)
KEY_BINDINGS: dict[str, str] = {
    "q": "quit (also Esc)",
    "a": "re-anchor: the current pose becomes the neutral pose (also space)",
    "n": "next avatar from the portrait folder",
    "p": "previous avatar",
    "s": "show the input crop side by side (toggle)",
    "j/l": f"yaw +/-{ANGLE_STEP:g} deg (face-prior models; also the left / right arrows: the head turns "
           "towards the image's left / right)",
    "i/k": f"pitch -/+{ANGLE_STEP:g} deg (face-prior models; also the up / down arrows: the head tilts up / down)",
    "u/o": f"roll -/+{ANGLE_STEP:g} deg (face-prior models: the head leans counter-clockwise / clockwise)",
    "1-6": f"raise {', '.join(CONTROL_NAMES)} (face-prior models; by {CONTROL_STEP:g} per press, "
           "past its top it is off again)",
    "f": f"freeze: cycle {', '.join(FREEZE_CYCLE)} (face-prior models)",
    "0": "reset the edits (face-prior models: none)",
}
ESCAPE = 27
LEFT, UP, RIGHT, DOWN = "left", "up", "right", "down"
# cv2.waitKeyEx codes of the arrow keys: GTK / X11 keysyms (modifier state above bit 16, masked
# off), Windows virtual keys << 16, macOS function-key characters.
ARROW_KEYS = {0xFF51: LEFT, 0xFF52: UP, 0xFF53: RIGHT, 0xFF54: DOWN,
              0x250000: LEFT, 0x260000: UP, 0x270000: RIGHT, 0x280000: DOWN,
              0xF702: LEFT, 0xF700: UP, 0xF703: RIGHT, 0xF701: DOWN}
EDIT_CHARACTERS = frozenset("0123456f")
# key -> (angle, degrees) of one press
ANGLE_KEYS = {"j": ("yaw", ANGLE_STEP), LEFT: ("yaw", ANGLE_STEP), "l": ("yaw", -ANGLE_STEP),
              RIGHT: ("yaw", -ANGLE_STEP), "i": ("pitch", -ANGLE_STEP), UP: ("pitch", -ANGLE_STEP),
              "k": ("pitch", ANGLE_STEP), DOWN: ("pitch", ANGLE_STEP), "u": ("roll", -ANGLE_STEP),
              "o": ("roll", ANGLE_STEP)}


def format_edits(edits: Edits) -> str:
    """The `Edits.parse` text of `edits` ("" when there are none), e.g. "yaw=15,smile=0.5,freeze=pose"."""
    parts = [f"{name}={getattr(edits, name):g}" for name in ("yaw", "pitch", "roll") if getattr(edits, name)]
    parts += [f"{name}={level:g}" for name, level in edits.controls]
    freeze = {(True, True): "all", (True, False): "pose", (False, True): "expression"}.get(
        (edits.freeze_pose, edits.freeze_expression))
    if freeze:
        parts.append(f"freeze={freeze}")
    return ",".join(parts)


def raised_control(edits: Edits, name: str) -> Edits:
    """`edits` with control `name` one CONTROL_STEP higher (CONTROL_STEP when not set), or without
    it once that would pass the control's top (off: the driver's expression reads again)."""
    high = CONTROL_SPECS[CONTROL_NAMES.index(name)].high
    levels = dict(edits.controls)
    if name not in levels:
        levels[name] = CONTROL_STEP
    elif levels[name] + CONTROL_STEP > high + 1e-9:
        del levels[name]
    else:
        levels[name] += CONTROL_STEP
    return dataclasses.replace(edits, controls=tuple(levels.items()))


def next_freeze(edits: Edits) -> Edits:
    """`edits` with the next freeze mode of FREEZE_CYCLE."""
    current = {(False, False): "none", (True, False): "pose", (False, True): "expression", (True, True): "all"}[
        (edits.freeze_pose, edits.freeze_expression)]
    mode = FREEZE_CYCLE[(FREEZE_CYCLE.index(current) + 1) % len(FREEZE_CYCLE)]
    return dataclasses.replace(edits, freeze_pose=mode in ("pose", "all"),
                               freeze_expression=mode in ("expression", "all"))


class LiveControls:
    """Thread-safe requests to a running `live_camera` session.

    edits: the receiver's pose and expression edits (`sdk.prior.Edits`); the session sets them
    from `LiveConfig.edits` and enables the edit keys when its model is a face-prior one.
    """

    def __init__(self, side_by_side: bool = False):
        self._lock = threading.Lock()
        self._quit = threading.Event()
        self._reanchor = False
        self._avatar_steps = 0
        self._side_by_side = side_by_side
        self._edits = Edits()
        self._edits_changed = False
        self._editable = False
        self._told_not_editable = False

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

    # -- edits (face-prior models) -----------------------------------------------------------

    def enable_edits(self, edits: Edits = Edits()) -> None:
        """The session's model takes edits: start from `edits`, and let the edit keys change them."""
        with self._lock:
            self._editable = True
            self._edits = edits
            self._edits_changed = True

    @property
    def editable(self) -> bool:
        with self._lock:
            return self._editable

    @property
    def edits(self) -> Edits:
        with self._lock:
            return self._edits

    def set_edits(self, edits: Edits) -> None:
        """Replace the edits (applied from the next rendered frame); an SdkError without a face-prior model."""
        self._change(lambda _: edits)

    def nudge(self, **changes: float) -> None:
        """Move angles (degrees) or controls (levels) by `changes`, clamped (`Edits.nudged`)."""
        self._change(lambda edits: edits.nudged(**changes))

    def raise_control(self, name: str) -> None:
        """Raise control `name` by CONTROL_STEP; past its top it is off again (`raised_control`)."""
        self._change(lambda edits: raised_control(edits, name))

    def cycle_freeze(self) -> None:
        self._change(next_freeze)

    def reset_edits(self) -> None:
        self._change(lambda _: Edits())

    def _change(self, change) -> None:
        with self._lock:
            if not self._editable:
                raise SdkError("pose and expression edits need a face-prior model (e.g. dagan++-mobile-prior)")
            self._edits = change(self._edits)
            self._edits_changed = True
            edits = self._edits
        log.info("edits: %s", format_edits(edits) or "none")

    def take_edits(self) -> Edits | None:
        """The edits when they changed since the last call, else None; for the generator thread."""
        with self._lock:
            changed, self._edits_changed = self._edits_changed, False
            return self._edits if changed else None

    def take_generator_requests(self) -> tuple[bool, int]:
        """(re-anchor?, avatar steps) asked since the last call; for the generator thread."""
        with self._lock:
            requests = (self._reanchor, self._avatar_steps)
            self._reanchor, self._avatar_steps = False, 0
            return requests

    # -- keys --------------------------------------------------------------------------------

    def handle_key(self, key: int) -> bool:
        """Apply a key code from `cv2.waitKeyEx` (or `cv2.waitKey`; -1: none); True if it was one of
        KEY_BINDINGS. Edit keys do nothing (False) unless the model takes edits."""
        if key < 0:
            return False
        name = ARROW_KEYS.get(key) or ARROW_KEYS.get(key & 0xFFFF)
        if name is None:
            low = key & 0xFFFF
            if low > 0xFF:
                return False  # another special key (function keys, modifiers): not a character
            if low == ESCAPE:
                self.quit()
                return True
            name = chr(low).lower()
        if name == "q":
            self.quit()
        elif name in ("a", " "):
            self.reanchor()
        elif name == "n":
            self.next_avatar()
        elif name == "p":
            self.previous_avatar()
        elif name == "s":
            self.toggle_side_by_side()
        elif name in ANGLE_KEYS or name in EDIT_CHARACTERS:
            return self._edit_key(name)
        else:
            return False
        return True

    def _edit_key(self, name: str) -> bool:
        if not self.editable:
            if not self._told_not_editable:
                log.info("edit keys (j/l, i/k, u/o, 1-6, f, 0) need a face-prior model")
                self._told_not_editable = True
            return False
        if name in ANGLE_KEYS:
            angle, step = ANGLE_KEYS[name]
            self.nudge(**{angle: step})
        elif name == "f":
            self.cycle_freeze()
        elif name == "0":
            self.reset_edits()
        else:
            self.raise_control(CONTROL_NAMES[int(name) - 1])
        return True

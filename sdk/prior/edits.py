"""Pose and expression edits on top of a driving motion (issue 12 item 5): `yaw=15,smile=0.5,freeze=pose`.

An edit acts on the `MotionDelta` the receiver drives the avatar with, after relative motion:

- yaw / pitch / roll: degrees added to the head's rotation, in camera axes (as `POSE_NAMES`:
  yaw > 0 turns towards the image's left, pitch > 0 tilts down, roll > 0 leans clockwise),
  composed on top of the driver's rotation; the rig turns the head by them about the neck
  (`MotionDelta.turn`, `sdk.prior.canonical.NECK_PIVOT`), as a head turns, so the whole face
  moves with the turn, not only the nose;
- a named expression control (`sdk.prior.CONTROL_NAMES`, or `eyes_closed`) is set to a level
  (`ControlMap.apply`: the other controls read as before);
- freeze=pose: the avatar keeps its portrait's pose (only expression is driven); freeze=expression:
  its portrait's expression (only pose is driven); freeze=all: both (a still portrait, edits apply).

Values out of range are clamped with a `ControlRangeWarning` when the edits are made: angles to
±ANGLE_LIMITS (beyond them a one-image model has not seen the head; the prior flags driver frames
past 60° yaw), controls to their own range (`CONTROL_SPECS`).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np

from ..errors import SdkError
from ..face.pose import rotation_from_angles
from .code import MotionDelta
from .controls import ALIASES, CONTROL_NAMES, CONTROL_SPECS, ControlRangeWarning
from .prior_file import FacePrior

ANGLE_LIMITS = {"yaw": 45.0, "pitch": 30.0, "roll": 30.0}
FREEZE_MODES = ("pose", "expression", "all", "none")


class EditError(SdkError):
    """An edit string or value that cannot be understood (unknown name, not a number)."""


@dataclass(frozen=True)
class Edits:
    """yaw, pitch, roll: degrees added to the head rotation; controls: (name, level) pairs set on
    the expression; freeze_pose / freeze_expression: keep the portrait's own pose / expression."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    controls: tuple[tuple[str, float], ...] = ()
    freeze_pose: bool = False
    freeze_expression: bool = False

    def __post_init__(self) -> None:
        for name, limit in ANGLE_LIMITS.items():
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise EditError(f"edit {name}={value}: not a finite number of degrees")
            clamped = min(max(value, -limit), limit)
            if clamped != value:
                warnings.warn(f"edit {name}={value:g} is outside ±{limit:g}°: clamped to {clamped:g}",
                              ControlRangeWarning, stacklevel=3)
            object.__setattr__(self, name, clamped)
        names = CONTROL_NAMES + tuple(ALIASES)
        controls = []
        for name, level in self.controls:
            if name not in names:
                raise EditError(f"unknown edit {name!r}: use yaw, pitch, roll, freeze or one of {', '.join(names)}")
            level = float(level)
            if not math.isfinite(level):
                raise EditError(f"edit {name}={level}: not a finite number")
            spec = CONTROL_SPECS[CONTROL_NAMES.index(ALIASES.get(name, (name,))[0])]
            clamped = min(max(level, spec.low), spec.high)
            if clamped != level:
                warnings.warn(f"edit {name}={level:g} is outside [{spec.low:g}, {spec.high:g}]: clamped to {clamped:g}",
                              ControlRangeWarning, stacklevel=3)
            controls.append((name, clamped))
        object.__setattr__(self, "controls", tuple(controls))

    @classmethod
    def parse(cls, text: str) -> Edits:
        """'yaw=15,smile=0.5,freeze=pose' -> Edits (an empty string: no edit)."""
        fields: dict[str, float] = {}
        controls: dict[str, float] = {}
        freeze = "none"
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, sep, value = item.partition("=")
            name, value = name.strip(), value.strip()
            if not sep or not value:
                raise EditError(f"edit {item!r} is not NAME=VALUE (e.g. yaw=15,smile=0.5,freeze=pose)")
            if name == "freeze":
                if value not in FREEZE_MODES:
                    raise EditError(f"freeze={value!r}: use one of {', '.join(FREEZE_MODES)}")
                freeze = value
                continue
            try:
                number = float(value)
            except ValueError:
                raise EditError(f"edit {name}={value!r}: not a number") from None
            (fields if name in ANGLE_LIMITS else controls)[name] = number
        return cls(**fields, controls=tuple(controls.items()),
                   freeze_pose=freeze in ("pose", "all"), freeze_expression=freeze in ("expression", "all"))

    @property
    def is_identity(self) -> bool:
        """True when applying these edits changes nothing."""
        return self == Edits()

    def nudged(self, **changes: float) -> Edits:
        """These edits with angles or controls moved by `changes` (e.g. yaw=5: five degrees more),
        clamped to their ranges (the live window's keys)."""
        controls = dict(self.controls)
        angles: dict[str, float] = {}
        for name, step in changes.items():
            if name in ANGLE_LIMITS:
                limit = ANGLE_LIMITS[name]
                angles[name] = min(max(getattr(self, name) + step, -limit), limit)
            else:
                spec = CONTROL_SPECS[CONTROL_NAMES.index(ALIASES.get(name, (name,))[0])]
                controls[name] = min(max(controls.get(name, 0.0) + step, spec.low), spec.high)
        return replace(self, **angles, controls=tuple(controls.items()))

    def apply(self, motion: MotionDelta, prior: FacePrior) -> MotionDelta:
        """The driver's `motion` with these edits on top (the expression padded to the prior's E
        when controls are set, so a stream of fewer dimensions can still be edited)."""
        if self.is_identity:
            return motion
        rotation, translation, log_scale, turn = motion.rotation, motion.translation, motion.log_scale, motion.turn
        if self.freeze_pose:
            rotation, translation, log_scale, turn = np.eye(3), np.zeros(2), 0.0, None
        if self.yaw or self.pitch or self.roll:
            offset = rotation_from_angles(self.yaw, self.pitch, self.roll)
            rotation = offset @ rotation
            turn = offset if turn is None else offset @ turn
        expression = np.zeros_like(motion.expression) if self.freeze_expression else motion.expression
        if self.controls:
            padded = np.zeros(prior.components)
            used = min(len(expression), prior.components)
            padded[:used] = expression[:used]
            expression = prior.apply_controls(padded, dict(self.controls))
        return MotionDelta(rotation, translation, log_scale, expression, turn)


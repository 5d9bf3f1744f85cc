"""Named expression controls on top of the expression basis: mouth_open, smile, eyes_closed, brows_up, ...

Each control is a measured mesh feature (`sdk.prior.features`) as a change from the clip's
neutral, in units of the train data's spread:

| control | feature | sign | range | 1.0 means |
| --- | --- | --- | --- | --- |
| mouth_open | lip_gap | + | [0, 1] | the train split's 99th percentile of lip-gap increase (a wide-open mouth) |
| smile | mouth_width | + | [-1, 1] | the 99th percentile of corner-spread change; negative: narrower (pursed) |
| right_eye_closed, left_eye_closed | right/left_eye_gap | - | [0, 1] | the whole neutral lid gap (1 = shut) |
| brows_up | brow_height | + | [-1, 1] | the 99th percentile of brow-height change; negative: lowered (frown) |
| jaw_left_right | jaw_x | + | [-1, 1] | the 99th percentile of chin shift; + is to the image's right |

`eyes_closed` sets both eyes. Two linear maps, found by least squares on the train frames, tie
the controls to the basis: `to_coefficients` (M, E) gives the coefficient change that a unit of
each control makes ("what a smile looks like"), `from_coefficients` (E, M) reads control values
off coefficients (deltas from a neutral). `apply` sets the named controls to the requested
levels and leaves the other controls' readings and the rest of the expression as they were.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import SdkError
from .features import feature_index


class ControlRangeWarning(UserWarning):
    """An edit (an expression control, or a head-rotation offset of `sdk.prior.edits`) was outside its range and was clamped."""


@dataclass(frozen=True)
class ControlSpec:
    """One control: `feature` (a name in FEATURE_NAMES) times `sign`, divided by the fitted unit,
    valid in [low, high]; unit "p99" (the 99th percentile of the signed change on the train
    frames; of |change| for a two-sided range) or "neutral" (the mean neutral feature value)."""

    name: str
    feature: str
    sign: float
    low: float
    high: float
    unit: str


CONTROL_SPECS = (
    ControlSpec("mouth_open", "lip_gap", 1.0, 0.0, 1.0, "p99"),
    ControlSpec("smile", "mouth_width", 1.0, -1.0, 1.0, "p99"),
    ControlSpec("right_eye_closed", "right_eye_gap", -1.0, 0.0, 1.0, "neutral"),
    ControlSpec("left_eye_closed", "left_eye_gap", -1.0, 0.0, 1.0, "neutral"),
    ControlSpec("brows_up", "brow_height", 1.0, -1.0, 1.0, "p99"),
    ControlSpec("jaw_left_right", "jaw_x", 1.0, -1.0, 1.0, "p99"),
)
CONTROL_NAMES = tuple(spec.name for spec in CONTROL_SPECS)
ALIASES = {"eyes_closed": ("right_eye_closed", "left_eye_closed")}


@dataclass(frozen=True)
class ControlMap:
    """units (M,) feature change per control unit (canonical units); to_coefficients (M, E);
    from_coefficients (E, M); M = len(CONTROL_SPECS), in that order."""

    units: np.ndarray
    to_coefficients: np.ndarray
    from_coefficients: np.ndarray

    def __post_init__(self) -> None:
        m = len(CONTROL_SPECS)
        e = self.to_coefficients.shape[-1]
        if self.units.shape != (m,) or self.to_coefficients.shape != (m, e) or self.from_coefficients.shape != (e, m):
            raise ValueError(f"control map shapes {self.units.shape}, {self.to_coefficients.shape}, "
                             f"{self.from_coefficients.shape} do not fit {m} controls")

    @staticmethod
    def names() -> tuple[str, ...]:
        """Every name `apply` accepts: the controls and their aliases."""
        return CONTROL_NAMES + tuple(ALIASES)

    def control_values(self, feature_deltas: np.ndarray) -> np.ndarray:
        """feature_deltas (..., 6) (measured features minus the neutral's) -> (..., M) control values."""
        signed = np.stack([spec.sign * feature_deltas[..., feature_index(spec.feature)] for spec in CONTROL_SPECS], -1)
        return signed / self.units

    def read(self, coefficients: np.ndarray) -> np.ndarray:
        """coefficients (..., E') of an expression relative to a neutral -> (..., M) estimated control values."""
        return coefficients @ self.from_coefficients[: coefficients.shape[-1]]

    def clamp(self, values: Mapping[str, float]) -> dict[str, float]:
        """Validated control levels {control: value} (aliases expanded, out-of-range values clamped
        with a ControlRangeWarning). Unknown names and non-finite values are an SdkError."""
        levels: dict[str, float] = {}
        for name, value in values.items():
            targets = ALIASES.get(name, (name,))
            if targets[0] not in CONTROL_NAMES:
                raise SdkError(f"unknown expression control {name!r} (known: {', '.join(self.names())})")
            value = float(value)
            if not math.isfinite(value):
                raise SdkError(f"expression control {name}={value}: not a number")
            for target in targets:
                spec = CONTROL_SPECS[CONTROL_NAMES.index(target)]
                clamped = min(max(value, spec.low), spec.high)
                if clamped != value:
                    warnings.warn(f"expression control {name}={value:g} is outside [{spec.low:g}, {spec.high:g}]: "
                                  f"clamped to {clamped:g}", ControlRangeWarning, stacklevel=2)
                levels[target] = clamped
        return levels

    def apply(self, coefficients: np.ndarray, values: Mapping[str, float]) -> np.ndarray:
        """coefficients (E',) relative to a neutral, E' <= E -> (E',) with the named controls set
        to `values` (e.g. {"smile": 0.5}); the other controls read as before."""
        levels = self.clamp(values)
        coefficients = np.asarray(coefficients, dtype=np.float64)
        dims = coefficients.shape[-1]
        current = self.read(coefficients)
        change = np.zeros(len(CONTROL_SPECS))
        for name, level in levels.items():
            index = CONTROL_NAMES.index(name)
            change[index] = level - current[index]
        directions = self.to_coefficients[:, :dims]
        # Solve for the mix of control directions whose reading changes by exactly `change`
        # (the two maps are not exact inverses; least squares when E' is too small for all controls).
        response = directions @ self.from_coefficients[:dims]
        mix = np.linalg.lstsq(response.T, change, rcond=None)[0]
        return coefficients + mix @ directions


def fit_controls(feature_deltas: np.ndarray, coefficient_deltas: np.ndarray,
                 neutral_features: np.ndarray) -> ControlMap:
    """Fit units and both maps on train frames.

    feature_deltas (N, 6): each frame's features minus its clip neutral's; coefficient_deltas
    (N, E): basis coefficients of the same offsets; neutral_features (C, 6): each clip neutral's features.
    """
    units = []
    for spec in CONTROL_SPECS:
        column = feature_index(spec.feature)
        if spec.unit == "neutral":
            unit = float(np.mean(neutral_features[:, column]))
        else:
            signed = spec.sign * feature_deltas[:, column]
            unit = float(np.percentile(np.abs(signed) if spec.low < 0 else signed, 99))
        if not unit > 0:
            raise SdkError(f"control {spec.name}: the fit data does not move {spec.feature} (unit {unit:g})")
        units.append(unit)
    partial = ControlMap(np.array(units), np.zeros((len(CONTROL_SPECS), coefficient_deltas.shape[1])),
                         np.zeros((coefficient_deltas.shape[1], len(CONTROL_SPECS))))
    values = partial.control_values(feature_deltas)
    to_coefficients = np.linalg.lstsq(values, coefficient_deltas, rcond=None)[0]
    from_coefficients = np.linalg.lstsq(coefficient_deltas, values, rcond=None)[0]
    return ControlMap(partial.units, to_coefficients, from_coefficients)

"""Each clip's neutral face: the reference its expression offsets are measured from.

A clip's neutral is the per-coordinate median of its "at rest" frames: those whose inner-lip
gap is in the clip's lowest `mouth_quantile` (mouth closed or nearly) and whose eyes are at least
as open as in the clip's median frame (no blink, no squint). Why not the plain median over all
frames: in talking clips the median mouth is half open and the basis would learn "open" as zero;
a blink-free, closed-mouth median is what a neutral face looks like and is still robust to
tracking outliers. A clip that smiles throughout keeps its smile in the neutral (nothing on the
mesh alone tells a smile from a face shape); with 60-odd identities that averages out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .features import feature_index, measure_features


@dataclass(frozen=True)
class NeutralConfig:
    """mouth_quantile: the share of a clip's frames, by smallest lip gap, that can be at rest.
    min_frames: fewer at-rest frames than this and the whole clip's median is used instead."""

    mouth_quantile: float = 0.25
    min_frames: int = 5

    def __post_init__(self) -> None:
        if not 0.0 < self.mouth_quantile <= 1.0:
            raise ValueError(f"mouth_quantile must be in (0, 1], got {self.mouth_quantile}")


def rest_frames(normalized: np.ndarray, config: NeutralConfig = NeutralConfig()) -> np.ndarray:
    """normalized (T, 478, 3) pose-normalised meshes of one clip -> (T,) bool: the at-rest frames."""
    features = measure_features(normalized)
    lip_gap = features[:, feature_index("lip_gap")]
    eye_gap = features[:, feature_index("right_eye_gap")] + features[:, feature_index("left_eye_gap")]
    rest = (lip_gap <= np.quantile(lip_gap, config.mouth_quantile)) & (eye_gap >= np.median(eye_gap))
    if rest.sum() < config.min_frames:
        return np.ones(len(normalized), dtype=bool)
    return rest


def clip_neutral(normalized: np.ndarray, config: NeutralConfig = NeutralConfig()) -> np.ndarray:
    """normalized (T, 478, 3) pose-normalised meshes of one clip (no NaN) -> (478, 3) its neutral face."""
    return np.median(normalized[rest_frames(normalized, config)], axis=0)

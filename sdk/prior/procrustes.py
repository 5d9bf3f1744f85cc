"""Weighted similarity Procrustes: the rotation, scale and translation that best map one point set onto another.

    target ≈ scale · source @ rotation.T + translation        (points as rows)

solved in closed form (Umeyama 1991) with per-point weights, so that rigid parts of the face
decide the head pose and the moving mouth and jaw do not. Everything is numpy, batched over
leading axes, and cheap enough to run per frame on a phone (one 3x3 SVD per mesh).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Similarity:
    """x -> scale · R x + translation, batched over leading axes.

    rotation (..., 3, 3) proper rotation; scale (...,) > 0; translation (..., 3).
    """

    rotation: np.ndarray
    scale: np.ndarray
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        """points (..., P, 3) in the source frame -> (..., P, 3) in the target frame."""
        return (self.scale[..., None, None] * points @ np.swapaxes(self.rotation, -1, -2)
                + self.translation[..., None, :])

    def invert(self, points: np.ndarray) -> np.ndarray:
        """points (..., P, 3) in the target frame -> (..., P, 3) in the source frame."""
        return (points - self.translation[..., None, :]) @ self.rotation / self.scale[..., None, None]


def fit_similarity(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> Similarity:
    """The weighted least-squares similarity from `source` to `target`.

    Minimises sum_i w_i |target_i - (s R source_i + t)|² over rotations R (no reflections),
    scales s > 0 and translations t.

    Args:
        source: (P, 3) or (N, P, 3) points, e.g. the canonical face.
        target: (N, P, 3) or (P, 3) points, e.g. observed meshes; broadcast against `source`.
        weights: (P,) non-negative, not all zero (normalised here).
    Returns:
        `Similarity` with leading shape (N,) when either input is batched, () otherwise.
    """
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    source_mean = np.einsum("p,...pc->...c", w, source)
    target_mean = np.einsum("p,...pc->...c", w, target)
    centred_source = source - source_mean[..., None, :]
    centred_target = target - target_mean[..., None, :]
    # Cross-covariance Σ w (target)(source)ᵀ: its SVD gives the rotation (Umeyama eq. 39-43).
    covariance = np.einsum("p,...pi,...pj->...ij", w, centred_target, centred_source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.sign(np.linalg.det(u @ vt))
    sign = np.where(sign == 0, 1.0, sign)
    correction = np.ones(singular.shape)
    correction[..., 2] = sign
    rotation = (u * correction[..., None, :]) @ vt
    source_variance = np.einsum("p,...pc->...", w, centred_source ** 2)
    scale = (singular * correction).sum(-1) / source_variance
    translation = target_mean - scale[..., None] * np.einsum("...ij,...j->...i", rotation, source_mean)
    return Similarity(rotation, np.asarray(scale), translation)

"""The expression basis: principal directions of pose-normalised mesh offsets from each clip's neutral.

An offset is a pose-normalised mesh minus its clip's neutral (478 x 3 numbers, canonical units).
The basis is the uncentred PCA of the train split's offsets: zero offset means "at rest", so the
components are not centred on the mean expression and coefficient 0 is the neutral face. They
are orthonormal (as 1434-vectors) and ordered by energy (mean squared coefficient), so the first
E' of E coefficients are the best E'-dimensional code (the bitrate knob).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..face.landmarks import NUM_LANDMARKS


@dataclass(frozen=True)
class ExpressionBasis:
    """components (E, 478, 3) orthonormal directions; energy (E,) mean squared coefficient of each on
    the fit data; total_energy: mean squared norm of the fit data's offsets (so
    energy.sum() / total_energy is the share of offset energy the E components explain)."""

    components: np.ndarray
    energy: np.ndarray
    total_energy: float

    def __post_init__(self) -> None:
        if self.components.ndim != 3 or self.components.shape[1:] != (NUM_LANDMARKS, 3):
            raise ValueError(f"components must be (E, {NUM_LANDMARKS}, 3), got {self.components.shape}")
        if self.energy.shape != (len(self.components),):
            raise ValueError(f"energy must be ({len(self.components)},), got {self.energy.shape}")
        # Flattened once: encode/decode run per frame.
        object.__setattr__(self, "_matrix", self.components.reshape(len(self.components), -1))

    @property
    def size(self) -> int:
        return len(self.components)

    def explained(self, dims: int | None = None) -> float:
        """Share of the fit data's offset energy that the first `dims` (default all) components explain."""
        return float(self.energy[:dims].sum() / self.total_energy)

    def encode(self, offsets: np.ndarray, dims: int | None = None) -> np.ndarray:
        """offsets (..., 478, 3) -> coefficients (..., dims or E)."""
        flat = offsets.reshape(*offsets.shape[:-2], -1)
        return flat @ self._matrix[:dims].T

    def decode(self, coefficients: np.ndarray) -> np.ndarray:
        """coefficients (..., E') with E' <= E (the first E' components) -> offsets (..., 478, 3)."""
        dims = coefficients.shape[-1]
        if dims > self.size:
            raise ValueError(f"{dims} coefficients for a basis of {self.size} components")
        return (coefficients @ self._matrix[:dims]).reshape(*coefficients.shape[:-1], NUM_LANDMARKS, 3)


def fit_basis(offsets: np.ndarray, components: int) -> ExpressionBasis:
    """offsets (N, 478, 3) of the fit data -> the `components` leading directions (uncentred PCA)."""
    if not 1 <= components <= 3 * NUM_LANDMARKS:
        raise ValueError(f"components must be in [1, {3 * NUM_LANDMARKS}], got {components}")
    flat = offsets.reshape(len(offsets), -1).astype(np.float64)
    second_moment = flat.T @ flat / len(flat)
    energy, vectors = np.linalg.eigh(second_moment)
    order = np.argsort(energy)[::-1][:components]
    directions = vectors[:, order].T
    # A fixed sign per component (largest entry positive) so refits give comparable codes.
    signs = np.sign(directions[np.arange(components), np.abs(directions).argmax(1)])
    directions *= signs[:, None]
    return ExpressionBasis(directions.reshape(components, NUM_LANDMARKS, 3), np.clip(energy[order], 0.0, None),
                           float(np.trace(second_moment)))

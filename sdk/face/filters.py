"""One-Euro filter: adaptive low-pass smoothing for noisy real-time signals.

Casiez, Roussel and Vogel, "1€ Filter: A Simple Speed-based Low-pass Filter for Noisy Input in
Interactive Systems", CHI 2012. The cutoff frequency rises with the signal's speed, so a still
signal is smoothed hard (no jitter) while a moving one is followed with little lag.
"""
from __future__ import annotations

import math

import numpy as np


def _smoothing_factor(cutoff_hz: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Exponential smoothing factor of a first-order low-pass at `cutoff_hz` for a step `dt` seconds."""
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter on a vector signal; every component is filtered independently.

    Args:
        min_cutoff: cutoff frequency in Hz when the signal is still. Lower means less jitter
            and more lag.
        beta: how fast the cutoff rises with speed, in Hz per (signal unit per second). Higher
            means less lag during fast motion. Its scale depends on the signal's units, so
            normalise the signal (e.g. by the face size) to keep one setting for all resolutions.
        d_cutoff: cutoff frequency in Hz of the low-pass applied to the speed estimate.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError(f"OneEuroFilter needs min_cutoff > 0, d_cutoff > 0 and beta >= 0, got "
                             f"min_cutoff={min_cutoff}, beta={beta}, d_cutoff={d_cutoff}")
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def reset(self) -> None:
        """Forget the signal's history; the next `update` returns its input unchanged."""
        self._x = self._dx = self._t = None

    def update(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filter one sample.

        Args:
            x: the sample, any shape (kept across calls), float.
            t: its time in seconds; must increase strictly from call to call.

        Returns:
            The filtered sample as a new float64 array of x's shape.
        """
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or self._dx is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        if x.shape != self._x.shape:
            raise ValueError(f"OneEuroFilter got a sample of shape {x.shape}, expected {self._x.shape}")
        dt = float(t) - self._t
        if not dt > 0:
            raise ValueError(f"OneEuroFilter needs increasing timestamps, got {t} after {self._t}")
        speed = (x - self._x) / dt
        self._dx = self._dx + _smoothing_factor(self.d_cutoff, dt) * (speed - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + _smoothing_factor(cutoff, dt) * (x - self._x)
        self._t = float(t)
        return self._x.copy()

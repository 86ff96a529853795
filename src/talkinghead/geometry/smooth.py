"""Temporal smoothing of per-frame tracks (pure functions, time on axis 0)."""

from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter


def savgol(x: np.ndarray, window: int = 5, order: int = 2) -> np.ndarray:
    """Savitzky-Golay smoothing along time; keeps peaks (mouth motion) better than a box filter.

    Sequences shorter than the window are returned unchanged.
    """
    x = np.asarray(x)
    window = window if window % 2 else window + 1
    if len(x) < window or window <= order:
        return x.copy()
    return savgol_filter(x, window, order, axis=0, mode="interp").astype(x.dtype)


def gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along time with edge reflection (sigma in frames)."""
    from scipy.ndimage import gaussian_filter1d

    if sigma <= 0:
        return np.asarray(x).copy()
    return gaussian_filter1d(np.asarray(x, dtype=np.float64), sigma, axis=0, mode="nearest")

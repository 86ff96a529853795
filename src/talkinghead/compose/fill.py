"""Filling unknown pixels smoothly from known ones (a push-pull pyramid): background plates, depth maps."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["push_pull_fill"]


def push_pull_fill(img: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill unknown pixels from known ones across scales (a smooth, fast inpainting)."""
    if known.all() or not known.any():
        return img
    w = known.astype(np.float32)[..., None]
    levels = [(img * w, w)]
    while min(levels[-1][1].shape[:2]) > 2:
        v, k = levels[-1]
        h2, w2 = (v.shape[0] + 1) // 2, (v.shape[1] + 1) // 2
        v2 = cv2.resize(v, (w2, h2), interpolation=cv2.INTER_AREA).reshape(h2, w2, -1)
        k2 = cv2.resize(k, (w2, h2), interpolation=cv2.INTER_AREA).reshape(h2, w2, 1)
        levels.append((v2, k2))
    v, k = levels[-1]
    filled = v / np.maximum(k, 1e-6)
    for v, k in reversed(levels[:-1]):
        up = cv2.resize(filled, (v.shape[1], v.shape[0]), interpolation=cv2.INTER_LINEAR)
        up = up.reshape(v.shape)
        a = np.clip(k * 4, 0, 1)  # trust local known pixels where coverage is high
        filled = a * v / np.maximum(k, 1e-6) + (1 - a) * up
    out = img.copy()
    out[~known] = filled[~known]
    return out

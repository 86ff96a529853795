"""Feathered masks (float32 in [0, 1]) that say where generated pixels replace recorded ones."""

from __future__ import annotations

import cv2
import numpy as np

from ..geometry import face as mesh

__all__ = ["feathered_polygon", "lower_face_mask"]


def feathered_polygon(points: np.ndarray, shape: tuple[int, int], feather: float) -> np.ndarray:
    """Float mask (H, W): the filled polygon ``points`` (K, 2) pixels, blurred over about ``feather`` px."""
    m = np.zeros(shape, np.float32)
    cv2.fillPoly(m, [np.round(points).astype(np.int32)], 1.0)
    k = int(max(3, feather) * 2) | 1
    return cv2.GaussianBlur(m, (k, k), feather / 2)


def lower_face_mask(landmarks: np.ndarray, shape: tuple[int, int], feather: float) -> np.ndarray:
    """Soft mask (H, W) of the lower face: the face oval with its lower half grown by 12 % away from
    the face centre (room for an opening jaw), feathered. ``landmarks`` (478, 2+) in pixels."""
    pts = landmarks[:, :2].astype(np.float64)
    chin, top = pts[152], pts[10]
    grown = pts[mesh.FACE_OVAL].copy()
    low = grown[:, 1] > pts[[234, 454], 1].mean()
    grown[low] += (grown[low] - (chin + top) / 2) * 0.12  # the jaw drops: grow the lower half
    return feathered_polygon(grown, shape, feather)

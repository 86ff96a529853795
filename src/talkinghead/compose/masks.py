"""Feathered masks (float32 in [0, 1]) that say where generated pixels replace recorded ones."""

from __future__ import annotations

import cv2
import numpy as np

from ..geometry import face as mesh

__all__ = ["feathered_polygon", "lower_face_mask"]


def feathered_polygon(points: np.ndarray, shape: tuple[int, int], feather: float) -> np.ndarray:
    """Float mask (H, W): the filled polygon ``points`` (K, 2) pixels, blurred over about ``feather`` px."""
    m = np.zeros(shape, np.float32)
    poly = np.round(points).astype(np.int32)
    k = int(max(3, feather) * 2) | 1
    # fill and blur only the polygon's box grown by the kernel: the same result (zeros blur to zeros, and
    # where the box meets the frame's edge the blur reflects at that same edge), a fraction of the work
    (x0, y0), (x1, y1) = poly.min(0) - k, poly.max(0) + k + 1
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(shape[1], x1), min(shape[0], y1)
    if x1 <= x0 or y1 <= y0:
        return m
    sub = m[y0:y1, x0:x1]
    cv2.fillPoly(sub, [poly - (x0, y0)], 1.0)
    m[y0:y1, x0:x1] = cv2.GaussianBlur(sub, (k, k), feather / 2)
    return m


def lower_face_mask(landmarks: np.ndarray, shape: tuple[int, int], feather: float) -> np.ndarray:
    """Soft mask (H, W) of the lower face: the face oval with its lower half grown by 12 % away from
    the face centre (room for an opening jaw), feathered. ``landmarks`` (478, 2+) in pixels."""
    pts = landmarks[:, :2].astype(np.float64)
    chin, top = pts[152], pts[10]
    grown = pts[mesh.FACE_OVAL].copy()
    low = grown[:, 1] > pts[[234, 454], 1].mean()
    grown[low] += (grown[low] - (chin + top) / 2) * 0.12  # the jaw drops: grow the lower half
    return feathered_polygon(grown, shape, feather)

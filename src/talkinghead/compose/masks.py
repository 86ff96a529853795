"""Feathered masks (float32 in [0, 1]) that say where generated pixels replace recorded ones."""

from __future__ import annotations

import cv2
import numpy as np

from ..geometry import face as mesh

__all__ = ["below_nose", "eye_mask", "feathered_polygon", "feathered_polygons", "lower_face_mask", "mask_bbox",
           "speech_face_mask"]


def mask_bbox(mask: np.ndarray, above: float = 0.0) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), ends exclusive, of the pixels of ``mask`` (H, W) above ``above``; None when none are."""
    on = mask > above
    rows, cols = np.nonzero(on.any(1))[0], np.nonzero(on.any(0))[0]
    if not len(rows):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def feathered_polygon(points: np.ndarray, shape: tuple[int, int], feather: float) -> np.ndarray:
    """Float mask (H, W): the filled polygon ``points`` (K, 2) pixels, blurred over about ``feather`` px."""
    return feathered_polygons([points], shape, feather)


def feathered_polygons(polys: list[np.ndarray], shape: tuple[int, int], feather: float) -> np.ndarray:
    """Float mask (H, W): the filled polygons (each (K, 2) pixels), blurred over about ``feather`` px."""
    m = np.zeros(shape, np.float32)
    polys = [np.round(p).astype(np.int32) for p in polys]
    k = int(max(3, feather) * 2) | 1
    # fill and blur only the polygons' box grown by the kernel: the same result (zeros blur to zeros, and
    # where the box meets the frame's edge the blur reflects at that same edge), a fraction of the work
    allp = np.concatenate(polys)
    (x0, y0), (x1, y1) = allp.min(0) - k, allp.max(0) + k + 1
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(shape[1], x1), min(shape[0], y1)
    if x1 <= x0 or y1 <= y0:
        return m
    sub = m[y0:y1, x0:x1]
    cv2.fillPoly(sub, [p - (x0, y0) for p in polys], 1.0)
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


def below_nose(landmarks: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """(y1 - y0, x1 - x0) ramp over ``box`` = (x0, y0, x1, y1) pixels along the face's own vertical axis
    (forehead top 10 → chin 152): 0 above a little over the nose tip (landmark 1), 1 from under the nose
    (landmark 2) down: where speech moves the face."""
    pts = landmarks[:, :2].astype(np.float64)
    top, axis = pts[10], pts[152] - pts[10]
    axis = axis / max(float(axis @ axis), 1e-9)  # t = (p - top) . axis: 0 at the forehead's top, 1 at the chin
    t0, t1 = float((pts[1] - top) @ axis) - 0.05, float((pts[2] - top) @ axis)
    x0, y0, x1, y1 = box
    tx = ((np.arange(x0, x1) - top[0]) * axis[0] - t0) / max(t1 - t0, 1e-3)
    ty = (np.arange(y0, y1) - top[1]) * axis[1] / max(t1 - t0, 1e-3)
    return np.clip(ty.astype(np.float32)[:, None] + tx.astype(np.float32)[None, :], 0.0, 1.0)


def speech_face_mask(landmarks: np.ndarray, shape: tuple[int, int], feather: float) -> np.ndarray:
    """Soft mask (H, W) of what speech changes: the lower face (``lower_face_mask``) from under the nose
    down (``below_nose``), feathered over the nose: the eyes, brows and forehead stay the recording."""
    m = lower_face_mask(landmarks, shape, feather)
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    if len(rows):
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        m[y0:y1, x0:x1] *= below_nose(landmarks, (x0, y0, x1, y1))
    return m


def eye_mask(landmarks: np.ndarray, shape: tuple[int, int], feather: float) -> np.ndarray:
    """(H, W) soft mask of both eyes: per eye an ellipse along the corners' line, 1.3 times the eye's width
    and 0.9 times it high (the lids and the skin they fold), feathered: where a drawn blink replaces the
    recorded eyes."""
    pts = landmarks[:, :2].astype(np.float64)
    polys = []
    for a, b in (mesh.EYE_CORNERS["right"], mesh.EYE_CORNERS["left"]):
        d = pts[b] - pts[a]
        width = float(np.hypot(*d))
        centre = (pts[a] + pts[b]) / 2
        polys.append(cv2.ellipse2Poly((int(round(centre[0])), int(round(centre[1]))),
                                      (max(1, int(round(0.65 * width))), max(1, int(round(0.45 * width)))),
                                      int(round(np.degrees(np.arctan2(d[1], d[0])))), 0, 360, 10))
    return feathered_polygons(polys, shape, feather)

"""Keypoint drawings and the model's crop box (pure functions).

The renderer sees an *upper-face* drawing: eyes, irises, brows, nose and the
upper face contour, plus the head silhouette above the jaw line — nothing
that moves with speech. The oracle sees the *full* drawing, which adds the
lips (outer and inner), the jaw contour and the chin. Drawings are one
channel, anti-aliased polylines on black, at the model crop's resolution.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from ..geometry import face as mesh
from .labels import HEAD_LABELS
from ..geometry.face import JAW

UPPER_OVAL = [i for i in mesh.FACE_OVAL if i not in JAW[1:-1]]
NOSE_LOWER = [98, 97, 2, 326, 327]
UPPER_LINES = [mesh.RIGHT_EYE + mesh.RIGHT_EYE[:1], mesh.LEFT_EYE + mesh.LEFT_EYE[:1],
               mesh.RIGHT_BROW[:5], mesh.RIGHT_BROW[5:], mesh.LEFT_BROW[:5], mesh.LEFT_BROW[5:],
               mesh.NOSE_BRIDGE, NOSE_LOWER,
               UPPER_OVAL[UPPER_OVAL.index(234):] + UPPER_OVAL[:UPPER_OVAL.index(454) + 1]]
IRISES = [mesh.RIGHT_IRIS, mesh.LEFT_IRIS]
MOUTH_LINES = [mesh.LIPS_OUTER + mesh.LIPS_OUTER[:1], mesh.LIPS_INNER + mesh.LIPS_INNER[:1], JAW]


def model_box(landmarks: np.ndarray, frame_size: int, scale: float = 1.5) -> np.ndarray:
    """One square (x0, y0, side) in subject pixels holding the head in every frame."""
    pts = landmarks[..., :2].reshape(-1, 2)
    lo, hi = np.percentile(pts, 0.5, axis=0), np.percentile(pts, 99.5, axis=0)
    centre = (lo + hi) / 2
    side = float(min(np.max(hi - lo) * scale, frame_size))
    x0 = float(np.clip(centre[0] - side / 2, 0, frame_size - side))
    y0 = float(np.clip(centre[1] - side / 2, 0, frame_size - side))
    return np.array([x0, y0, side])


def to_box(points: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Subject pixels → model-crop pixels."""
    return (points[..., :2] - box[:2]) * (size / box[2])


def _lines(canvas: np.ndarray, pts: np.ndarray, groups, thickness: int) -> None:
    shift = 4  # sub-pixel precision for anti-aliased lines
    for g in groups:
        poly = np.round(pts[g] * (1 << shift)).astype(np.int32)
        cv2.polylines(canvas, [poly], False, 255, thickness, cv2.LINE_AA, shift)


def silhouette(labels: np.ndarray, box: np.ndarray, size: int, upper_only_y: float | None) -> np.ndarray:
    """Outline of the head mask (labels 2 and 3) in the model crop, cut below ``upper_only_y``.

    Both drawings cut it at the ears: below, the chin's outline would tell the
    mouth state of the frame the silhouette came from.
    """
    head = np.isin(labels, HEAD_LABELS).astype(np.uint8)
    M = np.array([[size / box[2], 0, -box[0] * size / box[2]], [0, size / box[2], -box[1] * size / box[2]]])
    head = cv2.warpAffine(head, M, (size, size), flags=cv2.INTER_NEAREST)
    edge = cv2.morphologyEx(head, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    if upper_only_y is not None:
        edge[int(max(0, upper_only_y)):] = 0
    return edge * 255


def draw(landmarks: np.ndarray, box: np.ndarray, size: int, full: bool,
         labels: np.ndarray | None = None) -> np.ndarray:
    """One-channel uint8 drawing (size, size) of a frame's landmarks (subject pixels)."""
    pts = to_box(landmarks, box, size)
    canvas = np.zeros((size, size), np.uint8)
    thick = max(1, size // 256)
    _lines(canvas, pts, UPPER_LINES, thick)
    for iris in IRISES:
        c, r = pts[iris[0]], np.linalg.norm(pts[iris[1:]] - pts[iris[0]], axis=1).mean()
        cv2.circle(canvas, tuple(np.round(c * 16).astype(int)), int(round(r * 16)), 255, thick,
                   cv2.LINE_AA, 4)
    if full:
        _lines(canvas, pts, MOUTH_LINES, thick)
    if labels is not None:
        jaw_top = float(pts[[234, 454], 1].min())  # below this the mouth would leak through
        canvas = np.maximum(canvas, silhouette(labels, box, size, jaw_top))
    return canvas


def mouth_box(landmarks_neutral: np.ndarray, box: np.ndarray, size: int, side_frac: float) -> np.ndarray:
    """A fixed-size square (x0, y0, x1, y1) in model-crop pixels centred on the lips."""
    c = to_box(landmarks_neutral[..., mesh.LIPS_OUTER, :2].mean(axis=-2), box, size)
    half = side_frac * size / 2
    return np.concatenate([c - half, c + half], axis=-1)

"""Blending generated pixels with recorded ones: pure functions on numpy arrays or torch tensors."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["over", "blend", "paste", "place"]


def over(rgb, alpha, under):
    """Premultiplied Porter-Duff 'over': ``rgb + (1 - alpha) * under``.

    ``rgb`` (..., C) premultiplied colour on top, ``alpha`` its opacity, either (...) (broadcast over
    the channels) or the same shape as ``rgb``; ``under`` what lies beneath (any broadcastable shape).
    Also combines opacities: ``over(a_top, a_top, a_under)`` is the opacity of the stack.
    Works on numpy arrays and torch tensors alike.
    """
    if alpha.ndim == rgb.ndim - 1:
        alpha = alpha[..., None]
    return rgb + (1 - alpha) * under


def blend(under, top, mask):
    """``under + mask * (top - under)``: straight (non-premultiplied) blend under a soft mask in [0, 1]."""
    return under + mask * (top - under)


def paste(frame: np.ndarray, crop: np.ndarray, region: tuple[int, int, int], mask: np.ndarray) -> np.ndarray:
    """``frame`` (H, W, 3) uint8 with a square ``crop`` blended in at ``region`` = (x0, y0, side).

    The crop is resized to ``side`` (area filter when shrinking, bilinear when growing); ``mask``
    (side, side, 1) float in [0, 1] weighs it against the frame. Parts of the region outside the
    frame are dropped. Returns a new frame.
    """
    x0, y0, side = region
    out = frame.copy()
    h, w = out.shape[:2]
    patch = cv2.resize(crop, (side, side), interpolation=cv2.INTER_LINEAR if side > crop.shape[0] else cv2.INTER_AREA)
    rows, cols = np.flatnonzero(mask.any(axis=(1, 2))), np.flatnonzero(mask.any(axis=(0, 2)))
    if not len(rows):
        return out
    # only the mask's bounding box (clipped to the frame) is blended: the rest of the region keeps the frame
    r0, r1 = max(int(rows[0]), -y0), min(int(rows[-1]) + 1, h - y0)
    c0, c1 = max(int(cols[0]), -x0), min(int(cols[-1]) + 1, w - x0)
    if r1 <= r0 or c1 <= c0:
        return out
    ys, xs = slice(y0 + r0, y0 + r1), slice(x0 + c0, x0 + c1)
    under = out[ys, xs].astype(np.float32)
    top = patch[r0:r1, c0:c1].astype(np.float32)
    out[ys, xs] = blend(under, top, mask[r0:r1, c0:c1]).round().astype(np.uint8)
    return out


def place(canvas: np.ndarray, crop: np.ndarray, origin) -> np.ndarray:
    """A copy of ``canvas`` (H, W, ...) with ``crop`` (h, w, ...) written over it, its top-left corner at
    ``origin`` = (x0, y0); the parts of the crop outside the canvas are dropped."""
    x0, y0 = (int(v) for v in origin)
    out = canvas.copy()
    h, w = crop.shape[:2]
    H, W = out.shape[:2]
    ys, xs = slice(max(0, y0), min(H, y0 + h)), slice(max(0, x0), min(W, x0 + w))
    if ys.stop > ys.start and xs.stop > xs.start:
        out[ys, xs] = crop[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
    return out

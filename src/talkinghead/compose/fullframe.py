"""Back into the source video's own frame: the rendered square crop pasted where it was cut from.

Engines render the subject's square crop (``size``², cut from the source frame
at one box, ``prepare/crop.py``) over a recorded frame of that crop. Only what
the engine changed is taken: ``changed_mask`` compares the render with the
recorded crop it was drawn over, grows and feathers the difference, and
``paste_back`` blends the render in under that mask at full resolution. So the
source's own sharp pixels stay everywhere the engine did not change them, and
at the feathered border the render equals the recording it fades into: no seam.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .blend import blend
from .masks import mask_bbox

__all__ = ["changed_mask", "paste_back"]


def changed_mask(render: np.ndarray, recorded: np.ndarray, lo: float = 3.0, hi: float = 10.0,
                 grow: float = 0.02, feather: float = 0.025) -> np.ndarray:
    """(S, S) float32 in [0, 1]: where ``render`` differs from ``recorded`` (uint8 (S, S, 3) each), the largest
    channel difference (smoothed over ~1 % of S) mapped from ``lo``..``hi`` grey levels to 0..1, grown by
    ``grow`` × S and feathered by a Gaussian of ``feather`` × S."""
    full = render.shape[0]
    d = np.abs(render.astype(np.int16) - recorded.astype(np.int16)).max(-1).astype(np.float32)
    if full >= 256:  # grown and feathered at half resolution: 4x cheaper, the same soft mask
        d = cv2.resize(d, (full // 2, full // 2), interpolation=cv2.INTER_AREA)
    s = d.shape[0]
    d = cv2.GaussianBlur(d, (0, 0), max(0.5, 0.01 * s))
    m = np.clip((d - lo) / (hi - lo), 0.0, 1.0)
    r = max(1, int(round(grow * s)))
    m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    m = cv2.GaussianBlur(m, (0, 0), max(0.5, feather * s))
    edge = np.clip(np.minimum(np.arange(s), np.arange(s)[::-1]) / max(1.0, 2 * feather * s), 0, 1)
    m = np.clip(m * np.minimum(edge[:, None], edge[None, :]), 0.0, 1.0)  # 0 at the crop's own border
    if s != full:
        m = cv2.resize(m, (full, full), interpolation=cv2.INTER_LINEAR)
    m[m < 1e-3] = 0.0  # exactly the recording where nothing changed
    return m


def paste_back(source: np.ndarray, render: np.ndarray, mask: np.ndarray, box: tuple[float, float, float]
               ) -> np.ndarray:
    """``source`` (H, W, 3) uint8 with ``render`` (S, S, 3) blended in under ``mask`` (S, S) at ``box`` =
    (x0, y0, side) in source pixels (the crop may reach past the frame; that part is dropped)."""
    x0, y0, side = (float(v) for v in box)
    s = render.shape[0]
    h, w = source.shape[:2]
    k = s / side
    out = source.copy()
    bbox = mask_bbox(mask)
    if bbox is None:
        return out  # nothing changed
    # only the box the mask covers, in source pixels (one pixel of margin)
    rx0, ry0 = max(0, math.floor(x0 + bbox[0] / k) - 1), max(0, math.floor(y0 + bbox[1] / k) - 1)
    rx1, ry1 = min(w, math.ceil(x0 + bbox[2] / k) + 1), min(h, math.ceil(y0 + bbox[3] / k) + 1)
    if rx1 <= rx0 or ry1 <= ry0:
        return out  # the changed part lies outside the frame
    # source pixel (u, v) of the region → crop pixel ((u + rx0 - x0) k, (v + ry0 - y0) k)
    to_crop = np.array([[k, 0, (rx0 - x0) * k], [0, k, (ry0 - y0) * k]], np.float64)
    size = (rx1 - rx0, ry1 - ry0)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    top = cv2.warpAffine(render, to_crop, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    m = cv2.warpAffine(mask.astype(np.float32), to_crop, size, flags=flags, borderMode=cv2.BORDER_CONSTANT,
                       borderValue=0)
    region = out[ry0:ry1, rx0:rx1].astype(np.float32)
    out[ry0:ry1, rx0:rx1] = blend(region, top.astype(np.float32), m[..., None]).round().clip(0, 255).astype(np.uint8)
    return out

"""A triangle mesh over the FaceMesh landmarks and a small z-buffered rasteriser (numpy).

``face_triangles`` triangulates the 478 landmarks once (Delaunay on our
canonical face seen from the front; triangles spanning the mouth opening stay,
so an open mouth has a surface at lip depth). ``rasterise`` interpolates any
per-vertex attribute (e.g. camera depth) over the triangles covering each
pixel, the nearest triangle winning: the per-frame face depth maps that
Speech2Lip's GAMEM takes from a 3DMM come from here.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .pose import canonical_face

__all__ = ["face_triangles", "rasterise"]


@lru_cache(maxsize=1)
def face_triangles() -> np.ndarray:
    """(T, 3) int vertex indices of a triangulation of the 478 FaceMesh landmarks."""
    from scipy.spatial import Delaunay

    c = canonical_face()
    tri = Delaunay(c[:, :2]).simplices
    # drop slivers along the convex hull (between the jaw and the temples): the face outline is not convex
    p = c[tri, :2]
    e = np.linalg.norm(p - np.roll(p, 1, axis=1), axis=-1)
    area = 0.5 * np.abs(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]))
    keep = area / np.maximum(e.max(1) ** 2, 1e-9) > 0.02
    return tri[keep].astype(np.int64)


def rasterise(xy: np.ndarray, z: np.ndarray, attr: np.ndarray, tris: np.ndarray,
              shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel ``attr`` (V, A) of the nearest triangle (smallest ``z``) covering each pixel centre.

    ``xy`` (V, 2) vertex positions in pixels (pixel (i, j) has its centre at (i + 0.5, j + 0.5)),
    ``z`` (V,) their depth. Attributes are interpolated linearly in screen space. Returns
    ``(values (H, W, A) float64, covered (H, W) bool)``; uncovered pixels are 0.
    """
    h, w = shape
    attr = np.asarray(attr, np.float64).reshape(len(xy), -1)
    out = np.zeros((h, w, attr.shape[1]))
    zbuf = np.full((h, w), np.inf)
    for t in tris:
        p, zt, at = xy[t], z[t], attr[t]
        x0, y0 = np.floor(p.min(0) - 0.5).astype(int)
        x1, y1 = np.ceil(p.max(0) - 0.5).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1)
        if x1 < x0 or y1 < y0:
            continue
        xs, ys = np.meshgrid(np.arange(x0, x1 + 1) + 0.5, np.arange(y0, y1 + 1) + 0.5)
        (ax, ay), (bx, by), (cx, cy) = p
        den = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
        if abs(den) < 1e-12:
            continue
        l0 = ((by - cy) * (xs - cx) + (cx - bx) * (ys - cy)) / den
        l1 = ((cy - ay) * (xs - cx) + (ax - cx) * (ys - cy)) / den
        l2 = 1 - l0 - l1
        inside = (l0 >= -1e-9) & (l1 >= -1e-9) & (l2 >= -1e-9)
        if not inside.any():
            continue
        zz = l0 * zt[0] + l1 * zt[1] + l2 * zt[2]
        win = zbuf[y0:y1 + 1, x0:x1 + 1]
        better = inside & (zz < win)
        win[better] = zz[better]
        vals = l0[..., None] * at[0] + l1[..., None] * at[1] + l2[..., None] * at[2]
        out[y0:y1 + 1, x0:x1 + 1][better] = vals[better]
    return out, np.isfinite(zbuf)

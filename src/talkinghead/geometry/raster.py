"""A triangle mesh over the FaceMesh landmarks and a small z-buffered rasteriser (numpy).

``face_triangles`` triangulates the 478 landmarks once (Delaunay on our
canonical face seen from the front; triangles spanning the mouth opening stay,
so an open mouth has a surface at lip depth). ``rasterise`` interpolates any
per-vertex attribute (e.g. camera depth) over the triangles covering each
pixel, the nearest triangle winning: the per-frame face depth maps that
Speech2Lip's GAMEM takes from a 3DMM come from here. ``triangle_ids`` +
``interpolate`` do the same in a few milliseconds (OpenCV fills the triangles
far to near, so the nearest covers the rest: painter's order, exact for a
face seen from the front, where no two triangles interleave in depth), for
per-frame use at render time.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .pose import canonical_face

__all__ = ["face_triangles", "front_facing", "interpolate", "rasterise", "triangle_ids"]


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


def front_facing(xy: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """(T,) bool: triangles of ``tris`` wound as in the frontal canonical face (seen from the camera) in
    the image positions ``xy`` (V, 2); a triangle turned away from the camera flips its winding."""
    ref = canonical_face()[:, :2]
    p, q = xy[tris], ref[tris]
    cross = lambda a: (a[:, 1, 0] - a[:, 0, 0]) * (a[:, 2, 1] - a[:, 0, 1]) - \
        (a[:, 1, 1] - a[:, 0, 1]) * (a[:, 2, 0] - a[:, 0, 0])  # noqa: E731
    return np.sign(cross(p)) == np.sign(cross(q))


def triangle_ids(xy: np.ndarray, z: np.ndarray, tris: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) int32: the index into ``tris`` of the triangle covering each pixel centre, the nearest
    (smallest mean ``z``) where several do (painter's order); -1 where none does."""
    ids = np.full(shape, -1, np.int32)
    shift = 4
    pts = np.round((np.asarray(xy, np.float64) - 0.5) * (1 << shift)).astype(np.int32)  # cv2: centres at integers
    order = np.argsort(-np.asarray(z)[tris].mean(1), kind="stable")
    for t in order:
        cv2.fillConvexPoly(ids, pts[tris[t]], int(t), cv2.LINE_8, shift)
    return ids


def interpolate(ids: np.ndarray, xy: np.ndarray, attr: np.ndarray, tris: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel ``attr`` (V, A) interpolated linearly over the triangle ``ids`` (``triangle_ids``) names at
    each pixel centre. Returns ``(values (H, W, A) float64, covered (H, W) bool)``, as ``rasterise``."""
    h, w = ids.shape
    attr = np.asarray(attr, np.float64).reshape(len(xy), -1)
    out = np.zeros((h, w, attr.shape[1]))
    covered = ids >= 0
    ys, xs = np.nonzero(covered)
    t = tris[ids[ys, xs]]
    a, b, c = (np.asarray(xy, np.float64)[t[:, i]] for i in range(3))
    px, py = xs + 0.5, ys + 0.5
    den = (b[:, 1] - c[:, 1]) * (a[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (a[:, 1] - c[:, 1])
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    l0 = ((b[:, 1] - c[:, 1]) * (px - c[:, 0]) + (c[:, 0] - b[:, 0]) * (py - c[:, 1])) / den
    l1 = ((c[:, 1] - a[:, 1]) * (px - c[:, 0]) + (a[:, 0] - c[:, 0]) * (py - c[:, 1])) / den
    lam = np.clip(np.stack([l0, l1, 1 - l0 - l1], 1), 0, 1)  # edge pixels OpenCV counted in: onto the edge
    lam /= lam.sum(1, keepdims=True)
    out[ys, xs] = np.einsum("pk,pka->pa", lam, attr[t])
    return out, covered

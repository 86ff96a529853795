"""The synthetic speaker's base face and its landmark-driven image warp.

The face is a real photo that ships with scikit-image (``skimage.data.astronaut``,
public domain). Its 478 FaceMesh landmarks are detected once per process with
mediapipe and cached. Around them we add a warp mesh: two rings of points
outside the face oval (hair, ears, neck) that follow the head with a
per-point *rigidity* ``alpha`` (1 = moves with the head, 0 = static), and
static points on the image border. Triangles come from FaceMesh's own
tessellation (anatomically sensible, so lips and eyelids can close), strips
that fill the eye and mouth holes, and a Delaunay triangulation of the outer
points.

Coordinates: image pixels with mediapipe's convention (``x_norm * width``,
so pixel ``i`` spans ``[i, i + 1)``), y down, z into the screen in the same
pixel units.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry.face import FACE_OVAL, LEFT_EYE, LIPS_INNER, N_LANDMARKS, RIGHT_EYE


@dataclass(frozen=True)
class FaceConfig:
    """Crop of the photo and shape of the warp mesh around the face."""

    crop_scale: float = 2.7      # crop side / face width
    crop_dy: float = 0.1         # crop centre below the face centre, in face widths
    # Ring geometry by direction v = dy/|d| from the face centre (-1 up, +1 down):
    ring_v: tuple = (-1.0, 0.0, 0.35, 0.7, 1.0)
    ring1_scale: tuple = (1.3, 1.25, 1.2, 1.15, 1.15)
    ring1_alpha: tuple = (1.0, 1.0, 1.0, 0.75, 0.55)
    ring2_scale: tuple = (2.0, 1.7, 1.55, 1.45, 1.4)
    ring2_alpha: tuple = (1.0, 1.0, 0.6, 0.15, 0.0)
    border_points: int = 7       # static points per image side, corners included
    pivot_depth: float = 1.0     # head-centre depth behind the mean landmark, in half face widths


# Two spurious 3-cliques of FaceMesh's edge list that are not mesh faces.
_NOT_FACES = {(279, 294, 358), (49, 64, 129)}


@functools.lru_cache(maxsize=1)
def mesh_triangles() -> np.ndarray:
    """FaceMesh tessellation as (852, 3) vertex triangles (eyes and mouth are holes)."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    adj: dict[int, set] = {}
    for a, b in FACEMESH_TESSELATION:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    tris = {tuple(sorted((a, b, c))) for a, b in FACEMESH_TESSELATION for c in adj[a] & adj[b]}
    return np.array(sorted(tris - _NOT_FACES), np.int32)


def strip(upper: list[int], lower: list[int]) -> list[tuple[int, int, int]]:
    """Triangles filling the gap between two contours sharing both end points."""
    tris = [(upper[0], upper[1], lower[1])]
    for k in range(1, len(upper) - 2):
        tris += [(upper[k], upper[k + 1], lower[k]), (upper[k + 1], lower[k + 1], lower[k])]
    tris.append((upper[-2], upper[-1], lower[-2]))
    return tris


def contour_halves(contour: list[int]) -> tuple[list[int], list[int]]:
    """Split a closed 2k-point contour at its two ends into (upper, lower), both end to end."""
    h = len(contour) // 2
    upper = contour[:h + 1]
    lower = [contour[0]] + contour[h:][::-1]
    return upper, lower


RIGHT_EYE_UPPER, RIGHT_EYE_LOWER = contour_halves(RIGHT_EYE)
LEFT_EYE_UPPER, LEFT_EYE_LOWER = contour_halves(LEFT_EYE)
MOUTH_UPPER, MOUTH_LOWER = contour_halves(LIPS_INNER)  # 78 ... 308 along each inner lip


@functools.lru_cache(maxsize=1)
def _photo_and_landmarks() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut photo (512x512 RGB) and its 478 landmarks (x, y, z) in its pixels."""
    import mediapipe as mp
    from skimage import data

    img = np.ascontiguousarray(data.astronaut())
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True,
                                         max_num_faces=1) as fm:
        res = fm.process(img)
    if not res.multi_face_landmarks:
        raise RuntimeError("FaceMesh found no face in skimage.data.astronaut()")
    h, w = img.shape[:2]
    lm = np.array([[p.x * w, p.y * h, p.z * w] for p in res.multi_face_landmarks[0].landmark])
    return img, lm


@dataclass
class BaseFace:
    """The cropped photo at ``size`` and its warp mesh.

    ``points`` holds the 478 landmarks first, then the two head rings, then the
    static border points; ``triangles[:n_outer]`` lie outside the face oval.
    """

    image: np.ndarray      # (size, size, 3) uint8
    points: np.ndarray     # (M, 3) float64 source positions as detected in the photo
    alpha: np.ndarray      # (M,) rigidity: how much of the head motion a point follows
    triangles: np.ndarray  # (T, 3) int32
    n_outer: int
    pivot: np.ndarray      # (3,) head rotation centre
    size: int

    @property
    def landmarks(self) -> np.ndarray:
        return self.points[:N_LANDMARKS]


def _outer_mesh(lm: np.ndarray, size: int, cfg: FaceConfig):
    """Ring and border points (M', 3), their rigidity, and the outer triangles."""
    oval = lm[FACE_OVAL]
    c = oval[:, :2].mean(axis=0)
    d = oval[:, :2] - c
    v = d[:, 1] / np.linalg.norm(d, axis=1)
    zc = lm[:, 2].mean() + cfg.pivot_depth * np.ptp(oval[:, 0]) / 2
    rings, alphas = [], []
    for scales, alpha, z in ((cfg.ring1_scale, cfg.ring1_alpha, oval[:, 2]),
                             (cfg.ring2_scale, cfg.ring2_alpha, np.full(len(oval), zc))):
        xy = np.clip(c + d * np.interp(v, cfg.ring_v, scales)[:, None], 1.0, size - 1.0)
        rings.append(np.column_stack([xy, z]))
        alphas.append(np.interp(v, cfg.ring_v, alpha))
    t = np.linspace(0.0, size, cfg.border_points)
    border = np.unique(np.concatenate([
        np.column_stack([t, np.zeros_like(t)]), np.column_stack([t, np.full_like(t, size)]),
        np.column_stack([np.zeros_like(t), t]), np.column_stack([np.full_like(t, size), t])]), axis=0)
    border = np.column_stack([border, np.full(len(border), zc)])
    extra = np.concatenate(rings + [border])
    alpha = np.concatenate(alphas + [np.zeros(len(border))])

    from scipy.spatial import Delaunay

    ids = np.concatenate([np.array(FACE_OVAL), N_LANDMARKS + np.arange(len(extra))])
    xy = np.concatenate([oval[:, :2], extra[:, :2]])
    tri = ids[Delaunay(xy).simplices]
    poly = oval[:, :2].astype(np.float32).reshape(-1, 1, 2)
    allxy = np.concatenate([lm[:, :2], extra[:, :2]])
    keep = [t for t in tri
            if cv2.pointPolygonTest(poly, tuple(map(float, allxy[t].mean(axis=0))), False) < 0]
    return extra, alpha, np.array(keep, np.int32), np.array([c[0], c[1], zc])


@functools.lru_cache(maxsize=4)
def load_base_face(size: int = 512, cfg: FaceConfig = FaceConfig()) -> BaseFace:
    """Crop the photo around the face, resize to ``size`` and build the warp mesh (cached)."""
    photo, lm_full = _photo_and_landmarks()
    lo, hi = lm_full[:, :2].min(axis=0), lm_full[:, :2].max(axis=0)
    fw = hi[0] - lo[0]
    side = cfg.crop_scale * fw
    cx, cy = (lo + hi) / 2 + [0.0, cfg.crop_dy * fw]
    x0, y0 = cx - side / 2, cy - side / 2
    k = size / side
    # Pixel index i is continuous coordinate i + 0.5 in both images.
    m = np.array([[k, 0, (0.5 - x0) * k - 0.5], [0, k, (0.5 - y0) * k - 0.5]])
    src = photo if k >= 1 else cv2.GaussianBlur(photo, (0, 0), 0.5 / k)
    image = cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    lm = np.column_stack([(lm_full[:, :2] - [x0, y0]) * k, lm_full[:, 2] * k])
    extra, alpha_extra, outer, pivot = _outer_mesh(lm, size, cfg)
    inner = np.concatenate([
        mesh_triangles(),
        np.array(strip(RIGHT_EYE_UPPER, RIGHT_EYE_LOWER) + strip(LEFT_EYE_UPPER, LEFT_EYE_LOWER)
                 + strip(MOUTH_UPPER, MOUTH_LOWER), np.int32)])
    points = np.concatenate([lm, extra])
    alpha = np.concatenate([np.ones(N_LANDMARKS), alpha_extra])
    image.setflags(write=False)
    return BaseFace(image, points, alpha, np.concatenate([outer, inner]), len(outer), pivot, size)


def spread(points: np.ndarray, fixed: np.ndarray, values: np.ndarray, sigma: float,
           floor: float = 0.05) -> np.ndarray:
    """Interpolate displacements given at ``fixed`` point indices to all points.

    A normalised Gaussian kernel (width ``sigma``) over the fixed points; the
    ``floor`` term makes the result fade to 0 far from every fixed point.
    Fixed points keep their values exactly. Linear in ``values``.
    """
    d2 = ((points[:, None, :2] - points[None, fixed, :2]) ** 2).sum(-1)
    w = np.exp(-d2 / (2 * sigma ** 2))
    out = (w @ values) / (w.sum(axis=1, keepdims=True) + floor)
    out[fixed] = values
    return out


class Warper:
    """Backward piecewise-affine warp of one source image onto moving mesh points.

    Triangles are rasterised into an index map (outer ones first, face ones
    far-to-near so the nearer surface wins where the projection folds), each
    pixel gets its triangle's target-to-source affine map, and ``cv2.remap``
    samples the source.
    """

    def __init__(self, image: np.ndarray, src2d: np.ndarray, triangles: np.ndarray, n_outer: int):
        self.image = image
        self.tri = triangles
        self.n_outer = n_outer
        self.src = (src2d - 0.5)[triangles]  # (T, 3, 2) in pixel-index coordinates
        # Each pixel's source is clamped to its triangle's source box (+1 px): a pixel
        # the rasteriser gives to a sliver triangle cannot fetch from far away.
        box = np.concatenate([self.src.min(axis=1) - 1, self.src.max(axis=1) + 1], axis=1)
        self.box = np.concatenate([box, [[-1e9, -1e9, 1e9, 1e9]]]).astype(np.float32)
        h, w = image.shape[:2]
        self.xx, self.yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        self.idx = np.empty((h, w), np.int32)

    def __call__(self, dst2d: np.ndarray, depth: np.ndarray) -> np.ndarray:
        d = (dst2d - 0.5)[self.tri]  # (T, 3, 2)
        # Affine target -> source per triangle from its edge vectors (rows): E_dst @ lin = E_src.
        e = d[:, 1:] - d[:, :1]                       # (T, 2 edges, 2)
        det = e[:, 0, 0] * e[:, 1, 1] - e[:, 0, 1] * e[:, 1, 0]
        ok = np.abs(det) > 1e-6
        inv = np.stack([np.stack([e[:, 1, 1], -e[:, 0, 1]], -1),
                        np.stack([-e[:, 1, 0], e[:, 0, 0]], -1)], -2) / np.where(ok, det, 1.0)[:, None, None]
        es = self.src[:, 1:] - self.src[:, :1]
        lin = inv @ es                                # src = p @ lin + shift (p as a row)
        shift = self.src[:, 0] - np.einsum("ti,tij->tj", d[:, 0], lin)
        coef = np.zeros((len(self.tri) + 1, 3, 2))
        coef[:-1, :2], coef[:-1, 2] = lin, shift
        coef[-1] = [[1, 0], [0, 1], [0, 0]]  # uncovered pixels: identity
        zc = depth[self.tri[self.n_outer:]].mean(axis=1)
        order = np.concatenate([np.arange(self.n_outer), self.n_outer + np.argsort(-zc, kind="stable")])
        self.idx.fill(-1)
        pts = np.round(d * 16).astype(np.int32)
        fill = cv2.fillConvexPoly
        for k in order[ok[order]]:
            fill(self.idx, pts[k], int(k), cv2.LINE_8, 4)
        table = np.concatenate([coef.reshape(-1, 6).astype(np.float32), self.box], axis=1)
        c = table[self.idx]  # (H, W, 10); index -1 -> identity
        mx = np.clip(c[..., 0] * self.xx + c[..., 2] * self.yy + c[..., 4], c[..., 6], c[..., 8])
        my = np.clip(c[..., 1] * self.xx + c[..., 3] * self.yy + c[..., 5], c[..., 7], c[..., 9])
        return cv2.remap(self.image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

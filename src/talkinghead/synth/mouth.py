"""Viseme-driven mouth and jaw deformation, and the mouth interior drawing.

Four shape parameters per frame drive the lower face: ``jaw`` (0 closed ..
1 wide open), ``round`` (corners in, lips forward), ``stretch`` (corners out
and up) and ``closure`` (bilabial press: the lips meet whatever the jaw
does). Each viseme has a target (jaw, round, stretch); the per-phoneme step
signals are smoothed with a short Gaussian (co-articulation) and sampled at
frame centres. Each parameter moves a fixed displacement field ("basis") of
the mesh points, built by spreading hand-set displacements of the lip and
chin points smoothly to the cheeks (see :func:`face.spread`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d

from ..audio.visemes import BILABIAL, VISEMES, Segment
from ..geometry.face import FACE_OVAL, LIPS_OUTER, N_LANDMARKS, RIGID, face_scale
from .face import MOUTH_LOWER, MOUTH_UPPER, spread

# (jaw, round, stretch) per viseme, in VISEMES order.
SHAPES = {
    "sil": (0.0, 0.0, 0.0), "PP": (0.06, 0.0, 0.0), "FF": (0.12, 0.0, 0.1),
    "TH": (0.25, 0.0, 0.1), "DD": (0.3, 0.0, 0.15), "kk": (0.35, 0.0, 0.05),
    "CH": (0.22, 0.6, 0.0), "SS": (0.14, 0.0, 0.45), "nn": (0.25, 0.0, 0.1),
    "RR": (0.3, 0.45, 0.0), "aa": (1.0, 0.0, 0.1), "E": (0.6, 0.0, 0.45),
    "ih": (0.35, 0.0, 0.7), "oh": (0.75, 0.65, 0.0), "ou": (0.3, 1.0, 0.0),
}
SHAPE_TABLE = np.array([SHAPES[v] for v in VISEMES], np.float64)


@dataclass(frozen=True)
class MouthConfig:
    """Mouth geometry and timing; lengths are relative to the face, times in seconds."""

    max_aperture: float = 0.3     # mouth_aperture() at jaw = 1
    chin_drop: float = 0.9        # chin drop / lower-lip drop
    round_in: float = 0.3         # corner inward shift at round = 1, in half mouth widths
    protrude: float = 0.25        # lip forward shift at round = 1, in half mouth widths
    stretch_out: float = 0.12     # corner outward shift at stretch = 1
    close_upper: float = 0.3      # share of the photo's lip gap closed by the upper lip
    smooth_s: float = 0.03        # co-articulation Gaussian sigma
    closure_pad_s: float = 0.04   # bilabial closure starts/ends this much around p/b/m
    closure_smooth_s: float = 0.01
    spread_sigma: float = 0.12    # in face widths
    teeth_height: float = 0.22    # in half mouth widths
    rate_hz: float = 200.0        # internal sampling of the phoneme track


def mouth_params(segments: list[Segment], n_frames: int, fps: float,
                 cfg: MouthConfig = MouthConfig()) -> np.ndarray:
    """(n_frames, 4) float32 [jaw, round, stretch, closure] sampled at frame centres."""
    hz = cfg.rate_hz
    n = int(np.ceil(n_frames / fps * hz)) + 1
    track = np.zeros((n, 3))
    press = np.zeros(n)
    for s in segments:
        a, b = int(round(s.start * hz)), int(round(s.end * hz))
        track[max(a, 0):max(b, 0)] = SHAPE_TABLE[s.viseme]
        if s.viseme == BILABIAL:
            press[max(a, 0):max(b, a + 1, 0)] = 1.0
    track = gaussian_filter1d(track, cfg.smooth_s * hz, axis=0, mode="nearest")
    pad = int(round(cfg.closure_pad_s * hz))
    press = maximum_filter1d(press, 2 * pad + 1, mode="nearest")
    press = gaussian_filter1d(press, cfg.closure_smooth_s * hz, mode="nearest")
    t = (np.arange(n_frames) + 0.5) / fps * hz
    grid = np.arange(n)
    out = [np.interp(t, grid, track[:, k]) for k in range(3)] + [np.interp(t, grid, press)]
    return np.clip(np.stack(out, axis=1), 0.0, 1.0).astype(np.float32)


class MouthModel:
    """Displacement fields of the mesh points for closing and moving the mouth.

    Built from the detected photo points ``(M, 3)`` (landmarks first).
    ``neutral`` is the photo with its mouth closed; ``deform(params)`` gives
    per-frame displacements relative to ``neutral``.
    """

    def __init__(self, points: np.ndarray, cfg: MouthConfig = MouthConfig()):
        self.cfg = cfg
        self._select(points)
        lm = points[:N_LANDMARKS]
        up, lo = lm[MOUTH_UPPER], lm[MOUTH_LOWER]  # MOUTH_UPPER[k] faces MOUTH_LOWER[k]
        nl, nc = len(self.lips), len(self.chin)

        # Close the photo's mouth: the inner lips meet, each lip moves as a whole,
        # the chin comes up a little.
        gap = (lo - up)[:, 1]
        g = np.interp(lm[self.lips, 0], *_sorted(np.column_stack([up[:, 0], gap])))
        vals = self._zeros()
        vals[:nl, 1] = np.where(self.upper, cfg.close_upper * g, -(1 - cfg.close_upper) * g)
        vals[nl:nl + nc, 1] = -0.5 * (1 - cfg.close_upper) * gap.max() * self.chin_weight
        closing = spread(points, self.fixed, vals, self.sigma)
        meet = up + cfg.close_upper * (lo - up)
        closing[MOUTH_UPPER], closing[MOUTH_LOWER] = meet - up, meet - lo
        self.closing = closing
        self.neutral = points + closing

        # Motion bases on the closed face; u = -1 .. 1 from corner to corner.
        nlm = self.neutral[:N_LANDMARKS]
        cx, hw = (nlm[78, 0] + nlm[308, 0]) / 2, (nlm[308, 0] - nlm[78, 0]) / 2
        u = np.clip((nlm[self.lips, 0] - cx) / hw, -1.0, 1.0)
        drop = cfg.max_aperture * face_scale(nlm[:, :2]) / 1.08  # lower-lip drop at jaw = 1
        jaw_lip = self._zeros()  # an oval opening: corners drop 0.3, upper lip centre rises 0.08
        jaw_lip[:nl, 1] = drop * np.where(self.upper, 0.3 * u ** 4 - 0.08 * (1 - u ** 2),
                                          0.3 + 0.7 * (1 - u ** 2))
        jaw_chin = self._zeros()  # the jaw swings down and slightly back
        jaw_chin[nl:nl + nc, 1] = cfg.chin_drop * drop * self.chin_weight
        jaw_chin[nl:nl + nc, 2] = 0.25 * cfg.chin_drop * drop * self.chin_weight
        rnd = self._zeros()
        rnd[:nl, 0] = -cfg.round_in * hw * u
        rnd[:nl, 2] = -cfg.protrude * hw * (1 - 0.5 * u ** 2)
        st = self._zeros()
        st[:nl, 0] = cfg.stretch_out * hw * u
        st[:nl, 1] = -0.4 * cfg.stretch_out * hw * u ** 2
        self.bases = np.stack([spread(self.neutral, self.fixed, b, self.sigma)
                               for b in (jaw_lip, jaw_chin, rnd, st)])
        self.half_width = hw

    def _select(self, points: np.ndarray) -> None:
        """Point sets whose displacements are set by hand: lips, chin, and still anchors."""
        lm = points[:N_LANDMARKS]
        up, lo = lm[MOUTH_UPPER], lm[MOUTH_LOWER]
        xs, yu = _sorted(up)
        mid = (yu + np.interp(xs, *_sorted(lo))) / 2  # the line between the lips
        poly = lm[LIPS_OUTER, :2].astype(np.float32).reshape(-1, 1, 2)
        self.lips = np.array([i for i in range(N_LANDMARKS) if i in LIPS_OUTER or
                              cv2.pointPolygonTest(poly, tuple(map(float, lm[i, :2])), True) > -0.5])
        self.upper = lm[self.lips, 1] <= np.interp(lm[self.lips, 0], xs, mid)
        y_tmj, y_chin, y_low = lm[[234, 454], 1].mean(), lm[152, 1], lm[17, 1]
        taken = set(self.lips.tolist())
        self.chin = np.array([i for i in range(N_LANDMARKS) if i not in taken and i not in RIGID and (
            lm[i, 1] > y_low + 0.35 * (y_chin - y_low) or (i in FACE_OVAL and lm[i, 1] > y_tmj))])
        self.chin_weight = np.clip((lm[self.chin, 1] - y_tmj) / (y_chin - y_tmj), 0.0, 1.0) ** 1.3
        taken |= set(self.chin.tolist())
        # Still: the rigid points, everything above the nose base, the head ring
        # above the jaw joint, the outer ring and border. Cheeks and neck stay free.
        ring2 = N_LANDMARKS + len(FACE_OVAL)
        anchors = [i for i in range(len(points)) if i not in taken and (
            i in RIGID or points[i, 1] < lm[2, 1] or i >= ring2
            or (i >= N_LANDMARKS and points[i, 1] < y_tmj))]
        self.fixed = np.concatenate([self.lips, self.chin, np.array(anchors, int)])
        self.sigma = self.cfg.spread_sigma * np.ptp(lm[FACE_OVAL, 0])

    def _zeros(self) -> np.ndarray:
        return np.zeros((len(self.fixed), 3))

    def deform(self, params: np.ndarray) -> np.ndarray:
        """(N, 4) [jaw, round, stretch, closure] -> (N, M, 3) displacements from ``neutral``."""
        p = np.asarray(params, np.float64)
        w = np.stack([p[:, 0] * (1 - p[:, 3]), p[:, 0], p[:, 1], p[:, 2]], axis=1)
        return np.einsum("nk,kmd->nmd", w, self.bases)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def draw_interior(img: np.ndarray, upper: np.ndarray, lower: np.ndarray, half_width: float,
                  cfg: MouthConfig = MouthConfig()) -> None:
    """Paint the open mouth (cavity, upper teeth, tongue) inside the inner lips, in place.

    ``upper``/``lower``: (K, 2) inner-lip contours from corner to corner, in
    image pixels (mediapipe convention).
    """
    poly = np.concatenate([upper, lower[-2:0:-1]]) - 0.5
    x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 3
    h, w = img.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    if not mask.any():
        return
    xs = np.arange(x0, x1, dtype=np.float64)
    ys = np.arange(y0, y1, dtype=np.float64)[:, None]
    up, lo = upper - 0.5, lower - 0.5
    yu = np.interp(xs, *_sorted(up))
    yl = np.maximum(np.interp(xs, *_sorted(lo)), yu)
    cx = (up[0, 0] + up[-1, 0]) / 2
    hw = max(abs(up[-1, 0] - up[0, 0]) / 2, 1.0)
    u2 = np.clip(((xs - cx) / hw) ** 2, 0.0, 1.0)
    gap = yl - yu
    t = (ys - yu) / np.maximum(gap, 1e-3)                         # 0 at upper lip, 1 at lower
    depth = np.exp(-((t - 0.55) / 0.45) ** 2) * (1 - 0.6 * u2)     # darkest in the middle
    cav = np.array([105.0, 40, 45]) * (1 - depth[..., None]) + np.array([35.0, 10, 14]) * depth[..., None]
    cav *= (0.75 + 0.25 * (1 - u2))[:, None]
    # Tongue: a soft bump rising from the lower lip.
    tongue_top = yl - 0.38 * gap * np.sqrt(np.clip(1 - u2 / 0.7, 0.0, 1.0))
    tw = _smoothstep((ys - tongue_top) / np.maximum(0.25 * gap, 0.5))[..., None]
    tongue = np.array([175.0, 82, 88]) * (0.7 + 0.3 * tw)
    col = cav * (1 - 0.85 * tw) + tongue * 0.85 * tw
    # Upper teeth hang from the upper lip, shaded toward the corners.
    th = np.minimum(cfg.teeth_height * half_width * np.sqrt(1 - u2), 0.55 * gap)
    dy = ys - yu
    tooth = _smoothstep((th - dy) / 0.8) * (dy > -1)
    gaps = 1 - 0.12 * np.cos(np.pi * (xs - cx) / (0.22 * hw)) ** 16
    under_lip = 0.78 + 0.22 * _smoothstep(dy / np.maximum(0.35 * th, 0.5))  # lip shadow
    shade = (0.5 + 0.5 * np.sqrt(1 - u2)) * gaps * under_lip
    teeth = np.array([236.0, 230, 216]) * shade[..., None]
    col = col * (1 - tooth[..., None]) + teeth * tooth[..., None]
    a = (mask.astype(np.float64) / 255.0)[..., None]
    patch = img[y0:y1, x0:x1].astype(np.float64)
    img[y0:y1, x0:x1] = np.clip(patch * (1 - a) + cv2.GaussianBlur(col, (3, 3), 0.6) * a + 0.5, 0, 255)


def _sorted(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    o = np.argsort(pts[:, 0], kind="stable")
    return pts[o, 0], pts[o, 1]

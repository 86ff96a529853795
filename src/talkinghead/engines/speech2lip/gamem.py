"""GAMEM (Speech2Lip Sec. 3.2): geometry-aware mutual explicit mapping between observed frames and the canonical view.

The canonical view is one training frame's camera (``Subject.neutral_frame``:
frontal, mouth closed, eyes open). A pixel maps between views through a
surface point: unproject it with a depth, undo one head pose, apply the other,
project (``geometry/camera.py``; ``X_cam = R X + t``, one pinhole ``K``).

* O2C (observed → canonical) uses the observed frame's own face depth: its
  tracked 478 3-D landmarks in camera space, triangulated and rasterised
  (``face_depth``; the paper renders a 3DMM instead).
* C2O (canonical → observed) uses one depth map over the canonical lip region
  (``CanonicalDepth``), a parameter initialised from the canonical frame's
  rasterised face depth (filled smoothly outside the face) and refined by a
  photometric loss during training (the paper's depth loss).

Training backward-warps every frame into the canonical view through C2O (its
lips, pose removed, are the lip model's target); rendering needs the inverse
direction for every output pixel, which ``CanonicalDepth.invert`` finds by a
few Gauss-Newton steps on C2O (a backward warp: no holes; the Blend-Net is
still trained with holes, as in the paper).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...compose import push_pull_fill
from ...geometry.camera import inverse_transform, project, transform, unproject
from ...geometry.raster import face_triangles, rasterise
from ...subject import Subject

__all__ = ["Camera", "frame_camera", "face_depth", "map_points", "CanonicalDepth", "region_box"]


@dataclass
class Camera:
    R: torch.Tensor  # (3, 3)
    t: torch.Tensor  # (3,)
    K: torch.Tensor  # (3, 3)


def frame_camera(subject: Subject, i: int, device: str = "cpu") -> Camera:
    tr = subject.tracks
    f = lambda x: torch.as_tensor(np.asarray(x, np.float32), device=device)  # noqa: E731
    return Camera(f(tr["rotation"][i]), f(tr["translation"][i]), f(tr["intrinsics"]))


def face_depth(subject: Subject, i: int, shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frame i's face depth (H, W) in cm along the camera axis, and the pixels the face covers."""
    tr = subject.tracks
    R, t, K = (tr[k].astype(np.float64) for k in ("rotation", "translation", "intrinsics"))
    X = tr["canon_landmarks"][i].astype(np.float64) @ R[i].T + t[i]
    uv = X @ K.T
    d, covered = rasterise(uv[:, :2] / uv[:, 2:], X[:, 2], X[:, 2], face_triangles(),
                           shape or (subject.size, subject.size))
    return d[..., 0].astype(np.float32), covered


def map_points(px: torch.Tensor, depth: torch.Tensor, src: Camera, dst: Camera) -> torch.Tensor:
    """Pixels ``px`` (N, 2) of camera ``src`` at depths (N,) → pixels of camera ``dst`` (same head point)."""
    X = inverse_transform(unproject(px, depth, src.K), src.R, src.t)
    return project(transform(X, dst.R, dst.t), dst.K)


def region_box(points: np.ndarray, size: int, margin: float = 0.1) -> tuple[int, int, int, int]:
    """(x0, y0, w, h) integer box around (M, 2) pixel points, grown by ``margin`` each side, inside the frame."""
    lo, hi = np.percentile(points, 0.5, axis=0), np.percentile(points, 99.5, axis=0)
    pad = (hi - lo) * margin
    lo, hi = np.floor(np.maximum(lo - pad, 0)), np.ceil(np.minimum(hi + pad, size))
    return int(lo[0]), int(lo[1]), int(hi[0] - lo[0]), int(hi[1] - lo[1])


class CanonicalDepth(nn.Module):
    """Learnable depth (cm) over the pixel grid of ``box`` = (x0, y0, w, h) in the canonical view."""

    def __init__(self, box: tuple[int, int, int, int], init: np.ndarray | None = None):
        super().__init__()
        self.box = tuple(int(v) for v in box)
        w, h = self.box[2], self.box[3]
        self.depth = nn.Parameter(torch.as_tensor(init if init is not None else np.ones((h, w)), dtype=torch.float32))

    @staticmethod
    def initial(subject: Subject, c: int, box: tuple[int, int, int, int]) -> np.ndarray:
        """The canonical frame's rasterised face depth over ``box``, filled smoothly beyond the face."""
        d, covered = face_depth(subject, c)
        x0, y0, w, h = box
        d, covered = d[y0:y0 + h, x0:x0 + w], covered[y0:y0 + h, x0:x0 + w]
        return push_pull_fill(d[..., None], covered)[..., 0] if covered.any() else d

    def grid(self) -> torch.Tensor:
        """(h, w, 2) pixel centres of the box, in canonical-view pixels."""
        x0, y0, w, h = self.box
        dev = self.depth.device
        ys, xs = torch.meshgrid(torch.arange(h, device=dev) + y0 + 0.5, torch.arange(w, device=dev) + x0 + 0.5,
                                indexing="ij")
        return torch.stack([xs, ys], -1)

    def sample(self, q: torch.Tensor) -> torch.Tensor:
        """Depth at canonical pixels ``q`` (N, 2), bilinear, clamped to the box's border."""
        x0, y0, w, h = self.box
        gx = 2 * (q[:, 0] - x0) / w - 1
        gy = 2 * (q[:, 1] - y0) / h - 1
        g = torch.stack([gx, gy], -1)[None, None]
        return F.grid_sample(self.depth[None, None], g, mode="bilinear", padding_mode="border",
                             align_corners=False)[0, 0, 0]

    def c2o(self, q: torch.Tensor, canonical: Camera, observed: Camera) -> torch.Tensor:
        """Canonical pixels (N, 2) → observed pixels, through this depth."""
        return map_points(q, self.sample(q), canonical, observed)

    @torch.no_grad()
    def invert(self, p: torch.Tensor, canonical: Camera, observed: Camera, iters: int = 10) -> torch.Tensor:
        """Observed pixels (N, 2) → the canonical pixels whose C2O lands on them (Gauss-Newton with the
        affine part of C2O over the box as the Jacobian)."""
        k = max(1, int(np.ceil(np.sqrt(self.box[2] * self.box[3] / 256))))  # a lattice of ~256 points
        g = self.grid()[k // 2::k, k // 2::k].reshape(-1, 2)
        o = self.c2o(g, canonical, observed)
        A = torch.linalg.lstsq(torch.cat([g, torch.ones_like(g[:, :1])], 1), o).solution  # (3, 2)
        J_inv = torch.linalg.inv(A[:2].T)
        q = (p - A[2]) @ J_inv.T
        for _ in range(iters):
            q = q + (p - self.c2o(q, canonical, observed)) @ J_inv.T
        return q

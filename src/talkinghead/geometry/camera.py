"""Pinhole camera on torch tensors: pure functions with documented shapes (kornia style).

Conventions as everywhere in the project (OpenCV): camera x right, y down, z
away from the camera; a head pose maps canonical points ``X_cam = R X + t``;
pixel coordinates are continuous, so the centre of pixel (i, j) is
(i + 0.5, j + 0.5) when the intrinsics ``K`` are those of the image. All
functions broadcast over leading dimensions and are differentiable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["transform", "inverse_transform", "project", "unproject", "pixel_rays"]


def transform(X: torch.Tensor, R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Canonical points ``X (*, 3)`` to the camera frame: ``R X + t``; ``R (3, 3)``, ``t (3,)``."""
    return X @ R.T.to(X) + t.to(X)


def inverse_transform(X_cam: torch.Tensor, R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Camera-frame points ``(*, 3)`` back to the canonical frame: ``R^T (X_cam - t)``."""
    return (X_cam - t.to(X_cam)) @ R.to(X_cam)


def project(X_cam: torch.Tensor, K: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """Camera-frame points ``(*, 3)`` to pixels ``(*, 2)``: ``(fx x / z + cx, fy y / z + cy)``.

    ``K (3, 3)`` may have a skew term ``K[0, 1]``. Points must lie in front of the camera (z > 0);
    ``z`` is clamped at ``eps``.
    """
    K = K.to(X_cam)
    z = X_cam[..., 2:3].clamp_min(eps)
    xy = X_cam[..., :2] / z
    u = K[0, 0] * xy[..., 0] + K[0, 1] * xy[..., 1] + K[0, 2]
    v = K[1, 1] * xy[..., 1] + K[1, 2]
    return torch.stack([u, v], dim=-1)


def unproject(uv: torch.Tensor, depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Pixels ``(*, 2)`` at camera depth ``z`` ``(*)`` to camera-frame points ``(*, 3)``; inverse of ``project``."""
    K = K.to(uv)
    y = (uv[..., 1] - K[1, 2]) / K[1, 1]
    x = (uv[..., 0] - K[0, 2] - K[0, 1] * y) / K[0, 0]
    z = depth.to(uv)
    return torch.stack([x * z, y * z, z], dim=-1)


def pixel_rays(K: torch.Tensor, R: torch.Tensor, t: torch.Tensor,
               uv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical-frame rays through pixels ``uv (P, 2)``: origins ``(P, 3)`` (the camera centre
    ``-R^T t``) and unit directions ``(P, 3)`` (``R^T`` applied to the pixel's point at depth 1)."""
    d_cam = unproject(uv, torch.ones_like(uv[..., 0]), K)
    dirs = F.normalize(d_cam @ R.to(uv), dim=-1)  # (R^T d)^T = d^T R
    origin = -(R.to(uv).T @ t.to(uv))
    return origin.expand_as(dirs).contiguous(), dirs

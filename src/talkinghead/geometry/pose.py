"""Rigid head pose from landmarks: pure numpy/OpenCV functions.

Conventions (OpenCV camera): x right, y down, z away from the camera. A head
pose is ``X_cam = R @ X_canon + t`` with the canonical face in cm (see
``data/canonical_face.npy``); pixels are ``K @ X_cam`` divided by depth.
Euler angles: ``R = Rz(roll) @ Rx(pitch) @ Ry(yaw)``, degrees.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"


@lru_cache(maxsize=1)
def canonical_face() -> np.ndarray:
    """Our symmetric mean face, (478, 3) cm, origin at the rigid points' mean."""
    return np.load(DATA / "canonical_face.npy").astype(np.float64)


@lru_cache(maxsize=1)
def lower_face() -> np.ndarray:
    """Landmark indices that move with the jaw and lips: below the middle of nose tip and upper lip."""
    c = canonical_face()
    cut = (c[1, 1] + c[0, 1]) / 2  # y grows downwards
    return np.flatnonzero(c[:, 1] > cut)


def umeyama(src: np.ndarray, dst: np.ndarray, scale: bool = True,
            weights: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ≈ s * R @ src + t`` (Umeyama 1991), (N, D) points."""
    w = np.ones(len(src)) if weights is None else np.asarray(weights, float)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    a, b = src - mu_s, dst - mu_d
    cov = (b * w[:, None]).T @ a
    U, S, Vt = np.linalg.svd(cov)
    D = np.eye(src.shape[1])
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[-1, -1] = -1
    R = U @ D @ Vt
    var = np.sum(w * np.sum(a * a, axis=1))
    s = float(np.trace(np.diag(S) @ D) / var) if scale else 1.0
    t = mu_d - s * R @ mu_s
    return s, R, t


def matrix_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """``Rz(roll) @ Rx(pitch) @ Ry(yaw)`` from degrees."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def euler_from_matrix(R: np.ndarray) -> np.ndarray:
    """Inverse of :func:`matrix_from_euler`; ``(..., 3, 3)`` → ``(..., 3)`` (yaw, pitch, roll) degrees."""
    pitch = np.arcsin(np.clip(R[..., 2, 1], -1, 1))
    yaw = np.arctan2(-R[..., 2, 0], R[..., 2, 2])
    roll = np.arctan2(-R[..., 0, 1], R[..., 1, 1])
    return np.degrees(np.stack([yaw, pitch, roll], axis=-1))


def rotation_angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> np.ndarray:
    """Geodesic angle between rotations, degrees."""
    Rrel = np.swapaxes(Ra, -1, -2) @ Rb
    c = (np.trace(Rrel, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(c, -1, 1)))


def intrinsics(focal: float, width: int, height: int) -> np.ndarray:
    return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], dtype=np.float64)


def project(X: np.ndarray, R: np.ndarray, t: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixels of canonical points ``X`` (N, 3) under pose (R, t) and intrinsics K."""
    Xc = X @ R.T + t
    uv = Xc @ K.T
    return uv[:, :2] / uv[:, 2:3]


def fit_similarity_3d(obs: np.ndarray, canon: np.ndarray, idx) -> tuple[float, np.ndarray, np.ndarray]:
    """Orthographic fit ``obs[idx] ≈ s R canon[idx] + t`` on FaceMesh's (x, y, z) pixels."""
    return umeyama(canon[idx], obs[idx])


def ortho_to_perspective(s: float, R: np.ndarray, t2: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Translation (cm) of a perspective camera that matches an orthographic fit at the origin."""
    f, cx, cy = K[0, 0], K[0, 2], K[1, 2]
    tz = f / s
    return np.array([(t2[0] - cx) * tz / f, (t2[1] - cy) * tz / f, tz])


def solve_pnp(uv: np.ndarray, canon: np.ndarray, K: np.ndarray, R0: np.ndarray,
              t0: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Refine a pose by minimising reprojection error; returns (R, t, rms px)."""
    rvec, _ = cv2.Rodrigues(R0)
    ok, rvec, tvec = cv2.solvePnP(canon.astype(np.float64), uv.astype(np.float64), K, None,
                                  rvec, t0.reshape(3, 1).astype(np.float64).copy(),
                                  useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    R = cv2.Rodrigues(rvec)[0] if ok else R0
    t = tvec.ravel() if ok else t0
    err = float(np.sqrt(np.mean(np.sum((project(canon, R, t, K) - uv) ** 2, axis=1))))
    return R, t, err


def backproject_to_canonical(uv: np.ndarray, canon: np.ndarray, R: np.ndarray, t: np.ndarray,
                             K: np.ndarray) -> np.ndarray:
    """Pose-free landmarks ``K_f = P⁻¹ · proj⁻¹(uv)``.

    Each pixel is lifted to the depth its canonical point has under the pose,
    then the pose is removed; what remains is the face's own deformation
    (mouth, eyes) in canonical cm.
    """
    depth = (canon @ R.T + t)[:, 2]
    rays = np.concatenate([uv, np.ones((len(uv), 1))], axis=1) @ np.linalg.inv(K).T
    Xc = rays * depth[:, None]
    return (Xc - t) @ R  # R^T (Xc - t), row-wise

"""Per-frame head pose, camera intrinsics and pose-free landmarks for a track.

1. Orthographic similarity fit of the rigid points (forehead, nose bridge,
   temples, cheekbones, eye corners) of our canonical face to FaceMesh's
   (x, y, z) landmarks, frame by frame.
2. The subject's own mean shape: every frame's landmarks with pose removed,
   averaged, and aligned back onto the canonical face (so axes and cm scale
   stay the canonical ones). Refit with it.
3. A focal length: the candidate whose perspective (PnP) fit has the lowest
   reprojection error on a subset of frames.
4. Per-frame perspective pose by PnP from the orthographic start, lightly
   smoothed; then pose-free landmarks ``K_f = P⁻¹·proj⁻¹(K)``.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..geometry import face as mesh
from ..geometry import pose as P
from ..geometry.smooth import savgol
from ..progress import bar

FOCAL_CANDIDATES = (0.8, 1.0, 1.3, 1.7, 2.2, 3.0, 4.0, 6.0)  # × image size


def _ortho_fits(lm: np.ndarray, shape: np.ndarray):
    fits = [P.umeyama(shape[mesh.RIGID], frame[mesh.RIGID]) for frame in lm]
    return fits


def subject_shape(lm: np.ndarray, canon: np.ndarray) -> np.ndarray:
    """Mean pose-free 3-D shape of this face, in the canonical frame and scale."""
    fits = _ortho_fits(lm, canon)
    shapes = [((frame - t) @ R) / s for frame, (s, R, t) in zip(lm.astype(np.float64), fits)]
    mean = np.mean(shapes, axis=0)
    s, R, t = P.umeyama(mean[mesh.RIGID], canon[mesh.RIGID])
    return s * mean @ R.T + t


def estimate_focal(lm: np.ndarray, shape: np.ndarray, size: int, max_frames: int = 40) -> float:
    idx = np.linspace(0, len(lm) - 1, min(len(lm), max_frames)).round().astype(int)
    fits = _ortho_fits(lm[idx], shape)
    best, best_err = None, np.inf
    for c in FOCAL_CANDIDATES:
        K = P.intrinsics(c * size, size, size)
        err = 0.0
        for frame, (s, R, t2) in zip(lm[idx], fits):
            t0 = P.ortho_to_perspective(s, R, t2, K)
            err += P.solve_pnp(frame[mesh.RIGID, :2], shape[mesh.RIGID], K, R, t0)[2]
        if err < best_err * 0.98:  # prefer the shorter focal only when clearly better
            best, best_err = c * size, err
    return float(best)


def estimate_poses(lm: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Head pose for every frame of crop-space landmarks ``lm`` (N, 478, 3)."""
    lm = lm.astype(np.float64)
    shape = subject_shape(lm, P.canonical_face())
    focal = estimate_focal(lm, shape, size)
    K = P.intrinsics(focal, size, size)
    n = len(lm)
    rvecs, tvecs, errs = np.zeros((n, 3)), np.zeros((n, 3)), np.zeros(n)
    for i, ((s, R, t2), frame) in enumerate(zip(bar_iter(_ortho_fits(lm, shape), "pose"), lm)):
        t0 = P.ortho_to_perspective(s, R, t2, K)
        R1, t1, errs[i] = P.solve_pnp(frame[mesh.RIGID, :2], shape[mesh.RIGID], K, R, t0)
        rvecs[i] = cv2.Rodrigues(R1)[0].ravel()
        tvecs[i] = t1
    rvecs, tvecs = savgol(rvecs, 5, 2), savgol(tvecs, 5, 2)
    rot = np.stack([cv2.Rodrigues(r)[0] for r in rvecs])
    canon_lm = np.stack([P.backproject_to_canonical(frame[:, :2], shape, R, t, K)
                         for frame, R, t in zip(lm, rot, tvecs)])
    return {
        "rotation": rot.astype(np.float32),
        "translation": tvecs.astype(np.float32),
        "euler_deg": P.euler_from_matrix(rot).astype(np.float32),
        "intrinsics": K.astype(np.float32),
        "reproj_px": errs.astype(np.float32),
        "subject_shape": shape.astype(np.float32),
        "canon_landmarks": canon_lm.astype(np.float32),
    }


def bar_iter(items, desc):
    b = bar(len(items), desc, unit="f")
    for x in items:
        yield x
        b.update()
    b.close()

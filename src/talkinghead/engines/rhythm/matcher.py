"""The K reference frames and the motion matcher (§4.1-4.2), pure functions on tracked poses.

References: the most frontal training frame with open eyes first (the one the 3-D-aware module textures the
mesh from), then the frames farthest from those chosen in head pose and mouth opening (farthest-point
sampling), so the K references span the poses and mouths the person shows. The matcher picks, per target,
the reference nearest in head pose: its pixels are the background, torso and hair the decoder warps in.
Training (the paper's trick against copying): references within ``gap`` frames of the target are never
offered, and the pose costs carry noise of ``jitter`` degrees, so the decoder learns from a matched frame a
little off the target's pose, as a generated head pose will be at render time.
"""

from __future__ import annotations

import numpy as np

from ...geometry.pose import rotation_angle_deg
from .mesh import frontal_score

__all__ = ["choose_references", "pose_cost", "match"]


def choose_references(euler: np.ndarray, eye: np.ndarray, aperture: np.ndarray, frames: np.ndarray,
                      k: int) -> np.ndarray:
    """``k`` frame indices of ``frames`` (the reference window): the most frontal with open eyes first, then
    farthest-point sampling over (yaw, pitch, roll, mouth opening), each in units of its deviation."""
    frames = np.asarray(frames)
    e, o, a = euler[frames], eye[frames].mean(1), aperture[frames]
    open_eyes = o >= np.median(o)
    first = int(np.argmin(frontal_score(e) + 1e3 * ~open_eyes + a / (a.std() + 1e-9)))
    feats = np.concatenate([e, a[:, None]], 1)
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-9)
    chosen, dist = [first], np.linalg.norm(feats - feats[first], axis=1)
    while len(chosen) < min(k, len(frames)):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(feats - feats[nxt], axis=1))
    return frames[chosen]


def pose_cost(R: np.ndarray, t: np.ndarray, ref_R: np.ndarray, ref_t: np.ndarray, cm_per_deg: float = 0.5) -> np.ndarray:
    """(..., K) cost of matching targets (R (..., 3, 3), t (..., 3) cm) to references (K, 3, 3), (K, 3):
    the rotation angle between them in degrees plus their sideways offset (x, y) in ``cm_per_deg`` cm a degree."""
    ang = rotation_angle_deg(ref_R, R[..., None, :, :])
    off = np.linalg.norm(ref_t[:, :2] - t[..., None, :2], axis=-1)
    return ang + off / cm_per_deg


def match(cost: np.ndarray, offered: np.ndarray | None = None, jitter: float = 0.0,
          rng: np.random.Generator | None = None) -> np.ndarray:
    """(...,) the reference of least ``cost`` (..., K) among those ``offered`` (..., K bool), the costs
    jittered by ``jitter`` degrees of noise (training)."""
    c = np.array(cost, np.float64)
    if jitter > 0:
        c = c + jitter * np.abs((rng or np.random.default_rng()).standard_normal(c.shape))
    if offered is not None:
        c = np.where(offered, c, np.inf)
    return np.argmin(c, axis=-1)

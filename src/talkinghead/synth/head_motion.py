"""Head motion and blinks of the synthetic speaker.

Rotation convention (also the truth file's): image axes x right, y down, z
into the screen, and ``R = Rz(roll) @ Rx(pitch) @ Ry(yaw)`` applied to points
relative to the head centre. With these axes positive yaw turns the nose
toward the image's left (the subject's right), positive pitch tips the nose
down, positive roll turns the head clockwise on screen. Angles are degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..geometry.face import LEFT_BROW, LEFT_IRIS, N_LANDMARKS, RIGHT_BROW, RIGHT_IRIS, RIGID
from .face import (LEFT_EYE_LOWER, LEFT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_EYE_UPPER, mesh_triangles,
                   spread)


@dataclass(frozen=True)
class MotionConfig:
    """Amplitude limits (at ``motion = 1``) and blink timing."""

    yaw_deg: float = 8.0
    pitch_deg: float = 6.0
    roll_deg: float = 5.0
    shift: float = 0.04           # translation limit, fraction of the image size
    scale: float = 0.02           # scale limit, fraction
    nod_deg: float = 1.5          # part of the pitch budget used by speech nods
    freq_hz: tuple = (0.06, 0.45)  # range of the slow sinusoids
    n_waves: int = 3
    blink_gap_s: tuple = (2.0, 6.0)
    blink_len_s: tuple = (0.15, 0.25)
    blink_first_s: tuple = (0.4, 2.5)
    lid_meet: float = 0.2         # where the lids meet, from the lower lid toward the upper
    lid_follow: tuple = (0.9, 0.6)  # how far the mesh rings above the lid follow it


def rotation_matrix(euler_deg: np.ndarray) -> np.ndarray:
    """(..., 3) yaw, pitch, roll in degrees -> (..., 3, 3) ``Rz(roll) @ Rx(pitch) @ Ry(yaw)``."""
    y, p, r = np.moveaxis(np.deg2rad(np.asarray(euler_deg, np.float64)), -1, 0)
    cy, sy, cp, sp, cr, sr = np.cos(y), np.sin(y), np.cos(p), np.sin(p), np.cos(r), np.sin(r)
    one, zero = np.ones_like(y), np.zeros_like(y)
    ry = np.stack([np.stack([cy, zero, sy], -1), np.stack([zero, one, zero], -1),
                   np.stack([-sy, zero, cy], -1)], -2)
    rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, cp, -sp], -1),
                   np.stack([zero, sp, cp], -1)], -2)
    rz = np.stack([np.stack([cr, -sr, zero], -1), np.stack([sr, cr, zero], -1),
                   np.stack([zero, zero, one], -1)], -2)
    return rz @ rx @ ry


def _waves(n: int, fps: float, rng: np.random.Generator, limit: float, cfg: MotionConfig) -> np.ndarray:
    """A smooth signal bounded by ``limit``: a random mix of slow sinusoids."""
    t = np.arange(n) / fps
    f = rng.uniform(*cfg.freq_hz, cfg.n_waves)
    ph = rng.uniform(0, 2 * np.pi, cfg.n_waves)
    a = rng.dirichlet(np.ones(cfg.n_waves)) * limit
    return (a[:, None] * np.sin(2 * np.pi * f[:, None] * t + ph[:, None])).sum(axis=0)


@dataclass
class HeadMotion:
    """Per-frame pose: euler (N, 3) degrees, translation (N, 2) pixels, scale (N,)."""

    euler_deg: np.ndarray
    translation: np.ndarray
    scale: np.ndarray

    @property
    def rotation(self) -> np.ndarray:
        return rotation_matrix(self.euler_deg)


def head_motion(n: int, fps: float, size: int, rng: np.random.Generator, amount: float = 1.0,
                speech: np.ndarray | None = None, cfg: MotionConfig = MotionConfig()) -> HeadMotion:
    """Seeded smooth head motion; ``speech`` (N,) jaw opening adds small nods.

    Every channel stays within its limit times ``amount``; ``amount = 0``
    gives a perfectly still head (identity rotation, no shift, scale 1).
    """
    yaw = _waves(n, fps, rng, cfg.yaw_deg, cfg)
    pitch = _waves(n, fps, rng, cfg.pitch_deg - cfg.nod_deg, cfg)
    roll = _waves(n, fps, rng, cfg.roll_deg, cfg)
    tx = _waves(n, fps, rng, cfg.shift * size, cfg)
    ty = _waves(n, fps, rng, cfg.shift * size, cfg)
    sc = _waves(n, fps, rng, cfg.scale, cfg)
    if speech is not None and len(speech) == n and n > 1:
        s = np.asarray(speech, np.float64)
        fast, slow = (gaussian_filter1d(s, k * fps, mode="nearest") for k in (0.08, 0.6))
        nod = fast - slow  # stressed, open syllables tip the head down a little
        pitch = pitch + cfg.nod_deg * np.clip(nod / 0.25, -1.0, 1.0)
    euler = np.stack([yaw, pitch, roll], axis=1) * amount
    return HeadMotion(euler, np.stack([tx, ty], axis=1) * amount, 1.0 + sc * amount)


def blinks(n: int, fps: float, rng: np.random.Generator, cfg: MotionConfig = MotionConfig()) -> np.ndarray:
    """(N,) eyelid closure in [0, 1]: seeded blinks every 2-6 s, 150-250 ms long.

    Each blink closes fast, holds briefly and opens more slowly; its fully
    closed instant falls on a frame, so every blink has a closed frame.
    """
    out = np.zeros(n)
    t = rng.uniform(*cfg.blink_first_s)
    frames = np.arange(n) / fps
    while t < n / fps:
        dur = rng.uniform(*cfg.blink_len_s)
        peak = round((t + 0.35 * dur) * fps) / fps  # snap the closed instant to a frame
        x = frames - peak
        close = np.clip(1 + x / (0.35 * dur), 0, 1)   # rising before the peak
        open_ = np.clip(1 - (x - 0.1 * dur) / (0.55 * dur), 0, 1)
        prof = np.where(x < 0, close, np.where(x < 0.1 * dur, 1.0, open_))
        out = np.maximum(out, np.sin(np.pi / 2 * prof) ** 2)
        t = peak + rng.uniform(*cfg.blink_gap_s)
    return out


def _neighbours() -> dict[int, set]:
    adj: dict[int, set] = {}
    for t in mesh_triangles():
        for a in t:
            adj.setdefault(int(a), set()).update(int(b) for b in t if b != a)
    return adj


def blink_bases(points: np.ndarray, cfg: MotionConfig = MotionConfig()) -> np.ndarray:
    """(M, 3) displacement closing both eyes (upper lid down onto the lower), for blink = 1.

    The lid margin with its lashes slides down almost rigidly (the first mesh
    ring above the lid follows by ``lid_follow[0]``, the next by
    ``lid_follow[1]``), so the skin above it is what stretches over the eye.
    """
    lm = points[:N_LANDMARKS]
    adj = _neighbours()
    fixed, vals = [], []
    for up, lo, brow in ((RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_BROW),
                         (LEFT_EYE_UPPER, LEFT_EYE_LOWER, LEFT_BROW)):
        meet = lm[lo[1:-1]] + cfg.lid_meet * (lm[up[1:-1]] - lm[lo[1:-1]])
        lid = meet - lm[up[1:-1]]
        fixed += list(up[1:-1]) + list(lo[1:-1])
        vals += list(lid) + list(meet - lm[lo[1:-1]])
        done, ring, bottom = set(up), list(up[1:-1]), lm[up, 1].max()
        for follow in cfg.lid_follow:
            ring = sorted(i for i in {n for p in ring for n in adj[p]} - done
                          if lm[i, 1] < bottom and i not in brow)
            done |= set(ring)
            near = np.abs(lm[ring, None, 0] - lm[None, up[1:-1], 0]).argmin(axis=1)
            fixed += ring
            vals += list(follow * lid[near])
        still = [up[0], up[-1]] + list(brow)  # corners, brows (and irises, below) stay
        fixed += still
        vals += [np.zeros(3)] * len(still)
    still = [i for i in RIGHT_IRIS + LEFT_IRIS + RIGID if i not in fixed]  # rigid points stay rigid
    fixed += still
    vals += [np.zeros(3)] * len(still)
    width = np.linalg.norm(lm[RIGHT_EYE_UPPER[0], :2] - lm[RIGHT_EYE_UPPER[-1], :2])
    centre = lm[RIGHT_EYE_UPPER + LEFT_EYE_UPPER, :2]
    far = [i for i in range(len(points)) if i not in fixed and
           np.min(np.linalg.norm(centre - points[i, :2], axis=1)) > 1.2 * width]
    fixed += far
    vals += [np.zeros(3)] * len(far)
    return spread(points, np.array(fixed), np.array(vals), 0.3 * width)

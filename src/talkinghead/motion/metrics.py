"""Motion metrics on held-out frames, before any rendering (pure functions, then two helpers).

* Expression learner: aperture r of the predicted mouth with the tracked one, how much it opens and closes
  against the tracked one (aperture std ratio), and the lip LMD (px at 512², predicted pose-free lips placed at
  the tracked pose).
* Head motion learner, its motion generated for held-out audio:
  - ``std_ratio``: per axis, generated pose std / real held-out std (1 = as lively as the person);
  - ``velocity_fd``: Fréchet distance between Gaussians fitted to per-frame (velocity of the 6 axes in
    units of the subject's training velocity std, speech loudness standardised): a motion that has
    the person's speed but ignores the speech, or goes with the speech at the wrong speed, is far;
    measured also for a still head and for training poses replayed at a random shift (baselines);
  - ``energy_r``: correlation of motion energy (|angular velocity|, 0.5-s mean) with speech loudness;
  - ``replay``: how close generated 1-s windows come to training windows (median nearest distance),
    over the same for the real held-out windows: below ~0.5 means it replays training motion.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

from ..geometry import face as mesh
from ..geometry.pose import project
from .head import pose_vectors, speech_energy

__all__ = ["frechet", "velocity_features", "velocity_fd", "energy_r", "replay_score", "std_ratio",
           "mouth_metrics", "expression_metrics", "head_metrics"]


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and ``b`` (N, D)."""
    ma, mb = a.mean(0), b.mean(0)
    eye = 1e-6 * np.eye(a.shape[1])  # a still head has no spread: keep the square root defined
    ca, cb = np.atleast_2d(np.cov(a, rowvar=False)) + eye, np.atleast_2d(np.cov(b, rowvar=False)) + eye
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(ca @ cb)
    root = root.real if np.iscomplexobj(root) else root
    return float(((ma - mb) ** 2).sum() + np.trace(ca + cb - 2 * root))


def velocity_features(poses: np.ndarray, energy: np.ndarray, vel_std: np.ndarray, e_mean: float,
                      e_std: float) -> np.ndarray:
    v = np.diff(np.asarray(poses, np.float64), axis=0) / vel_std
    e = (np.asarray(energy, np.float64)[1:] - e_mean) / e_std
    return np.concatenate([v, e[:, None]], 1)


def velocity_fd(real: np.ndarray, fake: np.ndarray, energy: np.ndarray, train_poses: np.ndarray,
                train_energy: np.ndarray) -> float:
    vs = np.maximum(np.diff(train_poses, axis=0).std(0), 1e-6)
    em, es = float(train_energy.mean()), float(max(train_energy.std(), 1e-6))
    return frechet(velocity_features(real, energy, vs, em, es), velocity_features(fake, energy, vs, em, es))


def _smooth(x: np.ndarray, k: int) -> np.ndarray:
    return np.convolve(x, np.ones(k) / k, "same")


def energy_r(poses: np.ndarray, energy: np.ndarray, fps: float = 25.0) -> float:
    """Pearson r of motion energy (|angular velocity|, 0.5-s mean) with speech loudness (0.5-s mean)."""
    k = max(1, int(round(fps / 2)))
    m = _smooth(np.linalg.norm(np.diff(poses[:, :3], axis=0), axis=1), k)
    e = _smooth(np.asarray(energy, np.float64)[1:], k)
    if m.std() < 1e-9 or e.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(m, e)[0, 1])


def _windows(p: np.ndarray, w: int, stride: int) -> np.ndarray:
    idx = np.arange(0, len(p) - w + 1, stride)[:, None] + np.arange(w)
    x = p[idx]
    return (x - x.mean(1, keepdims=True)).reshape(len(idx), -1)  # shape of the motion, not where it is


def replay_score(fake: np.ndarray, real: np.ndarray, train: np.ndarray, scale: np.ndarray, w: int = 25) -> float:
    """median nearest-training-window distance of generated windows / that of real held-out windows."""
    w = min(w, len(fake), len(real), len(train))
    if w < 2:
        return float("nan")
    t = _windows(train / scale, w, 1)

    def nearest(x):
        q = _windows(x / scale, w, max(1, w // 5))
        d = (q ** 2).sum(1)[:, None] + (t ** 2).sum(1)[None] - 2 * q @ t.T
        return float(np.median(np.sqrt(np.maximum(d.min(1), 0))))

    return nearest(fake) / max(nearest(real), 1e-9)


def std_ratio(fake: np.ndarray, real: np.ndarray) -> np.ndarray:
    return np.asarray(fake, np.float64).std(0) / np.maximum(np.asarray(real, np.float64).std(0), 1e-9)


def mouth_metrics(pca, coef: np.ndarray, subject, idx: np.ndarray) -> dict:
    """Aperture r and lip LMD (px at 512²) of predicted mouth coefficients ``coef`` for frames ``idx``: the
    decoded pose-free lips, placed at each frame's tracked pose, against its tracked lips."""
    tr = subject.tracks
    lm = tr["canon_landmarks"][idx].astype(np.float64).copy()
    lm[..., :2] = pca.decode(coef, lm)
    ap = mesh.mouth_aperture(lm[..., :2])
    r = float(np.corrcoef(ap, tr["aperture"][idx])[0, 1])
    lips, K = mesh.LIPS_OUTER + mesh.LIPS_INNER, tr["intrinsics"].astype(np.float64)
    d = [np.linalg.norm(project(lm[n][lips], tr["rotation"][i].astype(np.float64),
                                tr["translation"][i].astype(np.float64), K) - tr["landmarks"][i][lips, :2], axis=1).mean()
         for n, i in enumerate(idx)]
    return {"aperture_r": r, "std_ratio": float(ap.std() / max(tr["aperture"][idx].std(), 1e-9)),
            "lmd": float(np.mean(d)) * 512 / subject.size}


def expression_metrics(model, subject, idx: np.ndarray) -> dict:
    """``mouth_metrics`` of a ``MotionModel``'s expression learner driven by the audio of frames ``idx``."""
    af = subject.audio_features
    coef = model.mouth_codes(af["visemes"][idx], af["mel_windows"][idx].astype(np.float32))
    return mouth_metrics(model.expression.pca, coef, subject, idx)


def head_metrics(model, subject, idx: np.ndarray, train_idx: np.ndarray, seed: int = 0) -> dict:
    """Head-motion metrics of motion generated for the audio of frames ``idx``, against their real poses."""
    af, tr = subject.audio_features, subject.tracks
    poses = pose_vectors(tr["rotation"], tr["translation"], model.cfg.head.smooth)
    energy = speech_energy(af["mel_windows"])
    real, train = poses[idx], poses[train_idx]
    fake = model.head_motion(af["visemes"][idx], af["mel_windows"][idx].astype(np.float32), seed)
    rng = np.random.default_rng(seed)
    s = int(rng.integers(0, max(1, len(train) - len(idx))))
    replayed = np.resize(train[s:], (len(idx), 6))
    still = np.repeat(train[len(train) // 2][None], len(idx), 0)
    fd = lambda x: velocity_fd(real, x, energy[idx], train, energy[train_idx])  # noqa: E731
    ratio = std_ratio(fake, real)
    axes = ("yaw", "pitch", "roll", "tx", "ty", "tz")
    out = {f"std_ratio_{a}": float(v) for a, v in zip(axes, ratio)}
    out.update({f"velocity_std_ratio_{a}": float(v) for a, v in zip(axes, std_ratio(np.diff(fake, axis=0),
                                                                                       np.diff(real, axis=0)))})
    out.update(velocity_fd=fd(fake), velocity_fd_still=fd(still), velocity_fd_replay=fd(replayed),
               energy_r=energy_r(fake, energy[idx], subject.fps), energy_r_real=energy_r(real, energy[idx], subject.fps),
               replay=replay_score(fake, real, train, np.maximum(train.std(0), 1e-6)),
               max_step_deg=float(np.abs(np.diff(fake[:, :3], axis=0)).max()))
    return out

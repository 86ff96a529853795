"""What the NeRF engine trains from: downsampled frames, region labels, cameras and audio windows.

Cameras: the prepare track gives ``X_cam = R·X_canon + t`` (cm) and a pinhole
``K`` for the subject crop. The head lives still in the canonical frame, so
frame i's camera is (R_i, t_i) with ``K`` scaled to the render resolution.

Audio: RAD-NeRF feeds 16 feature frames at 50 Hz (ASR logits) per video
frame and attends over 8 consecutive such windows. Our per-frame window is
``audio`` = ``"visemes"`` (the subject's 15 soft visemes, 25 fps, interpolated
to 16 half-frame steps around the frame: 300 ms), ``"mel"`` (its 16 x 10 ms
log-mel frames, 80 bands) or ``"both"`` (the two side by side, 95 channels,
the default). ``stack8(windows, idx)`` gives the (8, 16, C) stacks. The
audio network standardises the mel channels with the training frames' per-band
statistics (``input_stats``, in ``audio/windows.py``), which it keeps for rendering.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ...audio.windows import feature_windows
from ...compose.labels import FACE, HEAD_LABELS, TORSO
from ...geometry.face import LIPS_INNER, LIPS_OUTER
from ...progress import bar
from ...subject import Subject


def stack8(windows: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(N, 16, C) windows → (len(idx), 8, 16, C): windows of frames i-4 … i+3 (clamped)."""
    k = np.clip(np.asarray(idx)[:, None] + np.arange(-4, 4)[None], 0, len(windows) - 1)
    return windows[k]


class LipBasis:
    """The lip contours' principal axes, fitted on training frames: turns lip points into the codes the
    audio network is taught (``lip_codes``) and the field reads, so tracked or predicted mouths (the
    expression learner's, ``--lips audio``) drive the field through the same coordinates.

    The inner and outer lip contours' (x, y) are centred on the fitting frames' mean and rotated into
    their principal axes; everything is divided by the first axis' standard deviation, so column 0 (mostly
    the mouth opening) has unit variance and the later columns keep their smaller natural scale (tracking
    jitter stays small instead of being blown up by whitening). Columns past the 80 lip coordinates are zero.
    """

    POINTS = len(LIPS_OUTER) + len(LIPS_INNER)  # 40: the first points of motion.MOUTH_POINTS

    def __init__(self, lips: np.ndarray, dim: int):
        """``lips`` (N, 40, 2): the fitting frames' ``LIPS_OUTER + LIPS_INNER`` points, pose-free."""
        fit = np.asarray(lips, np.float64).reshape(len(lips), -1)
        self.mean, self.dim = fit.mean(0), dim
        _, s, vt = np.linalg.svd(fit - self.mean, full_matrices=False)
        self.axes = vt[:min(dim, vt.shape[0])]
        self.scale = s[0] / np.sqrt(len(fit)) if s[0] > 0 else 1.0

    @classmethod
    def fit(cls, canon: np.ndarray, fit_idx: np.ndarray, dim: int) -> "LipBasis":
        """From ``(N, 478, 3)`` canonical landmarks and the frames to fit on."""
        return cls(lip_points(np.asarray(canon)[np.asarray(fit_idx)]), dim)

    def codes(self, lips: np.ndarray) -> np.ndarray:
        """``(N, 40, 2)`` lip points (``LIPS_OUTER + LIPS_INNER``) -> ``(N, dim)`` float32 codes."""
        x = np.asarray(lips, np.float64).reshape(len(lips), -1)
        out = np.zeros((len(x), self.dim), np.float32)
        out[:, :len(self.axes)] = (x - self.mean) @ self.axes.T / self.scale
        return out


def lip_points(canon: np.ndarray) -> np.ndarray:
    """``(N, 478, ≥2)`` landmarks -> ``(N, 40, 2)``: the outer then inner lip contour (``motion.MOUTH_POINTS``'s
    first 40 points)."""
    return np.asarray(canon)[:, LIPS_OUTER + LIPS_INNER, :2]


def lip_codes(canon: np.ndarray, fit_idx: np.ndarray, dim: int) -> np.ndarray:
    """Teacher codes for the audio network: ``(N, 478, 3)`` canonical landmarks -> ``(N, dim)`` (``LipBasis``
    fitted on frames ``fit_idx``)."""
    return LipBasis.fit(canon, fit_idx, dim).codes(lip_points(canon))


def head_aabb(shape: np.ndarray, margin: tuple[float, ...]) -> tuple[float, ...]:
    """Box around the subject's canonical face, grown for hair, ears and the back of the head.

    ``margin`` = (sides, above, below, front, behind) as fractions of face width/height/depth.
    """
    lo, hi = shape.min(0), shape.max(0)
    w, h, d = hi - lo
    s, up, down, front, back = margin
    return (float(lo[0] - s * w), float(lo[1] - up * h), float(lo[2] - front * d),
            float(hi[0] + s * w), float(hi[1] + down * h), float(hi[2] + back * d))


class NerfData:
    """Frames of the training split at render resolution, with labels and per-frame conditions."""

    def __init__(self, subject: Subject, size: int, audio: str, indices: np.ndarray | None = None):
        self.subject, self.size = subject, size
        tr, af = subject.tracks, subject.audio_features
        s = size / subject.size
        K = tr["intrinsics"].astype(np.float64).copy()
        K[:2] *= s  # continuous pixel coordinates: pixel (x, y) covers [x, x+1) x [y, y+1)
        self.K = K.astype(np.float32)
        self.rot, self.trans = tr["rotation"].astype(np.float32), tr["translation"].astype(np.float32)
        eye = tr["eye"].mean(1)
        self.eye_open = float(np.percentile(eye, 90)) or 1.0
        self.eye = (eye / self.eye_open).astype(np.float32)  # 1 ≈ open, 0 = closed
        self.windows = feature_windows(audio, af["visemes"], af["mel_windows"])
        self.lip_box = tr["lip_box"] * s
        self.t_scale = float(np.median(self.trans[:, 2])) or 1.0
        self.background = self.resize(subject.background())
        self.indices = np.arange(subject.n_frames) if indices is None else np.asarray(indices)
        self.images: dict[int, np.ndarray] = {}
        self.labels: dict[int, np.ndarray] = {}

    def resize(self, img: np.ndarray, nearest: bool = False) -> np.ndarray:
        if img.shape[0] == self.size:
            return img
        return cv2.resize(img, (self.size, self.size),
                          interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)

    def load(self, desc: str = "load frames") -> None:
        b = bar(len(self.indices), desc, unit="f")
        for i in self.indices:
            i = int(i)
            if i not in self.images:
                self.images[i] = self.resize(self.subject.frame(i))
                self.labels[i] = self.resize(self.subject.mask(i), nearest=True)
            b.update()
        b.close()

    def pose(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.rot[i]), torch.from_numpy(self.trans[i])

    def pixels(self, i: int, n: int, rng: np.random.Generator, head_share: float = 0.75,
               region: str = "head", lip_share: float = 0.0) -> np.ndarray:
        """(n, 2) integer pixel coordinates (x, y): ``lip_share`` in the (1.5x) lip box, ``head_share``
        inside the region's box, the rest uniform over the frame."""
        n_lip = int(n * lip_share)
        lips = np.zeros((0, 2), int)
        if n_lip:
            x0, y0, x1, y1 = self.lip_box[i]
            cx, cy, h = (x0 + x1) / 2, (y0 + y1) / 2, 0.75 * max(x1 - x0, y1 - y0)
            lips = np.stack([rng.uniform(cx - h, cx + h, n_lip), rng.uniform(cy - h, cy + h, n_lip)], 1)
            lips = np.clip(np.floor(lips), 0, self.size - 1).astype(int)
        n -= n_lip
        lab = self.labels[i]
        m = np.isin(lab, HEAD_LABELS) if region == "head" else (lab == TORSO)
        ys, xs = np.nonzero(m)
        k = int(n * head_share) if len(xs) else 0
        if k:
            pad = 4
            x0, x1 = max(0, xs.min() - pad), min(self.size, xs.max() + pad + 1)
            y0, y1 = max(0, ys.min() - pad), min(self.size, ys.max() + pad + 1)
            inner = np.stack([rng.integers(x0, x1, k), rng.integers(y0, y1, k)], 1)
        else:
            inner = np.zeros((0, 2), int)
        outer = rng.integers(0, self.size, (n - k, 2))
        return np.concatenate([lips, inner, outer])

    def patch(self, i: int, side: int, rng: np.random.Generator) -> np.ndarray:
        """(side², 2) pixels of a square patch covering the lips (jittered), row-major."""
        x0, y0, x1, y1 = self.lip_box[i]
        cx = (x0 + x1) / 2 + rng.uniform(-0.1, 0.1) * (x1 - x0)
        cy = (y0 + y1) / 2 + rng.uniform(-0.1, 0.1) * (y1 - y0)
        half = side / 2
        px0 = int(np.clip(round(cx - half), 0, self.size - side))
        py0 = int(np.clip(round(cy - half), 0, self.size - side))
        yy, xx = np.mgrid[py0:py0 + side, px0:px0 + side]
        return np.stack([xx.ravel(), yy.ravel()], 1)

    def targets(self, i: int, px: np.ndarray) -> dict[str, torch.Tensor]:
        """Colour, torso-and-background colour (head pixels replaced by the plate) and region flags."""
        x, y = px[:, 0], px[:, 1]
        rgb = self.images[i][y, x].astype(np.float32) / 255
        lab = self.labels[i][y, x]
        head = np.isin(lab, HEAD_LABELS)
        plate = self.background[y, x].astype(np.float32) / 255
        bg_torso = np.where(head[:, None], plate, rgb)
        return {"rgb": torch.from_numpy(rgb), "bg_torso": torch.from_numpy(bg_torso),
                "plate": torch.from_numpy(plate), "head": torch.from_numpy(head),
                "face": torch.from_numpy(lab == FACE), "torso": torch.from_numpy(lab == TORSO)}

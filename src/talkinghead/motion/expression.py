"""Expression learner (seed: "Talking-head Generation with Rhythmic Head Motion", Sec. 3.2): audio → mouth shape.

The target is the subject's pose-free mouth and jaw: the x, y of the inner and
outer lip contours and the jaw line of ``canon_landmarks`` (61 points), as
coefficients of a PCA fitted on the training frames (``MouthPCA``, 20
components by default, each scaled to unit variance so all count alike).

Input per frame: the shared per-frame audio windows (``audio/windows.py``:
soft visemes and standardised log-mel). A window encoder (strided 1-D convs
over the 16 steps) turns each frame's window into 64 numbers; temporal
convolutions over a run of frames (kernel 5, then 5 dilated by 2, then 3)
give each frame's coefficients from ±7 frames of context, so coarticulation is
seen. Loss: squared error of the coefficients plus a velocity term (frame-to-
frame differences against the truth's) against jitter.

Other voices and microphones: the log-mel of a drive is first mapped from its
own utterance's per-band mean and deviation to the training audio's
(``audio.windows.renormalise``; in training every sequence is mapped from the
statistics of the 5 s around it, so both see the same kind of input), and
``mel_dropout`` of the training sequences carry no log-mel at all, so the
visemes (speaker-independent) must carry the mouth too. A few members with
different seeds are trained side by side and averaged. Both measured:
bench/RESULTS.md "the expression learner: other voices and averaged members".

Look-ahead: 7 frames of temporal context + the windows' 4 = 11 frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..audio.windows import input_stats, mel_stats
from ..geometry import face as mesh
from ..nn import Standardise

__all__ = ["MOUTH_POINTS", "ExpressionConfig", "MouthPCA", "WindowEncoder", "ExpressionNet", "ExpressionModel",
           "LOOKAHEAD"]

MOUTH_POINTS = mesh.LIPS_OUTER + mesh.LIPS_INNER + mesh.JAW
LOOKAHEAD = 11  # frames: temporal convs reach 7 frames, a window 4 more


@dataclass
class ExpressionConfig:
    n_coeffs: int = 20
    hidden: int = 128
    dropout: float = 0.1
    members: int = 3  # models with different seeds, averaged
    seq: int = 32  # frames per training sequence
    batch: int = 16  # sequences per step
    lr: float = 1e-3
    w_velocity: float = 1.0
    loss_power: float = 0.0  # coefficient weights = variance ** loss_power (1: squared error of the landmarks)
    mel_dropout: float = 0.3  # share of training sequences with their log-mel removed
    context: int = 125  # frames whose statistics normalise a training sequence (5 s at 25 fps)
    w_moment: float = 0.0  # per-sequence deviation of each coefficient and of its velocity against the truth's


class MouthPCA(nn.Module):
    """PCA of the pose-free mouth and jaw landmarks; coefficients have unit variance on the fit frames."""

    def __init__(self, n_coeffs: int = 20, n_points: int = len(MOUTH_POINTS)):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_points * 2, dtype=torch.float64))
        self.register_buffer("comps", torch.zeros(n_coeffs, n_points * 2, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(n_coeffs, dtype=torch.float64))

    @staticmethod
    def flat(canon: np.ndarray) -> np.ndarray:
        return np.asarray(canon, np.float64)[:, MOUTH_POINTS, :2].reshape(len(canon), -1)

    def fit(self, canon: np.ndarray, idx: np.ndarray) -> "MouthPCA":
        x = self.flat(canon)[np.asarray(idx)]
        mean = x.mean(0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        k = self.comps.shape[0]
        self.mean.copy_(torch.from_numpy(mean))
        self.comps.copy_(torch.from_numpy(vt[:k]))
        self.scale.copy_(torch.from_numpy(np.maximum(s[:k] / np.sqrt(len(x)), 1e-9)))
        return self

    def encode(self, canon: np.ndarray) -> np.ndarray:
        """(N, 478, 2+) pose-free landmarks → (N, K) float32 coefficients."""
        return self.encode_points(np.asarray(canon)[:, MOUTH_POINTS, :2])

    def encode_points(self, points: np.ndarray) -> np.ndarray:
        """(N, len(MOUTH_POINTS), 2) pose-free mouth and jaw points (``points``' inverse) → (N, K) float32."""
        x = np.asarray(points, np.float64).reshape(len(points), -1)
        c = (x - self.mean.numpy()) @ self.comps.numpy().T / self.scale.numpy()
        return c.astype(np.float32)

    def points(self, coeffs: np.ndarray) -> np.ndarray:
        """(N, K) → (N, len(MOUTH_POINTS), 2) the pose-free mouth and jaw points."""
        c = np.asarray(coeffs, np.float64)
        return ((c * self.scale.numpy()) @ self.comps.numpy() + self.mean.numpy()).reshape(len(c), -1, 2)

    def decode(self, coeffs: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
        """(N, K) → (N, 478, 2) landmarks: the mouth points from the coefficients, the rest from ``base``
        (N or 1, 478, 2+; default the mean shape repeated, other points zero)."""
        c = np.asarray(coeffs, np.float64)
        pts = self.points(c)
        out = np.zeros((len(c), mesh.N_LANDMARKS, 2)) if base is None else \
            np.broadcast_to(np.asarray(base, np.float64)[..., :2], (len(c), mesh.N_LANDMARKS, 2)).copy()
        out[:, MOUTH_POINTS] = pts
        return out


class WindowEncoder(nn.Sequential):
    """(B, 16, C) one frame's audio window → (B, out): strided 1-D convolutions, 16 steps to 1."""

    def __init__(self, channels: int, out: int = 64, slope: float = 0.02):
        convs: list[nn.Module] = []
        for cin, cout in ((channels, out), (out, out), (out, out), (out, out)):
            convs += [nn.Conv1d(cin, cout, 3, 2, 1), nn.LeakyReLU(slope)]
        super().__init__(*convs)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return super().forward(windows.transpose(1, 2)).flatten(1)


class ExpressionNet(nn.Module):
    """(B, T, 16, C) audio windows of T consecutive frames → (B, T, K) coefficients."""

    def __init__(self, channels: int, cfg: ExpressionConfig):
        super().__init__()
        self.norm = Standardise(channels)
        slope = 0.02
        self.window = WindowEncoder(channels, 64, slope)
        h = cfg.hidden
        self.temporal = nn.Sequential(
            nn.Conv1d(64, h, 5, padding=2), nn.LeakyReLU(slope), nn.Dropout(cfg.dropout),
            nn.Conv1d(h, h, 5, padding=4, dilation=2), nn.LeakyReLU(slope), nn.Dropout(cfg.dropout),
            nn.Conv1d(h, cfg.n_coeffs, 3, padding=1))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        b, t = windows.shape[:2]
        f = self.window(self.norm(windows.reshape(b * t, *windows.shape[2:])))
        return self.temporal(f.reshape(b, t, -1).transpose(1, 2)).transpose(1, 2)


class ExpressionModel(nn.Module):
    """The averaged members and the PCA they predict in: ``forward`` gives coefficients,
    ``landmarks`` the pose-free mouth and jaw."""

    def __init__(self, channels: int, cfg: ExpressionConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or ExpressionConfig()
        self.members = nn.ModuleList(ExpressionNet(channels, cfg) for _ in range(cfg.members))
        self.pca = MouthPCA(cfg.n_coeffs)
        self.register_buffer("ref_mean", torch.zeros(80))  # the training audio's log-mel statistics
        self.register_buffer("ref_std", torch.ones(80))

    def reference(self) -> tuple[np.ndarray, np.ndarray]:
        return self.ref_mean.cpu().numpy(), self.ref_std.cpu().numpy()

    def set_reference(self, mean, std) -> None:
        self.ref_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.ref_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def fit(self, kind: str, windows: np.ndarray, subject, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Before training, from the training frames ``idx``: the input standardisation of ``windows`` (returned,
        for other encoders of the same windows), the training audio's log-mel statistics, the mouth PCA."""
        stats = input_stats(kind, windows[idx])
        self.set_input_stats(*stats)
        self.set_reference(*mel_stats(subject.audio_features["mel_windows"][idx]))
        self.pca.fit(subject.tracks["canon_landmarks"], idx)
        return stats

    def set_input_stats(self, shift, scale) -> None:
        for m in self.members:
            m.norm.set(shift, scale)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(windows) for m in self.members]).mean(0)

    def loss_weights(self) -> torch.Tensor:
        """Per-coefficient weights: each component's variance to the power ``loss_power`` (mean 1). 0: all
        alike; 1: the squared error of the landmarks themselves (the PCA basis is orthonormal)."""
        v = self.pca.scale.float() ** (2 * self.cfg.loss_power)
        return v / v.mean()

    def member_losses(self, windows: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Coefficient and velocity losses, summed over the members (each learns on its own)."""
        coef = vel = mom = 0.0
        dt = target[:, 1:] - target[:, :-1]
        w = self.loss_weights().to(target.device)
        for m in self.members:
            p = m(windows)
            coef = coef + (((p - target) ** 2) * w).mean()
            dp = p[:, 1:] - p[:, :-1]
            vel = vel + (((dp - dt) ** 2) * w).mean()
            if self.cfg.w_moment > 0:
                mom = mom + (((p.std(1) - target.std(1)) ** 2 + (dp.std(1) - dt.std(1)) ** 2) * w).mean()
        out = {"coef": coef, "velocity": self.cfg.w_velocity * vel}
        if self.cfg.w_moment > 0:
            out["moment"] = self.cfg.w_moment * mom
        return out

    @torch.no_grad()
    def predict(self, windows: np.ndarray) -> np.ndarray:
        """(N, 16, C) windows of consecutive frames → (N, K) coefficients (edges see clamped context)."""
        was = self.training
        self.eval()
        out = self(torch.from_numpy(np.asarray(windows, np.float32))[None])[0].numpy()
        self.train(was)
        return out

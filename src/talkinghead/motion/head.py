"""Head motion learner Φ (seed: "Talking-head Generation with Rhythmic Head Motion", Sec. 3.3).

Pose per frame: yaw, pitch, roll (degrees) and translation (the units of
``tracks.npz``), from ``prepare``'s rigid fit, lightly smoothed (tracking
jitter is not motion) and standardised with the training frames' mean and
deviation per axis.

The generator extrapolates: given a reference clip's motion (the paper's 3 s)
and the audio of the next ``chunk`` frames, it produces those frames' poses.
A reference encoder (strided temporal convolutions, averaged) turns the
reference into a style vector (how much and how fast this person moves); the
audio windows are encoded per frame as the expression learner's are; noise
(one vector per chunk) lets the same audio give different, equally natural
motion. Temporal convolutions over the chunk give offsets from the
reference's last pose, so chunks join. Long outputs chain chunks, each
conditioned on the last 3 s generated (never on replayed training poses).

Training: a conditional discriminator (poses, velocities and speech energy of a
chunk) with the least-squares GAN loss, so the motion has the subject's rhythm
rather than the mean pose; a moment loss (per-axis deviation of poses and
velocities over the batch against the real chunks'); a weak L1 to the real
continuation (what is predictable: where the head goes from where it is).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..geometry.pose import euler_from_matrix, matrix_from_euler
from ..geometry.smooth import gaussian
from ..nn import Standardise
from .expression import WindowEncoder

__all__ = ["HeadConfig", "HeadMotionModel", "pose_vectors", "pose_matrices", "speech_energy"]


@dataclass
class HeadConfig:
    ref: int = 75  # reference frames (3 s at 25 fps)
    chunk: int = 50  # frames generated per extrapolation step
    hidden: int = 96
    noise: int = 16
    smooth: float = 1.5  # sigma (frames) of the smoothing of tracked poses
    batch: int = 16
    lr: float = 1e-3
    w_gan: float = 1.0
    w_moment: float = 5.0
    w_rec: float = 0.1
    w_start: float = 1.0
    w_rhythm: float = 0.0  # how motion goes with loudness: the chunk's correlation of the two against the real one's
    join_smooth: float = 0.0  # sigma (frames) of a smoothing over a generated track (0: none; joins are smooth)
    # a long track chains chunks, each conditioned on the last generated: where a chunk's mean pose strays past
    # this many deviations of the person's own, the excess is taken back over the chunk (else it ran away)
    keep_within: float = 1.0


def pose_vectors(rotation: np.ndarray, translation: np.ndarray, smooth: float = 0.0) -> np.ndarray:
    """(N, 3, 3), (N, 3) → (N, 6) yaw, pitch, roll (deg), tx, ty, tz; smoothed over time if ``smooth`` > 0."""
    e = np.stack([euler_from_matrix(np.asarray(r, np.float64)) for r in rotation])
    p = np.concatenate([e, np.asarray(translation, np.float64)], 1)
    return gaussian(p, smooth) if smooth > 0 and len(p) > 1 else p


def pose_matrices(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 6) → rotation (N, 3, 3) float32, translation (N, 3) float32."""
    p = np.asarray(p, np.float64)
    return (np.stack([matrix_from_euler(*row[:3]) for row in p]).astype(np.float32), p[:, 3:].astype(np.float32))


def speech_energy(mel_windows: np.ndarray) -> np.ndarray:
    """(N, 16, 80) log-mel windows → (N,) loudness of each frame's centre (mean log-mel of its 4 middle steps)."""
    m = np.asarray(mel_windows, np.float32)
    c = m.shape[1] // 2
    return m[:, c - 2:c + 2].mean((1, 2))


def rhythm(pose: torch.Tensor, energy: torch.Tensor, k: int = 5) -> torch.Tensor:
    """(B, T, 6) poses, (B, T) loudness → (B,) correlation of the head's angular speed (mean over ``k`` frames)
    with the loudness: does the head move more while the voice is louder."""
    speed = (pose[:, 1:, :3] - pose[:, :-1, :3]).norm(dim=2)
    box = torch.ones(1, 1, k, dtype=pose.dtype) / k
    m = torch.nn.functional.conv1d(speed[:, None], box, padding=k // 2)[:, 0]
    e = torch.nn.functional.conv1d(energy[:, None, 1:], box, padding=k // 2)[:, 0]
    m, e = m - m.mean(1, keepdim=True), e - e.mean(1, keepdim=True)
    return (m * e).sum(1) / (m.norm(dim=1) * e.norm(dim=1) + 1e-6)


class _Generator(nn.Module):
    def __init__(self, channels: int, cfg: HeadConfig):
        super().__init__()
        h, s = cfg.hidden, 0.02
        self.audio = WindowEncoder(channels, 64)
        self.ref = nn.Sequential(nn.Conv1d(12, 64, 5, 2, 2), nn.LeakyReLU(s), nn.Conv1d(64, 64, 5, 2, 2),
                                 nn.LeakyReLU(s), nn.Conv1d(64, 64, 5, 2, 2), nn.LeakyReLU(s))
        self.temporal = nn.Sequential(
            nn.Conv1d(64 + 64 + cfg.noise + 6, h, 5, padding=2), nn.LeakyReLU(s),
            nn.Conv1d(h, h, 5, padding=4, dilation=2), nn.LeakyReLU(s),
            nn.Conv1d(h, h, 5, padding=8, dilation=4), nn.LeakyReLU(s),
            nn.Conv1d(h, 6, 5, padding=2))

    def forward(self, windows: torch.Tensor, ref: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """windows (B, T, 16, C), ref (B, R, 6) standardised, z (B, noise) → (B, T, 6) standardised poses."""
        b, t = windows.shape[:2]
        a = self.audio(windows.reshape(b * t, *windows.shape[2:])).reshape(b, t, -1)
        vel = torch.cat([ref[:, :1] * 0, ref[:, 1:] - ref[:, :-1]], 1) * 4  # velocities, on the poses' scale
        style = self.ref(torch.cat([ref - ref[:, -1:], vel], 2).transpose(1, 2)).mean(2)
        last = ref[:, -1]
        cond = torch.cat([style, z, last], 1)[:, :, None].expand(-1, -1, t)
        out = self.temporal(torch.cat([a.transpose(1, 2), cond], 1)).transpose(1, 2)
        return last[:, None] + out


class _Discriminator(nn.Module):
    """(B, T, 6) poses, (B, T) speech energy → per-patch realness."""

    def __init__(self, hidden: int = 64):
        super().__init__()
        s = 0.2
        self.net = nn.Sequential(nn.Conv1d(13, hidden, 5, padding=2), nn.LeakyReLU(s),
                                 nn.Conv1d(hidden, hidden, 5, 2, 2), nn.LeakyReLU(s),
                                 nn.Conv1d(hidden, hidden, 5, 2, 2), nn.LeakyReLU(s), nn.Conv1d(hidden, 1, 3, padding=1))

    def forward(self, pose: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
        vel = torch.cat([pose[:, 1:2] - pose[:, :1], pose[:, 1:] - pose[:, :-1]], 1) * 4
        x = torch.cat([pose - pose.mean(1, keepdim=True), vel, energy[..., None]], 2)
        return self.net(x.transpose(1, 2))


class HeadMotionModel(nn.Module):
    """Generator, discriminator and the pose / energy standardisation; ``generate`` makes any length."""

    def __init__(self, channels: int, cfg: HeadConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or HeadConfig()
        self.gen = _Generator(channels, cfg)
        self.disc = _Discriminator()
        self.audio_norm = Standardise(channels)
        self.register_buffer("pose_mean", torch.zeros(6))
        self.register_buffer("pose_std", torch.ones(6))
        self.register_buffer("energy_mean", torch.zeros(()))
        self.register_buffer("energy_std", torch.ones(()))

    def fit_stats(self, poses: np.ndarray, energy: np.ndarray, audio_stats) -> None:
        self.pose_mean.copy_(torch.as_tensor(poses.mean(0), dtype=torch.float32))
        self.pose_std.copy_(torch.as_tensor(np.maximum(poses.std(0), 1e-3), dtype=torch.float32))
        self.energy_mean.fill_(float(energy.mean()))
        self.energy_std.fill_(float(max(energy.std(), 1e-3)))
        self.audio_norm.set(*audio_stats)

    def norm_pose(self, p) -> torch.Tensor:
        return (torch.as_tensor(p, dtype=torch.float32) - self.pose_mean) / self.pose_std

    def norm_energy(self, e) -> torch.Tensor:
        return (torch.as_tensor(e, dtype=torch.float32) - self.energy_mean) / self.energy_std

    def forward(self, windows: torch.Tensor, ref: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        b, t = windows.shape[:2]
        w = self.audio_norm(windows.reshape(b * t, *windows.shape[2:])).reshape(windows.shape)
        return self.gen(w, ref, z)

    def gen_losses(self, b: dict) -> dict:
        """Generator terms for a ``MotionData.head_batch`` (leaves the fake chunk in ``b`` for the critic)."""
        cfg = self.cfg
        ref, real = self.norm_pose(b["ref"]), self.norm_pose(b["next"])
        b["energy_n"], b["real_n"] = self.norm_energy(b["energy"]), real
        b["fake"] = fake = self(b["w"], ref, torch.randn(len(ref), cfg.noise))
        vel = lambda x: (x[:, 1:] - x[:, :-1]) * 4  # noqa: E731
        centred = lambda x: x - x.mean(1, keepdim=True)  # noqa: E731
        moment = sum(((f.std((0, 1)) - r.std((0, 1))) ** 2).mean()
                     for f, r in ((centred(fake), centred(real)), (vel(fake), vel(real))))
        out = {}
        if cfg.w_rhythm > 0:
            out["rhythm"] = cfg.w_rhythm * ((rhythm(fake, b["energy_n"]) - rhythm(real, b["energy_n"])) ** 2).mean()
        return {**out, "gan": cfg.w_gan * ((self.disc(fake, b["energy_n"]) - 1) ** 2).mean(),
                "moment": cfg.w_moment * moment, "rec": cfg.w_rec * (fake - real).abs().mean(),
                "start": cfg.w_start * ((fake[:, 0] - ref[:, -1]) ** 2).mean()}

    def disc_losses(self, b: dict) -> dict:
        real, fake = self.disc(b["real_n"], b["energy_n"]), self.disc(b["fake"].detach(), b["energy_n"])
        return {"d": ((real - 1) ** 2).mean() + (fake ** 2).mean()}

    @torch.no_grad()
    def generate(self, windows: np.ndarray, reference: np.ndarray, seed: int = 0) -> np.ndarray:
        """(N, 16, C) audio windows and a (R, 6) reference pose clip → (N, 6) poses (degrees, track units).

        Chunks of ``cfg.chunk`` frames, each conditioned on the last ``cfg.ref`` frames so far (the
        reference, then generated ones); joins are smoothed. Same audio, reference and seed → same motion.
        """
        was = self.training
        self.eval()
        cfg, n = self.cfg, len(windows)
        g = torch.Generator().manual_seed(int(seed))
        hist = self.norm_pose(np.asarray(reference, np.float64)[-cfg.ref:])
        w = torch.as_tensor(np.asarray(windows, np.float32))
        out = []
        for a in range(0, n, cfg.chunk):
            part = w[a:a + cfg.chunk]
            pad = cfg.chunk - len(part)
            if pad:
                part = torch.cat([part, part[-1:].expand(pad, *part.shape[1:])])
            z = torch.randn(1, cfg.noise, generator=g)
            p = self(part[None], hist[None], z)[0]
            if cfg.keep_within > 0:
                dev = p.mean(0)
                excess = dev - dev.clamp(-cfg.keep_within, cfg.keep_within)
                p = p - torch.linspace(0, 1, len(p))[:, None] * excess
            out.append(p[:cfg.chunk - pad])
            hist = torch.cat([hist, p])[-cfg.ref:]
        poses = (torch.cat(out) * self.pose_std + self.pose_mean).numpy().astype(np.float64)
        self.train(was)
        return gaussian(poses, self.cfg.join_smooth) if len(poses) > 1 and self.cfg.join_smooth > 0 else poses

"""What the motion learners learn from: one subject's audio windows, mouth codes, head poses and loudness.

``MotionData`` prepares everything once (per-frame windows, the 5-s local log-mel
statistics a drive's normalisation imitates, noisy log-mel copies for the
paper's 6-30 dB augmentation, smoothed poses) and draws training batches:
``expression_batch`` (runs of frames → mouth coefficients) and ``head_batch``
(a 3-s reference and the chunk after it).
"""

from __future__ import annotations

import numpy as np
import torch

from ..audio.wav import load_audio
from ..audio.windows import audio_channels, feature_windows, local_mel_stats, renormalise
from ..subject import Subject
from .expression import ExpressionConfig, ExpressionModel
from .head import HeadConfig, pose_vectors, speech_energy
from .noise import noisy_mel_copies

__all__ = ["MotionData"]


class MotionData:
    def __init__(self, subject: Subject, audio: str, train_idx: np.ndarray, noise_copies: int = 6,
                 snr_db=(6.0, 30.0), seed: int = 0, voices: int = 0, silences: int = 0):
        af, tr = subject.audio_features, subject.tracks
        self.subject, self.audio, self.channels = subject, audio, audio_channels(audio)
        self.train_idx = np.asarray(train_idx)
        self._in_train = np.zeros(subject.n_frames + 1, np.int64)
        self._in_train[self.train_idx] = 1
        self.longest = int(max(len(r) for r in np.split(self.train_idx, np.nonzero(np.diff(self.train_idx) > 1)[0] + 1)))
        self.windows = feature_windows(audio, af["visemes"], af["mel_windows"]).astype(np.float32)
        ctx = ExpressionConfig().context
        self.local_stats = local_mel_stats(af["mel_windows"], ctx)
        self.noisy: list[tuple[np.ndarray, tuple]] = []
        if audio != "visemes" and noise_copies > 0:
            wav = load_audio(subject.path / "audio.wav")
            for _, mw in noisy_mel_copies(wav, subject.n_frames, subject.fps, noise_copies, snr_db, seed):
                self.noisy.append((mw, local_mel_stats(mw, ctx)))
        self.voiced: list[tuple[np.ndarray, tuple]] = []
        if voices > 0:
            from ..audio.features import compute_audio_features
            from ..audio.revoice import voice_variants

            wav = load_audio(subject.path / "audio.wav")
            for _, y in voice_variants(wav, voices, seed + 1):
                f = compute_audio_features(y, 16000, subject.n_frames, subject.fps)
                self.voiced.append((feature_windows(audio, f["visemes"], f["mel_windows"]).astype(np.float32),
                                    local_mel_stats(f["mel_windows"], ctx)))
        # copies with pauses of quiet noise cut in (the mouth rests there): (windows, stats, rest weight per frame)
        self.silenced: list[tuple[np.ndarray, tuple, np.ndarray]] = []
        if silences > 0:
            from ..audio.features import compute_audio_features
            wav = load_audio(subject.path / "audio.wav")
            srng = np.random.default_rng(seed + 7)
            for _ in range(silences):
                y, rest = cut_pauses(wav, subject.n_frames, subject.fps, srng)
                f = compute_audio_features(y, 16000, subject.n_frames, subject.fps)
                self.silenced.append((feature_windows(audio, f["visemes"], f["mel_windows"]).astype(np.float32),
                                      local_mel_stats(f["mel_windows"], ctx), rest))
        self.poses = pose_vectors(tr["rotation"], tr["translation"], HeadConfig().smooth)
        self.energy = speech_energy(af["mel_windows"])

    def starts(self, length: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` random first frames of runs of ``length`` frames lying wholly inside the training frames
        (which may have a held-out hole in the middle)."""
        c = np.concatenate([[0], np.cumsum(self._in_train)])
        s = np.arange(len(self._in_train) - length + 1)
        ok = s[c[s + length] - c[s] == length]
        return rng.choice(ok, n)

    def _swap(self, copies: list, w: np.ndarray, idx: np.ndarray, stats, rng, share: float, mel_only: bool = False):
        """Replace a ``share`` of the sequences' windows (only their log-mel with ``mel_only``) by those of one of
        ``copies`` (each (windows, statistics, ...)), with its statistics. → (w, stats, [(row, copy)])."""
        if not copies or share <= 0:
            return w, stats, []
        mean, std = stats[0].copy(), stats[1].copy()
        centre = idx[:, idx.shape[1] // 2]
        picked = []
        for b in np.nonzero(rng.random(len(w)) < share)[0]:
            copy = copies[rng.integers(len(copies))]
            if mel_only:
                w[b, ..., -80:] = copy[0][idx[b]]
            else:
                w[b] = copy[0][idx[b]]
            mean[b], std[b] = copy[1][0][centre[b]], copy[1][1][centre[b]]
            picked.append((b, copy))
        return w, (mean, std), picked

    def _with_noise(self, w: np.ndarray, idx: np.ndarray, stats, rng, share: float):
        """A ``share`` of the sequences with a noisy copy's log-mel (and its statistics)."""
        return self._swap(self.noisy, w, idx, stats, rng, share, mel_only=True)[:2]

    def _with_voices(self, w: np.ndarray, idx: np.ndarray, stats, rng, share: float):
        """A ``share`` of the sequences with a re-voiced copy's windows (and its statistics)."""
        return self._swap(self.voiced, w, idx, stats, rng, share)[:2]

    def _with_silence(self, w, y, idx, stats, rng, share: float, rest):
        """A ``share`` of the sequences from a copy with pauses cut in, their targets the ``rest`` shape there."""
        w, stats, picked = self._swap(self.silenced, w, idx, stats, rng, share)
        if picked:
            y = y.clone()
        for b, (_, _, g) in picked:
            gb = torch.from_numpy(g[idx[b]]).float()[:, None]
            y[b] = y[b] * (1 - gb) + rest[None] * gb
        return w, y, stats

    def expression_batch(self, model: ExpressionModel, codes: torch.Tensor, rng: np.random.Generator,
                         noise_share: float = 0.0, voice_share: float = 0.0, silence_share: float = 0.0,
                         rest=None) -> dict:
        """Runs of ``cfg.seq`` training frames: windows normalised from the 5 s around each run (as a drive
        is), some with noisy log-mel, some with none (``mel_dropout``); target: their mouth codes."""
        e = model.cfg
        t = min(e.seq, self.longest)
        idx = self.starts(t, e.batch, rng)[:, None] + np.arange(t)
        centre = idx[:, t // 2]
        w = self.windows[idx].copy()
        stats = (self.local_stats[0][centre], self.local_stats[1][centre])
        if self.audio == "visemes":
            return {"w": torch.from_numpy(w), "y": codes[idx]}
        w, stats = self._with_noise(w, idx, stats, rng, noise_share)
        w, stats = self._with_voices(w, idx, stats, rng, voice_share)
        y = codes[idx]
        w, y, stats = self._with_silence(w, y, idx, stats, rng, silence_share, rest)
        w = renormalise(self.audio, w, stats, model.reference())
        drop = rng.random(len(w)) < e.mel_dropout  # the visemes must carry the mouth too
        w[drop, ..., -80:] = model.reference()[0]
        return {"w": torch.from_numpy(w), "y": y}

    def head_batch(self, cfg: HeadConfig, rng: np.random.Generator, noise_share: float = 0.0) -> dict:
        """A reference clip of ``cfg.ref`` training frames and the ``cfg.chunk`` after it (poses in track units,
        audio windows of the chunk, its loudness)."""
        r, c = cfg.ref, cfg.chunk
        span = min(r + c, self.longest)
        r = max(8, span - c) if span < r + c else r
        c = span - r
        start = self.starts(span, cfg.batch, rng)[:, None]
        ref, nxt = start + np.arange(r), start + r + np.arange(c)
        w = self.windows[nxt].copy()
        if self.audio != "visemes":
            w, _ = self._with_noise(w, nxt, (self.local_stats[0][nxt[:, 0]], self.local_stats[1][nxt[:, 0]]), rng,
                                    noise_share)
        return {"ref": self.poses[ref], "next": self.poses[nxt], "w": torch.from_numpy(w),
                "energy": self.energy[nxt]}


def cut_pauses(wav: np.ndarray, n_frames: int, fps: float, rng: np.random.Generator, share: float = 0.25,
               sr: int = 16000) -> tuple[np.ndarray, np.ndarray]:
    """``wav`` with pauses of 0.3-1.5 s cut in (quiet noise 35-70 dB under the speech) over about ``share``
    of it, and per frame how far the mouth has gone to rest (1 inside a pause, ramping over 3 frames)."""
    y = np.asarray(wav, np.float32).copy()
    level = float(np.sqrt(np.mean(y ** 2)) + 1e-9)
    g = np.zeros(n_frames, np.float32)
    t = 0.0
    total = n_frames / fps
    while t < total:
        t += float(rng.exponential(1.5 / share))
        d = float(rng.uniform(0.3, 1.5))
        if t + d > total:
            break
        a, b = int(t * sr), int((t + d) * sr)
        noise = rng.standard_normal(b - a).astype(np.float32)
        if rng.random() < 0.5:  # brown-ish room tone
            noise = np.cumsum(noise)
            noise -= np.convolve(noise, np.ones(401) / 401, "same")
        noise *= level * 10 ** (-rng.uniform(35, 70) / 20) / (noise.std() + 1e-9)
        y[a:b] = noise
        fa, fb = int(np.ceil(t * fps)), int((t + d) * fps)
        ramp = np.minimum(1.0, np.minimum(np.arange(fa, fb) - fa + 1, fb - np.arange(fa, fb)) / 3.0)
        g[fa:fb] = np.maximum(g[fa:fb], ramp)
        t += d
    return y, g

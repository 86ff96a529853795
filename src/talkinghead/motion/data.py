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
                 snr_db=(6.0, 30.0), seed: int = 0):
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
        self.poses = pose_vectors(tr["rotation"], tr["translation"], HeadConfig().smooth)
        self.energy = speech_energy(af["mel_windows"])

    def starts(self, length: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` random first frames of runs of ``length`` frames lying wholly inside the training frames
        (which may have a held-out hole in the middle)."""
        c = np.concatenate([[0], np.cumsum(self._in_train)])
        s = np.arange(len(self._in_train) - length + 1)
        ok = s[c[s + length] - c[s] == length]
        return rng.choice(ok, n)

    def _with_noise(self, w: np.ndarray, idx: np.ndarray, stats, rng, share: float):
        """Replace the log-mel of a ``share`` of the sequences by a noisy copy's (and its statistics)."""
        if not self.noisy or share <= 0:
            return w, stats
        mean, std = stats[0].copy(), stats[1].copy()
        centre = idx[:, idx.shape[1] // 2]
        for b in np.nonzero(rng.random(len(w)) < share)[0]:
            mw, (lm, ls) = self.noisy[rng.integers(len(self.noisy))]
            w[b, ..., -80:] = mw[idx[b]]
            mean[b], std[b] = lm[centre[b]], ls[centre[b]]
        return w, (mean, std)

    def expression_batch(self, model: ExpressionModel, codes: torch.Tensor, rng: np.random.Generator,
                         noise_share: float = 0.0) -> dict:
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
        w = renormalise(self.audio, w, stats, model.reference())
        drop = rng.random(len(w)) < e.mel_dropout  # the visemes must carry the mouth too
        w[drop, ..., -80:] = model.reference()[0]
        return {"w": torch.from_numpy(w), "y": codes[idx]}

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

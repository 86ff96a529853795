"""The paper's augmentation (Sec. 3.2): the training audio with additive noise at a random 6-30 dB SNR.

``add_noise`` is the closed form (white Gaussian noise scaled so that signal
power / noise power is exactly the requested SNR over the clip);
``noisy_mel_copies`` turns one clip into a few noisy log-mel versions once, before
training, so a training step only picks one (computing log-mel per step would
cost more than the learner's step).
"""

from __future__ import annotations

import numpy as np

from ..audio.features import MEL_RATE, MEL_WINDOW
from ..audio.mel import frame_windows, log_mel
from ..audio.wav import SAMPLE_RATE

__all__ = ["add_noise", "noisy_mel_copies"]


def add_noise(wav: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``wav`` plus white noise whose power is the clip's mean power / 10^(snr_db / 10)."""
    x = np.asarray(wav, np.float64)
    noise = rng.standard_normal(x.shape)
    p_sig, p_noise = np.mean(x ** 2), np.mean(noise ** 2)
    if p_sig <= 0 or p_noise <= 0:
        return x.astype(np.float32)
    return (x + noise * np.sqrt(p_sig / p_noise / 10 ** (snr_db / 10))).astype(np.float32)


def noisy_mel_copies(wav: np.ndarray, n_frames: int, fps: float, copies: int, snr_db=(6.0, 30.0),
                     seed: int = 0) -> list[tuple[float, np.ndarray]]:
    """``copies`` (snr, (n_frames, 16, 80) float32 mel windows) of ``wav`` (16 kHz) with noise at SNRs
    drawn uniformly from ``snr_db``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(copies):
        snr = float(rng.uniform(*snr_db))
        mel = log_mel(add_noise(wav, snr, rng), sr=SAMPLE_RATE, hop=SAMPLE_RATE // MEL_RATE)
        out.append((snr, frame_windows(mel, MEL_RATE, n_frames, fps, MEL_WINDOW).astype(np.float32)))
    return out

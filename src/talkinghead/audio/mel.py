"""Log-mel spectrogram and per-video-frame feature windows (numpy only).

``log_mel`` conventions (fixed; models trained on them depend on it):

* input: float mono audio at ``sr`` (16 kHz by default);
* frames are *centred*: the signal is reflect-padded by ``n_fft // 2`` on both
  sides, so frame ``t`` is centred on sample ``t * hop`` and there are
  ``T = 1 + len(audio) // hop`` frames (100 frames/s for hop 160 at 16 kHz);
* each frame is a ``win``-sample periodic Hann window (25 ms), zero-padded
  to ``n_fft`` (512) in the middle of the FFT frame;
* power spectrum ``|X|^2`` -> Slaney-style mel filterbank: the Slaney mel scale
  (linear below 1 kHz, logarithmic above), triangles between ``fmin`` and
  ``fmax``, each normalised to unit area (``2 / bandwidth``);
* output: ``log(max(mel_power, 1e-10))`` as float32, shape ``(T, n_mels)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .wav import SAMPLE_RATE

LOG_FLOOR = 1e-10
_BLOCK = 4096  # frames per FFT batch

_F_SP = 200.0 / 3.0  # Hz per mel in the linear part
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, np.float64)
    lin = f / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(f, 1e-9) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(f >= _MIN_LOG_HZ, log, lin)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(m, np.float64)
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOG_STEP * (m - _MIN_LOG_MEL)),
                    _F_SP * m)


def mel_frequencies(n_mels: int = 80, fmin: float = 55.0, fmax: float = 7600.0) -> np.ndarray:
    """Centre frequency (Hz) of each mel band."""
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    return edges[1:-1]


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters with unit area (Slaney norm)."""
    bins_hz = np.arange(n_fft // 2 + 1) * sr / n_fft
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins_hz[None, :] - lo) / (mid - lo)
    falling = (hi - bins_hz[None, :]) / (hi - mid)
    fb = np.maximum(0.0, np.minimum(rising, falling))
    return fb * (2.0 / (hi - lo))


def log_mel(audio: np.ndarray, sr: int = SAMPLE_RATE, n_mels: int = 80, hop: int = 160,
            win: int = 400, n_fft: int = 512, fmin: float = 55.0,
            fmax: float = 7600.0) -> np.ndarray:
    """Natural-log mel power spectrogram, shape ``(1 + len(audio) // hop, n_mels)``."""
    x = np.asarray(audio, np.float32).reshape(-1)
    n_frames = 1 + len(x) // hop
    pad = n_fft // 2
    # reflect padding needs more samples than the pad width; zero-pad tiny inputs
    x = np.pad(x, pad, mode="reflect" if len(x) > pad else "constant")
    x = np.pad(x, (0, max(0, (n_frames - 1) * hop + n_fft - len(x))))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop][:n_frames]
    return np.concatenate([log_mel_frames(frames[i:i + _BLOCK], sr, n_mels, win, fmin, fmax)
                           for i in range(0, n_frames, _BLOCK)])  # blocks bound memory on long audio


@lru_cache(maxsize=4)
def _window_and_bank(sr: int, n_fft: int, n_mels: int, win: int, fmin: float, fmax: float):
    window = np.zeros(n_fft, np.float32)
    off = (n_fft - win) // 2
    window[off:off + win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    return window, mel_filterbank(sr, n_fft, n_mels, fmin, fmax).astype(np.float32).T


def log_mel_frames(frames: np.ndarray, sr: int = SAMPLE_RATE, n_mels: int = 80, win: int = 400,
                   fmin: float = 55.0, fmax: float = 7600.0) -> np.ndarray:
    """Log-mel rows (F, n_mels) of already cut FFT frames (F, n_fft): what ``log_mel`` does per row
    (``audio/stream.py`` calls it on the rows a stream completes)."""
    window, fb_t = _window_and_bank(sr, frames.shape[1], n_mels, win, fmin, fmax)
    spec = np.fft.rfft(frames * window, axis=1)
    mel = (spec.real ** 2 + spec.imag ** 2).astype(np.float32) @ fb_t
    return np.log(np.maximum(mel, LOG_FLOOR)).astype(np.float32)


def frame_windows(feat: np.ndarray, feat_rate: float, n_frames: int, fps: float,
                  width: int) -> np.ndarray:
    """Per video frame, the ``width`` feature rows centred on its time.

    Frame ``i`` sits at ``t = i / fps``; its centre row is ``c = floor(t * feat_rate + 0.5)``
    and the window is rows ``c - width // 2 .. c + width - width // 2 - 1``,
    clamped to the valid range (edge padding). Returns ``(n_frames, width, D)``.
    """
    feat = np.asarray(feat)
    if feat.shape[0] == 0:
        feat = np.zeros((1,) + feat.shape[1:], feat.dtype)
    centres = np.floor(np.arange(n_frames) * (feat_rate / fps) + 0.5).astype(np.int64)
    offsets = np.arange(width) - width // 2
    idx = np.clip(centres[:, None] + offsets[None, :], 0, feat.shape[0] - 1)
    return feat[idx]

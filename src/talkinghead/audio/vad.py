"""Voice activity: where someone speaks, per video frame (Silero VAD, its model inside the ``silero-vad`` wheel).

``speech_probability`` runs the network over 32-ms chunks of 16 kHz audio and
samples its output at each video frame's centre; ``pauses`` marks the frames of
silences lasting at least ``min_s`` (0.3 s by default: shorter gaps are part of
speech, closures of stops). Metrics use both: how much a mouth moves while a
person speaks, and whether it rests in the pauses.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from .wav import SAMPLE_RATE

__all__ = ["speech_probability", "speech_frames", "pauses"]

CHUNK = 512  # samples per network step at 16 kHz (32 ms)
_LOCK = threading.Lock()  # the network keeps state between chunks: one utterance at a time


@lru_cache(maxsize=1)
def _model():
    from silero_vad import load_silero_vad

    return load_silero_vad()


def speech_probability(audio: np.ndarray, n_frames: int, fps: float = 25.0, sr: int = SAMPLE_RATE) -> np.ndarray:
    """(n_frames,) probability that frame i (centred at (i + 0.5) / fps s) holds speech."""
    import torch

    x = np.asarray(audio, np.float32).reshape(-1)
    if sr != SAMPLE_RATE:
        from .wav import resample

        x = resample(x, sr, SAMPLE_RATE)
    n = len(x) // CHUNK
    if n == 0 or n_frames <= 0:
        return np.zeros(max(0, n_frames), np.float32)
    chunks = torch.from_numpy(x[: n * CHUNK].reshape(n, CHUNK))
    with _LOCK, torch.no_grad():
        m = _model()
        m.reset_states()
        p = np.array([float(m(c, SAMPLE_RATE)) for c in chunks], np.float32)
    t = (np.arange(n) * CHUNK + CHUNK / 2) / SAMPLE_RATE
    return np.interp((np.arange(n_frames) + 0.5) / fps, t, p).astype(np.float32)


def speech_frames(audio: np.ndarray, n_frames: int, fps: float = 25.0, threshold: float = 0.5) -> np.ndarray:
    """(n_frames,) bool: frames with speech."""
    return speech_probability(audio, n_frames, fps) >= threshold


def pauses(speech: np.ndarray, fps: float = 25.0, min_s: float = 0.3) -> np.ndarray:
    """(N,) bool: frames inside runs of non-speech (``~speech``) lasting at least ``min_s`` seconds."""
    quiet = ~np.asarray(speech, bool)
    out = np.zeros(len(quiet), bool)
    edges = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
        if b - a >= min_s * fps:
            out[a:b] = True
    return out

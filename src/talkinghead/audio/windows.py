"""Per-frame windows of audio features for the engines' audio encoders, and their input statistics.

``kind`` names what a window holds at each of its 16 steps (``AUDIO_KINDS``):
``"visemes"`` (15 soft visemes at half-frame steps around the frame, i.e.
±150 ms at 25 fps), ``"mel"`` (the 16 log-mel rows of 10 ms around the frame,
80 bands) or ``"both"`` (the two side by side, 95 channels). ``input_stats``
gives the per-channel (shift, scale) an encoder subtracts and divides by: the
mel bands' mean and deviation over the training frames; viseme probabilities
stay as they are; ``talkinghead.nn.Standardise`` applies them inside a
network, so they are saved and loaded with its weights.
"""

from __future__ import annotations

import numpy as np
__all__ = ["AUDIO_KINDS", "audio_channels", "window_features", "mel_sums", "stats_from_sums", "mel_stats", "local_mel_stats", "renormalise", "viseme_windows16", "feature_windows", "input_stats"]

AUDIO_KINDS = {"visemes": 15, "mel": 80, "both": 95}  # -> channels per window step


def audio_channels(kind: str) -> int:
    """Channels per window step of ``kind``; one clear error for an unknown kind."""
    if kind not in AUDIO_KINDS:
        raise ValueError(f"audio must be one of {', '.join(AUDIO_KINDS)}, got {kind!r}")
    return AUDIO_KINDS[kind]


def window_features(kind: str) -> tuple[str, ...]:
    """The per-frame features (``"visemes"``, ``"mel"``) a window of ``kind`` is built from."""
    audio_channels(kind)
    return {"visemes": ("visemes",), "mel": ("mel",), "both": ("visemes", "mel")}[kind]


def viseme_windows16(visemes: np.ndarray) -> np.ndarray:
    """(N, C) per-frame soft visemes → (N, 16, C): 16 samples at half-frame steps centred on each frame."""
    n = len(visemes)
    offs = (np.arange(16) - 7.5) / 2.0  # ±3.75 frames = ±150 ms at 25 fps
    pos = np.clip(np.arange(n)[:, None] + offs[None], 0, n - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo)[..., None]
    return ((1 - w) * visemes[lo] + w * visemes[hi]).astype(np.float32)


def feature_windows(kind: str, visemes: np.ndarray, mel_windows: np.ndarray) -> np.ndarray:
    """Per-frame (N, 16, audio_channels(kind)) windows."""
    audio_channels(kind)
    parts = []
    if kind in ("visemes", "both"):
        parts.append(viseme_windows16(np.asarray(visemes, np.float32)))
    if kind in ("mel", "both"):
        parts.append(np.asarray(mel_windows, np.float32))
    return parts[0] if len(parts) == 1 else np.concatenate(parts, -1)


def stats_from_sums(total: np.ndarray, total_sq: np.ndarray, count) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) float32 from sums of values and of their squares over ``count`` of them (std ≥ 1e-3)."""
    count = np.asarray(count, np.float64)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 1e-6))
    return mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32)


def mel_sums(mel_windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-band sums of an utterance's log-mel windows (N, T, 80) and of their squares, and their count."""
    m = np.asarray(mel_windows, np.float64).reshape(-1, 80)
    return m.sum(0), (m ** 2).sum(0), len(m)


def mel_stats(mel_windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-band (mean, std) of an utterance's log-mel windows (N, T, 80): its level and spectral tilt."""
    return stats_from_sums(*mel_sums(mel_windows))


def local_mel_stats(mel_windows: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the (mean, std) (N, 80) of the mel windows of the ``context`` frames centred on it
    (clamped at the ends): what ``mel_stats`` gives for an utterance of that length around the frame."""
    m = np.asarray(mel_windows, np.float64)
    n, t = m.shape[:2]
    c1, c2 = (np.vstack([np.zeros((1, 80)), np.cumsum(x.sum(1), 0)]) for x in (m, m ** 2))
    lo = np.clip(np.arange(n) - context // 2, 0, max(0, n - context))
    hi = np.minimum(lo + context, n)
    return stats_from_sums(c1[hi] - c1[lo], c2[hi] - c2[lo], ((hi - lo) * t)[:, None])


def renormalise(kind: str, windows: np.ndarray, source, target) -> np.ndarray:
    """Windows whose mel channels are mapped from an utterance's (mean, std) ``source`` (per band, or per
    frame (N, 80)) to ``target`` (e.g. the training audio's): another voice or microphone, same scale."""
    if kind == "visemes":
        return windows
    out = np.array(windows, np.float32, copy=True)
    (ms, ss), (mt, st) = (np.asarray(x, np.float32) for x in source), (np.asarray(x, np.float32) for x in target)
    if ms.ndim == 2:  # one (mean, std) per leading row: broadcast over the rest
        shape = (ms.shape[0],) + (1,) * (out.ndim - 2) + (80,)
        ms, ss = ms.reshape(shape), ss.reshape(shape)
    out[..., -80:] = (out[..., -80:] - ms) / ss * st + mt
    return out


def input_stats(kind: str, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (shift, scale) over ``windows`` (N, T, C): mel bands standardised, visemes untouched."""
    c = windows.shape[-1]
    shift, scale = np.zeros(c, np.float32), np.ones(c, np.float32)
    if kind in ("mel", "both"):
        mel = windows[..., c - 80:].reshape(-1, 80).astype(np.float64)
        shift[c - 80:] = mel.mean(0)
        scale[c - 80:] = np.maximum(mel.std(0), 1e-3)
    return shift, scale

"""Audio I/O: decode any container with PyAV, write 16-bit WAV, resample.

All audio inside talkinghead is float32 mono in [-1, 1]; ``SAMPLE_RATE`` (16 kHz) is the
one rate every stage works at.
"""

from __future__ import annotations

import os
import wave
from math import gcd
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..utils import atomic_path

SAMPLE_RATE = 16000


def load_audio(path: str | os.PathLike, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio stream of ``path`` (wav, mp3, mp4, ...) to float32 mono at ``sr``."""
    import av

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a directory, not an audio file")
    if not path.is_file():
        raise InputError(f"audio file not found: {path}")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
        why = getattr(e, "strerror", None) or str(e)
        raise InputError(f"cannot decode {path}: not an audio or video file ({why})") from None
    with container:
        if not container.streams.audio:
            raise InputError(f"{path} has no audio track")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):  # flush
                chunks.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as e:
            raise InputError(f"cannot decode audio of {path}: {e}") from None
    if not chunks:
        raise InputError(f"{path} has an empty audio track")
    audio = np.concatenate(chunks).astype(np.float32, copy=False)
    return np.clip(audio, -1.0, 1.0)


def write_wav(path: str | os.PathLike, audio: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Write float audio in [-1, 1] as 16-bit PCM mono WAV, atomically."""
    pcm = (np.clip(np.asarray(audio, np.float32).reshape(-1), -1.0, 1.0) * 32767.0)
    pcm = np.round(pcm).astype("<i2")
    with atomic_path(path, suffix=".wav") as tmp:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(sr))
            w.writeframes(pcm.tobytes())


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling of mono float audio from ``sr_in`` to ``sr_out`` Hz."""
    from scipy.signal import resample_poly

    audio = np.asarray(audio, np.float32)
    if int(sr_in) == int(sr_out):
        return audio.copy()
    g = gcd(int(sr_in), int(sr_out))
    out = resample_poly(audio, int(sr_out) // g, int(sr_in) // g)
    return out.astype(np.float32)

"""Speech for a drive: 16 kHz audio and the per-frame features an engine needs.

From a wav (phones recognised by pocketsphinx, or the exact timings of a
``.phonemes.json`` beside it), from text (espeak-ng, exact phoneme timings), or
from a subject's own recording (its stored features, for self-driven evaluation).
Only the features the engine declares are computed: no phone recognition for
an engine that reads log-mel alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.features import compute_audio_features, load_phonemes_json
from ..audio.tts import phonemes_json_path
from ..audio.visemes import Segment
from ..audio.wav import SAMPLE_RATE, load_audio
from ..errors import InputError
from ..subject import Subject


@dataclass
class Speech:
    """``audio`` (16 kHz mono) and, per video frame at ``fps``, the features asked for (else None)."""

    audio: np.ndarray
    fps: float
    n_frames: int
    visemes: np.ndarray | None  # (N, 15)
    mel_windows: np.ndarray | None  # (N, 16, 80) float32
    phones: list[Segment] | None = None  # the timed phones behind ``visemes``
    exact: bool = False  # the phones are known exactly (TTS), not recognised

    def __len__(self) -> int:
        return self.n_frames


def read_speech(audio: str | Path | None = None, text: str | None = None) -> tuple[np.ndarray, list | None]:
    """(16 kHz audio, exact phoneme segments or None) from a wav or from text via TTS."""
    if (audio is None) == (text is None):
        raise InputError("give exactly one of --audio WAV or --text TEXT")
    if text is not None:
        from ..audio.tts import synthesize

        res = synthesize(text).resampled(SAMPLE_RATE)
        return res.audio.astype(np.float32), res.phonemes
    wav = load_audio(audio, SAMPLE_RATE)
    if len(wav) < SAMPLE_RATE // 10:
        raise InputError(f"{audio}: audio is empty (under 0.1 s)")
    if float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) < 1e-4:
        raise InputError(f"{audio}: audio is silent")
    side = phonemes_json_path(audio)
    return wav, (load_phonemes_json(side) if side.exists() else None)


def speech_features(wav: np.ndarray, phones: list | None, fps: float, features=("visemes", "mel")) -> Speech:
    """Per-frame features of ``wav`` (``ceil(duration * fps)`` frames); ``phones`` None = recognise them."""
    n = int(math.ceil(len(wav) / SAMPLE_RATE * fps))
    want_visemes = "visemes" in features
    f = compute_audio_features(wav, SAMPLE_RATE, n, fps, phones=phones if want_visemes else [])
    return Speech(audio=wav, fps=fps, n_frames=n, visemes=f["visemes"] if want_visemes else None,
                  mel_windows=f["mel_windows"].astype(np.float32) if "mel" in features else None,
                  phones=_segments(f) if want_visemes else None, exact=phones is not None and want_visemes)


def load_speech(audio: str | Path | None = None, text: str | None = None, fps: float = 25.0,
                features=("visemes", "mel")) -> Speech:
    return speech_features(*read_speech(audio, text), fps, features)


def _segments(f: dict, t0: float = 0.0, t1: float = math.inf) -> list[Segment]:
    out = []
    for lab, s, e, v in zip(f["phone_labels"], f["phone_starts"], f["phone_ends"], f["phone_visemes"]):
        if e > t0 and s < t1:
            out.append(Segment(str(lab), max(0.0, float(s) - t0), float(min(e, t1)) - t0, int(v)))
    return out


def subject_speech(subject: Subject, idx: np.ndarray) -> Speech:
    """Frames ``idx`` (consecutive) of the subject's own recording: its audio and stored features."""
    af = subject.audio_features
    wav = load_audio(subject.path / "audio.wav", SAMPLE_RATE)
    a0, a1 = int(round(idx[0] / subject.fps * SAMPLE_RATE)), int(round((idx[-1] + 1) / subject.fps * SAMPLE_RATE))
    return Speech(audio=wav[a0:a1], fps=subject.fps, n_frames=len(idx), visemes=af["visemes"][idx],
                  mel_windows=af["mel_windows"][idx].astype(np.float32),
                  phones=_segments(af, idx[0] / subject.fps, (idx[-1] + 1) / subject.fps))

"""Per-video-frame audio features: log-mel windows + soft visemes from phones.

A feature dict (saved as ``.npz``) holds:

=================  ==========================  =====================================
key                shape / dtype               meaning
=================  ==========================  =====================================
``mel``            (T, 80) float32             log-mel, 100 rows/s (see ``mel.py``)
``mel_rate``       () float                    rows per second of ``mel`` (100)
``mel_windows``    (n_frames, 16, 80) float16  0.16 s of mel centred on each frame
``visemes``        (n_frames, 15) float32      soft viseme shares per frame, rows sum 1
``phone_labels``   (P,) str                    phone labels (ARPAbet or espeak)
``phone_starts``   (P,) float32                start times, seconds
``phone_ends``     (P,) float32                end times, seconds
``phone_visemes``  (P,) int16                  viseme id of each phone
``fps``            () float                    video frame rate the windows align to
``version``        () int                      ``AUDIO_FEATURES_VERSION``
=================  ==========================  =====================================
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..utils import save_npz
from .mel import frame_windows, log_mel
from .wav import SAMPLE_RATE
from .visemes import N_VISEMES, Segment, arpabet_to_viseme, espeak_to_viseme, segments_to_frames

AUDIO_FEATURES_VERSION = 1
MEL_RATE = 100
MEL_WINDOW = 16


def compute_audio_features(audio: np.ndarray, sr: int, n_frames: int, fps: float,
                           phones: list[Segment] | None = None) -> dict[str, np.ndarray]:
    """Features for ``n_frames`` video frames at ``fps`` from mono float audio.

    ``phones`` defaults to :func:`recognize_phones` on the audio; pass TTS
    phonemes to use their exact timings instead.
    """
    if n_frames <= 0:
        raise InputError(f"need at least one video frame, got n_frames={n_frames}")
    if fps <= 0:
        raise InputError(f"fps must be positive, got {fps}")
    audio = np.asarray(audio, np.float32).reshape(-1)
    if sr != SAMPLE_RATE:
        from .wav import resample

        audio = resample(audio, sr, SAMPLE_RATE)
    if phones is None:
        from .phones import recognize_phones

        phones = recognize_phones(audio, SAMPLE_RATE)
    mel = log_mel(audio, sr=SAMPLE_RATE, hop=SAMPLE_RATE // MEL_RATE)
    windows = frame_windows(mel, MEL_RATE, n_frames, fps, MEL_WINDOW).astype(np.float16)
    return {
        "mel": mel,
        "mel_rate": np.asarray(float(MEL_RATE)),
        "mel_windows": windows,
        "visemes": segments_to_frames(phones, n_frames, fps, N_VISEMES),
        "phone_labels": np.asarray([p.label for p in phones], dtype=str),
        "phone_starts": np.asarray([p.start for p in phones], np.float32),
        "phone_ends": np.asarray([p.end for p in phones], np.float32),
        "phone_visemes": np.asarray([p.viseme for p in phones], np.int16),
        "fps": np.asarray(float(fps)),
        "version": np.asarray(AUDIO_FEATURES_VERSION),
    }


def save_audio_features(path: str | os.PathLike, feats: dict[str, np.ndarray]) -> None:
    """Write a feature dict as a compressed ``.npz`` (atomically)."""
    arrays = {k: np.asarray(v) for k, v in feats.items()}
    arrays.setdefault("version", np.asarray(AUDIO_FEATURES_VERSION))
    save_npz(path, **arrays)


def load_audio_features(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a feature ``.npz``; fails clearly on a missing file or another version."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"audio features not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            feats = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read audio features {path}: {e}") from None
    version = int(feats.get("version", -1))
    if version != AUDIO_FEATURES_VERSION:
        raise InputError(f"{path} has audio features version {version}, expected "
                         f"{AUDIO_FEATURES_VERSION}; recompute them")
    return feats


def load_phonemes_json(path: str | os.PathLike) -> list[Segment]:
    """Read a ``.phonemes.json`` written by :func:`write_tts`."""
    try:
        items = json.loads(Path(path).read_text())
        segs = []
        for it in items:
            label = str(it["label"])
            vis = it.get("viseme")
            if vis is None:  # hand-written file: accept espeak or ARPAbet labels
                vis = arpabet_to_viseme(label) if label.isupper() else espeak_to_viseme(label)
            segs.append(Segment(label, float(it["start"]), float(it["end"]), int(vis)))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"cannot read phoneme timings {path}: {e}") from None
    if any(not 0 <= s.viseme < N_VISEMES for s in segs):
        raise InputError(f"{path} has a viseme id outside 0..{N_VISEMES - 1}")
    return segs


def features_for_wav(path: str | os.PathLike, fps: float, n_frames: int | None = None,
                     phonemes_json: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Features for any audio file; uses ``<stem>.phonemes.json`` timings if present.

    ``n_frames`` defaults to ``ceil(duration * fps)``. Without phoneme timings
    the phones are recognised with pocketsphinx.
    """
    from .tts import phonemes_json_path
    from .wav import load_audio

    audio = load_audio(path, SAMPLE_RATE)
    if phonemes_json is None and phonemes_json_path(path).is_file():
        phonemes_json = phonemes_json_path(path)
    phones = load_phonemes_json(phonemes_json) if phonemes_json is not None else None
    if n_frames is None:
        n_frames = max(1, math.ceil(len(audio) / SAMPLE_RATE * fps - 1e-6))
    return compute_audio_features(audio, SAMPLE_RATE, n_frames, fps, phones)

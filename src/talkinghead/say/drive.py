"""Turn speech (a wav or text) into a ``Drive``: audio features, poses and blinks per frame."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..audio.features import compute_audio_features, load_phonemes_json
from ..audio.tts import phonemes_json_path
from ..audio.wav import load_audio
from ..engines.base import Drive
from ..errors import InputError
from ..subject import Subject

SR = 16000


def speech(audio: str | Path | None = None, text: str | None = None):
    """(16 kHz audio, exact phoneme segments or None) from a wav or from text via TTS."""
    if (audio is None) == (text is None):
        raise InputError("give exactly one of --audio WAV or --text TEXT")
    if text is not None:
        from ..audio.tts import synthesize

        res = synthesize(text).resampled(SR)
        return res.audio.astype(np.float32), res.phonemes
    wav = load_audio(audio, SR)
    if len(wav) < SR // 10:
        raise InputError(f"{audio}: audio is empty (under 0.1 s)")
    if float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) < 1e-4:
        raise InputError(f"{audio}: audio is silent")
    side = phonemes_json_path(audio)
    return wav, (load_phonemes_json(side) if side.exists() else None)


def pingpong(n: int, lo: int, hi: int) -> np.ndarray:
    """Indices lo..hi-1 played forwards then backwards, repeated, n long (no jump at the turn)."""
    span = hi - lo
    if span <= 1:
        return np.full(n, lo)
    period = 2 * (span - 1)
    k = np.arange(n) % period
    return lo + np.where(k < span, k, period - k)


def still_frame(subject: Subject) -> int:
    """A training frame near the median head pose with open eyes and a closed mouth."""
    tr = subject.tracks
    idx = subject.split("train")
    e = tr["euler_deg"][idx]
    dev = np.linalg.norm(e - np.median(e, axis=0), axis=1)
    eye = tr["eye"][idx].mean(1)
    ap = tr["aperture"][idx]
    score = dev / (dev.std() + 1e-6) + 2 * (eye < np.median(eye)) + ap / (ap.std() + 1e-6)
    return int(idx[np.argmin(score)])


def natural_blinks(n: int, fps: float, open_eye: np.ndarray, seed: int = 0) -> np.ndarray:
    """Eye openness (n, 2) with blinks every 2-6 s lasting ~0.2 s (a smooth dip to 10 %)."""
    rng = np.random.default_rng(seed)
    eye = np.tile(open_eye.astype(np.float32), (n, 1))
    t = rng.uniform(0.5, 2.5)
    while t * fps < n:
        dur = rng.uniform(0.15, 0.25)
        k = np.arange(n) / fps
        dip = np.clip(1 - np.abs(k - t - dur / 2) / (dur / 2), 0, 1)  # triangle
        eye *= (1 - 0.9 * dip)[:, None]
        t += rng.uniform(2.0, 6.0)
    return eye


def load_pose_file(path: str | Path, n: int, subject: Subject) -> tuple[np.ndarray, np.ndarray]:
    """A user head-pose file → (n, 3, 3) rotations and (n, 3) translations.

    ``.npy`` or whitespace/comma text, one row per output frame (looped if
    shorter): ``yaw pitch roll`` in degrees (translation of the still frame) or
    ``yaw pitch roll tx ty tz`` (cm), conventions as ``tracks.npz``.
    """
    from ..geometry.pose import matrix_from_euler

    p = Path(path)
    if not p.is_file():
        raise InputError(f"--pose {path}: use train, still or an existing pose file")
    try:
        arr = np.load(p) if p.suffix == ".npy" else np.loadtxt(p, delimiter="," if p.suffix == ".csv" else None,
                                                                ndmin=2)
    except ValueError as e:
        raise InputError(f"{p}: not a pose table ({e})") from None
    arr = np.atleast_2d(np.asarray(arr, np.float64))
    if arr.shape[1] not in (3, 6) or len(arr) == 0 or not np.isfinite(arr).all():
        raise InputError(f"{p}: expected rows of 'yaw pitch roll' or 'yaw pitch roll tx ty tz', got shape {arr.shape}")
    arr = arr[np.arange(n) % len(arr)]
    rot = np.stack([matrix_from_euler(*row[:3]) for row in arr]).astype(np.float32)
    if arr.shape[1] == 6:
        trans = arr[:, 3:].astype(np.float32)
    else:
        trans = np.tile(subject.tracks["translation"][still_frame(subject)], (n, 1)).astype(np.float32)
    return rot, trans


def build_drive(subject: Subject, audio: str | Path | None = None, text: str | None = None,
                pose: str = "train", blink: str = "auto", seed: int = 0, eye_level: float | None = None) -> Drive:
    """``pose``: train (replayed), still, or a pose file; ``eye_level`` (0 closed … 1 open) fixes the eyes."""
    wav, phones = speech(audio, text)
    fps = subject.fps
    n = int(math.ceil(len(wav) / SR * fps))
    feats = compute_audio_features(wav, SR, n, fps, phones=phones)
    lo, hi = subject.meta["split"]["train"]
    if pose == "train":
        pose_index = pingpong(n, lo, hi)
    else:
        pose_index = np.full(n, still_frame(subject))
    rot = trans = None
    if pose not in ("train", "still"):
        rot, trans = load_pose_file(pose, n, subject)
    track_eye = subject.tracks["eye"]
    open_eye = np.percentile(track_eye[lo:hi], 70, axis=0)
    if blink == "none":
        eye = np.tile(open_eye, (n, 1))
    elif blink == "auto":
        eye = track_eye[pose_index] if pose == "train" else natural_blinks(n, fps, open_eye, seed)
    else:
        raise InputError(f"unknown --blink {blink!r}; use auto or none")
    if eye_level is not None:
        if not 0 <= eye_level <= 1.5:
            raise InputError(f"--eye {eye_level}: use 0 (closed) … 1 (open)")
        eye = np.tile(open_eye * eye_level, (n, 1))
    return Drive(fps=fps, visemes=feats["visemes"], mel_windows=feats["mel_windows"].astype(np.float32),
                 pose_index=pose_index.astype(np.int64), eye=eye.astype(np.float32), audio=wav,
                 rotation=rot, translation=trans)

"""The vowel/silence drive every engine's end-to-end test says: "Papa. Ah. Bob. Ah." between 1.6 s pauses."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PAD_S = 1.6


def vowel_silence_drive(tmp_path: Path):
    """Write the drive wav; return (its path, the TTS utterance with its phoneme timings)."""
    from talkinghead.audio.tts import synthesize
    from talkinghead.audio.wav import write_wav

    tts = synthesize("Papa. Ah. Bob. Ah.", rate=120).resampled(16000)
    pad = np.zeros(int(PAD_S * 16000), np.float32)
    write_wav(tmp_path / "drive.wav", np.concatenate([pad, tts.audio, pad]))
    return tmp_path / "drive.wav", tts


def silent_and_vowel_frames(n: int, tts, fps: float = 25) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (n,) masks of the output frames in the pauses (with a 0.2 s margin) and on "aa"."""
    t = (np.arange(n) + 0.5) / fps
    silent = (t < PAD_S - 0.2) | (t > PAD_S + tts.duration + 0.2)
    vowel = np.zeros(n, bool)
    for p in tts.phonemes:
        if p.viseme == 10:  # aa
            vowel |= (t >= p.start + PAD_S) & (t < p.end + PAD_S)
    return silent, vowel


def assert_opens_on_vowels_and_shuts_in_silence(ap: np.ndarray, tts, subject_dir: Path) -> None:
    """The rendered aperture opens on "aa" and rests near the subject's closed mouth in the pauses."""
    silent, vowel = silent_and_vowel_frames(len(ap), tts)
    assert np.isfinite(ap).mean() > 0.9
    sil, vow = np.nanmedian(ap[silent]), np.nanmax(ap[vowel])
    closed = np.percentile(np.load(Path(subject_dir) / "tracks.npz")["aperture"], 30)
    assert vow > sil + 0.04, (sil, vow)
    assert sil < closed + 0.03, (sil, closed)

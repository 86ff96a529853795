"""The kinds of input people bring, made with PyAV from the synthetic speaker (``synth/variants.py``): each
prepares with the face found in every frame, at the subject's frame rate, and ``say`` would answer in the
source's own frame size; drive files in mp3, m4a and flac decode to the same speech."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # prepares videos of every kind


@pytest.fixture(scope="module")
def speaker(tmp_path_factory):
    os.environ["TALKINGHEAD_QUIET"] = "1"
    from talkinghead.synth.speaker import synthesize_speaker

    return synthesize_speaker(tmp_path_factory.mktemp("kinds") / "speaker.mp4", seconds=4.5, seed=5, size=256)


@pytest.mark.parametrize("kind", [
    dict(size=(288, 384), fps=25.0),  # portrait
    dict(size=(854, 480), fps=60.0, audio_rate=44100, channels=2),  # landscape, 60 fps, stereo 44.1 kHz
    dict(size=(640, 480), fps=22.1, audio_rate=48000, channels=2),
    dict(size=(640, 480), fps=30.0, audio_rate=44100, channels=2, rotate=90),  # a phone's turned storage
    dict(size=(640, 480), fps=25.0, audio_rate=None),  # no soundtrack: --audio
], ids=["portrait", "60fps_stereo44k", "22fps_48k", "rotated", "no_soundtrack"])
def test_kind_prepares_in_its_own_frame(speaker, tmp_path, kind):
    from talkinghead.audio.wav import load_audio, write_wav
    from talkinghead.prepare.pipeline import PrepareConfig, prepare
    from talkinghead.say.source import SourceFrames
    from talkinghead.subject import Subject
    from talkinghead.synth.variants import write_variant

    video = write_variant(speaker, tmp_path / "v.mp4", **kind)
    audio = None
    if kind.get("audio_rate", 16000) is None:
        audio = tmp_path / "speech.wav"
        write_wav(audio, load_audio(speaker))
    s = Subject.open(prepare(video, tmp_path / "s", audio=audio, config=PrepareConfig(size=128)))
    assert s.meta["stats"]["face_found"] == 1.0
    assert abs(s.n_frames - 4.5 * 25) <= 2
    assert (s.meta["source"]["width"], s.meta["source"]["height"]) == kind["size"]
    src = SourceFrames.open(s, np.arange(3))
    assert src is not None and src.size == kind["size"]
    src.close()


def test_drive_files_decode_to_the_same_speech(speaker, tmp_path):
    from talkinghead.audio.wav import load_audio
    from talkinghead.synth.variants import write_audio

    wav = load_audio(speaker)
    for ext in ("mp3", "m4a", "flac"):
        got = load_audio(write_audio(wav, tmp_path / f"d.{ext}", rate=44100, channels=2))
        assert abs(len(got) - len(wav)) < 0.03 * 16000, ext
        n = min(len(got), len(wav))
        lag = int(np.argmax(np.correlate(got[:8000], wav[:8000], "full"))) - 7999  # encoder delay (aac, mp3)
        a, b = (got[lag:n], wav[:n - lag]) if lag >= 0 else (got[:n + lag], wav[-lag:n])
        assert np.corrcoef(a, b)[0, 1] > 0.95, ext

"""Each bad input: one clear error line, a non-zero exit, nothing half-written."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talkinghead.cli import main

from videos import astronaut_frame, tone, write_frames, write_moving_astronaut


def run(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    return code, lines[0] if lines else err


def assert_clean(tmp_path, out):
    assert not out.exists(), "output written despite the error"
    assert not list(tmp_path.glob("*.partial/subject.json"))


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("TALKINGHEAD_QUIET", "1")


def test_not_a_video(tmp_path, capsys):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 50)
    code, err = run(capsys, "prepare", str(bad), "-o", str(tmp_path / "s"))
    assert code != 0 and "not a readable video" in err
    assert_clean(tmp_path, tmp_path / "s")


def test_corrupt_video(tmp_path, capsys):
    good = tmp_path / "good.mp4"
    write_moving_astronaut(good, seconds=3.5)
    data = bytearray(good.read_bytes())
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(bytes(data[:200]) + bytes(len(data) - 200))  # header kept, payload zeroed
    code, err = run(capsys, "prepare", str(bad), "-o", str(tmp_path / "s"))
    assert code != 0 and err.startswith("error:") and "corrupt.mp4" in err
    assert_clean(tmp_path, tmp_path / "s")


def test_missing_file(tmp_path, capsys):
    code, err = run(capsys, "prepare", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "s"))
    assert code != 0 and "no such file" in err


def test_no_audio_track(tmp_path, capsys):
    v = tmp_path / "mute.mp4"
    write_moving_astronaut(v, seconds=3.5, with_audio=False)
    code, err = run(capsys, "prepare", str(v), "-o", str(tmp_path / "s"))
    assert code != 0 and "no audio track" in err and "--audio" in err
    assert_clean(tmp_path, tmp_path / "s")


def test_too_short(tmp_path, capsys):
    v = tmp_path / "short.mp4"
    write_moving_astronaut(v, seconds=0.6)
    code, err = run(capsys, "prepare", str(v), "-o", str(tmp_path / "s"))
    assert code != 0 and "is 0.6" in err and "prepare needs at least 1 s" in err
    assert_clean(tmp_path, tmp_path / "s")


@pytest.mark.slow  # prepares a video
def test_a_clip_of_a_second_and_a_half_is_tracked(tmp_path, capsys):
    """Other voices' clips (1-3 s: LRS3, GRID) are prepared like any video: every frame tracked."""
    from talkinghead.subject import Subject

    v = tmp_path / "short.mp4"
    write_moving_astronaut(v, seconds=1.5)
    code, err = run(capsys, "prepare", str(v), "-o", str(tmp_path / "s"))
    assert code == 0, err
    s = Subject.open(tmp_path / "s")
    assert s.n_frames in (37, 38) and s.tracks["found"].all() and np.isfinite(s.tracks["aperture"]).all()


def test_no_face(tmp_path, capsys):
    rng = np.random.default_rng(0)
    v = tmp_path / "noise.mp4"
    frames = [cv2.GaussianBlur(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8), (9, 9), 3)
              for _ in range(90)]
    write_frames(v, frames, audio=tone(3.6))
    code, err = run(capsys, "prepare", str(v), "-o", str(tmp_path / "s"), "--size", "128")
    assert code != 0 and "no face" in err
    assert_clean(tmp_path, tmp_path / "s")


def test_face_too_small(tmp_path, capsys):
    small = cv2.resize(astronaut_frame(), (200, 200), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 480, 3), 90, np.uint8)
    frame[140:340, 140:340] = small  # face ~70 px wide
    v = tmp_path / "small.mp4"
    write_frames(v, [frame] * 90, audio=tone(3.6))
    code, err = run(capsys, "prepare", str(v), "-o", str(tmp_path / "s"), "--size", "128")
    assert code != 0 and "too small" in err and "96 px" in err
    assert_clean(tmp_path, tmp_path / "s")


def test_face_missing_too_often(tmp_path, capsys):
    face = astronaut_frame(256)
    blank = np.full_like(face, 40)
    frames = [face if (i // 10) % 3 else blank for i in range(90)]  # a third of frames faceless
    v = tmp_path / "gaps.mp4"
    write_frames(v, frames, audio=tone(3.6))
    code, err = run(capsys, "prepare", str(v), "-o", str(tmp_path / "s"), "--size", "128")
    assert code != 0 and "face missing in" in err
    assert_clean(tmp_path, tmp_path / "s")


@pytest.mark.slow  # prepares a video
def test_two_faces_uses_the_largest(tmp_path, capsys):
    big = astronaut_frame(384)
    frame = np.full((384, 640, 3), 70, np.uint8)
    frame[:, :384] = big
    frame[96:352, 384:640] = astronaut_frame(256)
    v = tmp_path / "two.mp4"
    write_frames(v, [frame] * 90, audio=tone(3.6))
    out = tmp_path / "s"
    code = main(["prepare", str(v), "-o", str(out), "--size", "128"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "more than one face" in err
    from talkinghead.subject import Subject

    lm = Subject.open(out).tracks["landmarks"]
    crop = Subject.open(out).meta["crop"]
    cx = lm[0, :, 0].mean() * crop["side"] / 128 + crop["x0"]
    assert cx < 384, "followed the smaller face"


def test_unwritable_output(tmp_path, capsys):
    v = tmp_path / "ok.mp4"
    write_moving_astronaut(v, seconds=3.5)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = run(capsys, "prepare", str(v), "-o", str(blocker / "sub" / "s"))
    assert code != 0 and "cannot create output directory" in err


@pytest.mark.parametrize("text", ["", "   ", "...!?"])
def test_tts_rejects_unspeakable_text(tmp_path, capsys, text):
    out = tmp_path / "x.wav"
    code, err = run(capsys, "tts", text, "-o", str(out))
    assert code != 0 and err.startswith("error:")
    assert not out.exists() and not list(tmp_path.iterdir())

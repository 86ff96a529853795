"""Outputs: nothing the project did not write is ever destroyed; every failure a user can cause is one line."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from talkinghead.errors import InputError
from talkinghead.outputs import install_dir, output_dir, output_file, written_by_us


@pytest.fixture
def run_cli(capsys):
    """The real CLI in this process → (exit code, every non-empty stderr line)."""
    from talkinghead.cli import main

    def run(*argv):
        code = main([str(a) for a in argv])
        return code, [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]

    return run


def one_error(lines: list[str], *words: str) -> None:
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert all(w in lines[0] for w in words), lines
    assert "Traceback" not in lines[0]


def user_files(tmp_path):
    """A user's directory with a file in it, and a lone file of theirs."""
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    (tmp_path / "notes.txt").write_text("mine too")
    return d, tmp_path / "notes.txt"


def test_output_dir_and_file_rules(tmp_path):
    d, f = user_files(tmp_path)
    new = tmp_path / "a" / "b"
    assert output_dir(new, ("subject.json",), False, "prepare") == (new, False)
    assert new.parent.is_dir() and not new.exists()  # the parent made, the output itself not yet
    for force in (False, True):
        with pytest.raises(InputError, match="is a file"):
            output_dir(f, ("subject.json",), force, "prepare")
    with pytest.raises(InputError, match="--force"):
        output_dir(d, ("subject.json",), False, "prepare")
    assert output_dir(d, ("subject.json",), True, "prepare") == (d, False)
    (tmp_path / "empty").mkdir()
    assert output_dir(tmp_path / "empty", ("subject.json",), False, "prepare")[1] is False
    (d / "subject.json").write_text("{}")
    assert output_dir(d, ("subject.json",), False, "prepare")[1] is True
    with pytest.raises(InputError, match="--force"):
        output_file(f, False, "say")
    assert output_file(f, True, "say") == f
    with pytest.raises(InputError, match="is a directory"):
        output_file(d, True, "say")
    assert f.read_text() == "mine too" and (d / "notes.txt").read_text() == "mine"


def test_our_own_files_are_recognised(tmp_path):
    from talkinghead.audio.wav import write_wav
    from talkinghead.io.video import VideoWriter

    with VideoWriter(tmp_path / "ours.mp4", 25, (64, 64)) as w:
        w.write(np.zeros((64, 64, 3), np.uint8))
    (tmp_path / "theirs.mp4").write_bytes((tmp_path / "ours.mp4").read_bytes().replace(b"written by", b"xxxxxxx by"))
    write_wav(tmp_path / "ours.wav", np.zeros(160, np.float32))
    (tmp_path / "ours.phonemes.json").write_text("[]")
    write_wav(tmp_path / "theirs.wav", np.zeros(160, np.float32))
    assert written_by_us(tmp_path / "ours.mp4") and written_by_us(tmp_path / "ours.wav")
    assert not written_by_us(tmp_path / "theirs.mp4") and not written_by_us(tmp_path / "theirs.wav")
    assert output_file(tmp_path / "ours.mp4", False, "say")  # a rerun replaces our own result


def test_install_dir_replaces_ours_and_adds_beside_theirs(tmp_path):
    def result(name):
        src = tmp_path / name
        src.mkdir()
        (src / "subject.json").write_text(name)
        return src

    dst = tmp_path / "out"
    install_dir(result("r1"), dst, ours=False)
    (dst / "stale").write_text("ours, old")
    install_dir(result("r2"), dst, ours=True)
    assert (dst / "subject.json").read_text() == "r2" and not (dst / "stale").exists()
    d, _ = user_files(tmp_path)
    install_dir(result("r3"), d, ours=False)
    assert (d / "notes.txt").read_text() == "mine" and (d / "subject.json").read_text() == "r3"
    src = result("r4")
    (d / "subject.json").unlink()
    (d / "subject.json").mkdir()  # theirs, in the way
    with pytest.raises(InputError, match="did not write"):
        install_dir(src, d, ours=False)
    assert (src / "subject.json").exists() and (d / "notes.txt").exists()


def test_every_command_refuses_user_files_with_one_line(tmp_path, run_cli, speaker_subject):
    from talkinghead.io.video import VideoWriter

    d, f = user_files(tmp_path)
    with VideoWriter(tmp_path / "v.mp4", 25, (64, 64)) as w:
        w.write(np.zeros((64, 64, 3), np.uint8))
    for argv in (["prepare", "missing.mp4", "-o"], ["demo", "-o"], ["evaluate", "--video", tmp_path / "v.mp4", "-o"],
                 ["train", speaker_subject, "--steps", "1", "-o"], ["train-motion", speaker_subject, "-o"]):
        for out in (d, f):
            code, err = run_cli(*argv, out)
            assert code == 2, (argv, out)
            one_error(err, str(out))
    for argv in (["tts", "hello", "-o"], ["synth", "--seconds", "1", "--size", "64", "-o"],
                 ["say", tmp_path / "nomodel", "--text", "hi", "-o"]):
        code, err = run_cli(*argv, f)
        one_error(err, "--force")
        code, err = run_cli(*argv, d)
        one_error(err, "is a directory")
    assert f.read_text() == "mine too" and sorted(p.name for p in d.iterdir()) == ["notes.txt"]


def test_force_replaces_a_named_file_and_reruns_replace_our_own(tmp_path, run_cli):
    _, f = user_files(tmp_path)
    code, err = run_cli("tts", "hello there", "-o", f, "--force")
    assert code == 0 and f.read_bytes()[:4] == b"RIFF", err
    code, err = run_cli("tts", "hello again", "-o", f)  # ours now: no --force needed
    assert code == 0
    video = tmp_path / "s.mp4"
    for _ in range(2):
        code, err = run_cli("synth", "--seconds", "1", "--size", "64", "-o", video)
        assert code == 0 and written_by_us(video), err


@pytest.mark.parametrize("case", ["no_space", "permission", "missing_parent_is_a_file", "proc"])
def test_write_failures_are_one_line(tmp_path, run_cli, monkeypatch, case):
    out = tmp_path / "x.wav"
    if case == "no_space":
        real = os.replace

        def full(src, dst, *a, **k):
            if str(dst).endswith("x.wav"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))
            return real(src, dst, *a, **k)

        monkeypatch.setattr(os, "replace", full)
    elif case == "permission":
        if os.geteuid() == 0:
            monkeypatch.setattr(os, "access", lambda *a, **k: False)  # root may write anywhere
        else:
            (tmp_path / "ro").mkdir(mode=0o500)
        out = tmp_path / "ro" / "x.wav"
        (tmp_path / "ro").mkdir(exist_ok=True)
    elif case == "missing_parent_is_a_file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "sub" / "x.wav"
    else:
        out = "/proc/talkinghead_test/x.wav"
    code, err = run_cli("tts", "hello", "-o", out)
    assert code == 2
    one_error(err)
    assert ".tmp" not in err[0], "names the user's output, not our temporary file"
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".wav")]


def test_a_model_of_another_format_is_one_line(tmp_path, run_cli):
    m = tmp_path / "m"
    m.mkdir()
    (m / "model.json").write_text(json.dumps({"format_version": 99, "engine": "viseme"}))
    (m / "weights.pt").write_bytes(b"")
    code, err = run_cli("say", m, "--text", "hi", "-o", tmp_path / "o.mp4")
    one_error(err, "format")


def sigint_after(argv: list[str], ready, timeout: float = 120.0) -> tuple[int, list[str]]:
    """Run the CLI in a subprocess, send it a real SIGINT once ``ready()`` holds → (exit code, stderr lines)."""
    env = dict(os.environ, TALKINGHEAD_QUIET="1")
    p = subprocess.Popen([sys.executable, "-m", "talkinghead.cli", *map(str, argv)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + timeout
    while not ready() and time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
    assert p.poll() is None, "finished before it could be interrupted"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    return p.returncode, [ln for ln in err.splitlines() if ln.strip()]


@pytest.mark.slow  # prepares a video
def test_ctrl_c_during_prepare_keeps_a_resumable_partial_and_nothing_final(tmp_path):
    from talkinghead.synth.speaker import synthesize_speaker

    video = synthesize_speaker(tmp_path / "v.mp4", seconds=6, seed=1, size=192)
    out = tmp_path / "subject"
    code, err = sigint_after(["prepare", video, "-o", out, "--size", "128"],
                             lambda: (out.with_name("subject.partial") / "audio_full.wav").exists())
    assert code == 130 and len(err) == 1 and err[0].startswith("interrupted:") and "resumes" in err[0], err
    assert not out.exists() and out.with_name("subject.partial").is_dir()


def test_a_ctrl_c_during_native_set_up_waits_for_the_block_to_end():
    """mediapipe swallows or mangles a KeyboardInterrupt raised while it imports or builds its graph: the
    signal is held until the block ends, then raised as usual; nothing held means nothing raised."""
    from talkinghead.progress import interrupts_deferred

    finished = []
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, whatever ran before
    try:
        with pytest.raises(KeyboardInterrupt):
            with interrupts_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # the handler runs here, between bytecodes: held, not raised
                finished.append(True)
        assert finished == [True]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with interrupts_deferred():
            pass
    finally:
        signal.signal(signal.SIGINT, before)


NATIVE_LOG_MARKS = ("W0000", "I0000", "E0000", "absl::", "InitializeLog", "TensorFlow Lite", "XNNPACK", ".cc:")


@pytest.mark.slow  # prepares a video
def test_non_square_video_prepares_quietly_with_a_length_warning(tmp_path):
    """A landscape clip: no native log line on the terminal, landmarks as on the same frames padded to a square,
    and an --audio track 1.5 s shorter than the video: one warning line, the overlap used."""
    from talkinghead.audio.wav import load_audio, write_wav
    from talkinghead.io.video import VideoWriter, iter_frames
    from talkinghead.prepare.track import FaceTracker
    from talkinghead.subject import Subject
    from talkinghead.synth.speaker import synthesize_speaker

    square = synthesize_speaker(tmp_path / "sq.mp4", seconds=5.5, seed=2, size=256)
    frames = [np.pad(f, ((0, 0), (48, 48), (0, 0))) for f in iter_frames(square, 25)]  # 352 x 256
    wav = load_audio(square, 16000)
    with VideoWriter(tmp_path / "wide.mp4", 25, (352, 256), audio=wav) as w:
        for f in frames:
            w.write(f)
    write_wav(tmp_path / "short.wav", wav[: len(wav) - 24000])
    env = dict(os.environ, TALKINGHEAD_QUIET="0")
    r = subprocess.run([sys.executable, "-m", "talkinghead.cli", "prepare", str(tmp_path / "wide.mp4"), "-o",
                        str(tmp_path / "s"), "--size", "128", "--audio", str(tmp_path / "short.wav")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stderr.replace("\r", "\n").splitlines()
    assert not [ln for ln in lines if any(m in ln for m in NATIVE_LOG_MARKS)], r.stderr[-2000:]
    warnings = [ln for ln in lines if ln.startswith("warning:")]
    assert len(warnings) == 1 and "overlap" in warnings[0], warnings
    s = Subject.open(tmp_path / "s")
    assert s.n_frames == int((len(wav) - 24000) / 16000 * 25 + 1e-6)

    def track(imgs):
        t = FaceTracker()
        try:
            return np.stack([t.update(img)[:, :2] for img in imgs])
        finally:
            t.close()

    wide = track(frames[:20])
    padded = track([np.pad(f, ((48, 48), (0, 0), (0, 0))) for f in frames[:20]]) - [0, 48]
    assert np.abs(wide - padded).mean() < 1.0

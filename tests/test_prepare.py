"""`talkinghead prepare` end to end on a video with known motion, run with the network blocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from talkinghead.geometry.face import FACE_OVAL
from talkinghead.subject import Subject

from videos import astronaut_frame, write_moving_astronaut

SECONDS, FPS, SIZE = 4.0, 25.0, 256

NO_NETWORK = textwrap.dedent("""
    import socket
    def _refuse(*a, **k):
        raise OSError("network access is blocked in this test")
    socket.socket.connect = _refuse
    socket.socket.connect_ex = _refuse
    socket.create_connection = _refuse
    socket.getaddrinfo = _refuse
""")


def speech(seconds: float) -> np.ndarray:
    from talkinghead.audio.tts import synthesize

    wav = synthesize("Peter bought a map of Bombay.").resampled(16000).audio
    n = int(seconds * 16000)
    return np.pad(wav, (4000, max(0, n - len(wav) - 4000)))[:n].astype(np.float32)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Prepare once, in a child process whose every (grand)child has sockets disabled."""
    tmp = tmp_path_factory.mktemp("prep")
    video = tmp / "astro.mp4"
    mats = write_moving_astronaut(video, SECONDS, FPS, audio=speech(SECONDS))
    site = tmp / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_NETWORK)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), *sys.path]), TALKINGHEAD_QUIET="1")
    out = tmp / "subject"
    r = subprocess.run([sys.executable, "-m", "talkinghead.cli", "prepare", str(video), "-o", str(out),
                        "--size", str(SIZE)], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return {"video": video, "out": out, "mats": mats, "env": env, "stderr": r.stderr}


@pytest.mark.slow  # prepares a video
def test_layout_is_complete(prepared):
    out = prepared["out"]
    s = Subject.open(out)
    n = int(SECONDS * FPS)
    assert s.n_frames == n and s.size == SIZE and s.fps == FPS
    assert len(list((out / "frames").glob("*.jpg"))) == n
    assert len(list((out / "masks").glob("*.png"))) == n
    for name in ("tracks.npz", "background.png", "audio.wav", "audio_features.npz", "preview.png"):
        assert (out / name).stat().st_size > 0, name
    assert not list(out.parent.glob("*.partial")), "work directory left behind"
    lo, hi = s.meta["split"]["val"]
    assert (lo, hi) == (n - 10, n) and s.meta["split"]["train"] == [0, n - 10]
    assert len(s.meta["source"]["sha256"]) == 64 and s.meta["versions"]["mediapipe"] == "0.10.21"
    assert s.frame(0).shape == (SIZE, SIZE, 3)


@pytest.mark.slow  # prepares a video
def test_landmarks_in_every_frame_follow_the_applied_motion(prepared):
    s = Subject.open(prepared["out"])
    tr = s.tracks
    assert tr["found"].all()
    crop = s.meta["crop"]
    scale = SIZE / crop["side"]
    # Frame 0's landmarks moved by each frame's known affine, in crop pixels.
    lm0 = tr["landmarks"][0, :, :2] / scale + [crop["x0"], crop["y0"]]
    M0inv = cv2.invertAffineTransform(prepared["mats"][0])
    src = lm0 @ M0inv[:, :2].T + M0inv[:, 2]
    errs = []
    for i in range(0, s.n_frames, 5):
        M = prepared["mats"][i]
        pred = ((src @ M[:, :2].T + M[:, 2]) - [crop["x0"], crop["y0"]]) * scale
        errs.append(np.median(np.linalg.norm(pred - tr["landmarks"][i, :, :2], axis=1)))
    assert np.median(errs) < 2.0, errs  # px at 256²


@pytest.mark.slow  # prepares a video
def test_pose_recovers_in_plane_rotation_and_translation(prepared):
    s = Subject.open(prepared["out"])
    tr, mats = s.tracks, prepared["mats"]
    applied = np.degrees(np.array([np.arctan2(-M[1, 0], M[0, 0]) for M in mats]))  # counter-clockwise
    roll = tr["euler_deg"][:, 2]
    # Our roll turns x towards y (y is down): clockwise on screen, so the signs are opposite.
    err = (roll - roll[0]) + (applied - applied[0])
    assert np.max(np.abs(err)) < 2.0, np.abs(err).max()
    assert np.max(np.abs(tr["euler_deg"][:, :2] - tr["euler_deg"][0, :2])) < 4.0  # no invented yaw/pitch
    # The head origin projects where the applied motion moved it.
    K = tr["intrinsics"]
    uv = (tr["translation"] @ K.T)[:, :2] / tr["translation"][:, 2:3]
    crop, scale = s.meta["crop"], SIZE / s.meta["crop"]["side"]
    src0 = (uv[0] / scale + [crop["x0"], crop["y0"]])
    src0 = cv2.invertAffineTransform(mats[0])[:, :2] @ src0 + cv2.invertAffineTransform(mats[0])[:, 2]
    pred = np.array([((M[:, :2] @ src0 + M[:, 2]) - [crop["x0"], crop["y0"]]) * scale for M in mats])
    assert np.median(np.linalg.norm(pred - uv, axis=1)) < 2.0
    assert tr["canon_landmarks"].shape == (s.n_frames, 478, 3)
    # Pose-free landmarks do not rotate with the head.
    spread = np.std(tr["canon_landmarks"][:, FACE_OVAL, :2], axis=0).mean()
    assert spread < 0.3  # cm


@pytest.mark.slow  # prepares a video
def test_signals_masks_and_audio_features(prepared):
    s = Subject.open(prepared["out"])
    n = s.n_frames
    tr = s.tracks
    assert tr["eye"].shape == (n, 2) and np.all(tr["eye"] > 0.1)
    assert tr["aperture"].shape == (n,) and np.all(np.isfinite(tr["aperture"]))
    assert tr["lip_box"].shape == (n, 4)
    labels = s.mask(0)
    assert set(np.unique(labels)) <= {0, 1, 2, 3}
    face_px = (labels == 3).mean()
    assert 0.03 < face_px < 0.5 and (labels == 0).mean() > 0.05
    af = s.audio_features
    assert af["visemes"].shape == (n, 15)
    np.testing.assert_allclose(af["visemes"].sum(1), 1.0, atol=1e-4)
    assert af["mel_windows"].shape[0] == n and af["mel"].shape[1] == 80
    import wave

    with wave.open(str(s.path / "audio.wav")) as w:
        assert w.getframerate() == 16000 and abs(w.getnframes() / 16000 - n / FPS) < 1e-3
    assert any(v == 1 for v in af["phone_visemes"]), "no bilabial recognised in 'Peter bought a map of Bombay'"


@pytest.mark.slow  # prepares a video
def test_rerun_skips_and_force_redoes(prepared, tmp_path):
    env = prepared["env"]
    args = [sys.executable, "-m", "talkinghead.cli", "prepare", str(prepared["video"]), "-o",
            str(prepared["out"]), "--size", str(SIZE)]
    before = (prepared["out"] / "subject.json").stat().st_mtime_ns
    env = dict(env, TALKINGHEAD_QUIET="0")
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "already prepared" in r.stderr
    assert (prepared["out"] / "subject.json").stat().st_mtime_ns == before


@pytest.mark.slow  # prepares a video
def test_preview_is_an_image(prepared):
    img = cv2.imread(str(prepared["out"] / "preview.png"))
    assert img is not None and img.shape[0] > 300 and img.std() > 10


def test_crop_is_one_box_and_covers_the_face():
    from talkinghead.prepare.crop import plan_crop
    from talkinghead.prepare.track import detect_landmarks

    lm = detect_landmarks(astronaut_frame())[0]
    track = np.stack([lm + [dx, 0, 0] for dx in np.linspace(-30, 30, 20)])
    box = plan_crop(track, 512, 512)
    assert box.x0 <= track[..., 0].min() and box.x0 + box.side >= track[..., 0].max()
    assert box.y0 <= track[..., 1].min()


def test_interpolate_gaps_is_linear():
    from talkinghead.prepare.track import interpolate_gaps

    x = np.arange(10, dtype=np.float32)[:, None, None] * np.ones((1, 2, 3), np.float32)
    valid = np.ones(10, bool)
    valid[3:6] = False
    y = interpolate_gaps(np.where(valid[:, None, None], x, 0), valid)
    np.testing.assert_allclose(y, x)


def test_subject_open_rejects_non_subject(tmp_path):
    from talkinghead.errors import InputError

    with pytest.raises(InputError, match="not a prepared subject"):
        Subject.open(tmp_path)
    (tmp_path / "subject.json").write_text(json.dumps({"format_version": 0}))
    with pytest.raises(InputError, match="prepare it again"):
        Subject.open(tmp_path)


@pytest.mark.skipif(not Path(__file__).resolve().parents[2].joinpath("shared/data/clip_man_5s.mp4").exists(),
                    reason="../shared/data not present")
@pytest.mark.slow  # prepares a video
def test_real_clip_prepares(tmp_path):
    clip = Path(__file__).resolve().parents[2] / "shared/data/clip_man_5s.mp4"
    from talkinghead.prepare.pipeline import PrepareConfig, prepare

    out = prepare(clip, tmp_path / "man", config=PrepareConfig(size=128))
    s = Subject.open(out)
    assert s.tracks["found"].mean() > 0.95 and s.n_frames == 125

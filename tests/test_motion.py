"""Motion learners: noise augmentation, the mouth PCA, the expression and head-motion learners trained
briefly on the synthetic speaker, their metrics, ``train-motion`` and ``say --pose audio`` errors."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.motion.metrics import energy_r, frechet, replay_score, std_ratio
from talkinghead.motion.noise import add_noise, noisy_mel_copies


@pytest.mark.parametrize("snr", [6.0, 17.5, 30.0])
def test_noise_has_the_requested_snr(snr):
    rng = np.random.default_rng(0)
    wav = np.sin(np.arange(16000) * 0.05).astype(np.float32) * 0.3
    noisy = add_noise(wav, snr, rng)
    noise = noisy.astype(np.float64) - wav
    assert 10 * np.log10(np.mean(wav.astype(np.float64) ** 2) / np.mean(noise ** 2)) == pytest.approx(snr, abs=1e-3)
    copies = noisy_mel_copies(wav, 25, 25.0, 3, (6.0, 30.0), seed=1)
    assert len(copies) == 3 and all(6 <= s <= 30 and m.shape == (25, 16, 80) for s, m in copies)
    assert len({round(s, 6) for s, _ in copies}) == 3


def test_motion_metrics_closed_forms():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 3))
    assert frechet(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet(a, a + [2.0, 0.0, 0.0]) == pytest.approx(4.0, abs=1e-6)  # shifted mean: |d|^2
    assert frechet(a, 2 * a) == pytest.approx(3 * (2 - 1) ** 2 * 1.0, rel=0.1)  # std 1 vs 2 per axis
    np.testing.assert_allclose(std_ratio(2 * a, a), [2, 2, 2])
    poses = np.cumsum(rng.standard_normal((300, 6)), 0)
    assert replay_score(poses[:100], poses[100:200], poses, np.ones(6)) < 1e-6  # generated = training windows
    t = np.arange(500)
    loud = (np.sin(t / 20) > 0).astype(float)
    moving = np.zeros((500, 6))
    moving[:, 0] = np.cumsum(loud * np.sin(t))  # the head moves only while there is speech
    assert energy_r(moving, loud) > 0.8 and energy_r(np.zeros((500, 6)), loud) == 0.0


def test_mouth_pca_round_trip_within_half_a_pixel(speaker_subject):
    from talkinghead.geometry.pose import project
    from talkinghead.motion import MOUTH_POINTS, MouthPCA
    from talkinghead.subject import Subject

    s = Subject.open(speaker_subject)
    tr = s.tracks
    canon = tr["canon_landmarks"]
    pca = MouthPCA(20).fit(canon, s.split("train"))
    back = pca.decode(pca.encode(canon), canon)
    K = tr["intrinsics"].astype(np.float64)
    err = [np.linalg.norm(project(np.c_[back[i], canon[i][:, 2:]][MOUTH_POINTS], tr["rotation"][i], tr["translation"][i], K)
                          - project(canon[i][MOUTH_POINTS].astype(np.float64), tr["rotation"][i], tr["translation"][i], K),
                          axis=1).max() for i in s.split("val")]
    assert max(err) < 0.5


@pytest.fixture(scope="module")
def motion_model(tmp_path_factory, speaker_subject):
    from talkinghead.motion import MotionModel
    from talkinghead.train.pipeline import train_motion

    out = tmp_path_factory.mktemp("motion") / "model"
    path = train_motion(speaker_subject, out, steps=900, device="cpu")
    return {"dir": out, "model": MotionModel.load(out), "path": path}


def test_expression_learner_follows_the_synthetic_mouth(motion_model, speaker_subject):
    from talkinghead.motion.metrics import expression_metrics
    from talkinghead.subject import Subject

    s = Subject.open(speaker_subject)
    m = expression_metrics(motion_model["model"], s, s.split("val"))
    assert m["aperture_r"] >= 0.8 and m["lmd"] < 10


def test_head_motion_is_smooth_varies_and_follows_its_audio(motion_model, speaker_subject):
    from talkinghead.subject import Subject

    m, s = motion_model["model"], Subject.open(speaker_subject)
    af = s.audio_features
    vis, mel = af["visemes"], af["mel_windows"].astype(np.float32)
    a = m.head_motion(vis, mel, seed=0)
    assert a.shape == (len(vis), 6) and np.isfinite(a).all()
    assert np.abs(np.diff(a[:, :3], axis=0)).max() < 2.0  # no step over 2 degrees between frames
    assert a[:, :3].std(0).max() >= 0.5  # it moves
    np.testing.assert_array_equal(a, m.head_motion(vis, mel, seed=0))  # same audio and seed: same motion
    other = m.head_motion(vis[::-1].copy(), mel[::-1].copy(), seed=0)  # other audio: other motion
    assert np.abs(other - a)[:, :3].mean() > 0.05
    assert np.abs(m.head_motion(vis, mel, seed=1) - a)[:, :3].mean() > 0.05  # another seed: another take


def test_train_motion_refuses_foreign_directories(tmp_path, speaker_subject, cli):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    code, err = cli("train-motion", speaker_subject, "-o", tmp_path / "mine", "--steps", "4")
    assert code == 2 and "did not write" in err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_pose_audio_without_a_motion_learner_names_the_fix(motion_model, speaker_subject, tmp_path, cli):
    import shutil

    from talkinghead.audio.tts import write_tts
    from talkinghead.drive import build_drive
    from talkinghead.engines.modeldir import load_engine
    from talkinghead.train.pipeline import train

    model = train(speaker_subject, "viseme", tmp_path / "viseme", steps=2, device="cpu",
                  overrides=["size=64", "mouth_size=32", "base=8", "batch_size=2", "val_frames=2", "motion_share=0"])
    assert not (model / "motion.pt").exists()
    write_tts("Hello.", tmp_path / "h.wav")
    code, err = cli("say", model, "--audio", tmp_path / "h.wav", "--pose", "audio", "-o", tmp_path / "o.mp4")
    assert code == 2 and "train-motion" in err and not (tmp_path / "o.mp4").exists()
    shutil.copy(motion_model["path"], model / "motion.pt")  # with one, the viseme engine replays the nearest poses
    eng = load_engine(model, "cpu")
    d = build_drive(eng, audio=tmp_path / "h.wav", pose="audio")
    assert d.rotation is None and len(np.unique(d.pose_index)) > 1

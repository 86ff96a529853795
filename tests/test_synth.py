"""Tests for ``talkinghead.synth``: the synthetic speaker and its ground truth.

One 5 s clip at 256² is synthesised once and tracked with mediapipe FaceMesh
(video mode); a few tiny clips check determinism, motion and bad input.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from talkinghead.audio.visemes import BILABIAL, SILENCE, VISEMES
from talkinghead.errors import InputError
from talkinghead.geometry.face import eye_openness, mouth_aperture
from talkinghead.io.video import iter_frames, probe
from talkinghead.synth import SENTENCES, sidecar_paths, synthesize_speaker
from talkinghead.synth.head_motion import MotionConfig, rotation_matrix

SIZE, SECONDS, FPS = 256, 5.0, 25


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "talk.mp4"
    path = synthesize_speaker(out, seconds=SECONDS, seed=0, size=SIZE, fps=FPS)
    truth_path, phon_path = sidecar_paths(path)
    truth = dict(np.load(truth_path))
    return path, truth, json.loads(phon_path.read_text())


@pytest.fixture(scope="module")
def tracked(clip):
    """FaceMesh (video mode) landmarks per frame, NaN where no face was found."""
    import mediapipe as mp

    path, truth, _ = clip
    out = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, refine_landmarks=True,
                                         max_num_faces=1) as fm:
        for frame in iter_frames(path, FPS):
            res = fm.process(frame)
            if res.multi_face_landmarks:
                out.append([[p.x * SIZE, p.y * SIZE] for p in res.multi_face_landmarks[0].landmark])
            else:
                out.append(np.full((478, 2), np.nan))
    return np.asarray(out, np.float64)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_outputs_and_truth_shapes(clip):
    path, truth, phonemes = clip
    n = int(round(SECONDS * FPS))
    info = probe(path)
    assert (info.width, info.height) == (SIZE, SIZE) and info.has_audio
    assert sum(1 for _ in iter_frames(path, FPS)) == n
    assert truth["landmarks"].shape == (n, 478, 2) and truth["landmarks"].dtype == np.float32
    assert truth["rotation"].shape == (n, 3, 3)
    assert truth["euler_deg"].shape == (n, 3) and truth["translation"].shape == (n, 2)
    assert truth["scale"].shape == truth["viseme"].shape == truth["aperture"].shape == (n,)
    assert truth["viseme_weights"].shape == (n, len(VISEMES))
    assert truth["eye_openness"].shape == (n, 2) and truth["blink"].dtype == bool
    assert int(truth["size"]) == SIZE and float(truth["fps"]) == FPS and int(truth["seed"]) == 0
    assert any(s in str(truth["text"]) for s in SENTENCES)
    np.testing.assert_allclose(truth["aperture"], mouth_aperture(truth["landmarks"]), atol=1e-5)
    np.testing.assert_allclose(truth["eye_openness"], eye_openness(truth["landmarks"]), atol=1e-5)
    # Phoneme list: covers exactly [0, seconds], viseme names consistent.
    assert phonemes[0]["start"] == 0 and abs(phonemes[-1]["end"] - SECONDS) < 1e-3
    assert all(VISEMES[p["viseme"]] == p["viseme_name"] for p in phonemes)
    assert any(p["viseme"] == BILABIAL for p in phonemes)


def test_truth_pose_is_a_rotation_within_limits(clip):
    _, truth, _ = clip
    rot = truth["rotation"].astype(np.float64)
    eye = np.broadcast_to(np.eye(3), rot.shape)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, 1, 2), eye, atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-5)
    np.testing.assert_allclose(rot, rotation_matrix(truth["euler_deg"]), atol=1e-5)
    cfg = MotionConfig()
    lim = np.array([cfg.yaw_deg, cfg.pitch_deg, cfg.roll_deg])
    assert np.all(np.abs(truth["euler_deg"]) <= lim + 1e-4)
    assert np.abs(truth["euler_deg"]).max(axis=0).min() > 1.0  # it does move
    assert np.all(np.abs(truth["translation"]) <= cfg.shift * SIZE + 1e-3)


def test_rotation_convention():
    nose = np.array([0.0, 0.0, -1.0])  # in front of the head centre (z into the screen)
    assert (rotation_matrix(np.array([10.0, 0, 0])) @ nose)[0] < 0  # yaw: toward image left
    assert (rotation_matrix(np.array([0, 10.0, 0])) @ nose)[1] > 0  # pitch: nose down
    right = np.array([1.0, 0, 0])
    assert (rotation_matrix(np.array([0, 0, 10.0])) @ right)[1] > 0  # roll: clockwise on screen
    r = rotation_matrix(np.array([5.0, -3.0, 2.0]))
    expect = rotation_matrix(np.array([0, 0, 2.0])) @ rotation_matrix(np.array([0, -3.0, 0])) \
        @ rotation_matrix(np.array([5.0, 0, 0]))
    np.testing.assert_allclose(r, expect, atol=1e-12)


def test_facemesh_tracks_the_synthetic_face(tracked, clip):
    _, truth, _ = clip
    found = ~np.isnan(tracked[:, 0, 0])
    assert found.mean() >= 0.95
    err = np.linalg.norm(tracked[found] - truth["landmarks"][found], axis=-1).mean()
    assert err < 0.03 * SIZE, f"mean landmark error {err:.2f} px"
    r = np.corrcoef(mouth_aperture(tracked[found]), truth["aperture"][found])[0, 1]
    assert r >= 0.9, f"aperture correlation {r:.3f}"


def test_detected_eyes_close_at_every_blink(tracked, clip):
    _, truth, _ = clip
    blink = truth["blink"]
    starts = np.flatnonzero(blink & ~np.r_[False, blink[:-1]])
    ends = np.flatnonzero(blink & ~np.r_[blink[1:], False])
    assert len(starts) >= 1
    eyes = eye_openness(tracked).mean(axis=1)
    typical = np.nanmedian(eyes)
    for a, b in zip(starts, ends):
        dip = np.nanmin(eyes[max(a - 1, 0):b + 2])
        assert dip < 0.6 * typical, f"no detected blink at frames {a}-{b}: {dip:.3f} vs {typical:.3f}"
    assert np.all(truth["eye_openness"][~blink].mean(axis=1) > 0.15)


def test_mouth_closed_in_silence_and_on_bilabials_open_on_aa(clip):
    _, truth, _ = clip
    ap, vis, w = truth["aperture"], truth["viseme"], truth["viseme_weights"]
    silent = np.convolve((w[:, SILENCE] >= 0.999).astype(float), np.ones(5), "same") >= 5
    assert silent.sum() >= 3 and ap[silent].max() < 0.01
    assert (vis == BILABIAL).any() and ap[vis == BILABIAL].max() < 0.01
    aa = vis == VISEMES.index("aa")
    assert aa.any() and ap[aa].mean() > 0.12 and ap[aa].max() > 0.2


def test_same_seed_same_truth_other_seed_other_motion(tmp_path):
    kw = dict(seconds=1.5, size=96, fps=FPS)
    a = synthesize_speaker(tmp_path / "a.mp4", seed=7, **kw)
    b = synthesize_speaker(tmp_path / "b.mp4", seed=7, **kw)
    c = synthesize_speaker(tmp_path / "c.mp4", seed=8, **kw)
    (ta, pa), (tb, pb), (tc, _) = (sidecar_paths(p) for p in (a, b, c))
    assert _sha(ta) == _sha(tb) and _sha(pa) == _sha(pb)
    ea, ec = np.load(ta)["euler_deg"], np.load(tc)["euler_deg"]
    assert np.abs(ea - ec).max() > 0.5


def test_motion_zero_is_still_and_text_mode_pads(tmp_path):
    out = synthesize_speaker(tmp_path / "still.mp4", text="Hop on the big bus.", size=96, motion=0.0)
    truth_path, phon_path = sidecar_paths(out)
    t = np.load(truth_path)
    assert np.all(t["rotation"] == t["rotation"][0]) and np.allclose(t["rotation"][0], np.eye(3))
    assert np.all(t["translation"] == 0) and np.all(t["scale"] == 1)
    phon = json.loads(phon_path.read_text())
    speech = [p for p in phon if p["viseme"] != SILENCE]
    assert abs(speech[0]["start"] - 0.4) < 0.05
    n = t["landmarks"].shape[0]
    assert abs(n / FPS - (phon[-1]["end"])) < 1.0 / FPS + 1e-6
    assert phon[-1]["end"] - speech[-1]["end"] >= 0.4 - 1e-6
    assert str(t["text"]) == "Hop on the big bus."


@pytest.mark.parametrize("kwargs", [dict(text=""), dict(text="   "), dict(seconds=0), dict(seconds=-2.0),
                                    dict(seconds=2, size=101), dict(seconds=2, motion=-1)])
def test_bad_input(tmp_path, kwargs):
    with pytest.raises(InputError):
        synthesize_speaker(tmp_path / "x.mp4", **kwargs)
    assert not (tmp_path / "x.mp4").exists()


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(InputError):
        synthesize_speaker(blocker / "sub" / "x.mp4", seconds=1, size=64)

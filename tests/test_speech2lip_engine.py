"""The speech2lip engine end to end on the synthetic speaker: train → say → evaluate, mouth behaviour, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from talkinghead.cli import main
from talkinghead.io.video import probe

from drives import PAD_S, assert_opens_on_vowels_and_shuts_in_silence, vowel_silence_drive

pytestmark = pytest.mark.slow  # trains the speech2lip engine

TINY = ["field_hidden=32", "grid_levels=8", "blend_base=8", "sync_batch=16", "patch=32", "val_frames=4",
        "checkpoint_minutes=100", "motion_share=0.25", "sync_fraction=0.05", "lips_fraction=0.6", "gan_start=100000"]
STEPS = 1600


@pytest.fixture(scope="module")
def trained(tmp_path_factory, speaker_subject):
    from talkinghead.train.pipeline import train

    tmp = tmp_path_factory.mktemp("speech2lip")
    model = train(speaker_subject, "speech2lip", tmp / "model", steps=STEPS, device="cpu", overrides=TINY)
    return {"tmp": tmp, "subject": speaker_subject, "model": model}


def _log(model):
    log = (model / "train_log.csv").read_text()
    head = log.splitlines()[0].split(",")
    return head, [dict(zip(head, r.split(","))) for r in log.splitlines()[1:]]


def test_train_writes_a_model_and_every_phase_learns(trained):
    model = trained["model"]
    meta = json.loads((model / "model.json").read_text())
    assert meta["engine"] == "speech2lip" and meta["status"] == "trained" and meta["config"]["mouth"] == "exemplar"
    head, rows = _log(model)
    for key in ("motion_expression_aperture_r", "blend_psnr"):
        assert key in head, key
    final = {r["phase"]: r for r in rows if r.get(f"{r['phase']}_psnr") or r.get("motion_expression_aperture_r")}
    # the model's one mouth learner (motion.pt, trained first) follows the synthetic mouth's phones
    assert float(final["motion_expression"]["motion_expression_aperture_r"]) > 0.7
    weights = torch.load(model / "weights.pt", weights_only=False)
    assert (model / "motion.pt").is_file() and "expression" not in weights
    # the mouths it may show are the training frames' own, never a held-out one
    subject = trained["subject"]
    split = json.loads((subject / "subject.json").read_text())["split"]
    assert set(weights["exemplars"]) <= set(range(*split["train"])) and len(weights["exemplars"]) > 100
    assert float(final["blend"]["blend_psnr"]) > 22.0
    assert list((model / "previews").glob("blend_*.png"))


def test_the_paper_s_lip_field_learns_too(speaker_subject, tmp_path):
    """``mouth=field``: the implicit lip model (with its sync phase) renders the lips instead of recorded ones."""
    from talkinghead.train.pipeline import train

    model = train(speaker_subject, "speech2lip", tmp_path / "field", steps=900, device="cpu",
                  overrides=TINY + ["mouth=field"])
    head, rows = _log(model)
    for key in ("sync_top1", "lips_psnr_mouth", "blend_psnr"):
        assert key in head, key
    lips = [float(r["l1"]) for r in rows if r["phase"] == "lips" and r.get("l1")]
    assert lips[-1] < 0.7 * lips[0], lips
    final = {r["phase"]: r for r in rows if r.get(f"{r['phase']}_psnr")}
    # the Blend-Net (held-out frames, predicted codes) does not lose what the lip model (tracked codes) had
    assert float(final["blend"]["blend_psnr"]) > max(22.0, float(final["lips"]["lips_psnr"]) - 1.0)


def test_mouth_opens_on_vowels_and_stays_shut_in_silence_while_the_head_moves(trained, tmp_path):
    from talkinghead.evaluate.analyze import analyze_video

    wav, tts = vowel_silence_drive(tmp_path)
    out = tmp_path / "drive.mp4"
    assert main(["say", str(trained["model"]), "--audio", str(wav), "-o", str(out)]) == 0
    info = probe(out)
    assert info.has_audio and (info.width, info.height) == (256, 256)
    ap = analyze_video(out).aperture
    assert_opens_on_vowels_and_shuts_in_silence(ap, tts, trained["subject"])
    assert len(ap) == math.ceil((len(tts.audio) + 2 * int(PAD_S * 16000)) / 16000 * 25)


def test_evaluate_with_tracked_mouths_draws_the_mouth_asked_for(trained, tmp_path):
    """``evaluate --lips tracked``: the renderer alone, given each held-out frame's own tracked mouth, reproduces
    the real mouth's opening (the truth of the synthetic speaker), as much as it moves."""
    assert main(["evaluate", str(trained["model"]), "--lips", "tracked", "-o", str(tmp_path / "r")]) == 0
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["lips"] == "tracked"
    assert m["aperture_r"] >= 0.9 and m["requested"]["r"] >= 0.9, m
    assert 0.8 <= m["aperture_std_ratio"] <= 1.25, m


def test_two_voices_saying_one_sentence_open_the_mouth_alike(trained, tmp_path):
    """The same sentence in two espeak-ng voices (a man's and a woman's variant): the mouth opens on the same
    frames and as wide."""
    from talkinghead.audio.tts import write_tts
    from talkinghead.evaluate.analyze import analyze_video

    text = "Papa bought a big map. Ah, the open sea! Bob, be quiet."
    aps = []
    for voice in ("en-us", "en-us+f3"):
        wav = tmp_path / f"{voice}.wav"
        write_tts(text, wav, voice=voice)
        out = tmp_path / f"{voice}.mp4"
        assert main(["say", str(trained["model"]), "--audio", str(wav), "-o", str(out), "--crop"]) == 0
        aps.append(analyze_video(out).aperture)
    n = min(map(len, aps))
    a, b = aps[0][:n], aps[1][:n]
    assert np.corrcoef(a, b)[0, 1] >= 0.8
    assert 0.8 <= b.std() / a.std() <= 1.25


def test_free_pose_moves_the_head_and_the_lips_with_it(trained, tmp_path):
    """``--pose FILE``: a yaw sweep of ±12° with a sideways sweep of ±1.5 cm around the still pose moves the
    rendered head (its tracked nose follows where the pose projects it) and the generated lips go with it."""
    from talkinghead.evaluate.analyze import analyze_video
    from talkinghead.geometry.pose import matrix_from_euler, project
    from talkinghead.subject import Subject

    subject = Subject.open(trained["subject"])
    tr, s = subject.tracks, subject.neutral_frame()
    e0, t0 = tr["euler_deg"][s].astype(np.float64), tr["translation"][s].astype(np.float64)
    k = np.linspace(0, 2 * np.pi, 25)
    pose = np.stack([e0[0] + 12 * np.sin(k), np.full(25, e0[1]), np.full(25, e0[2]), t0[0] + 1.5 * np.cos(k),
                     np.full(25, t0[1]), np.full(25, t0[2])], 1)
    np.savetxt(tmp_path / "pose.txt", pose)
    out = tmp_path / "turn.mp4"
    assert main(["say", str(trained["model"]), "--text", "Papa, ah.", "-o", str(out), "--pose",
                 str(tmp_path / "pose.txt")]) == 0
    a = analyze_video(out)
    n = min(len(a.landmarks), len(pose))
    ok = a.found[:n]
    assert ok.mean() > 0.9
    K, X = tr["intrinsics"].astype(np.float64), tr["canon_landmarks"][s].astype(np.float64)
    expect = np.stack([project(X, matrix_from_euler(*p[:3]), p[3:], K) for p in pose[:n]])[ok, :, 0]
    seen = a.landmarks[:n, :, 0][ok]  # x: the speech opens the mouth vertically, the pose moves it sideways
    for i in (1, 0, 17, 61, 291):  # nose tip; outer lip middle top/bottom and corners
        assert np.corrcoef(seen[:, i], expect[:, i])[0, 1] > 0.9, i
        assert 0.7 < np.ptp(seen[:, i]) / np.ptp(expect[:, i]) < 1.4, i
        assert np.abs(seen[:, i] - expect[:, i]).mean() < 1.5, i


def test_evaluate_reports_what_was_generated_and_what_copied(trained, tmp_path):
    assert main(["evaluate", str(trained["model"]), "-o", str(tmp_path / "r")]) == 0
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert 0.5 < m["copied_fraction"] < 0.99  # only the lower face is generated
    assert m["psnr_generated"] is not None and m["psnr_generated"] < m["psnr"]  # the copied pixels flatter PSNR
    html = (tmp_path / "r" / "report.html").read_text()
    assert "generated pixels (magenta)" in html and "mouth x" in html


def test_bad_inputs(trained, tmp_path, cli):
    from talkinghead.audio.wav import write_wav

    model = trained["model"]
    write_wav(tmp_path / "silent.wav", np.zeros(16000, np.float32))
    code, err = cli("say", model, "--audio", tmp_path / "silent.wav", "-o", tmp_path / "o.mp4")
    assert code == 2 and "silent" in err
    code, err = cli("say", model, "--text", "hi", "-o", tmp_path / "o.mp4", "--background", tmp_path / "x.png")
    assert code == 2 and "speech2lip engine cannot swap the background" in err
    code, err = cli("train", trained["subject"], "--engine", "viseme", "-o", model, "--steps", "1")
    assert code == 2 and "holds a 'speech2lip' model" in err
    other = tmp_path / "other"
    other.mkdir()
    meta = json.loads((trained["subject"] / "subject.json").read_text())
    (other / "subject.json").write_text(json.dumps({**meta, "key": "different"}))
    code, err = cli("say", model, "--text", "hi", "-o", tmp_path / "o.mp4", "--subject", other)
    assert code == 2 and "not the one this model was trained on" in err
    code, err = cli("train", trained["subject"], "--engine", "speech2lip", "-o", tmp_path / "bad", "--steps",
                    "1", "--set", "encoding=fourier")
    assert code == 2 and "encoding" in err and not (tmp_path / "bad").exists()
    assert not (tmp_path / "o.mp4").exists()

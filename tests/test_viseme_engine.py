"""The viseme engine end to end on the synthetic speaker: train → say, mouth behaviour, resume, errors."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from talkinghead.cli import main
from talkinghead.io.video import iter_frames, probe

from conftest import VISEME_TINY
from drives import assert_opens_on_vowels_and_shuts_in_silence, vowel_silence_drive

pytestmark = pytest.mark.slow  # trains the viseme engine, says and evaluates

@pytest.fixture(scope="module")
def trained(tmp_path_factory, speaker_subject, viseme_model):
    return {"tmp": tmp_path_factory.mktemp("viseme"), "subject": speaker_subject, "model": viseme_model}


def aperture_of(video: Path) -> np.ndarray:
    """Pose-free mouth aperture measured by FaceMesh on every rendered frame (NaN where no face)."""
    from talkinghead.evaluate.analyze import analyze_video

    return analyze_video(video).aperture


def test_train_writes_a_complete_model_dir(trained):
    model = trained["model"]
    meta = json.loads((model / "model.json").read_text())
    assert meta["engine"] == "viseme" and meta["status"] == "trained"
    assert (model / "weights.pt").exists() and (model / "train_log.csv").exists()
    assert list((model / "previews").glob("val_*.png")) and list((model / "previews").glob("oracle_*.png"))
    log = (model / "train_log.csv").read_text().splitlines()
    assert "val_psnr" in log[0] and len(log) > 5


def test_say_round_trip_length_and_audio(trained, tmp_path):
    out = tmp_path / "hello.mp4"
    assert main(["say", str(trained["model"]), "--text", "Hello there, my friend.", "-o", str(out)]) == 0
    info = probe(out)
    assert info.has_audio and (info.width, info.height) == (256, 256)
    from talkinghead.audio.tts import synthesize

    seconds = synthesize("Hello there, my friend.").duration
    n = sum(1 for _ in iter_frames(out, 25))
    assert abs(n - math.ceil(seconds * 25)) <= 1


def test_mouth_closed_in_silence_open_on_vowels_while_head_moves(trained, tmp_path):
    """NEON's Fig. 8 claim, measured: aperture on rendered frames follows the audio, not the pose."""
    wav, tts = vowel_silence_drive(tmp_path)
    out = tmp_path / "drive.mp4"
    assert main(["say", str(trained["model"]), "--audio", str(wav), "-o", str(out), "--pose", "train",
                 "--lips", "engine"]) == 0
    assert_opens_on_vowels_and_shuts_in_silence(aperture_of(out), tts, trained["subject"])


def test_train_resumes_after_ctrl_c(trained, tmp_path):
    from test_outputs import sigint_after

    env = dict(os.environ, TALKINGHEAD_QUIET="0")
    ckpt = tmp_path / "m" / "checkpoint_oracle.pt"
    code, err = sigint_after(["train", trained["subject"], "-o", tmp_path / "m", "--steps", "100000", "--device",
                              "cpu", "--set", "checkpoint_minutes=0.02", *sum([["--set", s] for s in VISEME_TINY], [])],
                             ckpt.exists)
    assert code == 130 and len(err) == 1 and "checkpoint is kept" in err[0], err
    assert ckpt.exists() and not (tmp_path / "m" / "weights.pt").exists()
    r = subprocess.run([sys.executable, "-m", "talkinghead.cli", "train", str(trained["subject"]), "-o",
                        str(tmp_path / "m"), "--steps", "60", "--device", "cpu"],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]
    assert "resuming" in r.stderr
    assert (tmp_path / "m" / "weights.pt").exists()


def test_say_output_rules_and_ctrl_c(trained, tmp_path, cli, monkeypatch):
    """A foreign file is kept unless --force, our own result is replaced, a full disk is one line, and Ctrl-C
    leaves no output and no temporary file."""
    from test_outputs import sigint_after

    from talkinghead.outputs import written_by_us

    out = tmp_path / "o.mp4"
    out.write_text("the user's")
    code, err = cli("say", trained["model"], "--text", "hi", "-o", out)
    assert code == 2 and "--force" in err and out.read_text() == "the user's"
    code, _ = cli("say", trained["model"], "--text", "hi", "-o", out, "--force")
    assert code == 0 and written_by_us(out)
    before = out.stat().st_mtime_ns
    code, _ = cli("say", trained["model"], "--text", "hello", "-o", out)
    assert code == 0 and out.stat().st_mtime_ns != before
    real = os.replace

    def full(src, dst, *a, **k):
        if str(dst).endswith("full.mp4"):
            raise OSError(28, os.strerror(28), str(src))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", full)
    code, err = cli("say", trained["model"], "--text", "hi", "-o", tmp_path / "full.mp4")
    assert code == 2 and err == f"error: cannot write {tmp_path / 'full.mp4'}: {os.strerror(28)}"
    monkeypatch.undo()
    long_text = "Papa bought a big map of the open sea. " * 12
    code, err = sigint_after(["say", trained["model"], "--text", long_text, "-o", tmp_path / "c.mp4",
                              "--device", "cpu"], lambda: any(tmp_path.glob(".c.*.tmp.mp4")))
    assert code == 130 and err == [f"interrupted: nothing written to {tmp_path / 'c.mp4'}"], err
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".c.") or p.name == "c.mp4"]


def test_bad_inputs(trained, tmp_path, cli):
    from talkinghead.audio.wav import write_wav

    model = trained["model"]
    code, err = cli("say", tmp_path / "nope", "--text", "hi", "-o", tmp_path / "o.mp4")
    assert code != 0 and "not a model directory" in err
    code, err = cli("train", trained["subject"], "--engine", "nope", "--steps", "1")
    assert code != 0 and "unknown engine" in err
    for engine in ("viseme", "nerf"):  # a bad setting value: one line, nothing written
        code, err = cli("train", trained["subject"], "--engine", engine, "--steps", "1",
                        "-o", tmp_path / f"bad_{engine}", "--set", "audio=mfcc")
        assert code == 2 and "audio must be one of" in err and not (tmp_path / f"bad_{engine}").exists()
    write_wav(tmp_path / "silent.wav", np.zeros(16000, np.float32))
    code, err = cli("say", model, "--audio", tmp_path / "silent.wav", "-o", tmp_path / "o.mp4")
    assert code != 0 and "silent" in err
    write_wav(tmp_path / "empty.wav", np.zeros(10, np.float32))
    code, err = cli("say", model, "--audio", tmp_path / "empty.wav", "-o", tmp_path / "o.mp4")
    assert code != 0 and "empty" in err
    code, err = cli("say", model, "--text", "...", "-o", tmp_path / "o.mp4")
    assert code != 0 and err
    assert not (tmp_path / "o.mp4").exists()
    # A model used with another subject.
    other = tmp_path / "other"
    other.mkdir()
    meta = json.loads((trained["subject"] / "subject.json").read_text())
    (other / "subject.json").write_text(json.dumps({**meta, "key": "different"}))
    code, err = cli("say", model, "--text", "hi", "-o", tmp_path / "o.mp4", "--subject", other)
    assert code != 0 and "not the one this model was trained on" in err
    code, err = cli("train", other, "-o", model, "--steps", "1")
    assert code != 0 and "another subject" in err


def test_self_driven_evaluation_ranks_trained_above_untrained(trained, tmp_path):
    """evaluate MODEL_DIR writes exactly the documented metrics, and they can tell a trained model from noise."""
    import shutil

    import torch

    from talkinghead.engines.viseme.networks import VisemeGenerator
    from talkinghead.engines.viseme.oracle import Oracle
    from talkinghead.engines.viseme.trainer import net_config
    from talkinghead.engines.viseme.engine import VisemeConfig
    from talkinghead.evaluate.report import METRIC_KEYS

    assert main(["evaluate", str(trained["model"]), "-o", str(tmp_path / "good")]) == 0
    good = json.loads((tmp_path / "good" / "metrics.json").read_text())
    assert list(good) == METRIC_KEYS
    html = (tmp_path / "good" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 and "PSNR mouth" in html
    assert 15 < good["psnr"] < 60 and 0 < good["ssim"] <= 1 and good["fps"] > 0 and good["rtf"] > 0
    assert good["lmd"] is not None and good["lmd"] >= 0 and good["peak_ram_mb"] > 100
    assert set(good["cpbd"]) == {"rendered", "real"}
    print("seam", good["seam"])
    assert good["seam"] is not None and 0.3 < good["seam"] <= 1.5  # no seam where the generated face meets the frame

    # Same model directory with the generator and the oracle re-initialised (evaluate renders through the
    # oracle when the model has motion.pt, as say does): every image metric must get worse.
    assert good["motion"] is not None
    bad_dir = tmp_path / "untrained"
    shutil.copytree(trained["model"], bad_dir)
    ck = torch.load(bad_dir / "weights.pt", weights_only=False)
    torch.manual_seed(1)
    ck["generator"] = VisemeGenerator(net_config(VisemeConfig(**ck["config"]))).state_dict()
    ck["oracle"] = Oracle(net_config(VisemeConfig(**ck["config"]))).state_dict()
    torch.save(ck, bad_dir / "weights.pt")
    assert main(["evaluate", str(bad_dir), "-o", str(tmp_path / "bad")]) == 0
    bad = json.loads((tmp_path / "bad" / "metrics.json").read_text())
    assert good["psnr"] > bad["psnr"] + 3 and good["psnr_mouth"] > bad["psnr_mouth"] + 3
    assert good["ssim"] > bad["ssim"]


def test_streamed_audio_renders_exactly_the_frames_say_renders(trained, tmp_path):
    """File output and live output cannot drift apart: a wav pushed in 0.1 s chunks through a
    DriveStream and a render session gives the frames of ``say``'s path, bit for bit."""
    from talkinghead.audio.tts import write_tts
    from talkinghead.drive import DriveStream, build_drive, read_speech
    from talkinghead.engines.modeldir import load_engine

    write_tts("Papa. Ah. Bob.", tmp_path / "p.wav")
    wav, phones = read_speech(tmp_path / "p.wav")
    eng = load_engine(trained["model"], "cpu")
    whole = np.stack(list(eng.render(build_drive(eng, audio=tmp_path / "p.wav"))))
    stream, session, out = DriveStream(eng, phones=phones), eng.session(8), []
    for a in range(0, len(wav), 1600):
        out += list(session.push(stream.push(wav[a:a + 1600])))
    out += list(session.push(stream.end())) + list(session.end())
    assert len(out) == len(whole) == math.ceil(len(wav) / 16000 * 25)
    assert np.array_equal(np.stack(out), whole)


def test_pose_and_lips_from_the_motion_learners(trained, tmp_path):
    """``train`` leaves motion.pt: ``say`` then moves the head with the speech (nearest recorded poses) by
    default, and ``--lips audio`` renders through the oracle from the predicted mouth landmarks, whose
    shape really changes the rendered mouth."""
    from talkinghead.audio.tts import write_tts
    from talkinghead.drive import build_drive
    from talkinghead.engines.modeldir import load_engine
    from talkinghead.motion import MotionModel

    model = trained["model"]
    assert (model / "motion.pt").exists()
    write_tts("Papa. Ah. Bob.", tmp_path / "p.wav")
    out = tmp_path / "lips.mp4"
    assert main(["say", str(model), "--audio", str(tmp_path / "p.wav"), "--lips", "audio", "-o", str(out)]) == 0
    assert sum(1 for _ in iter_frames(out, 25)) > 25
    eng = load_engine(model, "cpu")
    d = build_drive(eng, audio=tmp_path / "p.wav", pose="audio", lips="audio")
    assert d.mouth is not None and d.mouth.shape[1:] == (61, 2) and len(np.unique(d.pose_index)) > 1
    pca = MotionModel.load(model).expression.pca
    k = np.arange(8)
    shut, wide = (pca.points(np.tile(np.eye(20)[0] * s, (8, 1))) for s in (-2.5, 2.5))
    frames = [np.stack(list(eng.render(replace_rows(d, k, m), batch_size=8))) for m in (shut, wide)]
    x0, y0, side = eng.store.mouth_box_subject(int(d.pose_index[0])).astype(int)
    ys, xs = slice(y0, y0 + side), slice(x0, x0 + side)
    assert np.abs(frames[0][:, ys, xs].astype(float) - frames[1][:, ys, xs]).mean() > 3


def replace_rows(d, k, mouth):
    from dataclasses import replace

    r = d.rows(0, len(k))
    return replace(r, mouth=mouth.astype(np.float32), audio=None)


def test_say_writes_the_source_frame_size_with_real_pixels_around_the_face(trained, tmp_path, cli):
    """A subject cut from a larger (non-square) source: say writes the source's size, the crop's generated part
    pasted back, the source's own pixels elsewhere; --crop keeps the square crop."""
    import shutil

    from talkinghead.io.video import VideoWriter
    from talkinghead.subject import Subject

    s = Subject.open(trained["subject"])
    sub = tmp_path / "subject"
    shutil.copytree(s.path, sub)
    yy, xx = np.mgrid[:288, :320]
    canvas = np.stack([(xx % 256), (yy % 256), np.full_like(xx, 90)], -1).astype(np.uint8)
    with VideoWriter(tmp_path / "big.mp4", s.fps, (320, 288)) as w:
        for i in range(s.n_frames):
            f = canvas.copy()
            f[16:16 + s.size, 32:32 + s.size] = s.frame(i)
            w.write(f)
    meta = json.loads((sub / "subject.json").read_text())
    meta["source"].update(video=str(tmp_path / "big.mp4"), width=320, height=288)
    meta["crop"] = {"x0": 32.0, "y0": 16.0, "side": float(s.size)}
    (sub / "subject.json").write_text(json.dumps(meta))
    out = tmp_path / "full.mp4"
    code, err = cli("say", trained["model"], "--text", "Papa bought a map.", "-o", out, "--subject", sub,
                    "--pose", "train")
    assert code == 0, err
    info = probe(out)
    assert (info.width, info.height) == (320, 288)
    frames = list(iter_frames(out, s.fps))
    outside = np.ones((288, 320), bool)
    outside[16:16 + s.size, 32:32 + s.size] = False
    source = list(iter_frames(tmp_path / "big.mp4", s.fps, max_frames=len(frames)))  # --pose train: frame k is k
    for f, g in list(zip(frames, source))[::10]:
        assert np.abs(f[outside].astype(int) - g[outside]).mean() < 3  # the source's own pixels
    lips = s.tracks["lip_box"][: len(frames)]
    moved = [np.abs(f[int(b[1]) + 16:int(b[3]) + 16, int(b[0]) + 32:int(b[2]) + 32].astype(int)
                    - s.frame(k)[int(b[1]):int(b[3]), int(b[0]):int(b[2])]).mean() for k, (f, b) in enumerate(zip(frames, lips))]
    assert max(moved) > 8, "the generated mouth was not pasted in"
    code, _ = cli("say", trained["model"], "--text", "Papa.", "-o", tmp_path / "crop.mp4", "--subject", sub, "--crop")
    assert code == 0 and probe(tmp_path / "crop.mp4").width == s.size


def test_the_recorded_eyes_and_brows_stay_unless_a_blink_is_drawn(trained):
    """Only what speech changes is generated: with the replayed frames' own eyes the upper face is the
    recording, pixel for pixel; eyes drawn shut (``--eye``) replace the eyes only."""
    from talkinghead.drive import build_drive
    from talkinghead.engines.modeldir import load_engine
    from talkinghead.geometry import face as mesh

    eng = load_engine(trained["model"], "cpu")
    s = eng.subject
    text = "Papa bought a map."
    shut, auto = (np.stack(list(eng.render(build_drive(eng, text=text, pose="train", eye_level=level), batch_size=8)))
                  for level in (0.1, None))
    d = build_drive(eng, text=text, pose="train")
    assert len(auto) == len(d.pose_index) > 25
    upper = eye_band = 0
    for k in range(0, len(auto), 5):
        j = int(d.pose_index[k])
        lm, real = s.tracks["landmarks"][j][:, :2], s.frame(j).astype(int)
        y_brow = int(lm[mesh.RIGHT_BROW + mesh.LEFT_BROW, 1].min()) - 2
        y_eye = int(lm[mesh.RIGHT_EYE + mesh.LEFT_EYE, 1].max()) + 2
        x0, x1 = int(lm[mesh.FACE_OVAL, 0].min()), int(lm[mesh.FACE_OVAL, 0].max())
        ys, xs = slice(y_brow, y_eye), slice(x0, x1)
        upper = max(upper, np.abs(auto[k][ys, xs].astype(int) - real[ys, xs]).max())
        mouth = slice(int(lm[mesh.LIPS_OUTER, 1].min()), int(lm[mesh.LIPS_OUTER, 1].max()))
        assert np.abs(auto[k][mouth, xs].astype(int) - real[mouth, xs]).mean() > 0.5  # the mouth is rendered
        eye_band += np.abs(shut[k][ys, xs].astype(int) - real[ys, xs]).mean() / len(range(0, len(auto), 5))
    assert upper == 0  # brows and eyes: the recorded pixels
    assert eye_band > 1.0  # drawn shut: the eyes rendered


def test_replayed_frames_reuse_their_drawings_features_and_render_the_same(trained):
    from talkinghead.drive import build_drive
    from talkinghead.engines.modeldir import load_engine

    eng = load_engine(trained["model"], "cpu")
    d = build_drive(eng, text="Papa bought a map.", pose="train")
    first = np.stack(list(eng.render(d, batch_size=8)))
    kept = len(eng.upper)
    assert kept == len({(int(j), e.tobytes()) for j, e in zip(d.pose_index, d.eye.astype(np.float32))})
    calls = []
    eng.comp.upper_drawing = lambda *a: calls.append(a)  # every drawing's features are kept: none is drawn
    again = np.stack(list(eng.render(d, batch_size=5)))  # other batches: features from other batch mates
    assert not calls and len(eng.upper) == kept
    assert np.abs(again.astype(int) - first).max() <= 2

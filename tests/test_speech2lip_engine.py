"""The speech2lip engine end to end on the synthetic speaker: train → say → evaluate, mouth behaviour, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from talkinghead.cli import main
from talkinghead.io.video import probe

TINY = ["expr_members=1", "expr_hidden=64", "field_hidden=32", "grid_levels=8", "blend_base=8", "sync_batch=16",
        "patch=32", "val_frames=4", "checkpoint_minutes=100", "expression_fraction=0.25", "sync_fraction=0.05",
        "lips_fraction=0.45", "gan_start=100000"]
STEPS = 1600


@pytest.fixture(scope="module")
def trained(tmp_path_factory, speaker_subject):
    from talkinghead.train.pipeline import train

    tmp = tmp_path_factory.mktemp("speech2lip")
    model = train(speaker_subject, "speech2lip", tmp / "model", steps=STEPS, device="cpu", overrides=TINY)
    return {"tmp": tmp, "subject": speaker_subject, "model": model}


def test_train_writes_a_model_and_every_phase_learns(trained):
    model = trained["model"]
    meta = json.loads((model / "model.json").read_text())
    assert meta["engine"] == "speech2lip" and meta["status"] == "trained"
    log = (model / "train_log.csv").read_text()
    for key in ("expression_aperture_r", "sync_top1", "lips_psnr_mouth", "blend_psnr"):
        assert key in log.splitlines()[0], key
    rows = [dict(zip(log.splitlines()[0].split(","), r.split(","))) for r in log.splitlines()[1:]]
    lips = [float(r["l1"]) for r in rows if r["phase"] == "lips" and r.get("l1")]
    assert lips[-1] < 0.7 * lips[0], lips
    final = {r["phase"]: r for r in rows if r.get(f"{r['phase']}_psnr") or r.get("expression_aperture_r")}
    assert float(final["expression"]["expression_aperture_r"]) > 0.7  # the synthetic mouth follows its phones
    # the Blend-Net (held-out frames, predicted codes) does not lose what the lip model (tracked codes) had
    assert float(final["blend"]["blend_psnr"]) > max(22.0, float(final["lips"]["lips_psnr"]) - 1.0)
    assert list((model / "previews").glob("blend_*.png"))


def test_mouth_opens_on_vowels_and_stays_shut_in_silence_while_the_head_moves(trained, tmp_path):
    from talkinghead.audio.tts import synthesize
    from talkinghead.audio.wav import write_wav
    from talkinghead.evaluate.analyze import analyze_video

    tts = synthesize("Papa. Ah. Bob. Ah.", rate=120).resampled(16000)
    pad = np.zeros(int(1.6 * 16000), np.float32)
    write_wav(tmp_path / "drive.wav", np.concatenate([pad, tts.audio, pad]))
    out = tmp_path / "drive.mp4"
    assert main(["say", str(trained["model"]), "--audio", str(tmp_path / "drive.wav"), "-o", str(out)]) == 0
    info = probe(out)
    assert info.has_audio and (info.width, info.height) == (256, 256)
    ap = analyze_video(out).aperture
    t = (np.arange(len(ap)) + 0.5) / 25
    silent = (t < 1.4) | (t > 1.6 + tts.duration + 0.2)
    vowel = np.zeros(len(ap), bool)
    for p in tts.phonemes:
        if p.viseme == 10:  # aa
            vowel |= (t >= p.start + 1.6) & (t < p.end + 1.6)
    assert np.isfinite(ap).mean() > 0.9
    sil, vow = np.nanmedian(ap[silent]), np.nanmax(ap[vowel])
    closed = np.percentile(np.load(trained["subject"] / "tracks.npz")["aperture"], 30)
    assert vow > sil + 0.04, (sil, vow)
    assert sil < closed + 0.03, (sil, closed)
    assert len(ap) == math.ceil((len(tts.audio) + 2 * len(pad)) / 16000 * 25)


def test_evaluate_reports_what_was_generated_and_what_copied(trained, tmp_path):
    assert main(["evaluate", str(trained["model"]), "-o", str(tmp_path / "r")]) == 0
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert 0.5 < m["copied_fraction"] < 0.99  # only the lower face is generated
    assert m["psnr_generated"] is not None and m["psnr_generated"] < m["psnr"]  # the copied pixels flatter PSNR
    html = (tmp_path / "r" / "report.html").read_text()
    assert "generated pixels (magenta)" in html and "mouth x" in html


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    return code, err[0] if err else ""


def test_bad_inputs(trained, tmp_path, capsys):
    from talkinghead.audio.wav import write_wav

    model = trained["model"]
    write_wav(tmp_path / "silent.wav", np.zeros(16000, np.float32))
    code, err = run(capsys, "say", model, "--audio", tmp_path / "silent.wav", "-o", tmp_path / "o.mp4")
    assert code == 2 and "silent" in err
    code, err = run(capsys, "say", model, "--text", "hi", "-o", tmp_path / "o.mp4", "--background", tmp_path / "x.png")
    assert code == 2 and "speech2lip engine cannot swap the background" in err
    code, err = run(capsys, "train", trained["subject"], "--engine", "viseme", "-o", model, "--steps", "1")
    assert code == 2 and "holds a 'speech2lip' model" in err
    other = tmp_path / "other"
    other.mkdir()
    meta = json.loads((trained["subject"] / "subject.json").read_text())
    (other / "subject.json").write_text(json.dumps({**meta, "key": "different"}))
    code, err = run(capsys, "say", model, "--text", "hi", "-o", tmp_path / "o.mp4", "--subject", other)
    assert code == 2 and "not the one this model was trained on" in err
    code, err = run(capsys, "train", trained["subject"], "--engine", "speech2lip", "-o", tmp_path / "bad", "--steps",
                    "1", "--set", "encoding=fourier")
    assert code == 2 and "encoding" in err and not (tmp_path / "bad").exists()
    assert not (tmp_path / "o.mp4").exists()

"""Cross-driven ``talkinghead evaluate --video``: video analysis, lag, viseme consistency, CLI.

Test videos come from the synthetic speaker (no download): its own clip, the
same frames re-muxed with the speech shifted by ±200 ms, a re-render with the
mouth frozen shut (head motion, blinks and speech kept) and a silent copy
with a few faceless frames.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from talkinghead.audio.visemes import Segment
from talkinghead.audio.wav import load_audio, write_wav
from talkinghead.cli import main
from talkinghead.evaluate import METRIC_KEYS
from talkinghead.evaluate.analyze import analyze_video
from talkinghead.evaluate.cross import (CLOSED_MAX, STILL_RANGE, cross_thresholds,
                                        cross_viseme_consistency, evaluate_video, format_metrics)
from talkinghead.io.video import VideoWriter, iter_frames

SIZE, FPS, SECONDS, SR = 256, 25, 6.0, 16000
SHIFT_S = 0.2
SELF_DRIVEN = ["psnr", "psnr_mouth", "ssim", "lmd", "aperture_r", "blink_f1", "flicker",
               "fps", "rtf", "peak_ram_mb"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """{'talk', 'frozen'} synthetic videos (same seed: same speech and head motion)."""
    import talkinghead.synth.speaker as speaker

    d = tmp_path_factory.mktemp("cross")
    talk = speaker.synthesize_speaker(d / "talk.mp4", seconds=SECONDS, seed=0, size=SIZE, fps=FPS)
    with pytest.MonkeyPatch.context() as mp:
        # Every mouth parameter 0 = closed lips at rest, in every frame.
        mp.setattr(speaker, "mouth_params", lambda segs, n, fps, cfg=None: np.zeros((n, 4), np.float32))
        frozen = speaker.synthesize_speaker(d / "frozen.mp4", seconds=SECONDS, seed=0, size=SIZE, fps=FPS)
    return {"dir": d, "talk": talk, "frozen": frozen}


def _remux(src, dst, audio=None, blank=()):
    with VideoWriter(dst, FPS, (SIZE, SIZE), audio=audio) as w:
        for i, f in enumerate(iter_frames(src, FPS)):
            w.write(np.full_like(f, 128) if i in blank else f)
    return dst


@pytest.fixture(scope="module")
def talk_cli(clips, tmp_path_factory):
    """The CLI run on the synthetic speaker's own clip (default report dir)."""
    code = main(["evaluate", "--video", str(clips["talk"])])
    report = clips["talk"].with_name("talk_report")
    return code, report, json.loads((report / "metrics.json").read_text())


def test_cli_writes_metrics_and_self_contained_report(talk_cli, capsys):
    code, report, m = talk_cli
    assert code == 0
    assert list(m) == METRIC_KEYS
    for k in SELF_DRIVEN:
        assert m[k] is None, k
    assert set(m["viseme_consistency"]) == {"bilabial_closed", "vowel_open", "silence_rest", "mean"}
    assert isinstance(m["av_lag_ms"], float) and 0.0 < m["cpbd"]["rendered"] <= 1.0 and m["cpbd"]["real"] is None
    html = (report / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4  # aperture, visemes, sample frames
    assert "Sample frames" in html and "Cross-driven" in html
    for ext in ("http://", "https://", "<script", "src=\"/", "src=\"file"):
        assert ext not in html


def test_own_clip_is_in_sync_and_consistent(talk_cli):
    _, _, m = talk_cli
    assert abs(m["av_lag_ms"]) <= 40.0
    assert m["viseme_consistency"]["mean"] >= 0.85


@pytest.mark.parametrize("shift", [+1, -1], ids=["audio_delayed", "audio_advanced"])
def test_shifted_audio_gives_200ms_lag(clips, shift):
    audio = load_audio(clips["talk"])
    k = int(SHIFT_S * SR)
    if shift > 0:   # speech 200 ms late: the mouth leads, lag -200 (positive = mouth lags)
        moved = np.concatenate([np.zeros(k, np.float32), audio])[: len(audio)]
    else:           # speech 200 ms early: the mouth lags, lag +200
        moved = np.concatenate([audio[k:], np.zeros(k, np.float32)])
    path = _remux(clips["talk"], clips["dir"] / f"shift{shift:+d}.mp4", audio=moved)
    m = evaluate_video(path)
    assert m["av_lag_ms"] == pytest.approx(-shift * 200.0, abs=40.0)


def test_frozen_mouth_scores_low(clips, talk_cli):
    _, _, talk = talk_cli
    m = evaluate_video(clips["frozen"], report_dir=clips["dir"] / "frozen_report")
    vc = m["viseme_consistency"]
    assert vc["mean"] <= 0.34 and vc["mean"] < talk["viseme_consistency"]["mean"] - 0.4
    assert vc["vowel_open"] == 0.0 and vc["bilabial_closed"] == 0.0 and vc["silence_rest"] == 1.0
    assert m["av_lag_ms"] is None  # nothing moves: no lag to measure
    assert "does not move" in (clips["dir"] / "frozen_report" / "report.html").read_text()


def test_analyze_video_and_external_audio(clips, tmp_path, capsys):
    blank = set(range(10, 15))
    silent = _remux(clips["talk"], tmp_path / "silent.mp4", blank=blank)
    seen = []
    a = analyze_video(silent, keep=[0, 12, 40], on_frame=lambda i, rgb, lm: seen.append((i, lm is None)))
    n = int(SECONDS * FPS)
    assert a.n_frames == n and a.fps == FPS and a.size == (SIZE, SIZE) and a.audio is None
    assert a.landmarks.shape == (n, 478, 3) and a.eye.shape == (n, 2) and a.lip_box.shape == (n, 4)
    assert np.flatnonzero(~a.found).tolist() == sorted(blank)
    assert np.isnan(a.landmarks[~a.found]).all() and np.isfinite(a.landmarks[a.found]).all()
    assert np.isnan(a.aperture[~a.found]).all() and np.isfinite(a.aperture[a.found]).all()
    assert a.pose_free and sorted(a.samples) == [0, 12, 40] and a.samples[0].shape == (SIZE, SIZE, 3)
    assert [i for i, _ in seen] == list(range(n)) and [i for i, miss in seen if miss] == sorted(blank)
    # Tracked aperture follows the synthetic truth.
    truth = np.load(clips["talk"].with_name("talk.truth.npz"))["aperture"]
    assert np.corrcoef(a.aperture[a.found], truth[a.found])[0, 1] > 0.9

    # No audio track: an error, unless the driving speech is given.
    capsys.readouterr()
    assert main(["evaluate", "--video", str(silent)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--audio" in err[0]
    wav = tmp_path / "speech.wav"
    write_wav(wav, load_audio(clips["talk"]))
    assert main(["evaluate", "--video", str(silent), "--audio", str(wav), "-o", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert "viseme_consistency.mean" in out and "av_lag_ms" in out
    m = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert abs(m["av_lag_ms"]) <= 40.0 and m["viseme_consistency"]["mean"] >= 0.8


@pytest.mark.parametrize("argv", [
    ["evaluate", "--video", "does/not/exist.mp4"],
    ["evaluate", "model_dir", "--video", "x.mp4"],
    ["evaluate"],
    ["evaluate", "some_model_dir"],
], ids=["missing_video", "both", "neither", "self_driven_missing_model"])
def test_cli_errors(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
    assert not any(tmp_path.iterdir())  # nothing written


def test_cross_thresholds_still_and_moving():
    rng = np.random.default_rng(0)
    still = 0.3 + 0.002 * rng.standard_normal(200)  # frozen half-open
    t = cross_thresholds(still)
    assert not t.moving and t.spread < STILL_RANGE and t.closed == CLOSED_MAX and t.open == np.inf
    moving = np.abs(0.15 * np.sin(np.linspace(0, 20, 200)))
    t = cross_thresholds(moving)
    assert t.moving and 0 < t.closed < t.open < 0.15
    wobbly = 0.2 + 0.05 * np.sin(np.linspace(0, 20, 200))  # moves, never shuts
    assert cross_thresholds(wobbly).closed == CLOSED_MAX


def test_still_mouth_rule():
    segs = [Segment("SIL", 0.0, 0.5, 0), Segment("P", 0.5, 0.6, 1), Segment("AA", 0.6, 0.9, 10),
            Segment("SIL", 0.9, 2.0, 0)]
    closed = np.full(50, 0.01)
    t = cross_thresholds(closed)
    assert cross_viseme_consistency(segs, closed, FPS, t) == {
        "bilabial_closed": 0.0, "vowel_open": 0.0, "silence_rest": 1.0, "mean": pytest.approx(1 / 3)}
    half_open = np.full(50, 0.2)
    assert cross_viseme_consistency(segs, half_open, FPS, cross_thresholds(half_open))["mean"] == 0.0
    # A mouth that opens on the vowel and shuts elsewhere passes everything.
    ap = np.full(50, 0.01)
    ap[15:23] = 0.25
    assert cross_viseme_consistency(segs, ap, FPS, cross_thresholds(ap))["mean"] == 1.0


def test_format_metrics():
    m = {k: None for k in METRIC_KEYS}
    m.update(av_lag_ms=12.345, viseme_consistency={"mean": 0.5, "vowel_open": None})
    text = format_metrics(m)
    assert "av_lag_ms" in text and "12.35" in text and "viseme_consistency.mean" in text
    assert len(text.splitlines()) == len(METRIC_KEYS) + 1

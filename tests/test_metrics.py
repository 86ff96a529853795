"""Tests for talkinghead.evaluate: image metrics, time-series metrics, reports."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from talkinghead.errors import InputError
from talkinghead.evaluate import (METRIC_KEYS, FlickerAccumulator, aperture_thresholds,
                                  audio_envelope, av_lag_ms, blink_f1, cpbd, crop_box,
                                  detect_blinks, flicker, pearson, psnr, ssim,
                                  viseme_consistency, write_metrics, write_report)


@dataclass
class Seg:
    start: float
    end: float
    viseme: int


def ssim_loop_reference(a, b, L=255.0, sigma=1.5, win=11, K1=0.01, K2=0.03):
    """Straightforward SSIM: explicit loop over every fully-inside window."""
    x = np.arange(win) - (win - 1) / 2
    g = np.exp(-x**2 / (2 * sigma**2))
    w = np.outer(g, g)
    w /= w.sum()
    c1, c2 = (K1 * L) ** 2, (K2 * L) ** 2
    vals = []
    for i in range(a.shape[0] - win + 1):
        for j in range(a.shape[1] - win + 1):
            pa, pb = a[i:i + win, j:j + win], b[i:i + win, j:j + win]
            ma, mb = np.sum(w * pa), np.sum(w * pb)
            va, vb = np.sum(w * (pa - ma) ** 2), np.sum(w * (pb - mb) ** 2)
            cov = np.sum(w * (pa - ma) * (pb - mb))
            vals.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


# ---------------------------------------------------------------- image metrics

def test_identical_images_give_cap_and_one():
    img = np.random.default_rng(0).integers(0, 256, (40, 50, 3)).astype(np.uint8)
    assert psnr(img, img) == 100.0
    assert psnr(img, img, cap=60.0) == 60.0
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)


def test_psnr_closed_form_constant_offset():
    a = np.full((32, 32), 100.0)
    assert psnr(a, a + 5) == pytest.approx(20 * math.log10(255 / 5), abs=1e-9)
    assert psnr(a / 255, (a + 5) / 255, max_val=1.0) == pytest.approx(20 * math.log10(255 / 5), abs=1e-9)
    with pytest.raises(InputError):
        psnr(a, np.zeros((31, 32)))


def test_ssim_matches_loop_reference():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 255, (24, 24))
    b = np.clip(a + rng.normal(0, 40, a.shape), 0, 255)
    assert ssim(a, b) == pytest.approx(ssim_loop_reference(a, b), abs=1e-6)
    c = rng.uniform(0, 255, (24, 24))  # unrelated image: low SSIM, still the same formula
    assert ssim(a, c) == pytest.approx(ssim_loop_reference(a, c), abs=1e-6)
    assert ssim(a, c) < 0.3 < ssim(a, b) < 1.0
    rgb_a, rgb_b = np.stack([a, c, a], -1), np.stack([b, c, c], -1)
    expect = np.mean([ssim_loop_reference(a, b), 1.0, ssim_loop_reference(a, c)])
    assert ssim(rgb_a, rgb_b) == pytest.approx(expect, abs=1e-6)
    with pytest.raises(InputError):
        ssim(a[:10, :10], b[:10, :10])


def test_cpbd_sharp_beats_blurred():
    from skimage import data, filters

    cam = data.camera().astype(np.float64)
    blurred = filters.gaussian(cam, sigma=2, preserve_range=True)
    sharp_v, blur_v = cpbd(cam), cpbd(blurred)
    assert 0.0 <= blur_v < sharp_v <= 1.0
    assert sharp_v > 0.4 and blur_v < 0.2
    assert cpbd(np.full((128, 128), 90.0)) == 0.0  # no edges at all


def test_crop_box_clips():
    img = np.arange(100).reshape(10, 10)
    assert crop_box(img, (2, 3, 5, 7)).shape == (4, 3)
    assert crop_box(img, (-5, -5, 3.2, 2)).shape == (2, 4)
    assert crop_box(img, (8, 8, 50, 50)).shape == (2, 2)
    with pytest.raises(InputError):
        crop_box(img, (20, 20, 30, 30))


def test_flicker_outside_mouth_only():
    rng = np.random.default_rng(2)
    base = rng.uniform(0, 255, (16, 16))
    mouth = np.zeros((16, 16), bool)
    mouth[10:14, 4:12] = True
    real, rend = [], []
    for t in range(6):
        f = base.copy()
        f[mouth] = rng.uniform(0, 255, mouth.sum())  # mouth moves in both
        real.append(f.copy())
        g = f.copy()
        g[0, 0] += 10.0 if t % 2 else 0.0  # rendered background pixel flickers by 10
        rend.append(g)
    expect = 100.0 / (16 * 16 - mouth.sum())
    assert flicker(iter(rend), iter(real), mouth) == pytest.approx(expect)
    assert flicker(rend, real, np.stack([mouth] * 6)) == pytest.approx(expect)
    assert flicker(real, real, mouth) == 0.0
    assert flicker(rend, real) == pytest.approx(100.0 / 256)  # same mouth motion cancels out
    assert flicker(rend[:1], real[:1]) is None
    acc = FlickerAccumulator()
    assert acc.value is None
    acc.update(np.zeros((4, 4)), np.full((4, 4), 2.0), None)
    acc.update(np.zeros((4, 4)), np.zeros((4, 4)), None)
    assert acc.value == pytest.approx(2.0)


# ---------------------------------------------------------------- time series

def test_pearson():
    x = np.arange(10.0)
    assert pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert pearson(x, -x) == pytest.approx(-1.0)
    assert pearson(x, np.full(10, 3.0)) is None
    assert pearson([1.0, 2.0], [2.0, 4.0]) is None
    y = 2 * x + 1
    y[4] = np.nan  # untracked frame is skipped
    assert pearson(x, y) == pytest.approx(1.0)


def _bursts(n, rng, count=40):
    t = np.arange(n)
    sig = np.zeros(n)
    for _ in range(count):
        c, w = rng.integers(0, n), rng.uniform(2, 8)
        sig += rng.uniform(0.5, 1.5) * np.exp(-0.5 * ((t - c) / w) ** 2)
    return sig


def test_av_lag_ms_sign_and_size():
    rng = np.random.default_rng(3)
    env = _bursts(500, rng)
    delayed = np.concatenate([np.zeros(5), env[:-5]])  # mouth 5 frames (200 ms) late
    assert av_lag_ms(env, delayed, 25) == pytest.approx(200, abs=40)
    assert abs(av_lag_ms(env, env, 25)) < 20
    early = np.concatenate([env[3:], np.zeros(3)])  # mouth 120 ms early
    assert av_lag_ms(env, early, 25) == pytest.approx(-120, abs=40)
    # sub-frame: a 2.5-frame delay lands between the integer lags
    half = np.interp(np.arange(500) - 2.5, np.arange(500), env)
    assert av_lag_ms(env, half, 25) == pytest.approx(100, abs=15)
    assert av_lag_ms(env, np.ones(500), 25) is None


def test_audio_envelope_tracks_loudness():
    sr, fps, n = 16000, 25, 50
    audio = np.zeros(sr * 2)
    audio[sr // 2:sr] = 0.5 * np.sin(np.arange(sr // 2) * 0.3)  # loud 0.5-1.0 s
    env = audio_envelope(audio[: int(1.5 * sr)], sr, fps, n)  # shorter audio is padded
    assert env.shape == (n,)
    assert env[12:25].min() > env[:12].max() + 40
    assert env.min() == pytest.approx(env.max() - 60, abs=1e-6)  # 60 dB floor


def test_detect_blinks_and_f1():
    rng = np.random.default_rng(4)
    fps, n = 25, 250
    eye = 0.3 + rng.normal(0, 0.01, n)
    truth = [(30, 34), (110, 115), (200, 203)]
    for s, e in truth:
        eye[s:e] = 0.08 + rng.normal(0, 0.01, e - s)
    eye[150:190] = 0.05  # 1.6 s closed: not a blink
    found = detect_blinks(eye, fps)
    assert len(found) == 3
    assert blink_f1(found, truth) == 1.0
    assert blink_f1(found[:2], truth) == pytest.approx(0.8)
    assert blink_f1([(40, 44)], [(30, 34)], tol_frames=3) == 0.0
    assert blink_f1([(36, 38)], [(30, 34)], tol_frames=3) == 1.0
    assert blink_f1([], []) == 1.0 and blink_f1([], truth) == 0.0


def _speech():
    segs = [Seg(0.0, 0.6, 0), Seg(0.6, 0.72, 1), Seg(0.72, 0.96, 10), Seg(0.96, 1.08, 1),
            Seg(1.08, 1.4, 13), Seg(1.4, 2.0, 0), Seg(2.0, 2.12, 1), Seg(2.12, 2.4, 11),
            Seg(2.4, 2.6, 5), Seg(2.6, 3.2, 0)]
    return segs


def _aperture_following(segs, fps, n):
    ap = np.full(n, 0.05)
    for s in segs:
        f0, f1 = int(np.floor(s.start * fps)), int(np.ceil(s.end * fps))
        ap[f0:f1] = {0: 0.05, 1: 0.0}.get(s.viseme, 1.0)
    return ap + np.random.default_rng(5).normal(0, 0.01, n)


def test_viseme_consistency():
    fps, n = 25, 80
    segs = _speech()
    real = _aperture_following(segs, fps, n)
    closed_thr, open_thr = aperture_thresholds(real)
    assert closed_thr < open_thr
    good = viseme_consistency(segs, real, fps, closed_thr, open_thr)
    assert set(good) == {"bilabial_closed", "vowel_open", "silence_rest", "mean"}
    assert good["mean"] >= 0.95
    frozen = np.full(n, 0.5)
    bad = viseme_consistency(segs, frozen, fps, closed_thr, open_thr)
    assert bad["mean"] < 0.6 and bad["bilabial_closed"] == 0.0 and bad["silence_rest"] == 0.0
    none = viseme_consistency([Seg(0, 0.2, 5)], real, fps, closed_thr, open_thr)
    assert none == {"bilabial_closed": None, "vowel_open": None, "silence_rest": None, "mean": None}
    with pytest.raises(InputError):
        aperture_thresholds([0.1, np.nan])


# ---------------------------------------------------------------- reports

def test_write_metrics(tmp_path):
    path = write_metrics(tmp_path / "rep", {"psnr": np.float64(31.5), "ssim": float("nan"),
                                            "cpbd": {"rendered": 0.4, "real": 0.5}})
    data = json.loads(path.read_text())
    assert list(data) == METRIC_KEYS
    assert data["psnr"] == 31.5 and data["ssim"] is None and data["lmd"] is None
    assert data["cpbd"] == {"rendered": 0.4, "real": 0.5}
    with pytest.raises(ValueError):
        write_metrics(tmp_path / "rep", {"lpips": 0.1})
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == ["metrics.json"]


def test_write_report_self_contained(tmp_path):
    rng = np.random.default_rng(6)
    segs = _speech()
    ap = _aperture_following(segs, 25, 80)
    real = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    rend = np.clip(real.astype(int) + 8, 0, 255).astype(np.uint8)
    metrics = {"psnr": 30.0, "ssim": None, "viseme_consistency": {"bilabial_closed": 1.0, "mean": 1.0}}
    path = write_report(tmp_path, metrics, aperture_rendered=ap * 0.9, aperture_real=ap, fps=25,
                        frames=[(real, rend), (real[..., 0], rend[..., 0])], segments=segs, title="<demo>")
    text = path.read_text()
    assert "<table" in text and text.count("data:image/png;base64,") == 4
    assert "http://" not in text and "https://" not in text
    assert "&lt;demo&gt;" in text and "—" in text and "LPIPS" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    minimal = write_report(tmp_path / "m", {}).read_text()
    assert "<table" in minimal and "data:image/png" not in minimal
    with pytest.raises(ValueError):
        write_report(tmp_path / "x", {"bogus": 1})


def test_validate_frames_closed_form():
    from talkinghead.metrics import validate_frames

    real = np.zeros((2, 20, 20, 3), np.uint8)
    pred = real.copy()
    pred[:, 5:10, 5:10] = 10  # all the error inside the box
    box = np.array([[5, 5, 10, 10], [5, 5, 10, 10]], float)
    v = validate_frames(pred, real, box)
    assert v["psnr_mouth"] == pytest.approx(10 * np.log10(255 ** 2 / 100))
    assert v["psnr"] == pytest.approx(10 * np.log10(255 ** 2 / (100 * 25 / 400)))


def test_seam_score_closed_forms():
    from talkinghead.metrics import SeamAccumulator, blend_border

    yy, xx = np.mgrid[:64, :64]
    real = np.repeat((128 + 40 * np.sin(xx / 5.0) * np.cos(yy / 7.0))[..., None], 3, -1)
    mask = ((xx - 32) ** 2 + (yy - 32) ** 2 < 15 ** 2).astype(np.float32)
    band = blend_border(mask, 2)
    assert band.any() and not band[32, 32] and not band[0, 0]
    assert blend_border(np.ones((8, 8))).sum() == 0
    same = SeamAccumulator()
    same.update(real, real, mask)
    assert same.value == pytest.approx(1.0)
    seam = real.copy()
    seam[mask > 0.5] += 30  # the generated disc 30 levels brighter: a hard edge on its border
    hard = SeamAccumulator()
    hard.update(seam, real, mask)
    assert hard.value > 1.5
    soft = SeamAccumulator()
    soft.update(np.full_like(real, 128.0), real, mask)  # flat: no edges at all
    assert soft.value == 0.0


def test_best_lag_r_finds_the_shift_and_std_ratio_the_scale():
    from talkinghead.evaluate.temporal import best_lag_r, std_ratio

    rng = np.random.default_rng(0)
    x = np.convolve(rng.normal(size=300), np.ones(5) / 5, "same")
    y = np.roll(x, 3) * 2.0  # y follows x by 3 frames, twice as large
    r, lag = best_lag_r(x, y, 5)
    assert lag == 3 and r > 0.99
    assert best_lag_r(x, y, 2)[0] < 0.9  # outside the window: only a weaker lag
    assert std_ratio(y, x) == pytest.approx(2.0, rel=1e-3) and std_ratio(x, np.zeros(5)) is None


def test_pauses_are_the_quiet_runs_of_at_least_a_third_of_a_second():
    from talkinghead.audio.vad import pauses

    speech = np.ones(100, bool)
    speech[10:15] = False  # 0.2 s: part of speech
    speech[40:50] = False  # 0.4 s: a pause
    p = pauses(speech, fps=25, min_s=0.3)
    assert p[40:50].all() and p.sum() == 10


def test_voice_activity_finds_speech_and_silence():
    from talkinghead.audio.tts import synthesize
    from talkinghead.audio.vad import speech_frames

    tts = synthesize("Papa bought a big map.").resampled(16000)
    pad = np.zeros(16000, np.float32)
    wav = np.concatenate([pad, tts.audio, pad])
    n = int(len(wav) / 16000 * 25)
    sp = speech_frames(wav, n, 25)
    assert not sp[:20].any() and not sp[-20:].any()  # the padding (1 s each side, a 0.2 s margin)
    inner = sp[25 + 3: 25 + int(tts.duration * 25) - 3]
    assert inner.mean() > 0.8

"""Tests for talkinghead.audio: mel, visemes, TTS, phone recognition, I/O, features."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from talkinghead.audio import (BILABIAL, SILENCE, VISEMES, Segment, arpabet_to_viseme,
                               compute_audio_features, espeak_to_viseme, features_for_wav,
                               frame_windows, load_audio, load_audio_features, log_mel,
                               mouth_openness_prior, recognize_phones, resample,
                               save_audio_features, segments_to_frames, synthesize,
                               viseme_windows, write_tts, write_wav)
from talkinghead.audio.mel import mel_frequencies
from talkinghead.errors import InputError

SENTENCE = "Peter bought a map of Bombay"
V = {name: i for i, name in enumerate(VISEMES)}


def tone(freq: float, seconds: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def tts16k():
    return synthesize(SENTENCE).resampled(16000)


# ---------------------------------------------------------------- mel

@pytest.mark.parametrize("n", [0, 1, 159, 160, 16000, 16001, 24321])
def test_log_mel_frame_count(n):
    m = log_mel(np.zeros(n, np.float32) if n < 16000 else tone(440, n / 16000))
    assert m.shape == (1 + n // 160, 80)
    assert m.dtype == np.float32 and np.isfinite(m).all()


def test_log_mel_tone_peak_bin():
    m = log_mel(tone(1000, 1.0))
    centres = mel_frequencies(80, 55, 7600)
    peak_bins = m[5:-5].argmax(axis=1)
    assert (peak_bins == np.argmin(np.abs(centres - 1000))).all()
    assert m[50].max() - np.median(m[50]) > 10  # clearly above the rest (natural log)


def test_frame_windows_centring_and_edges():
    feat = np.arange(100, dtype=np.float32)[:, None]  # row index as value, 100 rows/s
    w = frame_windows(feat, 100, n_frames=25, fps=25, width=16)
    assert w.shape == (25, 16, 1)
    assert w[10, 8, 0] == 40  # frame 10 at 0.4 s -> row 40 sits at position width//2
    assert w[10, 0, 0] == 32 and w[10, -1, 0] == 47
    assert (w[0, :8, 0] == 0).all()  # edge padded at the start
    assert w[24, -1, 0] == 99  # and at the end


# ---------------------------------------------------------------- visemes

def test_viseme_mappings():
    assert len(VISEMES) == 15 and SILENCE == 0 and VISEMES[BILABIAL] == "PP"
    for p in ("P", "B", "M", "m", "b1"):
        assert arpabet_to_viseme(p) == BILABIAL
    assert arpabet_to_viseme("AA1") == V["aa"] and arpabet_to_viseme("UW") == V["ou"]
    for filler in ("+NSN+", "+SPN+", "+BREATH+", "SIL", ""):
        assert arpabet_to_viseme(filler) == SILENCE
    assert espeak_to_viseme("p") == espeak_to_viseme("'m") == BILABIAL
    assert espeak_to_viseme("tS") == espeak_to_viseme("S") == V["CH"]
    assert espeak_to_viseme("'aI") == V["aa"] and espeak_to_viseme("i:") == V["ih"]
    assert espeak_to_viseme("T") == V["TH"] and espeak_to_viseme("t") == V["DD"]
    for pause in ("_", "_:", "_!"):
        assert espeak_to_viseme(pause) == SILENCE
    assert espeak_to_viseme("oU#9") == V["oh"]  # unknown variant -> leading-char rule
    assert espeak_to_viseme("@@@@") == V["aa"] and espeak_to_viseme("\u00e6x") == SILENCE
    assert mouth_openness_prior(V["aa"]) == 1.0 and mouth_openness_prior(BILABIAL) == 0.0
    assert mouth_openness_prior(V["E"]) > mouth_openness_prior(V["SS"])


def test_segments_to_frames_soft_and_normalised():
    fps = 25.0
    segs = [Segment("p", 3 / fps, 6 / fps, BILABIAL),  # covers frames 3..5 exactly
            Segment("a", 7.5 / fps, 8.0 / fps, V["aa"])]  # half of frame 7
    v = segments_to_frames(segs, n_frames=10, fps=fps)
    assert v.shape == (10, 15) and v.dtype == np.float32
    np.testing.assert_allclose(v.sum(axis=1), 1.0, atol=1e-6)
    assert (v[3:6].argmax(axis=1) == BILABIAL).all() and np.allclose(v[3:6, BILABIAL], 1)
    assert v[2, BILABIAL] == 0 and v[6, BILABIAL] == 0
    np.testing.assert_allclose(v[7, [SILENCE, V["aa"]]], [0.5, 0.5], atol=1e-6)
    assert np.allclose(v[0, SILENCE], 1.0)


def test_viseme_windows_centring():
    v = np.eye(15, dtype=np.float32)[np.arange(10) % 15]  # frame i has class i
    w = viseme_windows(v, width=6)
    assert w.shape == (10, 6, 15)
    assert list(w[5].argmax(axis=1)) == [2, 3, 4, 5, 6, 7]  # offsets -3..+2
    assert list(w[0].argmax(axis=1)) == [0, 0, 0, 0, 1, 2]
    assert list(w[9].argmax(axis=1)) == [6, 7, 8, 9, 9, 9]


# ---------------------------------------------------------------- TTS

def test_tts_sentence():
    raw = synthesize(SENTENCE)
    assert raw.sample_rate > 8000 and 1.5 < raw.duration < 4.0
    assert raw.audio.dtype == np.float32 and 0.05 < np.abs(raw.audio).max() <= 1.0
    ph = raw.phonemes
    assert ph[0].start == 0.0 and ph[-1].end == pytest.approx(raw.duration)
    for a, b in zip(ph, ph[1:]):
        assert a.end == pytest.approx(b.start) and a.start < a.end
    assert sum(p.viseme == BILABIAL for p in ph) >= 4  # p, b, m, p, b, m, b
    assert {p.viseme for p in ph} & {V["aa"], V["oh"]}
    res16 = raw.resampled(16000)
    assert res16.sample_rate == 16000 and res16.phonemes == raw.phonemes
    assert len(res16.audio) == pytest.approx(raw.duration * 16000, abs=2)


@pytest.mark.parametrize("text", ["", "   ", "...!?"])
def test_tts_rejects_text_without_speech(text):
    with pytest.raises(InputError):
        synthesize(text)


def test_write_tts_files(tmp_path):
    out = tmp_path / "hello.wav"
    res = write_tts("Hello there, Bob.", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hello.phonemes.json", "hello.wav"]
    audio = load_audio(out)
    assert len(audio) == pytest.approx(len(res.audio), abs=2)
    items = json.loads((tmp_path / "hello.phonemes.json").read_text())
    assert set(items[0]) == {"label", "start", "end", "viseme", "viseme_name"}
    assert any(it["viseme_name"] == "PP" for it in items)  # the b of Bob
    assert items[-1]["end"] == pytest.approx(len(audio) / 16000, abs=0.01)


# ---------------------------------------------------------------- phones

def test_pocketsphinx_finds_bilabials_and_vowels(tts16k):
    segs = recognize_phones(tts16k.audio, 16000)
    labels = [s.label for s in segs]
    assert sum(lab in ("P", "B", "M") for lab in labels) >= 2, labels
    assert any(arpabet_to_viseme(lab) in (V["aa"], V["E"], V["ih"], V["oh"], V["ou"])
               for lab in labels), labels
    assert all(a.end <= b.start + 1e-6 for a, b in zip(segs, segs[1:]))
    assert segs == recognize_phones(tts16k.audio, 16000)  # deterministic


def test_pocketsphinx_silence():
    segs = recognize_phones(np.zeros(16000 * 2, np.float32))
    assert len(segs) <= 1 and all(s.viseme == SILENCE for s in segs)
    assert recognize_phones(np.zeros(10, np.float32)) == []


# ---------------------------------------------------------------- I/O

def test_load_audio_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    txt = tmp_path / "notes.txt"
    txt.write_text("this is not audio\n" * 20)
    with pytest.raises(InputError):
        load_audio(txt)


def test_wav_roundtrip_resamples(tmp_path):
    x = tone(440, 0.5, sr=22050)
    write_wav(tmp_path / "t.wav", x, 22050)
    assert [p.name for p in tmp_path.iterdir()] == ["t.wav"]
    y = load_audio(tmp_path / "t.wav", sr=16000)
    assert y.dtype == np.float32 and len(y) == pytest.approx(8000, abs=40)
    z = resample(x, 22050, 16000)
    n = min(len(y), len(z)) - 200
    assert np.abs(y[200:n] - z[200:n]).max() < 0.02


# ---------------------------------------------------------------- features

def test_features_from_tts_json_and_roundtrip(tmp_path):
    wav = tmp_path / "say.wav"
    res = write_tts(SENTENCE, wav)
    feats = features_for_wav(wav, fps=25)  # picks up say.phonemes.json
    n = int(np.ceil(len(res.audio) / 16000 * 25 - 1e-6))
    assert feats["mel_windows"].shape == (n, 16, 80) and feats["mel_windows"].dtype == np.float16
    assert feats["visemes"].shape == (n, 15)
    assert list(feats["phone_labels"]) == [p.label for p in res.phonemes]  # exact TTS timings
    assert float(feats["mel_rate"]) == 100 and float(feats["fps"]) == 25
    save_audio_features(tmp_path / "f.npz", feats)
    back = load_audio_features(tmp_path / "f.npz")
    assert set(back) == set(feats)
    np.testing.assert_array_equal(back["visemes"], feats["visemes"])
    assert list(back["phone_labels"]) == list(feats["phone_labels"])


def test_compute_features_recognises_phones_by_default(tts16k):
    feats = compute_audio_features(tts16k.audio, 16000, n_frames=30, fps=30)
    assert feats["mel"].shape == (1 + len(tts16k.audio) // 160, 80)
    assert feats["visemes"].shape == (30, 15) and len(feats["phone_labels"]) > 5
    assert (feats["phone_visemes"] == BILABIAL).sum() >= 2


# ---------------------------------------------------------------- streaming features

@pytest.mark.parametrize("fps,chunk", [(25.0, 160), (25.0, 1601), (30.0, 4000), (29.97, 10 ** 6)])
def test_feature_stream_equals_whole_file_features(tts16k, fps, chunk):
    """Pushed in chunks, the stream gives the whole recording's log-mel windows (up to float rounding: at
    most one float16 step in a few elements) and, with known phone timings, exactly its visemes."""
    import math

    from talkinghead.audio.stream import stream_features

    wav = tts16k.audio.astype(np.float32)
    wav = np.concatenate([wav, wav[:16000 * 3]])  # > 4 s: the stream forgets old audio as it goes
    n = math.ceil(len(wav) / 16000 * fps)
    ref = compute_audio_features(wav, 16000, n, fps, phones=tts16k.phonemes)
    got = stream_features(wav, fps, chunk, phones=tts16k.phonemes)
    assert got["mel_windows"].shape == (n, 16, 80)
    diff = np.abs(got["mel_windows"] - ref["mel_windows"].astype(np.float32))
    assert diff.max() <= 1 / 64 and (diff > 0).mean() < 1e-3, (diff.max(), (diff > 0).mean())
    assert np.array_equal(got["visemes"], ref["visemes"])


def test_feature_stream_delay_is_bounded(tts16k):
    """A frame comes out at most ~90 ms (log-mel window + FFT frame) after its audio, or commit_s
    + a frame later with phones recognised live; live phones follow the file path's mouth opening."""
    from talkinghead.audio.stream import FeatureStream

    wav, fps, step = tts16k.audio.astype(np.float32), 25.0, 160
    for kw, delay in (({"phones": tts16k.phonemes}, 0.1), ({"recognise": True, "commit_s": 0.2}, 0.2 + 0.05)):
        fs, have, visemes = FeatureStream(fps, **kw), 0, []
        for a in range(0, len(wav), step):
            out = fs.push(wav[a:a + step])
            have += len(out["mel_windows"])
            visemes.append(out["visemes"])
            t = (a + step) / 16000
            assert have >= math.floor((t - delay) * fps) - 1, (kw.keys(), t, have)
        visemes.append(fs.end()["visemes"])
    live = np.concatenate(visemes)
    batch = compute_audio_features(wav, 16000, len(live), fps)["visemes"]
    prior = np.array([mouth_openness_prior(i) for i in range(len(VISEMES))])
    assert np.corrcoef(live @ prior, batch @ prior)[0, 1] > 0.7


def test_mel_renormalisation_closed_forms():
    from talkinghead.audio.windows import local_mel_stats, mel_stats, renormalise

    rng = np.random.default_rng(0)
    mel = rng.normal(3.0, 2.0, (40, 16, 80)).astype(np.float32) * np.linspace(0.5, 2, 80, dtype=np.float32)
    mean, std = mel_stats(mel)
    np.testing.assert_allclose(mean, mel.reshape(-1, 80).mean(0), atol=1e-4)
    # a context as long as the utterance: every frame sees the utterance's statistics
    lm, ls = local_mel_stats(mel, 40)
    np.testing.assert_allclose(lm, np.broadcast_to(mean, lm.shape), atol=1e-4)
    np.testing.assert_allclose(ls, np.broadcast_to(std, ls.shape), rtol=1e-3)
    # a context of one frame: that frame's own statistics
    lm1, _ = local_mel_stats(mel, 1)
    np.testing.assert_allclose(lm1, mel.mean(1), atol=1e-4)
    # mapped to a target, the utterance has exactly the target's statistics; visemes untouched
    target = (np.full(80, -1.0, np.float32), np.full(80, 0.5, np.float32))
    win = np.concatenate([np.ones((40, 16, 15), np.float32), mel], -1)
    out = renormalise("both", win, (mean, std), target)
    m2, s2 = mel_stats(out[..., 15:])
    np.testing.assert_allclose(m2, target[0], atol=1e-4)
    np.testing.assert_allclose(s2, target[1], rtol=1e-3)
    np.testing.assert_array_equal(out[..., :15], win[..., :15])
    np.testing.assert_array_equal(renormalise("visemes", win[..., :15], (mean, std), target), win[..., :15])

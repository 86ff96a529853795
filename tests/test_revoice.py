"""Re-voicing (audio/revoice.py): the same speech at the same times, another vocal tract, pitch and channel."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from talkinghead.audio.revoice import (CODECS, VoiceParams, apply_voice, band_limit, change_voice, codec,
                                       reverberate, voice_variants)

SR = 16000
CLICKS = np.array([4000, 12000, 20500, 29000, 37000, 45333])


def click_train() -> np.ndarray:
    x = np.zeros(3 * SR, np.float32)
    x[CLICKS] = 0.9
    return x


def click_times_ms(y: np.ndarray) -> np.ndarray:
    """Where each click landed (the loudest sample within 50 ms of where it was), minus where it was, in ms."""
    return np.array([p - 800 + int(np.argmax(np.abs(y[p - 800:p + 800]))) - p for p in CLICKS]) / SR * 1000


def vowel(f0: float = 120.0, formants=((700, 80), (1200, 90), (2600, 120))) -> np.ndarray:
    """A synthetic vowel: a glottal pulse train through second-order resonators at the given formants."""
    from scipy.signal import lfilter

    x = np.zeros(SR)
    x[:: int(SR / f0)] = 1.0
    for f, bw in formants:
        r, th = np.exp(-np.pi * bw / SR), 2 * np.pi * f / SR
        x = lfilter([1 - r], [1, -2 * r * np.cos(th), r * r], x)
    return (x / np.abs(x).max() * 0.5).astype(np.float32)


def formants(y: np.ndarray) -> np.ndarray:
    import parselmouth

    fm = parselmouth.Sound(y.astype(np.float64), SR).to_formant_burg(0.01, 5, 5500, 0.025, 50)
    ts = np.linspace(0.3, 0.7, 20)
    return np.array([np.nanmedian([fm.get_value_at_time(k, t) for t in ts]) for k in (1, 2)])


@pytest.mark.parametrize("ratio, pitch", [(1.2, 0.0), (0.85, 0.0), (1.0, 200.0)])
def test_a_new_voice_keeps_length_and_timing(ratio, pitch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Praat finds no voiced stretch in clicks
        y = change_voice(click_train(), SR, ratio, pitch, 1.0)
    assert len(y) == 3 * SR
    assert np.abs(click_times_ms(y)).max() <= 1.0


@pytest.mark.parametrize("ratio", [0.85, 1.2])
def test_formants_move_by_the_warp_factor(ratio):
    x = vowel()
    moved = formants(change_voice(x, SR, ratio)) / formants(x)
    np.testing.assert_allclose(moved, ratio, rtol=0.05)


@pytest.mark.parametrize("name", sorted(CODECS))
def test_channels_keep_every_click_in_place(name):
    x = click_train()
    rng = np.random.default_rng(0)
    for y in (codec(x, SR, name), band_limit(x, SR, 200, 3400), reverberate(x, SR, 0.4, rng)):
        assert len(y) == len(x) and np.abs(click_times_ms(y)).max() <= 0.1


def test_band_limit_removes_what_lies_outside_the_band():
    t = np.arange(SR) / SR
    x = (np.sin(2 * np.pi * 60 * t) + np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
    spec = np.abs(np.fft.rfft(band_limit(x, SR, 300, 3400))) / (SR / 2)
    assert spec[1000] > 0.9 and spec[60] < 0.05 and spec[6000] < 0.05


def test_variants_are_reproducible_and_differ():
    x = vowel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = voice_variants(x, 3, seed=1), voice_variants(x, 3, seed=1)
    assert [p for p, _ in a] == [p for p, _ in b] and all(np.array_equal(u, v) for (_, u), (_, v) in zip(a, b))
    assert len({p.formant_ratio for p, _ in a}) == 3
    for p, y in a:
        assert len(y) == len(x) and np.abs(y).max() <= 1.0 and 0.8 <= p.formant_ratio <= 1.25


def test_apply_voice_without_changes_is_the_input():
    x = vowel()
    np.testing.assert_allclose(apply_voice(x, VoiceParams(), np.random.default_rng(0)), x, atol=1e-6)

"""Re-voicing: the same speech, same timing, as if another person said it through another microphone.

The motion learners see one person's voice; a drive brings anyone's. Training on the
subject's own speech re-voiced (the mouth targets unchanged) teaches them what of
the sound belongs to the words rather than to the voice:

* ``change_voice``: vocal-tract length and pitch (Praat's "Change gender" through
  ``parselmouth``: the spectrum resampled by ``formant_ratio`` -- every formant
  moves by that factor -- and the pitch re-synthesised by PSOLA to a new median
  and range; the duration factor is 1, so every sound stays where it was);
* ``band_limit``: a telephone-like or muffled channel (Butterworth high- and low-pass);
* ``reverberate``: a room (exponentially decaying noise as the impulse response,
  ``rt60`` seconds), its direct path at time 0 so nothing is delayed;
* ``codec``: a lossy round trip (MP3, AAC or Opus through PyAV), its encoder delay
  removed so the speech keeps its timing;
* ``add_noise`` (``motion.noise``) stays the paper's 6-30 dB white noise.

``random_voice`` draws one combination; ``voice_variants`` makes several, seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .wav import SAMPLE_RATE

__all__ = ["VoiceParams", "change_voice", "band_limit", "reverberate", "codec", "apply_voice", "random_voice",
           "voice_variants", "CODECS"]

CODECS = {"mp3": ("mp3", "libmp3lame"), "aac": ("adts", "aac"), "opus": ("ogg", "libopus")}


@dataclass(frozen=True)
class VoiceParams:
    formant_ratio: float = 1.0  # > 1: a shorter vocal tract (formants up)
    pitch_median: float = 0.0  # Hz; 0 keeps the original median
    pitch_range: float = 1.0  # factor on the pitch's spread around its median
    low_hz: float = 0.0  # high-pass corner (0: none)
    high_hz: float = 0.0  # low-pass corner (0: none)
    rt60: float = 0.0  # reverberation time, s (0: none)
    codec: str = ""  # "", "mp3", "aac" or "opus"
    bitrate: int = 32000


def change_voice(wav: np.ndarray, sr: int, formant_ratio: float = 1.0, pitch_median: float = 0.0,
                 pitch_range: float = 1.0, seed: int = 0) -> np.ndarray:
    """``wav`` with its formants scaled by ``formant_ratio`` and its pitch moved to ``pitch_median`` Hz
    (0: unchanged) with its spread scaled by ``pitch_range``; same length, same timing. Praat's overlap-add
    draws random numbers: ``seed`` makes the result reproducible."""
    import parselmouth
    from parselmouth.praat import call

    x = np.asarray(wav, np.float64).reshape(-1)
    if formant_ratio == 1.0 and pitch_median == 0.0 and pitch_range == 1.0:
        return x.astype(np.float32)
    snd = parselmouth.Sound(x, float(sr))
    parselmouth.praat.run(f"random_initializeWithSeedUnsafelyButPredictably ({int(seed)})")
    out = call(snd, "Change gender", 75, 600, float(formant_ratio), float(pitch_median), float(pitch_range), 1.0)
    y = out.values.reshape(-1)
    y = y[:len(x)] if len(y) >= len(x) else np.pad(y, (0, len(x) - len(y)))
    return y.astype(np.float32)


def band_limit(wav: np.ndarray, sr: int, low_hz: float = 0.0, high_hz: float = 0.0) -> np.ndarray:
    """Zero-phase Butterworth band limit (order 4 each side): no delay, a channel's colour."""
    from scipy.signal import butter, sosfiltfilt

    x = np.asarray(wav, np.float64).reshape(-1)
    if low_hz > 0:
        x = sosfiltfilt(butter(4, low_hz, "highpass", fs=sr, output="sos"), x)
    if 0 < high_hz < sr / 2:
        x = sosfiltfilt(butter(4, high_hz, "lowpass", fs=sr, output="sos"), x)
    return x.astype(np.float32)


def reverberate(wav: np.ndarray, sr: int, rt60: float, rng: np.random.Generator, wet: float = 0.5) -> np.ndarray:
    """A room: the dry signal plus ``wet`` of it convolved with exponentially decaying noise (60 dB down after
    ``rt60`` s, starting 5 ms after the direct sound); level kept."""
    from scipy.signal import fftconvolve

    x = np.asarray(wav, np.float64).reshape(-1)
    if rt60 <= 0:
        return x.astype(np.float32)
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail[: int(0.005 * sr)] = 0
    tail /= np.sqrt((tail ** 2).sum()) + 1e-12
    y = x + wet * fftconvolve(x, tail)[: len(x)]
    y *= np.sqrt((x ** 2).mean() / max((y ** 2).mean(), 1e-20))
    return y.astype(np.float32)


def codec(wav: np.ndarray, sr: int, name: str = "mp3", bitrate: int = 32000) -> np.ndarray:
    """A lossy encode / decode round trip through PyAV's FFmpeg, aligned back to the input (the encoder's
    priming delay found by cross-correlation and removed), same length."""
    import io

    import av

    if name not in CODECS:
        raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {name!r}")
    fmt, enc = CODECS[name]
    x = np.asarray(wav, np.float32).reshape(-1)
    rate = 48000 if name == "opus" else sr
    src = x if rate == sr else _resample(x, sr, rate)
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        st = out.add_stream(enc, rate=rate)
        st.bit_rate = int(bitrate)
        st.layout = "mono"
        frame = av.AudioFrame.from_ndarray(src[None].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = rate
        for f in av.AudioResampler(format=st.format.name, layout="mono", rate=rate).resample(frame):
            for p in st.encode(f):
                out.mux(p)
        for p in st.encode(None):
            out.mux(p)
    buf.seek(0)
    chunks = []
    with av.open(buf, "r") as inp:
        res = av.AudioResampler(format="flt", layout="mono", rate=sr)
        for f in inp.decode(audio=0):
            for o in res.resample(f):
                chunks.append(o.to_ndarray().reshape(-1))
        for o in res.resample(None):
            chunks.append(o.to_ndarray().reshape(-1))
    y = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return _align(y, x)


def _resample(x: np.ndarray, a: int, b: int) -> np.ndarray:
    from .wav import resample

    return resample(x, a, b)


def _align(y: np.ndarray, x: np.ndarray, max_shift: int = 4096) -> np.ndarray:
    """``y`` shifted so it lines up with ``x`` (the lag of the peak cross-correlation, 0..max_shift), cut or
    padded to ``x``'s length."""
    from scipy.signal import fftconvolve

    n = min(len(x), 4 * SAMPLE_RATE)
    if len(y) > 0 and n > 0:
        seg = y[: n + max_shift]
        c = fftconvolve(seg, x[:n][::-1], mode="full")[n - 1: n - 1 + max_shift + 1]
        lag = int(np.argmax(c)) if c.size else 0
        y = y[lag:]
    out = np.zeros(len(x), np.float32)
    out[: min(len(x), len(y))] = y[: len(x)]
    return out


def apply_voice(wav: np.ndarray, p: VoiceParams, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """``wav`` through one voice and channel (the order a recording goes: speaker, room, microphone, codec)."""
    y = change_voice(wav, sr, p.formant_ratio, p.pitch_median, p.pitch_range, int(rng.integers(1 << 30)))
    y = reverberate(y, sr, p.rt60, rng)
    y = band_limit(y, sr, p.low_hz, p.high_hz)
    if p.codec:
        y = codec(y, sr, p.codec, p.bitrate)
    peak = float(np.abs(y).max()) if len(y) else 0.0
    return (y * (0.9 / peak) if peak > 1.0 else y).astype(np.float32)


def random_voice(rng: np.random.Generator) -> VoiceParams:
    """Another adult's voice through an everyday channel: formants x0.8-1.25 (log-uniform), pitch median
    80-280 Hz with its spread x0.6-1.5, sometimes a band limit, a room or a codec."""
    ratio = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    # pitch goes roughly with vocal-tract size: a short tract (ratio > 1) tends to a higher voice
    pitch = float(np.clip(np.exp(rng.normal(np.log(150.0) + 2.5 * np.log(ratio), 0.3)), 80.0, 280.0))
    low = float(rng.uniform(80, 300)) if rng.random() < 0.4 else 0.0
    high = float(rng.uniform(3400, 7000)) if rng.random() < 0.4 else 0.0
    rt60 = float(rng.uniform(0.15, 0.6)) if rng.random() < 0.3 else 0.0
    name = str(rng.choice(list(CODECS))) if rng.random() < 0.4 else ""
    return VoiceParams(ratio, pitch, float(rng.uniform(0.6, 1.5)), low, high, rt60, name,
                       int(rng.choice([24000, 32000, 48000])))


def voice_variants(wav: np.ndarray, n: int, seed: int = 0, sr: int = SAMPLE_RATE) -> list[tuple[VoiceParams, np.ndarray]]:
    """``n`` re-voiced copies of ``wav`` (each its own random voice and channel), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        p = random_voice(rng)
        out.append((p, apply_voice(wav, p, rng, sr)))
    return out

"""Phone recognition with pocketsphinx 5 (allphone mode, models from the wheel).

The CMU en-us acoustic model and phone language model ship inside the
pocketsphinx wheel, so nothing is downloaded. Settings that matter:

* ``allphone`` = ``en-us/en-us-phone.lm.bin`` with ``lm=None, dict=None``
  (phone loop instead of words), ``lw=2.0``, ``beam = pbeam = 1e-20``;
* the model's ``feat.params`` is always re-applied by the decoder (it wins over
  constructor keywords such as ``remove_noise`` or ``cmn``), so those are left
  alone: ``cmn=batch``, i.e. each utterance is normalised as a whole;
* digitally silent input (TTS, padded clips) makes the batch CMN statistics
  degenerate and whole words come out as SIL, so the audio is peak-normalised
  and a fixed-seed noise floor (about -50 dB) is added before decoding;
* long audio is decoded in ~20 s blocks, each cut at the quietest 10 ms near
  the nominal boundary and decoded as one utterance (``full_utt=True``); the
  progress bar advances per block. The result is deterministic.
"""

from __future__ import annotations

import os

import numpy as np

from ..progress import bar
from .visemes import SILENCE, Segment, arpabet_to_viseme
from .wav import SAMPLE_RATE

FRAME_RATE = 100  # pocketsphinx frames per second (10 ms)
BLOCK_SECONDS = 20.0
SEARCH_SECONDS = 2.0
NOISE_STD = 3e-3
_SEED = 1234


def _model_paths() -> tuple[str, str]:
    import pocketsphinx

    base = pocketsphinx.get_model_path()
    return os.path.join(base, "en-us", "en-us"), os.path.join(base, "en-us", "en-us-phone.lm.bin")


def _make_decoder():
    import pocketsphinx

    hmm, phone_lm = _model_paths()
    return pocketsphinx.Decoder(hmm=hmm, allphone=phone_lm, lm=None, dict=None, lw=2.0,
                                beam=1e-20, pbeam=1e-20, loglevel="ERROR")


def _condition(audio: np.ndarray) -> np.ndarray:
    """Peak-normalise to 0.9 and add a deterministic noise floor; return int16 PCM."""
    x = np.asarray(audio, np.float32).reshape(-1)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak > 1e-6:
        x = x * (0.9 / peak)
    x = x + NOISE_STD * np.random.default_rng(_SEED).standard_normal(len(x)).astype(np.float32)
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2")


def block_bounds(audio: np.ndarray, sr: int, block_s: float = BLOCK_SECONDS,
                 search_s: float = SEARCH_SECONDS) -> list[tuple[int, int]]:
    """Split into ~``block_s`` pieces, each cut at the quietest 10 ms frame near the boundary.

    Cuts fall on 10 ms frame multiples so segment times stay on the frame grid.
    """
    hop = sr // FRAME_RATE
    n_fr = len(audio) // hop
    block, search = int(block_s * FRAME_RATE), int(search_s * FRAME_RATE)
    if n_fr <= block + search:
        return [(0, len(audio))]
    energy = np.square(audio[: n_fr * hop].astype(np.float64)).reshape(n_fr, hop).sum(axis=1)
    cuts, pos = [0], 0
    while n_fr - pos > block + search:
        lo, hi = pos + block - search, pos + block + search
        pos = lo + int(np.argmin(energy[lo:hi]))
        cuts.append(pos)
    return [(a * hop, b * hop) for a, b in zip(cuts, cuts[1:])] + [(cuts[-1] * hop, len(audio))]


def _merge(segments: list[Segment]) -> list[Segment]:
    """Join neighbouring silence segments."""
    out: list[Segment] = []
    for seg in segments:
        if out and seg.viseme == SILENCE and out[-1].viseme == SILENCE:
            out[-1].end = max(out[-1].end, seg.end)
        else:
            out.append(seg)
    return out


def recognize_phones(audio: np.ndarray, sr: int = SAMPLE_RATE) -> list[Segment]:
    """Recognise CMU phones in mono float audio; fillers (+NSN+, ...) become SIL.

    Returns time-ordered :class:`Segment` s (seconds, 10 ms resolution) with the
    ARPAbet label and its viseme. Silent input gives at most one SIL segment.
    """
    audio = np.asarray(audio, np.float32).reshape(-1)
    if sr != SAMPLE_RATE:
        from .wav import resample

        audio = resample(audio, sr, SAMPLE_RATE)
    if len(audio) < SAMPLE_RATE // FRAME_RATE * 3:  # under 30 ms: nothing to decode
        return []
    pcm = _condition(audio)
    decoder = _make_decoder()
    segments: list[Segment] = []
    bounds = block_bounds(audio, SAMPLE_RATE)
    with bar(total=len(audio), desc="phones", unit="smp", unit_scale=True) as pbar:
        for start, end in bounds:
            decoder.start_utt()
            decoder.process_raw(pcm[start:end].tobytes(), False, True)
            decoder.end_utt()
            offset = start / SAMPLE_RATE
            for s in decoder.seg():
                vis = arpabet_to_viseme(s.word)
                label = "SIL" if vis == SILENCE else s.word
                t0 = offset + s.start_frame / FRAME_RATE
                t1 = min(offset + (s.end_frame + 1) / FRAME_RATE, end / SAMPLE_RATE)
                if t1 > t0:
                    segments.append(Segment(label, round(t0, 4), round(t1, 4), vis))
            pbar.update(end - start)
    if segments and len(audio) / SAMPLE_RATE - segments[-1].end < 0.05:  # decoder drops last frames
        segments[-1].end = round(len(audio) / SAMPLE_RATE, 4)
    return _merge(segments)

"""Time-series metrics: correlation, blinks, audio-visual lag, viseme consistency.

Inputs are 1-D numpy arrays sampled at the video frame rate (one value per
frame); NaN marks frames where the face could not be tracked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from ..errors import InputError

SILENCE, BILABIAL = 0, 1          # "sil", "PP" (p, b, m) in the 15-class viseme set
OPEN_VOWELS = (10, 11, 13)        # "aa", "E", "oh"
MIN_SILENCE_S = 0.3


class Segment(Protocol):
    start: float  # seconds
    end: float    # seconds
    viseme: int


def _fill_nan(x: np.ndarray) -> np.ndarray | None:
    """Linearly interpolate NaN/inf gaps (edges held); None if nothing is finite."""
    x = np.asarray(x, dtype=np.float64).ravel()
    ok = np.isfinite(x)
    if not ok.any():
        return None
    if ok.all():
        return x.copy()
    t = np.arange(len(x))
    return np.interp(t, t[ok], x[ok])


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation ``cov(x, y) / (std x * std y)`` over frames where both are finite.

    None when fewer than 3 such frames remain or either series is constant.
    """
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise InputError(f"series differ in length: {len(x)} vs {len(y)}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    x, y = x - x.mean(), y - y.mean()
    sx, sy = np.sqrt(np.sum(x * x)), np.sqrt(np.sum(y * y))
    return float(np.clip(np.sum(x * y) / (sx * sy), -1.0, 1.0))


def best_lag_r(x: Sequence[float], y: Sequence[float], max_lag: int = 5) -> tuple[float | None, int]:
    """The highest Pearson r of ``x[t]`` with ``y[t + L]`` over integer lags ``|L| <= max_lag`` and that lag
    (positive: ``y`` follows ``x``); (None, 0) when no lag gives one."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    best, lag = None, 0
    for L in range(-max_lag, max_lag + 1):
        a, b = (x[: len(x) - L], y[L:]) if L >= 0 else (x[-L:], y[: len(y) + L])
        r = pearson(a, b) if len(a) >= 3 else None
        if r is not None and (best is None or r > best):
            best, lag = r, L
    return best, lag


def std_ratio(x: Sequence[float], y: Sequence[float]) -> float | None:
    """std(x) / std(y) over their finite values (how much ``x`` moves against ``y``); None if ``y`` is still."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if len(x) < 2 or len(y) < 2 or y.std() <= 1e-12:
        return None
    return float(x.std() / y.std())


def _odd(n: float) -> int:
    n = max(1, int(round(n)))
    return n if n % 2 else n + 1


def detect_blinks(eye_openness: Sequence[float], fps: float, min_drop: float = 0.35,
                  max_len_s: float = 0.5) -> list[tuple[int, int]]:
    """Blinks as ``(start, end)`` frame ranges, ``end`` exclusive.

    Baseline = rolling median of the openness over ~2 s (odd window, edges
    held). A frame is closed when ``openness < (1 - min_drop) * baseline``; runs of
    closed frames separated by a single open frame are merged (noise), and a
    run is a blink when it lasts at most ``max_len_s`` (longer = eyes shut /
    looking down, not a blink). NaN frames are interpolated first.
    """
    x = _fill_nan(eye_openness)
    if x is None or len(x) < 3:
        return []
    base = ndimage.median_filter(x, size=_odd(2.0 * fps), mode="nearest")
    closed = x < (1.0 - min_drop) * base
    d = np.diff(np.concatenate([[0], closed.astype(np.int8), [0]]))
    runs = list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))
    merged: list[list[int]] = []
    for s, e in runs:
        if merged and s - merged[-1][1] <= 1:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    max_len = max(1, int(round(max_len_s * fps)))
    return [(s, e) for s, e in merged if e - s <= max_len]


def blink_f1(pred_events: Sequence[tuple[int, int]], true_events: Sequence[tuple[int, int]],
             tol_frames: int = 3) -> float:
    """F1 of predicted vs true blinks, ``2 TP / (n_pred + n_true)``.

    Events are ``(start, end)`` frame ranges (end exclusive). A predicted and a
    true blink may match when the gap between their ranges is at most
    ``tol_frames`` (overlap = gap 0); matching is one-to-one and maximal
    (Hungarian assignment). Both lists empty -> 1.0 (perfect agreement: no blinks
    either side); only one empty -> 0.0. Never None.
    """
    p, t = list(pred_events), list(true_events)
    if not p and not t:
        return 1.0
    if not p or not t:
        return 0.0
    ps, pe = np.array([e[0] for e in p])[:, None], np.array([e[1] for e in p])[:, None]
    ts, te = np.array([e[0] for e in t])[None, :], np.array([e[1] for e in t])[None, :]
    gap = np.maximum(0, np.maximum(ps, ts) - np.minimum(pe, te))
    ok = gap <= tol_frames
    cost = np.where(ok, gap, 10**6)
    ri, ci = linear_sum_assignment(cost)
    tp = int(np.count_nonzero(ok[ri, ci]))
    return 2.0 * tp / (len(p) + len(t))


def audio_envelope(audio: np.ndarray, sr: int, fps: float, n_frames: int) -> np.ndarray:
    """Log RMS energy (dB) of the audio in each video frame's interval.

    Frame i covers samples ``[round(i sr/fps), round((i+1) sr/fps))``; audio
    shorter than the video is zero-padded; multi-channel audio (samples,
    channels) is averaged. ``env = 20 log10(max(rms, floor))`` with the floor 60 dB
    below the loudest frame, so digital silence does not dominate.
    """
    a = np.asarray(audio, dtype=np.float64)
    if a.ndim == 2:
        a = a.mean(axis=1)
    if a.ndim != 1 or sr <= 0 or fps <= 0 or n_frames < 1:
        raise InputError("audio_envelope needs 1-D/2-D audio, positive sr, fps and n_frames")
    bounds = np.round(np.arange(n_frames + 1) * (sr / fps)).astype(np.int64)
    if len(a) < bounds[-1]:
        a = np.concatenate([a, np.zeros(bounds[-1] - len(a))])
    cs = np.concatenate([[0.0], np.cumsum(a[: bounds[-1]] ** 2)])
    n = np.maximum(1, np.diff(bounds))
    rms = np.sqrt(np.maximum(0.0, cs[bounds[1:]] - cs[bounds[:-1]]) / n)
    floor = max(float(rms.max()) * 1e-3, 1e-12)
    return 20.0 * np.log10(np.maximum(rms, floor))


def _highpass_z(x: np.ndarray, fps: float) -> np.ndarray:
    """Subtract a ~1 s moving average, then z-score (zero where constant)."""
    y = x - ndimage.uniform_filter1d(x, size=_odd(fps), mode="nearest")
    sd = y.std()
    return (y - y.mean()) / sd if sd > 1e-12 else np.zeros_like(y)


def av_lag_ms(audio_envelope: Sequence[float], aperture: Sequence[float], fps: float,
              max_lag_ms: float = 500) -> float | None:
    """Audio-to-mouth lag in ms maximising the normalised cross-correlation.

    Both series (one value per video frame) are high-passed (minus a ~1 s moving
    average) and z-scored; for each integer lag L in ``±max_lag_ms`` the Pearson
    correlation of ``env[t]`` with ``aperture[t + L]`` over the overlap is computed.
    The peak is refined to sub-frame precision by fitting a parabola through it
    and its two neighbours: ``delta = (c[-1] - c[+1]) / (2 (c[-1] - 2 c[0] + c[+1]))``.
    **Positive = the mouth (video) lags the audio.** The lag range is limited so
    the overlap keeps at least half of the frames. None when undeterminable
    (too short, constant or all-NaN input).
    """
    e, a = _fill_nan(audio_envelope), _fill_nan(aperture)
    if e is None or a is None:
        return None
    if len(e) != len(a):
        raise InputError(f"envelope and aperture differ in length: {len(e)} vs {len(a)}")
    n = len(e)
    k = min(int(round(max_lag_ms * fps / 1000.0)), n // 2)
    if n < 6 or k < 1:
        return None
    e, a = _highpass_z(e, fps), _highpass_z(a, fps)
    lags = np.arange(-k, k + 1)
    corr = np.full(len(lags), -np.inf)
    for i, lag in enumerate(lags):
        x, y = (e[: n - lag], a[lag:]) if lag >= 0 else (e[-lag:], a[: n + lag])
        c = pearson(x, y)
        if c is not None:
            corr[i] = c
    if not np.isfinite(corr).any():
        return None
    i = int(np.argmax(corr))
    delta = 0.0
    if 0 < i < len(lags) - 1 and np.isfinite(corr[i - 1]) and np.isfinite(corr[i + 1]):
        den = corr[i - 1] - 2.0 * corr[i] + corr[i + 1]
        if den < 0:
            delta = float(np.clip(0.5 * (corr[i - 1] - corr[i + 1]) / den, -0.5, 0.5))
    return float((lags[i] + delta) * 1000.0 / fps)


def aperture_thresholds(aperture: Sequence[float]) -> tuple[float, float]:
    """``(closed_thr, open_thr)`` from a video's mouth-aperture distribution.

    With ``p20``, ``p95`` the 20th / 95th percentiles of the finite values and
    ``r = p95 - p20``: ``closed_thr = p20 + 0.25 r`` and ``open_thr = p20 + 0.5 r``.
    Percentiles make it robust to tracking outliers and to how much of the clip
    is speech. Compute them on the REAL (reference) video and apply the same
    thresholds to the rendered one: a frozen render has a degenerate range of
    its own. Raises ``InputError`` with fewer than 10 finite values.
    """
    x = np.asarray(aperture, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if len(x) < 10:
        raise InputError(f"too few mouth-aperture samples ({len(x)}) to derive thresholds")
    p20, p95 = np.percentile(x, [20, 95])
    r = p95 - p20
    return float(p20 + 0.25 * r), float(p20 + 0.5 * r)


def viseme_consistency(segments: Sequence[Segment], aperture: Sequence[float], fps: float,
                       closed_thr: float, open_thr: float) -> dict[str, float | None]:
    """How often the mouth shape agrees with the viseme being spoken.

    Segment times are seconds; a segment covers frames ``floor(start fps)`` to
    ``ceil(end fps)`` (exclusive). Fractions of segments that pass:

    - ``bilabial_closed``: PP (p, b, m) segments whose minimum aperture within
      the segment ±1 frame is ``<= closed_thr`` (the lips must meet);
    - ``vowel_open``: aa / E / oh segments whose maximum aperture is ``>= open_thr``;
    - ``silence_rest``: sil segments of at least 0.3 s whose median aperture is
      ``<= closed_thr``.

    Each is None when there is no such segment (or its frames are all NaN);
    ``mean`` is the mean of the non-None fractions (None if all are None).
    """
    ap = np.asarray(aperture, dtype=np.float64).ravel()
    n = len(ap)
    hits: dict[str, list[bool]] = {"bilabial_closed": [], "vowel_open": [], "silence_rest": []}

    def frames(seg: Segment, pad: int = 0) -> np.ndarray:
        f0 = max(0, int(np.floor(seg.start * fps)) - pad)
        f1 = min(n, int(np.ceil(seg.end * fps)) + pad)
        v = ap[f0:f1] if f1 > f0 else ap[:0]
        return v[np.isfinite(v)]

    for seg in segments:
        vis = int(seg.viseme)
        if vis == BILABIAL:
            v = frames(seg, pad=1)
            if v.size:
                hits["bilabial_closed"].append(bool(v.min() <= closed_thr))
        elif vis in OPEN_VOWELS:
            v = frames(seg)
            if v.size:
                hits["vowel_open"].append(bool(v.max() >= open_thr))
        elif vis == SILENCE and seg.end - seg.start >= MIN_SILENCE_S:
            v = frames(seg)
            if v.size:
                hits["silence_rest"].append(bool(np.median(v) <= closed_thr))
    out: dict[str, float | None] = {k: (float(np.mean(h)) if h else None) for k, h in hits.items()}
    vals = [v for v in out.values() if v is not None]
    out["mean"] = float(np.mean(vals)) if vals else None
    return out

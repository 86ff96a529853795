"""Cross-driven evaluation: a rendered video and the audio that drove it, no ground truth.

``evaluate_video`` measures what can be judged without a real reference:

* ``viseme_consistency``: phones recognised in the driving audio
  (pocketsphinx) against the rendered mouth aperture. The thresholds come from
  the video's own aperture distribution (there is no real video to take them
  from); see :func:`cross_thresholds` for what happens when the mouth does not
  move.
* ``av_lag_ms``: the lag between the audio's energy envelope and the mouth
  aperture (positive = the mouth lags the audio); None when the mouth does
  not move (nothing to align).
* ``cpbd``: no-reference sharpness, mean over up to ``CPBD_FRAMES`` evenly
  spaced frames (whole frame).

Everything that needs real frames (PSNR, SSIM, LMD, aperture r, blink F1,
flicker) or describes the renderer (fps, RTF, peak RAM) is null.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.video import count_frames, probe
from ..progress import info
from ..outputs import output_dir
from ..utils import atomic_path
from .analyze import SAMPLE_RATE, VideoAnalysis, analyze_video
from ..metrics import cpbd
from .report import METRIC_KEYS, REPORT_MARKERS, write_metrics, write_report
from .temporal import (BILABIAL, MIN_SILENCE_S, OPEN_VOWELS, SILENCE, aperture_thresholds,
                       audio_envelope, av_lag_ms, viseme_consistency)

# A mouth whose aperture spread (95th - 20th percentile) is below this does not
# move. Measured with the synthetic speaker (pose-free aperture, 256 px):
# frozen mouth + head motion 0.002 (image-space aperture 0.009), speaking
# 0.18; real speech is ~0.1-0.3.
STILL_RANGE = 0.02
# Lips further apart than this (inner-lip gap / outer-eye-corner distance,
# ~5 mm on an adult face) are not closed. Closed lips read ~0.00-0.02.
CLOSED_MAX = 0.06
CPBD_FRAMES = 24
N_SAMPLES = 4


@dataclass(frozen=True)
class Thresholds:
    closed: float
    open: float
    moving: bool   # False: the mouth is still; the thresholds are absolute
    spread: float  # p95 - p20 of the aperture


def cross_thresholds(aperture) -> Thresholds:
    """Aperture thresholds for a video judged on its own.

    A moving mouth (spread ``p95 - p20 >= STILL_RANGE``) gets the usual
    percentile thresholds of :func:`aperture_thresholds`, its own 20th
    percentile standing in for the closed pose; ``closed`` is capped at
    ``CLOSED_MAX`` so a mouth that wobbles but never shuts cannot call its
    half-open rest "closed". A still mouth has no spread to scale by, and
    relative thresholds would sit inside tracking noise; it gets absolute ones:
    ``closed = CLOSED_MAX`` and ``open = inf`` (see :func:`cross_viseme_consistency`).
    """
    x = np.asarray(aperture, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    closed, opened = aperture_thresholds(x)  # raises InputError on < 10 samples
    p20, p95 = np.percentile(x, [20, 95])
    spread = float(p95 - p20)
    if spread < STILL_RANGE:
        return Thresholds(CLOSED_MAX, float("inf"), False, spread)
    return Thresholds(min(closed, CLOSED_MAX), opened, True, spread)


def cross_viseme_consistency(segments, aperture, fps: float, thr: Thresholds) -> dict[str, float | None]:
    """:func:`viseme_consistency` with the still-mouth rule.

    A still mouth makes no articulatory gestures: open vowels fail (it never
    opens) and so do bilabial closures (a closure is the lips meeting from
    apart; lips that never part make none), whatever the pose it is frozen
    in. Only silences are judged, against the absolute ``CLOSED_MAX``: a mouth
    frozen shut rests correctly in pauses. A frozen closed mouth thus scores
    at most 1/3, a frozen open one 0, while relative thresholds on its own
    (degenerate) spread would have passed nearly everything.
    """
    vc = viseme_consistency(segments, aperture, fps, thr.closed, thr.open)
    if not thr.moving:
        for k in ("bilabial_closed", "vowel_open"):
            if vc[k] is not None:
                vc[k] = 0.0
        vals = [vc[k] for k in ("bilabial_closed", "vowel_open", "silence_rest") if vc[k] is not None]
        vc["mean"] = float(np.mean(vals)) if vals else None
    return vc


def _sample_indices(segments, n_frames: int, fps: float, n: int = N_SAMPLES) -> dict[int, str]:
    """Frames worth showing: middle of the longest open vowel, bilabial and pause, then even fill."""
    out: dict[int, str] = {}
    groups = (("open vowel", lambda v: v in OPEN_VOWELS), ("bilabial", lambda v: v == BILABIAL),
              ("silence", lambda v: v == SILENCE))
    for name, pred in groups:
        segs = [s for s in segments if pred(int(s.viseme)) and s.start * fps < n_frames - 1]
        if name == "silence":
            segs = [s for s in segs if s.end - s.start >= MIN_SILENCE_S]
        if segs:
            s = max(segs, key=lambda s: s.end - s.start)
            i = min(n_frames - 1, int((s.start + s.end) / 2 * fps))
            out.setdefault(i, f"{name} '{s.label}'")
    for i in np.linspace(0, n_frames - 1, n + 2)[1:-1].round().astype(int):
        if len(out) >= n:
            break
        out.setdefault(int(i), "")
    return dict(sorted(out.items()))


def _still(rgb: np.ndarray, box, max_h: int = 256) -> np.ndarray:
    """The frame with its lip box drawn, beside an enlarged mouth crop."""
    import cv2

    img = np.ascontiguousarray(rgb)
    h, w = img.shape[:2]
    panels = [img]
    if box is not None and np.all(np.isfinite(box)):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            crop = cv2.resize(img[y0:y1, x0:x1], (h, h), interpolation=cv2.INTER_CUBIC)
            img = img.copy()
            cv2.rectangle(img, (x0, y0), (x1, y1), (255, 200, 0), max(1, h // 256))
            panels = [img, crop]
    row = np.concatenate(panels, axis=1)
    if h > max_h:
        row = cv2.resize(row, (round(row.shape[1] * max_h / h), max_h), interpolation=cv2.INTER_AREA)
    return row


def _stills_html(a: VideoAnalysis, labels: dict[int, str]) -> str:
    from .report import _img, _png_b64

    parts = []
    for i, rgb in sorted(a.samples.items()):
        ap = a.aperture[i] if i < a.n_frames else np.nan
        what = f", {labels[i]}" if labels.get(i) else ""
        aps = f"{ap:.3f}" if np.isfinite(ap) else "no face"
        parts.append(_img(_png_b64(_still(rgb, a.lip_box[i] if i < a.n_frames else None)),
                          f"frame {i} (t = {i / a.fps:.2f} s{what}): aperture {aps}"))
    return "".join(parts)


def _notes_html(thr: Thresholds, a: VideoAnalysis, driving: str) -> str:
    kind = "pose-free" if a.pose_free else "image-space"
    if thr.moving:
        t = (f"closed &le; {thr.closed:.3f}, open &ge; {thr.open:.3f} (from this video's own "
             f"aperture percentiles, spread {thr.spread:.3f})")
    else:
        t = (f"the mouth does not move (spread {thr.spread:.4f} &lt; {STILL_RANGE}): vowel openings and "
             f"bilabial closures fail; pauses are judged against the absolute closed threshold "
             f"{CLOSED_MAX}")
    return (f"<p class=note>Cross-driven: no ground truth. Driving audio: {html.escape(driving)}. "
            f"Mouth aperture: {kind}. Viseme thresholds: {t}. "
            f"Face found in {a.found.mean():.0%} of {a.n_frames} frames.</p>")


def _add_sections(path: Path, extra: str) -> None:
    """Insert HTML before ``</body>`` (write_report has no slot for single frames)."""
    text = path.read_text(encoding="utf-8")
    cut = text.rfind("</body>")
    text = text[:cut] + extra + text[cut:]
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def evaluate_video(video: str | os.PathLike, audio: str | os.PathLike | None = None,
                   report_dir: str | os.PathLike | None = None, fps: float | None = None,
                   force: bool = False) -> dict:
    """Evaluate a rendered video against the speech that drove it; returns the metrics.

    ``audio``: the driving speech (any format ``load_audio`` reads); default
    the video's own audio track (``InputError`` if it has none). With
    ``report_dir``, writes ``metrics.json`` and ``report.html`` there. The dict
    has exactly :data:`METRIC_KEYS`; keys that need ground truth or a render
    timing are None.
    """
    from ..audio.phones import recognize_phones
    from ..audio.wav import load_audio

    vinfo = probe(video)
    if report_dir is not None:
        report_dir, _ = output_dir(report_dir, REPORT_MARKERS, force, "evaluate")
    if audio is not None:
        wav, driving = load_audio(audio, sr=SAMPLE_RATE), str(audio)
    elif vinfo.has_audio:
        wav, driving = load_audio(video, sr=SAMPLE_RATE), f"{video} (its own track)"
    else:
        raise InputError(f"{video} has no audio track; pass the driving speech with --audio")
    fps = float(fps or vinfo.fps)
    n_est = count_frames(vinfo, fps) or int(np.ceil(len(wav) / SAMPLE_RATE * fps))
    # Phones only where there is video (plus a little, for a phone cut at the end).
    n_keep = min(len(wav), int(round((n_est + 1) / fps * SAMPLE_RATE)))
    info("recognising phones in the driving audio")
    segments = recognize_phones(wav[:n_keep], SAMPLE_RATE)

    labels = _sample_indices(segments, n_est, fps) if report_dir is not None else {}
    step = max(1, n_est // CPBD_FRAMES)
    sharp: list[float] = []

    def on_frame(i: int, rgb: np.ndarray, lm) -> None:
        if i % step == 0 and len(sharp) < CPBD_FRAMES:
            sharp.append(cpbd(rgb))

    a = analyze_video(video, fps=fps, keep=labels, with_audio=False, on_frame=on_frame)
    a.audio = wav
    thr = cross_thresholds(a.aperture)
    vc = cross_viseme_consistency(segments, a.aperture, a.fps, thr)
    env = audio_envelope(wav, SAMPLE_RATE, a.fps, a.n_frames)
    # A still mouth has nothing to align with the speech: its "lag" would be
    # the peak of a cross-correlation with tracking noise.
    lag = av_lag_ms(env, a.aperture, a.fps) if thr.moving else None

    metrics = {k: None for k in METRIC_KEYS}
    metrics.update(viseme_consistency=vc, av_lag_ms=lag,
                   cpbd={"rendered": float(np.mean(sharp)) if sharp else None, "real": None})
    if report_dir is not None:
        write_metrics(report_dir, metrics)
        path = write_report(report_dir, metrics, aperture_rendered=a.aperture, fps=a.fps,
                            segments=segments, title=f"talkinghead evaluation: {Path(video).name}")
        extra = "<h2>Notes</h2>" + _notes_html(thr, a, driving)
        if a.samples:
            extra += "<h2>Sample frames</h2>" + _stills_html(a, labels)
        _add_sections(path, extra)
    return metrics


def format_metrics(metrics: dict) -> str:
    """A small plain-text table of the metrics (nested dicts flattened as key.sub)."""
    rows: list[tuple[str, str]] = []
    for k in METRIC_KEYS:
        v = metrics.get(k)
        if isinstance(v, dict):
            for sk, sv in v.items():
                rows.append((f"{k}.{sk}", _fmt(sv)))
        else:
            rows.append((k, _fmt(v)))
    w = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{w}}  {val}" for name, val in rows)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


__all__ = ["STILL_RANGE", "CLOSED_MAX", "Thresholds", "cross_thresholds", "cross_viseme_consistency",
           "evaluate_video", "format_metrics"]

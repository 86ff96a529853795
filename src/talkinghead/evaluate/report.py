"""metrics.json and a self-contained report.html for ``talkinghead evaluate``.

The HTML has inline CSS and base64-embedded PNGs only: no scripts, no external
URLs, so it can be mailed or archived as a single file.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..utils import atomic_path, write_json

REPORT_MARKERS = ("report.html", "metrics.json")  # what makes a directory an earlier evaluate report
METRIC_KEYS = ["psnr", "psnr_mouth", "psnr_generated", "copied_fraction", "ssim", "lmd", "aperture_r",
               "aperture_std_ratio", "lips", "pose", "requested", "blink_f1", "cpbd", "flicker", "seam", "fps", "rtf", "peak_ram_mb", "viseme_consistency", "av_lag_ms", "motion"]

_LABELS = {
    "psnr": ("PSNR", "dB, higher is better (capped at 100)"),
    "psnr_mouth": ("PSNR mouth", "dB on the mouth crop"),
    "psnr_generated": ("PSNR generated", "dB over exactly the pixels the engine generated (its composite mask)"),
    "copied_fraction": ("Copied", "fraction of the frame copied from the recorded frame, not generated"),
    "ssim": ("SSIM", "Gaussian 11x11, 1 = identical"),
    "lmd": ("LMD", "mouth landmark distance, lower is better"),
    "aperture_r": ("Aperture r", "Pearson r of mouth opening, rendered vs real"),
    "aperture_std_ratio": ("Aperture std ratio", "how much the rendered mouth opens and closes: its aperture's "
                           "standard deviation / the real one's (1 = as much as the person)"),
    "lips": ("Lips", "the mouth shapes rendered: engine (its own audio path), audio (the expression learner's), "
             "tracked (the held-out frames' own: the renderer alone)"),
    "pose": ("Head pose", "tracked (the held-out frames' own) or audio (the motion learner's: pixel metrics then "
             "compare different poses)"),
    "requested": ("Rendered vs requested", "the rendered mouth's aperture against the mouth shapes the renderer "
                  "was asked for (with --lips audio|tracked): Pearson r and std ratio"),
    "blink_f1": ("Blink F1", "rendered vs real blinks, ±3 frames"),
    "cpbd": ("CPBD", "sharpness, 0..1, higher is sharper"),
    "flicker": ("Flicker", "excess background temporal MSE over the real video"),
    "seam": ("Seam", "gradient energy on the border of the generated region, rendered / real (1 = no seam)"),
    "fps": ("FPS", "rendered frames per second"),
    "rtf": ("RTF", "render time / video duration, < 1 is faster than real time"),
    "peak_ram_mb": ("Peak RAM", "MB"),
    "viseme_consistency": ("Viseme consistency", "fraction of visemes with a plausible mouth"),
    "av_lag_ms": ("A/V lag", "ms, positive = mouth lags audio"),
    "motion": ("Motion learners", "held-out, before rendering: expression learner aperture r, std ratio and LMD; generated head "
               "motion's std / real per axis, velocity Fréchet distance (also for a still head and a replay), "
               "motion-speech energy r, replay score (< 0.5: copies training motion)"),
}

VISEME_NAMES = ["sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou"]

_FOOTNOTE = ("— = not computed for this run (input missing or undeterminable). "
             "LPIPS, FID, SyncNet confidence and identity similarity are not computed at all: "
             "they need pretrained networks that cannot be obtained offline.")

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}
th{background:#f2f2f2}td.v{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#666;font-size:.9em}img{max-width:100%;display:block;margin:.5em 0}
figure{margin:1em 0}figcaption{color:#666;font-size:.85em}"""


def _clean(v):
    """JSON-safe copy: numpy scalars/arrays to Python, NaN/inf to None."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_clean(x) for x in (v.tolist() if isinstance(v, np.ndarray) else v)]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _complete(metrics: dict) -> dict:
    unknown = sorted(set(metrics) - set(METRIC_KEYS))
    if unknown:
        raise ValueError(f"unknown metric keys: {unknown}; allowed: {METRIC_KEYS}")
    return {k: _clean(metrics.get(k)) for k in METRIC_KEYS}


def write_metrics(report_dir: str | os.PathLike, metrics: dict) -> Path:
    """Write ``report_dir/metrics.json`` atomically with exactly :data:`METRIC_KEYS`.

    Missing keys become null (nothing is invented), NaN/inf become null, unknown
    keys raise ``ValueError``. Returns the file path.
    """
    full = _complete(metrics)
    d = Path(report_dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / "metrics.json"
    write_json(path, full)
    return path


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"
    return html.escape(str(v))


def _table(metrics: dict) -> str:
    rows = []
    for k in METRIC_KEYS:
        name, desc = _LABELS[k]
        v = metrics[k]
        if isinstance(v, dict):
            parts = [f"{html.escape(str(sk))}: {_fmt(sv)}" for sk, sv in v.items()]
            cell = "<br>".join(parts) if parts else "—"
        else:
            cell = _fmt(v)
        rows.append(f"<tr><td>{name}</td><td class=v>{cell}</td><td class=note>{html.escape(desc)}</td></tr>")
    return ("<table><tr><th>metric</th><th>value</th><th>meaning</th></tr>" + "".join(rows)
            + f"</table><p class=note>{html.escape(_FOOTNOTE)}</p>")


def _png_b64(rgb: np.ndarray) -> str:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def _fig_b64(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _new_fig(w: float = 10, h: float = 3):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    FigureCanvasAgg(fig)  # Agg only; never touches pyplot's global backend
    return fig


def _img(b64: str, caption: str) -> str:
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _aperture_plot(ap_r, ap_g, fps: float) -> str:
    fig = _new_fig()
    ax = fig.add_subplot(111)
    for ap, label, color in ((ap_g, "real", "tab:blue"), (ap_r, "rendered", "tab:orange")):
        if ap is not None:
            ap = np.asarray(ap, dtype=np.float64).ravel()
            ax.plot(np.arange(len(ap)) / fps, ap, label=label, color=color, lw=1.2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mouth aperture")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return _img(_fig_b64(fig), "Mouth aperture over time, rendered vs real")


def _rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img[..., :3]


def _frames_strip(pairs, gain: float = 4.0, max_h: int = 256) -> str:
    """Rows of real | rendered | difference (| generated mask), then the mouth of each enlarged.

    ``pairs``: (real, rendered) or (real, rendered, mask (H, W) float or None, mouth box or None).
    """
    import cv2

    out = []
    for i, item in enumerate(pairs):
        real, rend = _rgb(item[0]), _rgb(item[1])
        mask = item[2] if len(item) > 2 else None
        box = item[3] if len(item) > 3 else None
        h, w = real.shape[:2]
        if rend.shape[:2] != (h, w):
            rend = cv2.resize(rend, (w, h), interpolation=cv2.INTER_AREA)
        diff = np.clip(np.abs(real.astype(np.int16) - rend.astype(np.int16)) * gain, 0, 255).astype(np.uint8)
        panels = [real, rend, diff]
        if mask is not None:  # generated pixels in magenta over the dimmed frame
            m = np.asarray(mask, np.float32)[..., None]
            panels.append((real * 0.4 + m * np.array([255, 0, 255]) * 0.6).clip(0, 255).astype(np.uint8))
        row = np.concatenate(panels, axis=1)
        if h > max_h:
            row = cv2.resize(row, (round(row.shape[1] * max_h / h), max_h), interpolation=cv2.INTER_AREA)
        what = " | generated pixels (magenta)" if mask is not None else ""
        out.append(_img(_png_b64(row), f"frame {i}: real | rendered | |difference| x{gain:g}{what}"))
        if box is not None:
            x0, y0, x1, y1 = np.round(box).astype(int)
            x0, y0 = max(0, x0), max(0, y0)
            crops = [p[y0:y1, x0:x1] for p in (real, rend, diff)]
            if crops[0].size:
                zoom = max(1, 192 // max(1, crops[0].shape[0]))
                row = np.concatenate([cv2.resize(c, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
                                      for c in crops], axis=1)
                out.append(_img(_png_b64(row), f"frame {i}, mouth x{zoom}: real | rendered | |difference| x{gain:g}"))
    return "".join(out)


def _viseme_plot(segments, ap_r, ap_g, fps: float) -> str:
    from matplotlib import colormaps
    from matplotlib.patches import Patch

    cmap = colormaps["tab20"]
    fig = _new_fig(10, 3.2)
    ax = fig.add_subplot(111)
    seen: dict[int, object] = {}
    for seg in segments:
        vis = int(seg.viseme)
        color = cmap(vis % 20)
        ax.axvspan(float(seg.start), float(seg.end), color=color, alpha=0.35, lw=0)
        seen.setdefault(vis, color)
    lines = []
    for ap, label, color in ((ap_g, "real", "tab:blue"), (ap_r, "rendered", "tab:orange")):
        if ap is not None:
            ap = np.asarray(ap, dtype=np.float64).ravel()
            lines += ax.plot(np.arange(len(ap)) / fps, ap, label=label, color=color, lw=1.2)
    name = lambda v: VISEME_NAMES[v] if 0 <= v < len(VISEME_NAMES) else str(v)  # noqa: E731
    handles = [Patch(color=c, alpha=0.35, label=name(v)) for v, c in sorted(seen.items())]
    ax.legend(handles=lines + handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mouth aperture")
    return _img(_fig_b64(fig), "Viseme timeline (coloured spans) against mouth opening")


def write_report(report_dir: str | os.PathLike, metrics: dict, aperture_rendered=None,
                 aperture_real=None, fps: float = 25,
                 frames: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
                 segments=None, title: str = "") -> Path:
    """Write a self-contained ``report_dir/report.html`` atomically and return its path.

    Sections: metric table (always; same key rules as :func:`write_metrics`),
    aperture plot (if any aperture is given), side-by-side frames (``frames``:
    (real, rendered) uint8 RGB pairs, shown as real | rendered | 4x abs
    difference), viseme timeline (if ``segments``: objects with ``.start``,
    ``.end`` in seconds and ``.viseme`` in the 15-class set).
    """
    full = _complete(metrics)
    title = title or "talkinghead evaluation"
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             "<h2>Metrics</h2>", _table(full)]
    if aperture_rendered is not None or aperture_real is not None:
        parts += ["<h2>Mouth opening</h2>", _aperture_plot(aperture_rendered, aperture_real, fps)]
    if frames is not None and len(frames):
        parts += ["<h2>Frames</h2>", _frames_strip(frames)]
    if segments is not None and len(segments):
        parts += ["<h2>Visemes</h2>", _viseme_plot(segments, aperture_rendered, aperture_real, fps)]
    parts.append("</body></html>\n")
    d = Path(report_dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / "report.html"
    with atomic_path(path) as tmp:
        tmp.write_text("".join(parts), encoding="utf-8")
    return path

"""``talkinghead evaluate MODEL_DIR``: render held-out frames from their own audio and poses, compare.

The drive replays the split's own tracked poses and eye openness with its own
audio features, so every rendered frame has a real counterpart. Image metrics
stream pairwise (nothing holds the whole video); the rendered video is then
tracked with FaceMesh for the landmark, aperture and blink metrics, and the
cross-driven speech metrics run on it too.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import numpy as np

from ..audio.wav import SAMPLE_RATE
from ..drive import build_drive, default_lips, subject_speech
from ..engines import resolve_device
from ..engines.modeldir import load_engine
from ..geometry import face as mesh
from ..io.video import VideoWriter
from ..progress import bar, info
from ..outputs import output_dir
from .analyze import analyze_video
from .cross import cross_thresholds, cross_viseme_consistency
from ..metrics import FlickerAccumulator, SeamAccumulator, cpbd, crop_box, psnr, ssim
from .report import METRIC_KEYS, REPORT_MARKERS, write_metrics, write_report
from .temporal import audio_envelope, av_lag_ms, blink_f1, detect_blinks, pearson, std_ratio

MOUTH = sorted(set(mesh.LIPS_OUTER + mesh.LIPS_INNER))


def motion_metrics(model_dir: Path, subject, idx: np.ndarray) -> dict | None:
    """The model's motion learners on the held-out frames (``motion.metrics``), None without ``motion.pt``."""
    from ..motion import MotionModel
    from ..motion.metrics import expression_metrics, head_metrics

    m = MotionModel.load(model_dir, subject.meta["key"])
    if m is None:
        return None
    out = {f"expression_{k}": v for k, v in expression_metrics(m, subject, idx).items()}
    if len(idx) > m.cfg.head.chunk // 2:
        out.update(head_metrics(m, subject, idx, subject.split("train")))
    return out


def requested_aperture(subject, drive) -> np.ndarray | None:
    """The pose-free mouth aperture of the mouth shapes a drive asked the renderer for (None: its own audio)."""
    if drive.mouth is None:
        return None
    from ..motion import MOUTH_POINTS

    lm = subject.tracks["canon_landmarks"][drive.pose_index][..., :2].astype(np.float64)
    lm[:, MOUTH_POINTS] = drive.mouth
    return mesh.mouth_aperture(lm)


def evaluate_model(model_dir: str | Path, split: str = "val", report_dir: str | Path | None = None,
                   device: str = "auto", lips: str | None = None, force: bool = False,
                   precision: str = "auto") -> dict:
    model_dir = Path(model_dir)
    engine = load_engine(model_dir, resolve_device(device), precision=precision)  # validates the model before anything is written
    out, _ = output_dir(Path(report_dir) if report_dir else model_dir / f"eval_{split}", REPORT_MARKERS, force,
                        "evaluate")
    out.mkdir(parents=True, exist_ok=True)
    subject = engine.subject
    idx = subject.split(split)
    if len(idx) < 3:
        from ..errors import InputError

        raise InputError(f"split {split!r} of {subject.path} has {len(idx)} frames; need at least 3")
    speech = subject_speech(subject, idx)
    lips = default_lips(engine) if lips is None else lips
    drive = build_drive(engine, speech=speech, pose=idx, lips=lips)
    tr = subject.tracks
    scale = 512.0 / subject.size  # lmd is reported in pixels at 512²
    p_full, p_mouth, p_gen, copied, s_full, sharp_r, sharp_g = [], [], [], [], [], [], []
    flick_r, flick_g = FlickerAccumulator(), FlickerAccumulator()  # rendered minus real
    seam = SeamAccumulator()
    prev = None
    pairs = {}
    keep = set(np.linspace(0, len(idx) - 1, min(4, len(idx))).astype(int).tolist())
    t0 = time.perf_counter()
    render_s = 0.0
    video = out / "rendered.mp4"
    b = bar(len(idx), "evaluate", unit="f")
    with VideoWriter(video, drive.fps, (subject.size, subject.size), audio=drive.audio,
                     sample_rate=SAMPLE_RATE) as w:
        it = engine.render(drive)
        for k, i in enumerate(idx):
            t = time.perf_counter()
            img = next(it)
            render_s += time.perf_counter() - t
            w.write(img)
            real = subject.frame(int(i))
            box = tr["lip_box"][i]
            p_full.append(psnr(img, real))
            p_mouth.append(psnr(crop_box(img, box), crop_box(real, box)))
            gen = engine.composite_mask(drive, k)
            if gen is not None:
                seam.update(img, real, gen)
            gen = np.ones(img.shape[:2], bool) if gen is None else gen > 0.01
            copied.append(1 - float(gen.mean()))
            if gen.any():
                p_gen.append(psnr(img[gen], real[gen]))
            s_full.append(ssim(img, real))
            mask = np.zeros(img.shape[:2], bool)
            x0, y0, x1, y1 = np.round(box).astype(int)
            mask[max(0, y0):y1, max(0, x0):x1] = True
            if prev is not None:
                flick_r.update(prev[0], img, mask)
                flick_g.update(prev[1], real, mask)
            prev = (img, real)
            if k % max(1, len(idx) // 24) == 0:
                sharp_r.append(cpbd(crop_box(img, box)))
                sharp_g.append(cpbd(crop_box(real, box)))
            if k in keep:
                pairs[k] = (real, img, gen.astype(np.float32), box)
            b.update()
    b.close()
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    a = analyze_video(video, fps=drive.fps, with_audio=False, require_face=False)
    real_lm, real_ap, real_eye = tr["landmarks"][idx], tr["aperture"][idx], tr["eye"][idx]
    ok = a.found
    lmd = (float(np.mean(np.linalg.norm(a.landmarks[ok][:, MOUTH, :2] - real_lm[ok][:, MOUTH, :2], axis=-1))) * scale
           if ok.any() else None)
    blinks_r = detect_blinks(a.eye.mean(1), drive.fps)
    blinks_g = detect_blinks(real_eye.mean(1), drive.fps)
    segs = speech.phones
    vc = cross_viseme_consistency(segs, a.aperture, drive.fps, cross_thresholds(real_ap))
    env = audio_envelope(drive.audio, SAMPLE_RATE, drive.fps, len(idx))
    metrics = {k: None for k in METRIC_KEYS}
    metrics.update(
        psnr=float(np.mean(p_full)), psnr_mouth=float(np.mean(p_mouth)), ssim=float(np.mean(s_full)),
        psnr_generated=float(np.mean(p_gen)) if p_gen else None, copied_fraction=float(np.mean(copied)),
        lmd=lmd, aperture_r=pearson(a.aperture, real_ap), aperture_std_ratio=std_ratio(a.aperture, real_ap), lips=lips,
        requested=None if (asked := requested_aperture(subject, drive)) is None else
        {"r": pearson(a.aperture, asked), "std_ratio": std_ratio(a.aperture, asked)},
        blink_f1=blink_f1(blinks_r, blinks_g),
        cpbd={"rendered": float(np.mean(sharp_r)), "real": float(np.mean(sharp_g))},
        flicker=None if flick_r.value is None else flick_r.value - flick_g.value, seam=seam.value,
        fps=len(idx) / render_s, rtf=render_s / (len(idx) / drive.fps),
        peak_ram_mb=peak, viseme_consistency=vc, av_lag_ms=av_lag_ms(env, a.aperture, drive.fps),
        motion=motion_metrics(model_dir, subject, idx))
    write_metrics(out, metrics)
    write_report(out, metrics, aperture_rendered=a.aperture, aperture_real=real_ap, fps=drive.fps,
                 frames=[pairs[k] for k in sorted(pairs)], segments=segs,
                 title=f"talkinghead self-driven evaluation: {model_dir.name} on {split} ({len(idx)} frames)")
    info(f"evaluated {len(idx)} frames in {wall:.1f} s -> {out}")
    return metrics

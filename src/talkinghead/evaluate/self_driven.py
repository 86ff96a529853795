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


class PairScores:
    """Image metrics of rendered against real frames, taken one pair at a time (nothing holds the whole video),
    and a few pairs kept for the report."""

    def __init__(self, n: int):
        self.p_full, self.p_mouth, self.p_gen, self.copied, self.s_full = [], [], [], [], []
        self.sharp_r, self.sharp_g = [], []
        self.flick_r, self.flick_g = FlickerAccumulator(), FlickerAccumulator()  # rendered minus real
        self.seam = SeamAccumulator()
        self.prev = None
        self.every = max(1, n // 24)  # frames between sharpness samples
        self.keep = set(np.linspace(0, n - 1, min(4, n)).astype(int).tolist())
        self.pairs = {}

    def add(self, k: int, img: np.ndarray, real: np.ndarray, box: np.ndarray, gen: np.ndarray | None) -> None:
        """Pair k: the rendered and the real frame, the mouth box, the engine's composite mask (None: all)."""
        self.p_full.append(psnr(img, real))
        self.p_mouth.append(psnr(crop_box(img, box), crop_box(real, box)))
        if gen is not None:
            self.seam.update(img, real, gen)
        gen = np.ones(img.shape[:2], bool) if gen is None else gen > 0.01
        self.copied.append(1 - float(gen.mean()))
        if gen.any():
            self.p_gen.append(psnr(img[gen], real[gen]))
        self.s_full.append(ssim(img, real))
        mask = np.zeros(img.shape[:2], bool)
        x0, y0, x1, y1 = np.round(box).astype(int)
        mask[max(0, y0):y1, max(0, x0):x1] = True
        if self.prev is not None:
            self.flick_r.update(self.prev[0], img, mask)
            self.flick_g.update(self.prev[1], real, mask)
        self.prev = (img, real)
        if k % self.every == 0:
            self.sharp_r.append(cpbd(crop_box(img, box)))
            self.sharp_g.append(cpbd(crop_box(real, box)))
        if k in self.keep:
            self.pairs[k] = (real, img, gen.astype(np.float32), box)

    def metrics(self) -> dict:
        return dict(psnr=float(np.mean(self.p_full)), psnr_mouth=float(np.mean(self.p_mouth)),
                    ssim=float(np.mean(self.s_full)),
                    psnr_generated=float(np.mean(self.p_gen)) if self.p_gen else None,
                    copied_fraction=float(np.mean(self.copied)),
                    cpbd={"rendered": float(np.mean(self.sharp_r)), "real": float(np.mean(self.sharp_g))},
                    flicker=None if self.flick_r.value is None else self.flick_r.value - self.flick_g.value,
                    seam=self.seam.value)


def render_scored(engine, drive, idx: np.ndarray, video: Path) -> tuple[PairScores, float]:
    """Render ``drive`` (the held-out frames ``idx``) into ``video``, scoring each frame against its real one
    as it comes. → (the scores, seconds spent rendering)."""
    subject, render_s = engine.subject, 0.0
    scores = PairScores(len(idx))
    b = bar(len(idx), "evaluate", unit="f")
    with VideoWriter(video, drive.fps, (subject.size, subject.size), audio=drive.audio,
                     sample_rate=SAMPLE_RATE) as w:
        it = engine.render(drive)
        for k, i in enumerate(idx):
            t = time.perf_counter()
            img = next(it)
            render_s += time.perf_counter() - t
            w.write(img)
            scores.add(k, img, subject.frame(int(i)), subject.tracks["lip_box"][i], engine.composite_mask(drive, k))
            b.update()
    b.close()
    return scores, render_s


def tracked_metrics(a, subject, idx: np.ndarray, drive, phones) -> dict:
    """What FaceMesh tracked in the rendered video (``a``) against the real frames' tracks: the mouth landmark
    distance (px at 512²), aperture r and std ratio, blinks, viseme consistency and audio-visual lag."""
    tr = subject.tracks
    real_lm, real_ap, real_eye = tr["landmarks"][idx], tr["aperture"][idx], tr["eye"][idx]
    ok, scale = a.found, 512.0 / subject.size
    lmd = (float(np.mean(np.linalg.norm(a.landmarks[ok][:, MOUTH, :2] - real_lm[ok][:, MOUTH, :2], axis=-1))) * scale
           if ok.any() else None)
    blinks_r = detect_blinks(a.eye.mean(1), drive.fps)
    blinks_g = detect_blinks(real_eye.mean(1), drive.fps)
    vc = cross_viseme_consistency(phones, a.aperture, drive.fps, cross_thresholds(real_ap))
    env = audio_envelope(drive.audio, SAMPLE_RATE, drive.fps, len(idx))
    return dict(lmd=lmd, aperture_r=pearson(a.aperture, real_ap), aperture_std_ratio=std_ratio(a.aperture, real_ap),
                requested=None if (asked := requested_aperture(subject, drive)) is None else
                {"r": pearson(a.aperture, asked), "std_ratio": std_ratio(a.aperture, asked)},
                blink_f1=blink_f1(blinks_r, blinks_g), viseme_consistency=vc,
                av_lag_ms=av_lag_ms(env, a.aperture, drive.fps))


def evaluate_model(model_dir: str | Path, split: str = "val", report_dir: str | Path | None = None,
                   device: str = "auto", lips: str | None = None, force: bool = False,
                   precision: str = "auto", pose: str = "tracked") -> dict:
    """Render the held-out frames of ``split`` from their own audio and compare; ``pose``: their own tracked head
    poses, or ``audio`` (the motion learner's for their audio; pixel metrics then compare different poses)."""
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
    drive = build_drive(engine, speech=speech, pose="audio" if pose == "audio" else idx, lips=lips)
    t0 = time.perf_counter()
    video = out / "rendered.mp4"
    scores, render_s = render_scored(engine, drive, idx, video)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    a = analyze_video(video, fps=drive.fps, with_audio=False, require_face=False)
    metrics = {k: None for k in METRIC_KEYS}
    metrics.update(**scores.metrics(), **tracked_metrics(a, subject, idx, drive, speech.phones), lips=lips, pose=pose,
                   fps=len(idx) / render_s, rtf=render_s / (len(idx) / drive.fps), peak_ram_mb=peak,
                   motion=motion_metrics(model_dir, subject, idx))
    write_metrics(out, metrics)
    write_report(out, metrics, aperture_rendered=a.aperture, aperture_real=subject.tracks["aperture"][idx],
                 fps=drive.fps, frames=[scores.pairs[k] for k in sorted(scores.pairs)], segments=speech.phones,
                 title=f"talkinghead self-driven evaluation: {model_dir.name} on {split} ({len(idx)} frames)")
    info(f"evaluated {len(idx)} frames in {wall:.1f} s -> {out}")
    return metrics

"""Other people's voices drive a trained model: does its mouth move with theirs, and as much as the person's?

    python bench/voices.py MODEL [CLIP ...] [--cache DIR] [--text "..."] [--no-render] [--lips engine|audio]
                           [--out FILE]

CLIP defaults to every clip of ``../shared/data/voices`` and the two English 5-s clips. For each clip the
real speaker's mouth is tracked (FaceMesh, pose-free aperture; cached in ``--cache``) and the model is driven
by the clip's soundtrack, as ``say`` drives it (head motion and lips from the model's learners where it has
them), at the subject's crop:

* learner: the expression learner's own mouth for that audio, before any rendering (models with motion.pt);
* end to end: the rendered video, tracked the same way.

Per clip and mean: aperture r with the speaker's own mouth, the best r within ±5 frames (clips differ in
their own audio/video offset), the std ratio (the mouth's aperture std over the clip's speech frames / the
subject's own aperture std while speaking; 1 = as much as the person), and the loudness baseline (r of the
speaker's mouth with their own smoothed loudness: what a mouth that only follows the volume could reach).
``--text``: an espeak-ng sentence: viseme consistency (its exact phones) and how often the mouth rests in its
pauses of 0.3 s or more (aperture within the subject's closed range). One markdown table; ``--out`` also
writes it to a file.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def default_clips() -> list[str]:
    return sorted(glob.glob(str(DATA / "voices" / "*"))) + [str(DATA / c) for c in ("clip_man_5s.mp4",
                                                                                   "clip_woman_5s.mp4")]


def real_track(clip: str, fps: float, cache: Path) -> dict:
    """The speaker's tracked aperture, speech frames, audio and loudness, cached per clip and frame rate."""
    from talkinghead.audio.vad import speech_frames
    from talkinghead.audio.wav import load_audio
    from talkinghead.evaluate.analyze import analyze_video

    st = os.stat(clip)
    path = cache / f"{Path(clip).stem}_{fps:g}_{st.st_size}.npz"
    if not path.is_file():
        a = analyze_video(clip, fps=fps, require_face=False)
        wav = load_audio(clip)
        n = len(a.aperture)
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, aperture=a.aperture, audio=wav, speech=speech_frames(wav, n, fps))
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def mouth_row(ap: np.ndarray, real: np.ndarray, speech: np.ndarray, speaking_std: float) -> dict:
    from talkinghead.evaluate.temporal import best_lag_r, pearson

    n = min(len(ap), len(real), len(speech))
    ap, real, speech = ap[:n], real[:n], speech[:n]
    moving = ap[speech & np.isfinite(ap)] if speech.sum() >= 3 else ap[np.isfinite(ap)]
    return {"r": pearson(ap, real), "lag_r": best_lag_r(ap, real, 5)[0],
            "std": float(np.std(moving) / speaking_std) if len(moving) > 1 else None}


def loudness_r(real: dict, fps: float) -> float | None:
    from scipy import ndimage

    from talkinghead.audio.wav import SAMPLE_RATE
    from talkinghead.evaluate.temporal import audio_envelope, pearson

    n = len(real["aperture"])
    env = ndimage.uniform_filter1d(audio_envelope(real["audio"], SAMPLE_RATE, fps, n), 3)
    return pearson(env, real["aperture"])


def subject_speaking_std(subject) -> float:
    """The subject's aperture std over its training frames with speech (the person's own mouth motion)."""
    from talkinghead.audio.vad import speech_frames
    from talkinghead.audio.wav import load_audio

    idx = subject.split("train")
    sp = speech_frames(load_audio(subject.path / "audio.wav"), subject.n_frames, subject.fps)[idx]
    return float(subject.tracks["aperture"][idx][sp].std())


def learner_aperture(motion, subject, speech) -> np.ndarray:
    from talkinghead.geometry import face as mesh

    coef = motion.mouth_codes(speech.visemes, speech.mel_windows)
    base = subject.tracks["canon_landmarks"][[subject.neutral_frame()]].astype(np.float64)
    return mesh.mouth_aperture(motion.expression.pca.decode(coef, base))


def text_row(engine, text: str, tmp: Path, lips: str | None = None) -> dict:
    """espeak-ng: viseme consistency with the exact phones, and the share of its long pauses the mouth rests in."""
    from talkinghead.drive import build_drive, default_lips, default_pose
    from talkinghead.evaluate.analyze import analyze_video
    from talkinghead.evaluate.cross import cross_thresholds, cross_viseme_consistency
    from talkinghead.evaluate.temporal import MIN_SILENCE_S, aperture_thresholds
    from talkinghead.say.pipeline import write_drive

    s = engine.subject
    drive = build_drive(engine, text=text, pose=default_pose(engine), lips=lips or default_lips(engine))
    out = tmp / "text.mp4"
    write_drive(engine, drive, out, crop=True, progress=False)
    from talkinghead.drive.speech import load_speech

    phones = load_speech(text=text, fps=s.fps).phones
    ap = analyze_video(out, require_face=False).aperture
    vc = cross_viseme_consistency(phones, ap, s.fps, cross_thresholds(ap))
    closed = aperture_thresholds(s.tracks["aperture"][s.split("train")])[0]
    rest = [bool(np.nanmedian(ap[int(p.start * s.fps): int(np.ceil(p.end * s.fps))]) <= closed)
            for p in phones if p.viseme == 0 and p.end - p.start >= MIN_SILENCE_S and p.start * s.fps < len(ap) - 1]
    return {"consistency": vc["mean"], "pauses_rest": float(np.mean(rest)) if rest else None, "pauses": len(rest)}


def fmt(v) -> str:
    return "—" if v is None or not np.isfinite(v) else f"{v:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("clips", nargs="*")
    ap.add_argument("--cache", default="bench_runs/voices_cache")
    ap.add_argument("--text", default="Papa bought a big map. Ah, the open sea! Bob, be quiet, please.")
    ap.add_argument("--no-render", action="store_true", help="the learner only (no say, no tracking)")
    ap.add_argument("--lips", help="engine or audio (default: as say, the model's own default)")
    ap.add_argument("--out")
    a = ap.parse_args()
    os.environ.setdefault("TALKINGHEAD_QUIET", "1")
    from talkinghead.drive import build_drive, default_lips, default_pose
    from talkinghead.drive.speech import load_speech
    from talkinghead.engines import resolve_device
    from talkinghead.engines.modeldir import load_engine
    from talkinghead.errors import TalkingHeadError
    from talkinghead.evaluate.analyze import analyze_video
    from talkinghead.motion import MotionModel
    from talkinghead.say.pipeline import write_drive

    clips = a.clips or default_clips()
    try:
        engine = load_engine(Path(a.model), resolve_device("auto"))
        s = engine.subject
        motion = MotionModel.load(a.model, s.meta["key"])
        speaking = subject_speaking_std(s)
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for clip in clips:
                real = real_track(clip, s.fps, Path(a.cache))
                speech = load_speech(audio=clip, fps=s.fps)
                row = {"clip": Path(clip).stem, "loud": loudness_r(real, s.fps)}
                if motion is not None:
                    row["learner"] = mouth_row(learner_aperture(motion, s, speech), real["aperture"], real["speech"],
                                               speaking)
                if not a.no_render:
                    drive = build_drive(engine, speech=speech, pose=default_pose(engine),
                                        lips=a.lips or default_lips(engine))
                    out = Path(tmp) / "clip.mp4"
                    write_drive(engine, drive, out, crop=True, progress=False)
                    row["render"] = mouth_row(analyze_video(out, require_face=False).aperture, real["aperture"],
                                              real["speech"], speaking)
                rows.append(row)
                print(row, file=sys.stderr, flush=True)
            text = None if a.no_render else text_row(engine, a.text, Path(tmp), a.lips)
    except TalkingHeadError as e:
        sys.exit(f"error: {e}")
    kinds = [k for k in ("learner", "render") if k in rows[0]]
    head = "| clip | " + " | ".join(f"{k} r | {k} lag r | {k} std" for k in kinds) + " | loudness r |"
    lines = [f"voices driving {Path(a.model).name} ({s.path.name}; subject speaking aperture std {speaking:.4f})", "",
             head, "|---|" + "---|---|---|" * len(kinds) + "---|"]
    for r in rows + [None]:
        if r is None:  # the mean row
            r = {"clip": "**mean**", "loud": np.mean([x["loud"] for x in rows if x["loud"] is not None])}
            for k in kinds:
                r[k] = {m: float(np.mean([x[k][m] for x in rows if x[k][m] is not None])) for m in ("r", "lag_r", "std")}
        cells = [f"{fmt(r[k]['r'])} | {fmt(r[k]['lag_r'])} | {fmt(r[k]['std'])}" for k in kinds]
        lines.append(f"| {r['clip']} | " + " | ".join(cells) + f" | {fmt(r['loud'])} |")
    for k in kinds:
        lines.append(f"\n{k}: clips with std ratio under 0.4: "
                     f"{sum(1 for x in rows if x[k]['std'] is not None and x[k]['std'] < 0.4)} of {len(rows)}; "
                     f"lowest {fmt(min(x[k]['std'] for x in rows if x[k]['std'] is not None))}")
    if text:
        lines.append(f"\nespeak-ng sentence: viseme consistency {fmt(text['consistency'])}, mouth at rest in "
                     f"{fmt(text['pauses_rest'])} of its {text['pauses']} pauses >= 0.3 s")
    out = "\n".join(lines)
    print(out)
    if a.out:
        Path(a.out).write_text(out + "\n")


if __name__ == "__main__":
    main()

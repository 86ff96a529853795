"""``talkinghead demo``: the whole pipeline on a machine with no data.

synthesize a speaker → prepare → train (``ENGINE``, with the motion learners)
→ say a new TTS sentence → evaluate on the held-out 10 % → ``DIR/demo.mp4``,
``DIR/summary.txt`` and ``DIR/report/report.html``. Every stage is the same
code a user runs; re-running resumes.
"""

from __future__ import annotations

import time
from pathlib import Path

from .progress import info

SENTENCE = "Hello! I am a talking head made on your computer, without any download. Papa bought a big map."
ENGINE = "speech2lip"
WHY = ("the engine that looks best within the demo's 8 minutes (bench/RESULTS.md \"which engine the demo uses\"): "
       "on this synthetic speaker's held-out frames speech2lip scored PSNR 34.7 vs viseme 31.8 dB, mouth 26.1 vs "
       "24.3 dB, LMD 1.81 vs 2.29 px, sharpness (CPBD) 0.11 vs 0.02 (real 0.09), 36 vs 15 FPS; the viseme "
       "engine's mouth followed the audio a little closer (aperture r 0.89 vs 0.84) but its face is soft")


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def demo(out_dir: str | Path = "demo", minutes: float = 8.0, seconds: float = 40.0, size: int = 512,
         device: str = "auto", force: bool = False, engine: str = ENGINE) -> Path:
    from .prepare.pipeline import PrepareConfig, prepare
    from .say.pipeline import say
    from .synth.speaker import synthesize_speaker
    from .train.pipeline import train

    from .outputs import output_dir

    out, _ = output_dir(out_dir, ("summary.txt", "speaker.truth.npz"), force, "demo")
    out.mkdir(parents=True, exist_ok=True)
    times = {}
    t = time.perf_counter()
    video = out / "speaker.mp4"
    if not video.exists():
        synthesize_speaker(video, seconds=seconds, seed=0, size=size)
    times["synth"] = time.perf_counter() - t
    t = time.perf_counter()
    subject = prepare(video, out / "subject", config=PrepareConfig(size=size))
    times["prepare"] = time.perf_counter() - t
    t = time.perf_counter()
    model = train(subject, engine, out / f"model_{engine}", minutes=minutes, device=device)
    times["train"] = time.perf_counter() - t
    t = time.perf_counter()
    stats = say(model, out / "demo.mp4", text=SENTENCE, device=device)
    times["say"] = time.perf_counter() - t
    t = time.perf_counter()
    from .evaluate.self_driven import evaluate_model

    m = evaluate_model(model, "val", out / "report", device=device)
    times["evaluate"] = time.perf_counter() - t
    lines = [f"talkinghead demo in {out}", "",
             f"speaker video : {video} (synthetic, {seconds:.0f} s, ground truth beside it)",
             f"subject       : {subject}", f"model         : {model}",
             f"engine        : {engine}" + (f" -- {WHY}" if engine == ENGINE else " (asked for)"),
             f"result        : {out / 'demo.mp4'} ({stats['seconds']:.1f} s, rendered at {stats['fps']:.1f} FPS)",
             f"sentence      : {SENTENCE}",
             f"held-out      : PSNR {m['psnr']:.2f} dB, mouth PSNR {m['psnr_mouth']:.2f} dB, SSIM {m['ssim']:.3f}, "
             f"aperture r {_f(m['aperture_r'])} -> {out / 'report' / 'report.html'}", ""]
    lines += [f"{k:<8} {v:7.1f} s" for k, v in times.items()]
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    info("\n".join(lines))
    return out / "demo.mp4"

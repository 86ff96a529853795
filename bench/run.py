"""Benchmark harness: prepare → train (time budget) → evaluate, engines side by side.

    python bench/run.py VIDEO --engines viseme,nerf,speech2lip --minutes 30 [--splits last,middle] [--drive WAV]
                         [--work DIR]

An engine spec is ``name`` or ``name:key=value,key=value`` (config overrides,
e.g. ``viseme:augment=false`` for the ablation); each gets its own column.
Everything lives under ``--work`` (default ``bench_runs/<video stem>``): the
subject is prepared once; a model that finished training is reused, so a
later run can add an engine and still print one table; evaluation always
re-runs. Self-driven metrics are on a held-out split: ``last`` (the last 10 %) and/or ``middle`` (10 % from
45 % of the video, the rest trained on: a second subject directory that links the first one's files).
Engines that render the mouth from landmarks are evaluated three ways, side by side: the expression learner
alone (before rendering), the renderer alone (``--lips tracked``: the held-out frames' own mouths) and end to
end. Cross-driven columns (viseme consistency, A/V lag) appear with ``--drive``.
The table is printed and written to ``WORK/results.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROWS = [("learner_r", "learner: aperture r"), ("learner_std", "learner: aperture std ratio"),
        ("learner_lmd", "learner: LMD (px @512²)"), ("tracked_r", "renderer alone (tracked mouths): aperture r"),
        ("tracked_std", "renderer alone: aperture std ratio"), ("tracked_mouth", "renderer alone: PSNR mouth (dB)"),
        ("aperture_r", "end to end: aperture r"), ("aperture_std_ratio", "end to end: aperture std ratio"),
        ("requested", "end to end: rendered vs requested aperture r / std"), ("psnr", "PSNR (dB)"), ("psnr_mouth", "PSNR mouth (dB)"), ("psnr_generated", "PSNR generated pixels (dB)"),
        ("copied_fraction", "copied fraction"), ("ssim", "SSIM"), ("lmd", "LMD (px @512²)"),
        ("aperture_r", "aperture r"), ("blink_f1", "blink F1"), ("cpbd", "CPBD rendered / real"),
        ("flicker", "flicker"), ("seam", "seam (rendered / real)"), ("fps", "render FPS"), ("rtf", "RTF"),
        ("peak_ram_mb", "peak RAM (MB)")]
CROSS = [("viseme_consistency", "viseme consistency (drive)"), ("av_lag_ms", "A/V lag ms (drive)")]


def parse_spec(spec: str) -> tuple[str, str, list[str]]:
    name, _, rest = spec.partition(":")
    sets = [s for s in rest.split(",") if s]
    label = name if not sets else f"{name}[{' '.join(sets)}]"
    return name, label, sets


def middle_split(subject: Path, out: Path, start: float = 0.45, fraction: float = 0.1) -> Path:
    """A subject directory whose held-out frames are ``fraction`` of the video from ``start`` (the rest trains),
    its files linked to ``subject``'s (same frames, tracks and audio; another key, so models never mix)."""
    import json

    meta = json.loads((subject / "subject.json").read_text())
    n = int(meta["n_frames"])
    a, b = int(start * n), int((start + fraction) * n)
    out.mkdir(parents=True, exist_ok=True)
    for f in subject.iterdir():
        if f.name != "subject.json" and not (out / f.name).exists():
            (out / f.name).symlink_to(f.resolve())
    meta.update(split={"train": [0, n], "val": [a, b]}, key=f"{meta['key']}-mid{int(start * 100)}")
    (out / "subject.json").write_text(json.dumps(meta, indent=1))
    return out


def fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, dict):
        if "rendered" in v:
            return f"{fmt(v['rendered'])} / {fmt(v.get('real'))}"
        if "std_ratio" in v:
            return f"{fmt(v['r'])} / {fmt(v['std_ratio'])}"
        return fmt(v.get("mean"))
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def versions() -> str:
    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = "?"
    return (f"{datetime.date.today()} · commit {commit} · {platform.machine()} {os.cpu_count()} cores · "
            f"Python {platform.python_version()} · torch {torch.__version__} · "
            f"{'CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU only'}")


def three_way(model: Path, work: Path, device: str) -> dict:
    """The learner alone (``metrics.motion``) and the renderer alone (``evaluate --lips tracked``), for engines
    that can render given mouths."""
    import json

    from talkinghead.engines import get_engine
    from talkinghead.evaluate.self_driven import evaluate_model

    out = {}
    m = json.loads((work / f"eval_{model.name}" / "metrics.json").read_text()).get("motion") or {}
    out.update(learner_r=m.get("expression_aperture_r"), learner_std=m.get("expression_std_ratio"),
               learner_lmd=m.get("expression_lmd"))
    if get_engine(json.loads((model / "model.json").read_text())["engine"]).landmark_lips:
        t = evaluate_model(model, "val", work / f"eval_{model.name}_tracked", device=device, lips="tracked",
                           force=True)
        out.update(tracked_r=t["aperture_r"], tracked_std=t["aperture_std_ratio"], tracked_mouth=t["psnr_mouth"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video")
    ap.add_argument("--engines", default="viseme")
    ap.add_argument("--splits", default="last", help="held-out splits: last, middle or both (last,middle)")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--drive", help="a wav for cross-driven columns")
    ap.add_argument("--work", help="working directory (default bench_runs/<video stem>)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--device", default="auto")
    a = ap.parse_args()
    from talkinghead.errors import InputError
    from talkinghead.evaluate.cross import evaluate_video
    from talkinghead.evaluate.self_driven import evaluate_model
    from talkinghead.prepare.pipeline import PrepareConfig, prepare
    from talkinghead.say.pipeline import say
    from talkinghead.train.pipeline import train

    work = Path(a.work or Path("bench_runs") / Path(a.video).stem)
    work.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        first = prepare(a.video, work / "subject", config=PrepareConfig(size=a.size))
        prep_s = time.perf_counter() - t
        subjects = {"last": first, "middle": work / "subject_middle"}
        cols = {}
        for split in a.splits.split(","):
            subject = subjects[split] if split == "last" else middle_split(Path(first), subjects[split])
            for spec in a.engines.split(","):
                name, label, sets = parse_spec(spec)
                model = work / ("model_" + "".join(c if c.isalnum() else "_" for c in label) +
                                ("" if split == "last" else f"_{split}"))
                t = time.perf_counter()
                train(subject, name, model, minutes=a.minutes, device=a.device,
                      overrides=None if (model / "model.json").exists() else sets)
                train_s = time.perf_counter() - t
                m = evaluate_model(model, "val", work / f"eval_{model.name}", device=a.device, force=True)
                m.update(three_way(model, work, a.device))
                if a.drive:
                    out = work / f"drive_{model.name}.mp4"
                    say(model, out, audio=a.drive, device=a.device, force=True)
                    cm = evaluate_video(out, audio=a.drive, report_dir=work / f"cross_{model.name}", force=True)
                    m.update(viseme_consistency=cm["viseme_consistency"], av_lag_ms=cm["av_lag_ms"])
                m["_train_min"] = train_s / 60
                cols[f"{label}, {split} 10 %"] = m
    except InputError as e:
        sys.exit(f"error: {e}")
    rows = ROWS + (CROSS if a.drive else [])
    labels = list(cols)
    lines = [f"# bench/run.py {Path(a.video).name}: {a.minutes:g}-minute training budget per engine",
             "", versions(), f"prepare: {prep_s:.0f} s (0 when reused); held-out splits: {a.splits}", "",
             "| metric | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for key, title in rows:
        lines.append(f"| {title} | " + " | ".join(fmt(cols[c].get(key)) for c in labels) + " |")
    lines.append("| train wall (min, this run) | " + " | ".join(f"{cols[c]['_train_min']:.1f}" for c in labels) + " |")
    text = "\n".join(lines)
    print(text)
    (work / "results.md").write_text(text + "\n")


if __name__ == "__main__":
    main()

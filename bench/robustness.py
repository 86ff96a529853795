"""The kinds of input people bring, each prepared from scratch: one table for bench/RESULTS.md.

    python bench/robustness.py [--work DIR] [--seconds 8] [--long-minutes 10] [--kinds a,b,...]

A synthetic speaker (``synth``) is turned into each kind with PyAV
(``synth/variants.py``): portrait, landscape 1080p, 22.1 / 30 / 60 fps, stereo
AAC at 44.1 / 48 kHz, no soundtrack + ``--audio``, stored rotated with a display
tag, and a long 1080p video (``--long-minutes``, 0 to skip). Each is prepared
in its own process (``talkinghead prepare``, the CLI a user runs); the table
gives frames prepared, face found, the real-time factor (wall / video length,
making the video not counted), the process's peak memory and the stderr lines
besides progress bars. Then, unless ``--no-say``, a tiny viseme model is trained
on each subject (``--train-steps``, enough to run, not to look good) and
``talkinghead say`` answers a drive file of another format each time (mp3,
m4a, flac, wav in turn): the table gives what it wrote (frame size, frames,
fps, a soundtrack or not) and its real-time factor. Drive files are also
decoded and turned into features on their own, as ``say --audio`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

KINDS = {  # name: (width, height, fps, audio rate or None, channels, rotate)
    "portrait 576x768": (576, 768, 25.0, 16000, 1, 0),
    "landscape 1920x1080": (1920, 1080, 25.0, 16000, 1, 0),
    "22.1 fps 1280x720": (1280, 720, 22.1, 16000, 1, 0),
    "30 fps 1280x720": (1280, 720, 30.0, 16000, 1, 0),
    "60 fps 1280x720": (1280, 720, 60.0, 16000, 1, 0),
    "stereo 44.1 kHz": (1280, 720, 25.0, 44100, 2, 0),
    "stereo 48 kHz": (1280, 720, 25.0, 48000, 2, 0),
    "no soundtrack + --audio": (1280, 720, 25.0, None, 1, 0),
    "rotated 90° (phone)": (1280, 720, 30.0, 44100, 2, 90),
}


def cli(*argv) -> dict:
    """``talkinghead ARGV`` in its own process → exit code, wall seconds, peak RSS (MB), stderr lines."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "talkinghead.cli", *map(str, argv)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env=dict(os.environ, TALKINGHEAD_QUIET="1"))
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    return {"rc": os.waitstatus_to_exitcode(status), "wall": time.perf_counter() - t0,
            "rss_mb": usage.ru_maxrss / 1024, "stderr": [ln for ln in err.splitlines() if ln.strip()]}


def run_prepare(video: Path, out: Path, audio: Path | None) -> dict:
    return cli("prepare", video, "-o", out, "--force", *(["--audio", audio] if audio else []))


def say_run(subject: Path, drive: Path, steps: int) -> dict:
    """Train a tiny viseme model on ``subject``, answer ``drive`` with ``say``: what the mp4 holds."""
    import av

    from talkinghead.io.video import probe

    model, out = subject.with_name(subject.name + "_viseme"), subject.with_name(subject.name + "_say.mp4")
    r = cli("train", subject, "--engine", "viseme", "--steps", steps, "-o", model, "--force")
    if r["rc"] != 0:
        return {"say": f"train exit {r['rc']}", "say_stderr": r["stderr"]}
    r = cli("say", model, "--audio", drive, "-o", out, "--force")
    if r["rc"] != 0:
        return {"say": f"say exit {r['rc']}", "say_stderr": r["stderr"]}
    v = probe(out)
    with av.open(str(out)) as c:
        frames = sum(1 for p in c.demux(c.streams.video[0]) if p.size)
    return {"say": f"{v.width}x{v.height}, {frames} frames at {v.fps:g} fps, {'sound' if v.has_audio else 'NO sound'}"
                   f", from {drive.suffix[1:]}", "say_rtf": r["wall"] / (frames / v.fps), "say_stderr": r["stderr"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="bench_runs/robustness")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--long-minutes", type=float, default=10.0)
    ap.add_argument("--kinds", help="comma-separated subset of the kinds' names (prefixes)")
    ap.add_argument("--no-say", dest="say", action="store_false", help="prepare only")
    ap.add_argument("--train-steps", type=int, default=30)
    a = ap.parse_args()
    from talkinghead.audio.features import features_for_wav
    from talkinghead.audio.wav import load_audio, write_wav
    from talkinghead.io.video import probe
    from talkinghead.synth.speaker import synthesize_speaker
    from talkinghead.synth.variants import write_audio, write_variant

    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    speaker = work / "speaker.mp4"
    if not speaker.exists():
        synthesize_speaker(speaker, seconds=a.seconds, seed=4, size=512)
    wav = load_audio(speaker)
    write_wav(work / "speech.wav", wav)
    kinds = dict(KINDS)
    if a.long_minutes > 0:
        kinds[f"{a.long_minutes:g}-min 1920x1080"] = (1920, 1080, 25.0, 16000, 1, 0)
    if a.kinds:
        want = a.kinds.split(",")
        kinds = {k: v for k, v in kinds.items() if any(k.startswith(w) for w in want)}
    drives = [write_audio(wav, work / f"drive.{ext}") for ext in ("mp3", "m4a", "flac")] + [work / "speech.wav"]
    rows = []
    for i, (name, (w, h, fps, rate, ch, rot)) in enumerate(kinds.items()):
        video = work / (name.split()[0].replace(".", "_") + f"_{w}x{h}_{fps:g}_{rate}_{rot}.mp4")
        seconds = a.long_minutes * 60 if "min " in name else None
        if not video.exists():
            write_variant(speaker, video, (w, h), fps, seconds=seconds, audio_rate=rate, channels=ch, rotate=rot)
        info = probe(video)
        out = work / (video.stem + "_subject")
        r = run_prepare(video, out, work / "speech.wav" if rate is None else None)
        row = {"kind": name, "input": f"{info.width}x{info.height} {info.fps:g} fps, rot {info.rotation}, "
                                      f"{info.duration:.0f} s", "rc": r["rc"], "rss_mb": r["rss_mb"],
               "rtf": r["wall"] / info.duration, "stderr": r["stderr"]}
        if r["rc"] == 0:
            meta = json.loads((out / "subject.json").read_text())
            row.update(frames=meta["n_frames"], face=meta["stats"]["face_found"])
            if a.say:
                row.update(say_run(out, drives[i % len(drives)], a.train_steps))
        rows.append(row)
        print(json.dumps(row), flush=True)
    for path in drives[:3]:
        ext = path.suffix[1:]
        t0 = time.perf_counter()
        feats = features_for_wav(path, 25.0)
        rows.append({"kind": f"{ext} drive (44.1 kHz stereo)", "input": f"{len(wav) / 16000:.1f} s of speech",
                     "rc": 0, "frames": len(feats["visemes"]), "rtf": (time.perf_counter() - t0) / (len(wav) / 16000),
                     "stderr": []})
        print(json.dumps(rows[-1]), flush=True)
    print("\n| input kind | input | exit | frames prepared | face found | RTF | peak RSS (MB) | say wrote | say RTF | "
          "other stderr lines |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['kind']} | {r['input']} | {r['rc']} | {r.get('frames', '—')} | "
              f"{r['face']:.0%} | " if "face" in r else f"| {r['kind']} | {r['input']} | {r['rc']} | "
              f"{r.get('frames', '—')} | — | ", end="")
        say_rtf = f"{r['say_rtf']:.2f}" if "say_rtf" in r else "—"
        print(f"{r['rtf']:.2f} | {r.get('rss_mb', float('nan')):.0f} | {r.get('say', '—')} | {say_rtf} | "
              f"{'; '.join(r['stderr'] + r.get('say_stderr', [])) or 'none'} |")


if __name__ == "__main__":
    main()

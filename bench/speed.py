"""`say` speed and training speed of trained models, one table (any engine, any device).

    python bench/speed.py MODEL [MODEL ...] [--device auto] [--seconds 20] [--batch 8] [--precision auto]
                          [--pose audio|train|still]
                          [--lips engine|audio]

Per model: `say` of a TTS drive of ``--seconds`` into the source video's size (512² for the benchmark
subjects), whole call (load, drive, render, encode) and the render+encode rate `say` reports; training
steps per second of each phase from the model's ``train_log.csv`` (as it was trained, on its device).
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path


def train_rates(model: Path) -> str:
    """``phase steps/s`` of each phase, from the last row of each phase in train_log.csv."""
    last: dict[str, dict] = {}
    with open(model / "train_log.csv", newline="") as f:
        for row in csv.DictReader(f):
            last[row["phase"]] = row
    return ", ".join(f"{p} {float(r['step']) / max(float(r['seconds']), 1e-9):.1f}" for p, r in last.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--pose", default=None)
    ap.add_argument("--lips", default=None, help="engine or audio (default: the model's own default)")
    a = ap.parse_args()
    os.environ.setdefault("TALKINGHEAD_QUIET", "1")
    import json

    from talkinghead.audio.tts import synthesize
    from talkinghead.audio.wav import write_wav
    from talkinghead.say.pipeline import say

    rows = ["| model | engine | say frames | whole call FPS | render+encode FPS | training steps/s per phase |",
            "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        tts = synthesize("The quick brown fox jumps over the lazy dog. " * 12).resampled(16000)
        wav = Path(tmp) / "drive.wav"
        write_wav(wav, tts.audio[: int(a.seconds * 16000)])
        for m in map(Path, a.models):
            engine = json.loads((m / "model.json").read_text())["engine"]
            t = time.perf_counter()
            s = say(m, Path(tmp) / "out.mp4", audio=wav, device=a.device, batch_size=a.batch,
                    precision=a.precision, pose=a.pose, lips=a.lips, force=True)
            whole = s["frames"] / (time.perf_counter() - t)
            rows.append(f"| {m} | {engine} | {s['frames']} | {whole:.1f} | {s['fps']:.1f} | {train_rates(m)} |")
    from talkinghead.nn.allocator import reuse_freed_memory

    print(f"# allocator: {'freed memory kept (nn/allocator.py)' if reuse_freed_memory() else 'the system default'}")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

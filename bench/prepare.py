"""Benchmark `prepare`: per-stage wall time and peak RSS on one video.

    python bench/prepare.py VIDEO [--size 512] [--fps 25]

Target on a 2-core CPU: a 60 s 512² 25 fps video in ≤ 60 s (≤ 1× real time),
peak RAM ≤ 3 GB. Peak RSS counts this process and its worker (phone recognition).
"""

from __future__ import annotations

import argparse
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("video")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--fps", type=float, default=25.0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "subject"
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "talkinghead.cli", "prepare", a.video, "-o", str(out),
                            "--size", str(a.size), "--fps", str(a.fps)],
                           stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        if r.returncode:
            sys.exit(r.stderr.strip().splitlines()[-1])
        import json

        meta = json.loads((out / "subject.json").read_text())
        frames_mb = sum(p.stat().st_size for p in (out / "frames").iterdir()) / 1e6
        masks_mb = sum(p.stat().st_size for p in (out / "masks").iterdir()) / 1e6
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    table = [ln for ln in r.stderr.splitlines() if ln and not ln.startswith(("W0000", "INFO", "WARNING"))
             and "f/s]" not in ln and ln.strip()]
    print(f"machine: {platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores, "
          f"python {platform.python_version()}")
    print(f"video: {a.video}  ({meta['duration']:.1f} s at {a.fps:g} fps -> {meta['n_frames']} frames, "
          f"{a.size}²)")
    print("\n".join(table[-12:]))
    print(f"\nwall {wall:.1f} s = {wall / meta['duration']:.2f}× real time; "
          f"peak RSS (largest process) {peak:.0f} MB; frames {frames_mb:.1f} MB, masks {masks_mb:.1f} MB")


if __name__ == "__main__":
    main()

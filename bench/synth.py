"""Benchmark ``talkinghead synth``: 10 s of synthetic speaker at 256² and 512².

    python bench/synth.py [--seconds 10] [--sizes 256 512]

Prints one row per size: wall seconds and how many times faster than real
time. A short warm-up first pays the one-off costs (FaceMesh detection on
the photo, espeak-ng start-up) and is reported separately.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    os.environ.setdefault("TALKINGHEAD_QUIET", "1")

    from talkinghead.synth import synthesize_speaker

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        synthesize_speaker(Path(tmp) / "warmup.mp4", seconds=1.0, size=64, seed=args.seed)
        init = time.perf_counter() - t0
        for size in args.sizes:
            t0 = time.perf_counter()
            synthesize_speaker(Path(tmp) / f"s{size}.mp4", seconds=args.seconds, size=size, seed=args.seed)
            dt = time.perf_counter() - t0
            rows.append((f"{size}x{size}", dt, args.seconds / dt))
    print(f"synth benchmark: {args.seconds:g} s of video, {os.cpu_count()} CPU cores "
          f"(warm-up incl. FaceMesh + TTS start: {init:.2f} s)")
    print(f"{'size':>9}  {'seconds':>8}  {'x real time':>11}")
    for name, dt, speed in rows:
        print(f"{name:>9}  {dt:8.2f}  {speed:11.2f}")


if __name__ == "__main__":
    main()

"""Drive a trained model with other people's speech and measure whether its mouth follows theirs.

    python bench/other_voices.py MODEL CLIP.mp4 [CLIP.mp4 ...] [--text "..."]

For each clip: ``say --audio CLIP`` (the clip's own soundtrack), track the rendered video with
FaceMesh, and print the Pearson r of its mouth aperture with the real speaker's tracked aperture,
frame by frame. ``--text``: also say an espeak-ng sentence and print the cross-driven viseme
consistency (``evaluate --video``). One table, markdown.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("clips", nargs="+")
    ap.add_argument("--text", default="Papa bought a big map. Ah, the open sea! Bob, be quiet.")
    a = ap.parse_args()
    os.environ.setdefault("TALKINGHEAD_QUIET", "1")
    import numpy as np

    from talkinghead.errors import TalkingHeadError
    from talkinghead.evaluate.analyze import analyze_video
    from talkinghead.evaluate.cross import evaluate_video
    from talkinghead.evaluate.temporal import pearson
    from talkinghead.say.pipeline import say

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for clip in a.clips:
                out = Path(tmp) / f"{Path(clip).stem}.mp4"
                say(a.model, out, audio=clip)
                rend, real = analyze_video(out, require_face=False), analyze_video(clip, fps=25, require_face=False)
                n = min(len(rend.aperture), len(real.aperture))
                rows.append((f"{Path(clip).name}: aperture r with the real speaker",
                             pearson(rend.aperture[:n], real.aperture[:n])))
            out = Path(tmp) / "text.mp4"
            say(a.model, out, text=a.text)
            m = evaluate_video(out, report_dir=Path(tmp) / "text_report")
            rows.append(("espeak-ng text: viseme consistency", m["viseme_consistency"]["mean"]))
        except TalkingHeadError as e:
            sys.exit(f"error: {e}")
    print(f"| drive ({Path(a.model).name}) | value |\n|---|---|")
    for name, v in rows:
        print(f"| {name} | {'—' if v is None or not np.isfinite(v) else f'{v:.2f}'} |")


if __name__ == "__main__":
    main()

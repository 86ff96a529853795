"""The motion learners on a prepared subject: two held-out splits, other voices, one table.

    python bench/motion.py SUBJECT [--minutes 3] [--voices SUBJECT ...] [--seeds 0,1]

For each split (the subject's own last 10 %, and the middle 10 % with everything else trained on) and
seed: ``train-motion`` on the CPU for ``--minutes``, then on the held-out frames the expression
learner's aperture r and LMD (before rendering) and the head learner's motion metrics
(``motion/metrics.py``). ``--voices``: other prepared subjects (e.g. the English clips) drive the
expression learner; r of the predicted mouth with each speaker's tracked one.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def voice_r(model, subject, other) -> float:
    """Aperture r of the mouth ``model`` predicts from ``other``'s audio with ``other``'s tracked mouth."""
    from talkinghead.geometry import face as mesh

    af = other.audio_features
    coef = model.mouth_codes(af["visemes"], af["mel_windows"].astype(np.float32))
    base = subject.tracks["canon_landmarks"][[subject.neutral_frame()] * len(coef)].astype(np.float64)
    lm = model.expression.pca.decode(coef, base)
    return float(np.corrcoef(mesh.mouth_aperture(lm), other.tracks["aperture"])[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("subject")
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--voices", nargs="*", default=[])
    ap.add_argument("--seeds", default="0")
    a = ap.parse_args()
    os.environ.setdefault("TALKINGHEAD_QUIET", "1")
    import torch

    from talkinghead.engines.base import Budget, EngineConfig
    from talkinghead.motion import MotionModel
    from talkinghead.motion.metrics import expression_metrics, head_metrics
    from talkinghead.subject import Subject
    from talkinghead.train.trainer import Trainer

    torch.set_num_threads(2)
    s = Subject.open(a.subject)
    n = s.n_frames
    mid = np.arange(int(0.45 * n), int(0.55 * n))
    splits = {"last 10 %": (s.split("train"), s.split("val")),
              "middle 10 %": (np.setdiff1d(np.arange(n), mid), mid)}
    voices = [Subject.open(v) for v in a.voices]
    cols, rows = [], {}
    for name, (tr, va) in splits.items():
        for seed in (int(x) for x in a.seeds.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                Trainer(None, s, EngineConfig(seed=seed), Budget(minutes=a.minutes), "cpu", tmp).fit_motion(
                    tr, va[:8])
                wall = time.perf_counter() - t0
                m = MotionModel.load(tmp)
            col = f"{name}, seed {seed}"
            cols.append(col)
            got = {"train wall (min)": wall / 60, **{f"expression {k}": v for k, v in
                                                    expression_metrics(m, s, va).items()},
                   **head_metrics(m, s, va, tr, seed)}
            for v in voices:
                got[f"expression r, {v.path.name}'s voice"] = voice_r(m, s, v)
            for k, v in got.items():
                rows.setdefault(k, {})[col] = v
    print(f"| metric ({s.path.name}, {a.minutes:g} CPU-min) | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for k, vals in rows.items():
        print(f"| {k} | " + " | ".join(f"{vals[c]:.3g}" if c in vals and np.isfinite(vals[c]) else "—" for c in cols)
              + " |")


if __name__ == "__main__":
    main()

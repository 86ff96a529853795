"""The rhythm engine's renderer on held-out frames, the whole generated head crop compared with the real one:
as it renders (texture from the most frontal reference, the matched reference nearest in pose), and the
novel-pose check of the rhythm issue: each held-out frame rendered at its own tracked pose from a training
frame at (nearly) the same pose, then from one about 10° away (texture and matched frame both), PSNR drop.

    python bench/rhythm.py MODEL_DIR [--frames 40] [--away 10]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--away", type=float, default=10.0)
    a = ap.parse_args()
    os.environ.setdefault("TALKINGHEAD_QUIET", "1")
    from talkinghead.engines.modeldir import load_engine
    from talkinghead.engines.rhythm.data import RhythmData
    from talkinghead.engines.rhythm.trainer import drawings, images, projections
    from talkinghead.geometry.pose import rotation_angle_deg
    from talkinghead.metrics import psnr
    from talkinghead.nn import to_uint8

    eng = load_engine(a.model, "cpu")
    subject, d = eng.subject, eng.data
    R = subject.tracks["rotation"].astype(np.float64)
    train, val = subject.split("train"), subject.split("val")
    targets = val[np.linspace(0, len(val) - 1, min(a.frames, len(val))).astype(int)]
    textures: dict[int, RhythmData] = {}

    @torch.no_grad()
    def render(i: int, ref: int | None) -> float:
        """PSNR of frame i's head crop rendered with texture and matched frame ``ref`` (None: as the engine does)."""
        src = d if ref is None else textures.setdefault(ref, RhythmData(subject, d.size, ref))
        uv, z = d.mesh(i)
        draw, proj = src.inputs(uv, z)
        if ref is None:
            from talkinghead.engines.rhythm.matcher import match, pose_cost

            m = eng.refs[match(pose_cost(d.rot[[i]], d.trans[[i]], d.rot[eng.refs], d.trans[eng.refs]))[0]]
        else:
            m = ref
        matched = images(src.crop(int(m))[None], "cpu")
        mdraw = drawings(src.drawing(d.mesh(int(m))[0])[None], "cpu")
        out = eng.gen(eng.ref_emb, drawings(draw[None], "cpu"), projections(proj[None], "cpu"), matched, mdraw)
        return psnr(to_uint8(out["image"], -1)[0], d.crop(int(i)))

    rows = {"as rendered": [], "reference at its pose": [], f"reference ~{a.away:g}° away": []}
    angles = {"near": [], "far": []}
    for i in targets:
        ang = rotation_angle_deg(R[train], R[i][None])
        near, far = train[np.argmin(ang)], train[np.argmin(np.abs(ang - a.away))]
        angles["near"].append(float(ang.min())), angles["far"].append(float(ang[train == far][0]))
        rows["as rendered"].append(render(int(i), None))
        rows["reference at its pose"].append(render(int(i), int(near)))
        rows[f"reference ~{a.away:g}° away"].append(render(int(i), int(far)))
    print(f"held-out frames: {len(targets)}; reference angle near {np.mean(angles['near']):.1f}°, "
          f"far {np.mean(angles['far']):.1f}°\n")
    print("| head crop rendered | PSNR (dB) |\n|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {np.mean(v):.2f} |")
    drop = np.mean(rows["reference at its pose"]) - np.mean(rows[f"reference ~{a.away:g}° away"])
    print(f"\nnovel-pose PSNR drop: {drop:.2f} dB (target <= 2)")


if __name__ == "__main__":
    main()

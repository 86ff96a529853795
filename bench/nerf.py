"""Benchmark the nerf engine's renderer: frames per second at several resolutions, CPU and CUDA.

    python bench/nerf.py [MODEL_DIR/weights.pt] [--device auto|cpu|cuda] [--sizes 256,512] [--frames 20]

Times ``TalkingNeRF.render_image`` (head volume rendering with the occupancy
grid + torso + composite over the plate; no video encoding) for varying audio
conditions. With a trained model's ``weights.pt`` the occupancy grid is the
trained one; without, an untrained model with a typical head box is used and
nothing is pruned (the worst case). Needs only torch and numpy, so the file
and a ``weights.pt`` can be copied to a GPU machine alone.
Paper target (RAD-NeRF on a V100): ≥ 40 FPS at 512².
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from talkinghead.engines.nerf.engine import NerfConfig, NerfEngine, build_model  # noqa: E402
from talkinghead.engines.nerf.model import Frame  # noqa: E402


def load(path: str | None, device: str):
    if path:
        cfg, model, ck = NerfEngine.load_weights(Path(path), device)
        K, (R, t) = np.asarray(ck["K"]), ck["sample_pose"]
        return cfg, model, K, np.asarray(R), np.asarray(t), "trained"
    cfg = NerfConfig().resolved("cpu")
    aabb = (-13.4, -13.6, -6.9, 13.4, 16.7, 9.3)  # a typical head box (cm), as prepare + head_aabb give
    model = build_model(cfg, None, 200.0, aabb=aabb, n_frames=100).to(device).eval()
    f = 6.0 * cfg.size
    K = np.array([[f, 0, cfg.size / 2], [0, f, cfg.size / 2], [0, 0, 1]], np.float32)
    return cfg, model, K, np.eye(3, dtype=np.float32), np.array([0, 0, 200], np.float32), "untrained"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("weights", nargs="?")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--frames", type=int, default=20)
    a = ap.parse_args()
    dev = ("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device
    cfg, model, K0, R, t, kind = load(a.weights, dev)
    name = torch.cuda.get_device_name(0) if dev.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"# nerf render speed, {kind} model, trained at {cfg.size}², on {name}, torch {torch.__version__}")
    occ = float(model.occupancy.occupied().float().mean())
    print(f"# occupancy grid {model.occupancy.resolution}³: {occ:.0%} occupied; {cfg.n_samples} samples/ray\n")
    print("| render size | ms / frame | FPS | head samples evaluated / frame |\n|---|---|---|---|")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        windows = torch.rand(a.frames, 8, 16, model.audio_net.in_dim, generator=gen).to(dev)
        codes = model.audio_net(windows)
        for size in (int(s) for s in a.sizes.split(",")):
            K = torch.from_numpy(np.asarray(K0, np.float32).copy()).to(dev)
            K[:2] *= size / cfg.size
            plate = torch.full((size, size, 3), 0.5, device=dev)
            frames = [Frame(K=K, R=torch.from_numpy(R).to(dev), t=torch.from_numpy(t).to(dev), audio=c,
                            eye=torch.ones(1, device=dev), code=0) for c in codes]
            model.render_image(frames[0], size, plate)  # warm-up
            if dev.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for f in frames:
                model.render_image(f, size, plate)
            if dev.startswith("cuda"):
                torch.cuda.synchronize()
            dt = (time.perf_counter() - t0) / len(frames)
            ys, xs = torch.meshgrid(torch.arange(size, device=dev), torch.arange(size, device=dev), indexing="ij")
            px = torch.stack([xs, ys], -1).reshape(-1, 2).float()
            n = model.render_head(frames[0], px)["n_evaluated"]
            print(f"| {size}² | {dt * 1000:.1f} | {1 / dt:.1f} | {n:,} |")


if __name__ == "__main__":
    main()

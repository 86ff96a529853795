"""Benchmark `say` speed: the viseme generator per backend, then `say` end to end.

    python bench/say.py [MODEL_DIR] [--seconds 20] [--batch 8]

Without MODEL_DIR it makes its own: a 12 s synthetic speaker at 512², prepared,
and a viseme model with the default 256² crop trained for a few steps (speed
does not depend on how well the weights are trained). Target on a 2-core CPU:
≥ 25 FPS end to end at 256² crop into 512² frames.

Backends timed on the same input batches: eager (contiguous), channels-last
(what `say` uses), torch.compile, and ONNX Runtime when `onnxruntime` and
`onnx` are importable (they are not project dependencies).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def make_model(tmp: Path) -> Path:
    from talkinghead.prepare.pipeline import PrepareConfig, prepare
    from talkinghead.synth.speaker import synthesize_speaker
    from talkinghead.train.pipeline import train

    video = synthesize_speaker(tmp / "speaker.mp4", seconds=12, seed=0, size=512)
    subject = prepare(video, tmp / "subject", config=PrepareConfig(size=512))
    return train(subject, "viseme", tmp / "model", steps=4, device="cpu", overrides=["gan_start=100000"])


def time_fn(fn, batches, repeat: int = 3) -> float:
    """Frames per second of ``fn`` over ``batches`` (best of ``repeat`` passes, after one warm-up)."""
    fn(*batches[0])
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for b in batches:
            fn(*b)
        best = min(best, time.perf_counter() - t)
    return sum(len(b[0]) for b in batches) / best


def backends(gen, batches) -> list[tuple[str, float, str]]:
    rows = []
    with torch.inference_mode():
        gen.eval().to(memory_format=torch.contiguous_format)
        plain = [(d.contiguous(), a, m) for d, a, m in batches]
        rows.append(("eager fp32", time_fn(lambda d, a, m: gen(d, a, m, return_mouth=False), plain), ""))
        gen.for_inference()
        rows.append(("channels-last (say default)", time_fn(lambda d, a, m: gen(d, a, m, return_mouth=False),
                                                           batches), ""))
    try:
        comp = torch.compile(gen)
        with torch.inference_mode():
            rows.append(("torch.compile + channels-last",
                         time_fn(lambda d, a, m: comp(d, a, m, return_mouth=False), batches), ""))
    except Exception as e:  # noqa: BLE001 - a benchmark reports what failed
        rows.append(("torch.compile + channels-last", float("nan"), type(e).__name__))
    try:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "gen.onnx"

            class Face(torch.nn.Module):
                def __init__(self, g):
                    super().__init__()
                    self.g = g

                def forward(self, d, a, m):
                    return self.g(d, a, m, return_mouth=False)[0]

            d, a, m = batches[0]
            torch.onnx.export(Face(gen.eval()), (d.contiguous(), a, m), str(path), dynamo=False,
                              input_names=["d", "a", "m"], opset_version=17)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = torch.get_num_threads()
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            np_b = [(d.contiguous().numpy(), a.numpy(), m.numpy()) for d, a, m in batches]
            rows.append(("ONNX Runtime", time_fn(lambda d, a, m: sess.run(None, {"d": d, "a": a, "m": m}), np_b), ""))
    except Exception as e:  # noqa: BLE001
        rows.append(("ONNX Runtime", float("nan"), f"{type(e).__name__}: {str(e)[:60]}"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--batch", type=int, default=8)
    a = ap.parse_args()
    os.environ.setdefault("TALKINGHEAD_QUIET", "1")
    from talkinghead.engines.modeldir import load_engine

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(a.model) if a.model else make_model(Path(tmp))
        eng = load_engine(model, "cpu")
        cfg, n = eng.cfg, 96
        gen = eng.gen
        rng = np.random.default_rng(0)
        from talkinghead.engines.viseme.render import Compositor

        store, comp = eng.store, Compositor(eng.subject, eng.store)
        batches = []
        for k in range(0, n, a.batch):
            js = rng.integers(0, eng.subject.n_frames, a.batch)
            d = torch.from_numpy(np.stack([comp.upper_drawing(int(j)) for j in js])[:, None]).float() / 127.5 - 1
            au = torch.from_numpy(np.stack([store.audio_windows[int(j)] for j in js]))
            batches.append((d.contiguous(memory_format=torch.channels_last), au,
                            torch.from_numpy(store.mouth_boxes[js])))
        rows = backends(gen, batches)

        # End to end: drive from a wav, render, composite into the full frame, encode H.264 + AAC.
        from talkinghead.audio.tts import synthesize
        from talkinghead.audio.wav import write_wav

        text = "The quick brown fox jumps over the lazy dog. " * 8
        tts = synthesize(text).resampled(16000)
        wav = tts.audio[: int(a.seconds * 16000)]
        write_wav(Path(tmp) / "drive.wav", wav)
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "talkinghead.cli", "say", str(model), "--audio",
                            str(Path(tmp) / "drive.wav"), "-o", str(Path(tmp) / "out.mp4"), "--device", "cpu"],
                           capture_output=True, text=True, env=dict(os.environ, TALKINGHEAD_QUIET="0"))
        wall = time.perf_counter() - t
        if r.returncode:
            sys.exit(r.stderr.strip().splitlines()[-1])
        line = [ln for ln in r.stderr.splitlines() if "real-time factor" in ln][-1]
        frames = int(round(len(wav) / 16000 * eng.subject.fps))

    print(f"# say speed, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"# viseme generator: crop {cfg.size}², mouth {cfg.mouth_size}², base {cfg.base}, batch {a.batch}; "
          f"frames {eng.subject.size}²\n")
    print("| backend | generator FPS | note |\n|---|---|---|")
    for name, fps, note in rows:
        print(f"| {name} | {fps:.1f} | {note} |")
    print(f"\nend to end `say` ({len(wav) / 16000:.1f} s of audio, {frames} frames): {line.split(': ', 1)[-1]}")
    print(f"including process start-up, model load and drive building: {frames / wall:.1f} FPS")


if __name__ == "__main__":
    main()

"""Benchmark `say` speed: the viseme engine's two networks per backend, then `say` end to end.

    python bench/say.py [MODEL_DIR] [--seconds 20] [--batch 8]

Without MODEL_DIR it makes its own: a 12 s synthetic speaker at 512², prepared,
and a viseme model with the default 256² crop trained for a few steps (speed
does not depend on how well the weights are trained). Target on a 2-core CPU (issue 29):
≥ 50 FPS end to end at 512² frames.

The two networks `say` can use: the renderer (visemes + upper-face drawing, ``--lips engine``) and
the oracle (full drawing with the expression learner's mouth, ``--lips audio``, the default with
motion.pt), each timed on the same input batches per backend: eager fp32 (contiguous),
channels-last fp32, channels-last bfloat16 autocast (what `say` uses where the CPU has bf16),
torch.compile, and ONNX Runtime / OpenVINO when importable (not project dependencies), with
each backend's PSNR against eager fp32. Then `say` end to end with each.
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


class Face(torch.nn.Module):
    """A network's face output alone (what tracing exporters take)."""

    def __init__(self, net, **kw):
        super().__init__()
        self.net, self.kw = net, kw

    def forward(self, *x):
        return self.net(*x, **self.kw)[0]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(4.0 / ((a.float() - b.float()) ** 2).mean().clamp_min(1e-12)))


def exported(face: Face, batches, kind: str):
    """A function running ``face`` through ONNX Runtime or OpenVINO at ``kind`` ("onnx", "ov-f32", "ov-bf16");
    raises when that runtime is absent."""
    example = tuple(t.contiguous().clone() for t in batches[0])
    if kind == "onnx":
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as tmp:  # the session keeps the model; the file can go
            path = Path(tmp) / "net.onnx"
            with torch.no_grad():
                torch.onnx.export(face, example, str(path), dynamo=False, opset_version=17,
                                  input_names=[f"x{i}" for i in range(len(example))])
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = torch.get_num_threads()
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return lambda *x: sess.run(None, {f"x{i}": t.contiguous().numpy() for i, t in enumerate(x)})[0]
    import openvino as ov

    with torch.no_grad():
        model = ov.convert_model(face, example_input=example)
    req = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": kind[3:], "PERFORMANCE_HINT": "LATENCY",
                                                  "INFERENCE_NUM_THREADS": torch.get_num_threads()}).create_infer_request()
    return lambda *x: next(iter(req.infer([t.contiguous().numpy() for t in x]).values()))


def backends(face: Face, batches) -> list[tuple[str, float, float, str]]:
    """(backend, frames/s, PSNR of its faces against eager fp32 in dB, note) for one network."""
    rows = []
    with torch.inference_mode():
        face.net.eval().to(memory_format=torch.contiguous_format)
        plain = [tuple(t.contiguous() for t in b) for b in batches]
        ref = face(*plain[0])
        rows.append(("eager fp32", time_fn(face, plain), float("inf"), ""))
        face.net.to(memory_format=torch.channels_last)
        rows.append(("channels-last fp32", time_fn(face, batches), psnr(face(*batches[0]), ref), ""))
        with torch.autocast("cpu", torch.bfloat16):
            rows.append(("channels-last bf16 (say default here)", time_fn(face, batches),
                         psnr(face(*batches[0]), ref), ""))
    try:
        comp = torch.compile(face)
        with torch.inference_mode():
            rows.append(("torch.compile fp32", time_fn(comp, batches), psnr(comp(*batches[0]), ref), ""))
    except Exception as e:  # noqa: BLE001 - a benchmark reports what failed
        rows.append(("torch.compile fp32", float("nan"), float("nan"), type(e).__name__))
    for kind, name in (("onnx", "ONNX Runtime fp32"), ("ov-f32", "OpenVINO fp32"), ("ov-bf16", "OpenVINO bf16")):
        try:
            run = exported(face, batches, kind)
            rows.append((name, time_fn(run, batches), psnr(torch.as_tensor(run(*batches[0])), ref), ""))
        except Exception as e:  # noqa: BLE001
            rows.append((name, float("nan"), float("nan"), f"{type(e).__name__}: {str(e)[:50]}"))
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
        rng = np.random.default_rng(0)
        from talkinghead.engines.viseme.render import Compositor, to_tensor
        from talkinghead.motion import MOUTH_POINTS

        store, comp = eng.store, Compositor(eng.subject, eng.store)
        renderer, oracle = [], []
        for k in range(0, n, a.batch):
            js = rng.integers(0, eng.subject.n_frames, a.batch)
            mouths = eng.subject.tracks["canon_landmarks"][rng.integers(0, eng.subject.n_frames, a.batch)]
            full, md = zip(*[comp.full_drawing(int(j), mouths[i][MOUTH_POINTS, :2]) for i, j in enumerate(js)])
            box = torch.from_numpy(store.mouth_boxes[js])
            renderer.append((to_tensor(np.stack([comp.upper_drawing(int(j)) for j in js])[:, None], "cpu", True),
                             torch.from_numpy(np.stack([store.audio_windows[int(j)] for j in js])), box))
            oracle.append((to_tensor(np.stack(full)[:, None], "cpu", True), to_tensor(np.stack(md)[:, None], "cpu", True),
                           box))
        rows = {"renderer (--lips engine)": backends(Face(eng.gen, return_mouth=False), renderer),
                "oracle (--lips audio)": backends(Face(eng.oracle), oracle)}

        # End to end: drive from a wav, render, composite into the full frame, encode H.264 + AAC.
        from talkinghead.audio.tts import synthesize
        from talkinghead.audio.wav import write_wav

        text = "The quick brown fox jumps over the lazy dog. " * 8
        tts = synthesize(text).resampled(16000)
        wav = tts.audio[: int(a.seconds * 16000)]
        write_wav(Path(tmp) / "drive.wav", wav)
        ends = []
        for lips in ("engine", "audio"):
            t = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "talkinghead.cli", "say", str(model), "--audio",
                                str(Path(tmp) / "drive.wav"), "-o", str(Path(tmp) / "out.mp4"), "--device", "cpu",
                                "--lips", lips, "--pose", "train", "--force"],
                               capture_output=True, text=True, env=dict(os.environ, TALKINGHEAD_QUIET="0"))
            wall = time.perf_counter() - t
            if r.returncode:
                sys.exit(r.stderr.strip().splitlines()[-1])
            line = [ln for ln in r.stderr.splitlines() if "real-time factor" in ln][-1]
            ends.append((lips, line.split(": ", 1)[-1], wall))
        frames = int(round(len(wav) / 16000 * eng.subject.fps))

    print(f"# say speed, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"# viseme networks: crop {cfg.size}², mouth {cfg.mouth_size}², base {cfg.base}, batch {a.batch}; "
          f"frames {eng.subject.size}²")
    for net, table in rows.items():
        print(f"\n{net}\n\n| backend | frames/s | PSNR vs eager fp32 (dB) | note |\n|---|---|---|---|")
        for name, fps, db, note in table:
            print(f"| {name} | {fps:.1f} | {db:.1f} | {note} |")
    print(f"\nend to end `say` --pose train ({len(wav) / 16000:.1f} s of audio, {frames} frames):")
    for lips, line, wall in ends:
        print(f"- --lips {lips}: {line}; with process start-up, model load and drive: {frames / wall:.1f} FPS")


if __name__ == "__main__":
    main()

"""The ``viseme`` engine (NEON): visemes + upper-face drawing → photoreal face crop.

Training runs two phases inside one budget:

1. ``oracle``: full landmark drawings → photoreal crops (hierarchical: mouth
   first at high resolution, then the head around it).
2. ``renderer``: (upper-face drawing, viseme window) → crop, where
   ``synthetic_fraction`` of every batch pairs the audio of frame i with the
   head pose of frame j (keypoint mashing) and takes the oracle's rendering
   as ground truth; the rest are real frames.

Rendering pastes the crop into the subject frame chosen by the drive's pose
schedule under a feathered lower-face mask.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...audio.windows import audio_channels, input_stats
from ...subject import Subject
from ..base import Budget, Drive, Engine
from ..modeldir import write_meta
from ...train.loop import Phase, run_phase
from ...utils import atomic_path
from . import drawing as D
from .data import FrameStore, audio_windows
from .render import Compositor, to_tensor
from .trainer import VisemeTrainer


@dataclass
class VisemeConfig:
    size: int = 0  # model crop side; 0 = 256 on CPU, 512 on CUDA
    mouth_size: int = 0  # high-resolution mouth crop side; 0 = size / 2
    base: int = 32  # network width
    audio: str = "visemes"  # or "mel", "both" (visemes + log-mel side by side, see the README)
    batch_size: int = 4
    lr: float = 2e-4
    lr_half_steps: int = 3000  # Adam lr halves every this many steps
    oracle_fraction: float = 0.35  # share of the budget for the oracle
    synthetic_fraction: float = 0.8  # share of mashed samples per renderer batch (paper: >= 80 %)
    augment: bool = True  # keypoint mashing on/off (ablation)
    w_l1: float = 1.0
    w_ssim: float = 0.5
    w_fm: float = 1.0
    w_gan: float = 0.05
    gan_start: int = 200  # steps of pure reconstruction before the discriminators join
    val_frames: int = 16
    checkpoint_minutes: float = 3.0
    seed: int = 0

    def __post_init__(self) -> None:
        audio_channels(self.audio)  # an unknown kind fails here, before anything is written

    def resolved(self, device: str) -> "VisemeConfig":
        size = self.size or (512 if device.startswith("cuda") else 256)
        return VisemeConfig(**{**self.__dict__, "size": size, "mouth_size": self.mouth_size or size // 2})


class VisemeEngine(Engine):
    name = "viseme"
    Config = VisemeConfig

    @classmethod
    def train(cls, subject: Subject, model_dir: Path, config: VisemeConfig, budget: Budget, device: str) -> None:
        cfg = config.resolved(device)
        random.seed(cfg.seed), np.random.seed(cfg.seed), torch.manual_seed(cfg.seed)
        model_dir = Path(model_dir)
        write_meta(model_dir, cls.name, cfg, subject, status="training", budget=budget.__dict__)
        store = FrameStore(subject, cfg.size, cfg.mouth_size, cfg.audio)
        train_idx, val_idx = subject.split("train"), subject.split("val")
        if len(val_idx) == 0:
            val_idx = train_idx[-max(1, len(train_idx) // 10):]
        val_idx = val_idx[np.linspace(0, len(val_idx) - 1, min(cfg.val_frames, len(val_idx))).astype(int)]
        store.load(np.concatenate([train_idx, val_idx]))
        tr = VisemeTrainer(cfg, store, train_idx, val_idx, device, model_dir)
        tr.gen.audio_enc.norm.set(*input_stats(cfg.audio, store.audio_windows[train_idx]))
        split = [cfg.oracle_fraction, 1 - cfg.oracle_fraction] if cfg.augment else [0.0, 1.0]
        for name, share in zip(("oracle", "renderer"), split):
            if share <= 0:
                continue
            phase = Phase(
                name=name,
                steps=None if budget.steps is None else max(1, int(round(budget.steps * share))),
                seconds=None if budget.minutes is None else budget.minutes * 60 * share,
                step_fn=tr.oracle_step if name == "oracle" else tr.renderer_step,
                state_fn=tr.state, load_fn=tr.load_state,
                validate_fn=tr.validate_oracle if name == "oracle" else tr.validate_renderer,
                checkpoint_minutes=cfg.checkpoint_minutes)
            run_phase(model_dir, phase)
        with atomic_path(model_dir / "weights.pt", suffix=".pt") as tmp:
            torch.save({"config": cfg.__dict__, "generator": tr.gen.state_dict(),
                        "oracle": tr.oracle.state_dict()}, tmp)
        write_meta(model_dir, cls.name, cfg, subject, status="trained", budget=budget.__dict__)

    @classmethod
    def load(cls, model_dir: Path, subject: Subject, device: str) -> "VisemeEngine":
        from .networks import VisemeGenerator, VisemeNetConfig

        ck = torch.load(Path(model_dir) / "weights.pt", map_location="cpu", weights_only=False)
        eng = cls(model_dir, subject, device)
        eng.cfg = VisemeConfig(**ck["config"])
        eng.store = FrameStore(subject, eng.cfg.size, eng.cfg.mouth_size, eng.cfg.audio)
        net_cfg = VisemeTrainer.net_config(eng.cfg)
        eng.gen = VisemeGenerator(net_cfg).to(device)
        eng.gen.load_state_dict(ck["generator"])
        eng.gen = eng.gen.for_inference()
        return eng

    def render(self, drive: Drive, batch_size: int = 8):
        comp = Compositor(self.subject, self.store)
        windows = audio_windows(self.cfg.audio, drive.visemes, drive.mel_windows)

        batches = []
        for k0 in range(0, len(drive), batch_size):
            ks = list(range(k0, min(len(drive), k0 + batch_size)))
            batches.append((ks, [int(drive.pose_index[k]) for k in ks]))

        def drawings(ks: list[int], js: list[int]) -> np.ndarray:
            return np.stack([comp.upper_drawing(j, drive.eye[k]) for k, j in zip(ks, js)])

        # The next batch's drawings are made on a worker thread while the generator runs (OpenCV and
        # torch both release the GIL).
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(drawings, *batches[0]) if batches else None
            for n, (ks, js) in enumerate(batches):
                draws = pending.result()
                if n + 1 < len(batches):
                    pending = pool.submit(drawings, *batches[n + 1])
                yield from self._render_batch(comp, draws, windows, ks, js)

    def _render_batch(self, comp: Compositor, draws: np.ndarray, windows: np.ndarray, ks: list[int], js: list[int]):
        with torch.inference_mode():
            face, _ = self.gen(to_tensor(draws[:, None], self.device, channels_last=True),
                               torch.from_numpy(windows[ks]).to(self.device),
                               torch.from_numpy(self.store.mouth_boxes[js]).to(self.device),
                               return_mouth=False)
        crops = ((face.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        for crop, j in zip(crops, js):
            yield comp.paste(crop, j)


__all__ = ["VisemeConfig", "VisemeEngine", "D"]

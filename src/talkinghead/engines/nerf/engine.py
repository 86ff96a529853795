"""The ``nerf`` engine (RAD-NeRF): audio-spatial decomposed grid NeRF with a 2D deformable torso.

Training runs three phases inside one budget (``head``, ``lips``, ``torso``;
shares in the config). Rendering: per drive frame the audio code (momentum
smoothed over time), the eye feature and the head pose of the replayed
training frame (or a user pose) condition the head field; head and torso are
composited over the background plate at render resolution and the result is
pasted over the full-resolution plate with the rendered alpha.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ...audio.windows import audio_channels, feature_windows, input_stats
from ...progress import info
from ...subject import Subject
from ...train.loop import Phase, run_phase
from ...utils import atomic_path
from ..base import Budget, Drive, Engine
from ..modeldir import write_meta
from .audio import momentum_smooth
from .data import NerfData, head_aabb, stack8
from .fields import FieldConfig, TorsoConfig
from .model import Frame, TalkingNeRF
from .trainer import NerfTrainer


@dataclass
class NerfConfig:
    size: int = 0  # render resolution; 0 = 128 on CPU, 512 on CUDA
    audio: str = "both"  # "visemes", "mel" or "both" (see data.py and the README's deviations)
    paper_grids: bool = False  # App. A.2 grid sizes (16 levels, 2^19 table); default is a CPU-sized grid
    grid_levels: int = 12
    grid_log2_size: int = 16
    audio_dim_coords: int = 2
    audio_grid_levels: int = 8
    audio_grid_max_res: int = 256
    n_samples: int = 16
    occ_res: int = 48
    occ_every: int = 16
    occ_warmup: int = 64
    occ_conditions: int = 4
    frames_per_step: int = 2
    rays_per_frame: int = 1024
    lip_rays: float = 0.2  # share of head-phase rays drawn around the lips (the paper's face-focused sampling)
    lip_patch: int = 32
    lr: float = 1e-3  # networks; grids get 10x
    lr_decay_steps: int = 20000  # lr falls to 0.1x over this many steps of a phase
    ema: float = 0.95
    w_entropy: float = 1e-3
    w_ambient: float = 0.1
    w_ssim: float = 0.1
    w_mask: float = 0.1  # alpha vs the head mask (not in the paper; see trainer)
    w_teacher: float = 1.0  # audio code regressed onto the tracked lip shape (not in the paper; see trainer)
    teacher_batch: int = 32  # frames per step for that regression
    head_fraction: float = 0.6
    lips_fraction: float = 0.15  # the rest trains the torso
    smoothing: float = 0.5  # test-time audio momentum beta
    # Frames per latent appearance code. The paper has one code per frame; a per-frame code is free to
    # memorise each frame's mouth (on the synthetic speaker it did, and the audio path learned nothing),
    # so codes are shared by runs of frames: slow appearance drift is still absorbed, mouth motion is not.
    code_period: int = 25
    margin: tuple = (0.5, 0.6, 0.25, 0.3, 0.4)  # head box around the face: sides, above, below, front, behind
    val_frames: int = 4
    checkpoint_minutes: float = 3.0
    seed: int = 0

    def __post_init__(self) -> None:
        audio_channels(self.audio)  # an unknown kind fails here, before anything is written

    def code_index(self, frame: int) -> int:
        """Appearance-code row of a frame (one code per ``code_period`` frames)."""
        return int(frame) // max(1, self.code_period)

    def resolved(self, device: str) -> "NerfConfig":
        return NerfConfig(**{**asdict(self), "size": self.size or (512 if device.startswith("cuda") else 128),
                             "margin": tuple(self.margin)})


def build_model(cfg: NerfConfig, subject: Subject | None, t_scale: float, aabb=None, n_frames: int = 0) -> TalkingNeRF:
    """The networks for ``cfg``; the head box and frame count come from the subject or are given."""
    if subject is not None:
        aabb, n_frames = head_aabb(subject.tracks["subject_shape"], tuple(cfg.margin)), subject.n_frames
    n_codes = cfg.code_index(max(n_frames - 1, 0)) + 1
    aabb = tuple(float(v) for v in aabb)
    audio_in = audio_channels(cfg.audio)
    if cfg.paper_grids:
        field = FieldConfig.paper(aabb=aabb, audio_dim_coords=cfg.audio_dim_coords, n_codes=n_codes)
        torso = TorsoConfig.paper(n_codes=n_codes)
    else:
        field = FieldConfig(aabb=aabb, audio_dim_coords=cfg.audio_dim_coords, n_codes=n_codes,
                            audio_grid_levels=cfg.audio_grid_levels, audio_grid_max_res=cfg.audio_grid_max_res,
                            grid_levels=cfg.grid_levels, grid_log2_size=cfg.grid_log2_size,
                            grid_max_res=max(64, cfg.size * 2))
        torso = TorsoConfig(n_codes=n_codes, grid_levels=cfg.grid_levels, grid_log2_size=cfg.grid_log2_size,
                            grid_max_res=max(64, cfg.size))
    return TalkingNeRF(field, torso, audio_in, occ_res=cfg.occ_res, n_samples=cfg.n_samples, t_scale=t_scale)


class NerfEngine(Engine):
    name = "nerf"
    Config = NerfConfig
    free_pose = True  # renders any head pose, not only recorded ones

    @classmethod
    def train(cls, subject: Subject, model_dir: Path, config: NerfConfig, budget: Budget, device: str) -> None:
        cfg = config.resolved(device)
        if cfg.size > subject.size:  # never render above the subject's own resolution
            cfg = NerfConfig(**{**asdict(cfg), "size": subject.size})
        random.seed(cfg.seed), np.random.seed(cfg.seed), torch.manual_seed(cfg.seed)
        model_dir = Path(model_dir)
        write_meta(model_dir, cls.name, cfg, subject, status="training", budget=budget.__dict__)
        train_idx, val_idx = subject.split("train"), subject.split("val")
        if len(val_idx) == 0:
            val_idx = train_idx[-max(1, len(train_idx) // 10):]
        val_idx = val_idx[np.linspace(0, len(val_idx) - 1, min(cfg.val_frames, len(val_idx))).astype(int)]
        data = NerfData(subject, cfg.size, cfg.audio, np.concatenate([train_idx, val_idx]))
        data.load()
        model = build_model(cfg, subject, data.t_scale)
        model.audio_net.norm.set(*input_stats(cfg.audio, data.windows[train_idx]))
        tr = NerfTrainer(cfg, model, data, train_idx, val_idx, device, model_dir)
        shares = {"head": cfg.head_fraction, "lips": cfg.lips_fraction,
                  "torso": max(0.0, 1 - cfg.head_fraction - cfg.lips_fraction)}
        for name, share in shares.items():
            if share <= 0:
                continue
            phase = Phase(
                name=name,
                steps=None if budget.steps is None else max(1, int(round(budget.steps * share))),
                seconds=None if budget.minutes is None else budget.minutes * 60 * share,
                step_fn=getattr(tr, f"{name}_step"), state_fn=tr.state, load_fn=tr.load_state,
                validate_fn=lambda step, name=name: tr.validate(name, step, torso=name == "torso"),
                checkpoint_minutes=cfg.checkpoint_minutes)
            run_phase(model_dir, phase)
        occupied = tr.bake()
        info(f"occupancy grid: {occupied:.0%} of the head box occupied")
        with atomic_path(model_dir / "weights.pt", suffix=".pt") as tmp:
            j = int(train_idx[len(train_idx) // 2])
            torch.save({"config": asdict(cfg), "model": tr.ema.state_dict(), "t_scale": data.t_scale,
                        "eye_open": data.eye_open, "aabb": list(model.face.cfg.aabb), "n_frames": subject.n_frames,
                        "K": data.K, "sample_pose": (data.rot[j], data.trans[j])}, tmp)
        write_meta(model_dir, cls.name, cfg, subject, status="trained", budget=budget.__dict__)

    @staticmethod
    def load_weights(path: Path, device: str) -> tuple[NerfConfig, TalkingNeRF, dict]:
        """``weights.pt`` → (config, model in eval mode, the checkpoint dict); needs no subject."""
        ck = torch.load(path, map_location="cpu", weights_only=False)
        cfg = NerfConfig(**{**ck["config"], "margin": tuple(ck["config"]["margin"])})
        model = build_model(cfg, None, ck["t_scale"], aabb=ck["aabb"], n_frames=ck["n_frames"])
        model.load_state_dict(ck["model"])
        model.occupancy.relative, model.occupancy.threshold = True, 10.0  # as baked (see TalkingNeRF)
        return cfg, model.to(device).eval(), ck

    @classmethod
    def load(cls, model_dir: Path, subject: Subject, device: str) -> "NerfEngine":
        eng = cls(model_dir, subject, device)
        eng.cfg, eng.model, ck = cls.load_weights(Path(model_dir) / "weights.pt", device)
        eng.eye_open = ck["eye_open"]
        eng.data = NerfData(subject, eng.cfg.size, eng.cfg.audio, indices=np.zeros(0, int))
        eng.background = None  # full-resolution plate; ``say --background`` swaps it
        return eng

    def set_background(self, rgb: np.ndarray) -> None:
        self.background = cv2.resize(rgb, (self.subject.size, self.subject.size), interpolation=cv2.INTER_AREA)

    @torch.no_grad()
    def render(self, drive: Drive, batch_size: int = 8):
        d, dev, size = self.data, self.device, self.cfg.size
        plate_full = self.background if self.background is not None else self.subject.background()
        plate = torch.from_numpy(d.resize(plate_full).astype(np.float32) / 255).to(dev)
        windows = feature_windows(self.cfg.audio, drive.visemes, drive.mel_windows)
        K = torch.from_numpy(d.K).to(dev)
        codes = []
        for s in range(0, len(drive), 64):
            idx = np.arange(s, min(len(drive), s + 64))
            codes.append(self.model.audio_net(torch.from_numpy(stack8(windows, idx)).to(dev)))
        audio = momentum_smooth(torch.cat(codes), self.cfg.smoothing) if codes else torch.zeros(0, 64)
        n_train = int(self.subject.split("train")[-1]) if len(self.subject.split("train")) else 0
        for k in range(len(drive)):
            j = int(drive.pose_index[k])
            R, t = (torch.from_numpy(x).to(dev) for x in (drive.rotation[k], drive.translation[k])) \
                if getattr(drive, "rotation", None) is not None else d.pose(j)
            eye = float(np.mean(drive.eye[k])) / self.eye_open
            f = Frame(K=K, R=R.to(dev), t=t.to(dev), audio=audio[k], eye=torch.tensor([eye], device=dev),
                      code=self.cfg.code_index(min(j, n_train)))
            out = self.model.render_image(f, size, plate)
            colour = out["colour"].cpu().numpy()
            alpha = out["alpha"].cpu().numpy()
            S = self.subject.size
            if S != size:
                colour = cv2.resize(colour, (S, S), interpolation=cv2.INTER_LINEAR)
                alpha = cv2.resize(alpha, (S, S), interpolation=cv2.INTER_LINEAR)
            frame = colour * 255 + (1 - alpha[..., None]) * plate_full.astype(np.float32)
            yield np.clip(frame, 0, 255).round().astype(np.uint8)

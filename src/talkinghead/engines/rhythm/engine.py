"""The ``rhythm`` engine: a 3-D-aware renderer from K reference frames (Chen et al., ECCV 2020, §4).

The motion learners (``motion.pt``) give the mouth shape (or the drive brings one, ``--lips``) and, with
``--pose audio``, the head pose. The target's face mesh (the replayed frame's pose-free landmarks with that
mouth, at that pose) is textured from the most frontal reference (``mesh.py``) and drawn; the reference
nearest in pose is warped toward it (``matcher.py``, ``networks.FlowNet``); the hybrid embedding weights
the K references for this target; the composition decoder makes the head crop from all of it. Where the
drive replays a recorded frame, the crop goes in where speech changes it (``paste="speech"``: the person's
own pixels elsewhere, ``compose.SpeechFrames``); at a pose of its own (``--pose audio`` / FILE) the whole
generated crop goes over the nearest recorded frame, feathered at its border. Look-ahead: the expression
learner's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ...compose import SpeechFrames, paste, place
from ...motion import LOOKAHEAD
from ...nn import to_uint8
from ...subject import Subject
from ..base import Engine, EngineConfig
from ..types import Drive
from .data import RhythmData
from .matcher import choose_references, match, pose_cost
from .networks import RhythmGenerator, RhythmNetConfig
from .trainer import RhythmModel, drawings, images, projections


@dataclass
class RhythmConfig(EngineConfig):
    size: int = 0  # generated crop side; 0 = 128 on CPU, 256 on CUDA
    base: int = 32  # network width
    bottom: int = 16  # the composition decoder's first scale
    spade_hidden: int = 32
    references: int = 8  # K
    ref_window: float = 0.0  # seconds of training video (from its start) the references come from; 0: all
    gap: int = 5  # training: no reference within this many frames of the target
    jitter: float = 3.0  # training: noise (degrees) on the matcher's pose costs
    paste: str = "speech"  # a replayed frame takes "speech" (what speech changes) or "head" (the whole crop)
    motion_share: float = 0.15
    batch_size: int = 4
    lr: float = 2e-4
    w_mouth: float = 1.0
    w_ssim: float = 0.5
    w_warp: float = 0.5
    w_gan: float = 0.05
    w_fm: float = 1.0
    disc_base: int = 32
    gan_start: int = 300
    LEGACY: ClassVar[dict] = {}

    def __post_init__(self) -> None:
        if self.paste not in ("speech", "head"):
            raise ValueError(f"paste must be speech or head, got {self.paste!r}")
        if self.references < 1:
            raise ValueError(f"references must be at least 1, got {self.references}")

    def resolved(self, device: str) -> "RhythmConfig":
        return RhythmConfig(**{**self.__dict__, "size": self.size or (256 if device.startswith("cuda") else 128)})

    def net(self) -> RhythmNetConfig:
        return RhythmNetConfig(self.size, self.base, self.bottom, self.spade_hidden)


def feathered_square(side: int, feather: float) -> np.ndarray:
    """(side, side, 1) float32: 1 inside, falling to 0 over ``feather`` pixels at the border."""
    r = np.minimum(np.arange(side) + 0.5, side - 0.5 - np.arange(side)) / max(feather, 1e-6)
    r = np.clip(r, 0, 1).astype(np.float32)
    return np.minimum(r[:, None], r[None, :])[..., None]


class RhythmEngine(Engine):
    name = "rhythm"
    Config = RhythmConfig
    free_pose = True  # the mesh and the decoder draw any head pose
    landmark_lips = True  # renders the drive's mouth shape (--lips audio|tracked); else the expression learner's
    lookahead = LOOKAHEAD

    @classmethod
    def resolve_config(cls, config: RhythmConfig, subject: Subject, device: str) -> RhythmConfig:
        return config.resolved(device)

    @classmethod
    def trainable(cls, subject: Subject, cfg: RhythmConfig, device: str, train_idx, val_idx) -> RhythmModel:
        tr, train_idx = subject.tracks, np.asarray(train_idx)
        window = train_idx if cfg.ref_window <= 0 else train_idx[train_idx < train_idx[0] + cfg.ref_window * subject.fps]
        refs = choose_references(tr["euler_deg"], tr["eye"], tr["aperture"], window, cfg.references)
        data = RhythmData(subject, cfg.size, refs[0])
        data.load(np.unique(np.concatenate([train_idx, val_idx, refs])))
        return RhythmModel(cfg, data, refs, train_idx, val_idx, device)

    @classmethod
    def load(cls, model_dir: Path, subject: Subject, device: str) -> "RhythmEngine":
        ck = torch.load(Path(model_dir) / "weights.pt", map_location="cpu", weights_only=False)
        eng = cls(model_dir, subject, device)
        eng.cfg = cfg = RhythmConfig.saved(ck["config"])
        eng.refs = np.asarray(ck["references"])
        eng.data = d = RhythmData(subject, cfg.size, eng.refs[0])
        eng.gen = RhythmGenerator(cfg.net()).to(device)
        eng.gen.load_state_dict(ck["generator"])
        eng.gen.eval()
        ref_uv = [d.mesh(int(r))[0] for r in eng.refs]
        eng.ref_draw = drawings(np.stack([d.drawing(uv) for uv in ref_uv]), device)
        eng.ref_img = images(np.stack([d.crop(int(r)) for r in eng.refs]), device)
        with torch.no_grad():
            eng.ref_emb = eng.gen.embed.references(eng.ref_img, eng.ref_draw)
        box = np.round(d.box).astype(int)
        eng.region = (int(box[0]), int(box[1]), int(box[2]))
        eng.frames = SpeechFrames(subject, eng.region, subject.tracks["landmarks"])
        eng.square = feathered_square(eng.region[2], max(3.0, eng.region[2] / 24))
        return eng

    def prepare_batch(self, rows: Drive, ks: np.ndarray):
        """Per frame the target mesh (the replayed face, the asked-for mouth, at the asked-for pose) drawn and
        textured, and the reference nearest in pose."""
        d = self.data
        mouths = rows.mouth if rows.mouth is not None else \
            self.motion().mouth_points(rows.visemes, rows.mel_windows, rows.mel_stats)
        draws, projs, js, Rs, ts = [], [], [], [], []
        for k in ks:
            j = int(rows.pose_index[k])
            R = d.rot[j] if rows.rotation is None else rows.rotation[k]
            t = d.trans[j] if rows.translation is None else rows.translation[k]
            uv, z = d.mesh(j, mouths[k], R, t)
            draw, proj = d.inputs(uv, z)
            draws.append(draw), projs.append(proj), js.append(j), Rs.append(R), ts.append(t)
        cost = pose_cost(np.asarray(Rs, np.float64), np.asarray(ts, np.float64), d.rot[self.refs], d.trans[self.refs])
        return np.stack(draws), np.stack(projs), match(cost), js

    @torch.no_grad()
    def render_batch(self, rows: Drive, ks: np.ndarray, prepared, state: dict) -> list[np.ndarray]:
        draws, projs, matched, js = prepared
        dev = self.device
        with self.autocast():
            out = self.gen(self.ref_emb, drawings(draws, dev), projections(projs, dev), self.ref_img[matched],
                           self.ref_draw[matched])
        crops = to_uint8(out["image"].float(), -1)
        whole = rows.rotation is not None or self.cfg.paste == "head"
        return [paste(self.frames.get(j)["frame"], crop, self.region, self.square) if whole
                else self.frames.paste(crop, j) for crop, j in zip(crops, js)]

    def composite_mask(self, rows: Drive, k: int) -> np.ndarray:
        """(H, W) float: how much of output frame k the engine generated."""
        j, S = int(rows.pose_index[k]), self.subject.size
        m = self.square if rows.rotation is not None or self.cfg.paste == "head" else self.frames.mask(j)
        return place(np.zeros((S, S), np.float32), m[..., 0], self.region[:2])


__all__ = ["RhythmConfig", "RhythmEngine", "feathered_square"]

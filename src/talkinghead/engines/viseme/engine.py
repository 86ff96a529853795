"""The ``viseme`` engine (NEON): visemes + upper-face drawing → photoreal face crop.

Training (``trainer.py``) runs two phases inside one budget:

1. ``oracle``: full landmark drawings → photoreal crops (hierarchical: mouth
   first at high resolution, then the head around it).
2. ``renderer``: (upper-face drawing, viseme window) → crop, where
   ``synthetic_fraction`` of every batch pairs the audio of frame i with the
   head pose of frame j (keypoint mashing) and takes the oracle's rendering
   as ground truth; the rest are real frames.

Rendering pastes the crop into the subject frame chosen by the drive's pose
schedule under a feathered lower-face mask. Look-ahead: the NEON viseme window
reaches 2 frames ahead (4 with the 16-step windows of ``audio=mel|both``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...audio.windows import audio_channels, input_stats, window_features
from ...lru import Lru
from ...nn import to_uint8
from ...subject import Subject
from ..base import Engine, EngineConfig
from ..types import Drive
from ...compose import drawing as D
from .data import FrameStore, audio_windows
from .render import Compositor, to_tensor
from .oracle import Oracle
from .trainer import VisemeModel, net_config


@dataclass
class VisemeConfig(EngineConfig):
    size: int = 0  # model crop side; 0 = 256 on CPU, 512 on CUDA
    mouth_size: int = 0  # high-resolution mouth crop side; 0 = size / 2
    base: int = 32  # network width
    audio: str = "visemes"  # or "mel", "both" (visemes + log-mel side by side, see the README)
    batch_size: int = 4
    lr: float = 2e-4
    oracle_fraction: float = 0.35  # share of the budget for the oracle
    synthetic_fraction: float = 0.8  # share of mashed samples per renderer batch (paper: >= 80 %)
    augment: bool = True  # keypoint mashing on/off (ablation)
    w_l1: float = 1.0
    w_ssim: float = 0.5
    w_fm: float = 1.0
    w_gan: float = 0.05
    gan_start: int = 200  # steps of pure reconstruction before the discriminators join
    val_frames: int = 16

    def __post_init__(self) -> None:
        audio_channels(self.audio)  # an unknown kind fails here, before anything is written

    def resolved(self, device: str) -> "VisemeConfig":
        size = self.size or (512 if device.startswith("cuda") else 256)
        return VisemeConfig(**{**self.__dict__, "size": size, "mouth_size": self.mouth_size or size // 2})


LOOKAHEAD = {"visemes": 2, "mel": 0, "both": 4}  # frames the audio window reaches ahead


class VisemeEngine(Engine):
    name = "viseme"
    Config = VisemeConfig
    eye_control = True  # eye openness is drawn into the upper-face keypoints
    landmark_lips = True  # --lips audio: the oracle renders the full drawing with the predicted mouth
    lookahead = max(LOOKAHEAD.values())
    thread_safe = True  # networks read-only at render time; the frame cache has its own lock

    @classmethod
    def resolve_config(cls, config: VisemeConfig, subject: Subject, device: str) -> VisemeConfig:
        return config.resolved(device)

    @classmethod
    def trainable(cls, subject: Subject, cfg: VisemeConfig, device: str, train_idx, val_idx) -> VisemeModel:
        store = FrameStore(subject, cfg.size, cfg.mouth_size, cfg.audio)
        store.load(np.concatenate([train_idx, val_idx]))
        model = VisemeModel(cfg, store, train_idx, val_idx, device)
        model.gen.audio_enc.norm.set(*input_stats(cfg.audio, store.audio_windows[train_idx]))
        return model

    @classmethod
    def load(cls, model_dir: Path, subject: Subject, device: str) -> "VisemeEngine":
        from .networks import VisemeGenerator

        ck = torch.load(Path(model_dir) / "weights.pt", map_location="cpu", weights_only=False)
        eng = cls(model_dir, subject, device)
        eng.cfg = VisemeConfig(**ck["config"])
        eng.features, eng.lookahead = window_features(eng.cfg.audio), LOOKAHEAD[eng.cfg.audio]
        eng.store = FrameStore(subject, eng.cfg.size, eng.cfg.mouth_size, eng.cfg.audio)
        eng.gen = VisemeGenerator(net_config(eng.cfg)).to(device)
        eng.gen.load_state_dict(ck["generator"])
        eng.gen = eng.gen.for_inference()
        eng.oracle = Oracle(net_config(eng.cfg)).to(device)
        eng.oracle.load_state_dict(ck["oracle"])
        eng.oracle = eng.oracle.eval().to(memory_format=torch.channels_last)
        eng.comp = Compositor(subject, eng.store)
        # keypoint features of the upper-face drawings (replayed frame, eye openness), which depend on the
        # drawing alone: a replay passes the same frames again and again (~1/3 of the network's time)
        eng.upper = Lru(256)
        return eng

    def prepare_batch(self, rows: Drive, ks: np.ndarray):
        """Per frame its upper-face drawing's key (replayed frame, eye openness) and either the keypoint
        features already computed for it (``self.upper``) or the drawing, eyes set to the drive's
        openness; with ``rows.mouth`` (--lips audio) the full drawings (and mouth drawings) with the
        predicted mouth."""
        if rows.mouth is None:
            keys = [(int(rows.pose_index[k]), rows.eye[k].astype(np.float32).tobytes()) for k in ks]
            feats = [self.upper.get(key) for key in keys]  # held here: a later eviction cannot lose them
            draws = [self.comp.upper_drawing(key[0], rows.eye[k]) if f is None else None
                     for key, f, k in zip(keys, feats, ks)]
            return keys, feats, draws
        pairs = [self.comp.full_drawing(int(rows.pose_index[k]), rows.mouth[k], rows.eye[k]) for k in ks]
        return tuple(np.stack(x) for x in zip(*pairs))

    def render_batch(self, rows: Drive, ks: np.ndarray, draws, state: dict) -> list[np.ndarray]:
        js = [int(rows.pose_index[k]) for k in ks]
        boxes = torch.from_numpy(self.store.mouth_boxes[js]).to(self.device)
        with torch.inference_mode(), self.autocast():
            if rows.mouth is not None:  # NEON's oracle from the full drawing: no audio ambiguity left
                face, _ = self.oracle(to_tensor(draws[0][:, None], self.device, channels_last=True),
                                      to_tensor(draws[1][:, None], self.device, channels_last=True), boxes)
            else:
                windows = audio_windows(self.cfg.audio, rows.visemes, rows.mel_windows)
                face, _ = self.gen.from_keypoints(self._keypoints(*draws), torch.from_numpy(windows[ks]).to(self.device),
                                                  boxes, return_mouth=False)
        crops = to_uint8(face.float(), -1)
        return [self.comp.frames.paste_for(crop, j, rows.eye[k]) for crop, j, k in zip(crops, js, ks)]

    def _keypoints(self, keys, feats, draws) -> torch.Tensor:
        """The keypoint encoder's features of a batch: those prepared, the rest encoded now and kept."""
        todo = [i for i, f in enumerate(feats) if f is None]
        if todo:
            new = self.gen.kp_enc(to_tensor(np.stack([draws[i] for i in todo])[:, None], self.device,
                                            channels_last=True))
            feats = list(feats)
            for i, f in zip(todo, new):
                feats[i] = self.upper.put(keys[i], f.clone())  # its own storage, not a view of the batch
        return torch.stack(feats).contiguous(memory_format=torch.channels_last)

    def composite_mask(self, rows: Drive, k: int) -> np.ndarray:
        """The feathered mask of what speech changes (and a drawn blink) in the replayed frame: where the
        rendered crop is pasted."""
        j = int(rows.pose_index[k])
        x0, y0, side = self.comp.frames.region
        full = np.zeros((self.subject.size, self.subject.size), np.float32)
        m = self.comp.frames.mask_for(j, rows.eye[k])[..., 0]
        full[y0:y0 + m.shape[0], x0:x0 + m.shape[1]] = m
        return full


__all__ = ["VisemeConfig", "VisemeEngine", "D"]

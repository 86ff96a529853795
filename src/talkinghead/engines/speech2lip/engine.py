"""The ``speech2lip`` engine: generate only what speech changes, in a canonical view, and put it into real frames.

Decomposition, synthesis, composition (Speech2Lip, Wu et al., ICCV 2023):
the expression learner turns audio into a mouth-shape code; the implicit lip
model renders the lower face for that code in the canonical view; GAMEM maps
it into the replayed frame at that frame's head pose; the Blend-Net blends it
with the real frame, whose own lower face is masked out. Everything outside
the region is the recorded frame, untouched. Any head pose (``--pose FILE``):
the still frame's head is moved there through its depth (``repose.py``) and
the lips are mapped in at that pose. Look-ahead: 11 frames (the expression
learner's temporal context).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ...audio.windows import audio_channels, feature_windows, window_features
from ...compose import RecordedFrames
from ...motion import LOOKAHEAD
from ...subject import Subject
from ..base import Drive, Engine, EngineConfig
from .blend import soften
from .gamem import Camera
from .parts import Parts, to_uint8
from .repose import HeadRepose
from .trainer import Speech2LipModel


@dataclass
class Speech2LipConfig(EngineConfig):
    audio: str = "both"  # audio windows the expression learner reads (see audio/windows.py)
    expr_members: int = 3
    expr_hidden: int = 128
    expr_seq: int = 32
    noise_share: float = 0.3  # expression sequences with noise at a random 6-30 dB SNR (motion.MotionData)
    encoding: str = "grid"  # lip field input encoding: "grid" (dense multi-resolution), "hash", "pe" (paper)
    base: str = "warp"  # "warp": displace the canonical frame's pixels + residual; "none": colour (paper)
    field_hidden: int = 64
    field_layers: int = 3
    grid_levels: int = 12
    # canonical pixels per cell of the finest grid level: at 1 the finest level fitted per-pixel noise that showed
    # as dotted speckles at the chin / collar; 2 removed them (4 lost the mouth), bench/RESULTS.md
    grid_cell: float = 2.0
    code_period: int = 25  # frames sharing one appearance ("time") code
    code_noise: float = 0.1  # noise on the tracked codes the lip field learns from
    patch: int = 64  # side of the random rectangles the lip field learns on
    frames_per_step: int = 2
    w_ssim: float = 0.2
    w_depth_prior: float = 1.0
    w_depth_smooth: float = 0.1
    sync_window: int = 5
    sync_width: int = 48  # width of the low-resolution lips the sync encoder reads
    sync_batch: int = 32
    sync_every: int = 4  # lips steps between sync-loss evaluations
    w_sync: float = 0.05
    blend_base: int = 16
    blend_norm: bool = False  # instance norms in the Blend-Net (True: as before; they grew a chin "droplet")
    LEGACY: ClassVar[dict] = {"blend_norm": True, "grid_cell": 1.0}  # what models saved before these options had
    blend_batch: int = 2
    hole_prob: float = 0.5
    w_gan: float = 0.05
    w_fm: float = 1.0
    gan_start: int = 200
    lr_expression: float = 1e-3
    lr_sync: float = 1e-3
    lr_grid: float = 1e-2
    lr_field: float = 2e-3
    lr_depth: float = 1e-3
    lr_blend: float = 2e-4
    lr_half_steps: int = 3000
    expression_fraction: float = 0.1
    sync_fraction: float = 0.05
    lips_fraction: float = 0.5  # the rest trains the Blend-Net
    val_frames: int = 8

    def __post_init__(self) -> None:
        audio_channels(self.audio)
        if self.encoding not in ("grid", "hash", "pe") or self.base not in ("warp", "none"):
            raise ValueError(f"encoding must be grid, hash or pe and base warp or none; got {self.encoding}, {self.base}")

    def code_index(self, frame: int) -> int:
        return int(frame) // max(1, self.code_period)


class Speech2LipEngine(Engine):
    name = "speech2lip"
    Config = Speech2LipConfig
    lookahead = LOOKAHEAD
    free_pose = True
    # Reposed whole frames (geometry-aware repose) tore the head's outline on the demo's speaker (hair cut at
    # a box, the old outline showing): --pose audio replays the recorded frames nearest the learned poses;
    # --pose FILE still reposes.
    render_learned_pose = False

    @classmethod
    def trainable(cls, subject: Subject, cfg: Speech2LipConfig, device: str, train_idx, val_idx) -> Speech2LipModel:
        parts = Parts(subject, cfg, device, fit_idx=np.asarray(train_idx))
        parts.data.indices = np.concatenate([train_idx, val_idx])
        parts.data.load()
        return Speech2LipModel(parts, train_idx, val_idx)

    @classmethod
    def load(cls, model_dir: Path, subject: Subject, device: str) -> "Speech2LipEngine":
        ck = torch.load(Path(model_dir) / "weights.pt", map_location="cpu", weights_only=False)
        eng = cls(model_dir, subject, device)
        eng.cfg = Speech2LipConfig.saved(ck["config"])
        eng.features = window_features(eng.cfg.audio)
        eng.parts = Parts(subject, eng.cfg, device, state=ck)
        for m in (eng.parts.expression, eng.parts.field, eng.parts.blend):
            m.eval()
        eng.parts.autocast = eng.autocast  # the lip field's MLPs at the engine's precision (geometry stays fp32)
        eng.frames = RecordedFrames(subject)
        eng._repose = None
        return eng

    def _posed(self, rows: Drive, k: int, j: int) -> tuple[np.ndarray, Camera | None]:
        """Output frame k's plate: the recorded frame j, or with a user pose the still frame re-posed."""
        if rows.rotation is None:
            return self.frames.get(j)["frame"], None
        if self._repose is None or self._repose.s != j:
            self._repose = HeadRepose(self.subject, j, self.device)
        f = lambda x: torch.as_tensor(np.asarray(x, np.float32), device=self.device)  # noqa: E731
        cam = Camera(f(rows.rotation[k]), f(rows.translation[k]), self._repose.cam.K)
        return self._repose.render(cam), cam

    def _codes(self, rows: Drive) -> torch.Tensor:
        windows = feature_windows(self.cfg.audio, rows.visemes, rows.mel_windows)
        windows = self.parts.expression_input(windows, rows.mel_stats)
        return torch.from_numpy(self.parts.expression.predict(windows)).to(self.device)

    @torch.no_grad()
    def render_batch(self, rows: Drive, ks: np.ndarray, prepared, state: dict) -> list[np.ndarray]:
        p, codes = self.parts, self._codes(rows)
        frames, crops = [], []
        for k in ks:
            j = int(rows.pose_index[k])
            frame, cam = self._posed(rows, k, j)
            real, lips, mask = p.warp_in(j, codes[k], cam=cam, frame=frame)
            frames.append((frame, p.data.origin_of(j, cam)))
            crops.append((real, lips, mask))
        real, lips, mask = (torch.cat(x) for x in zip(*crops))
        with self.autocast():  # Blend-Net (and the lip field's MLPs, Parts.autocast) in bf16 where native
            out = p.blend(real, lips, mask).float()
        keep = soften(mask, 2, 3)  # the pixels the engine writes; the rest is the recorded frame
        blended = to_uint8(out * keep + real * (1 - keep))
        return [self._paste(frame, origin, crop) for (frame, origin), crop in zip(frames, blended)]

    def _paste(self, frame: np.ndarray, origin, crop: np.ndarray) -> np.ndarray:
        x0, y0 = origin
        out = frame.copy()
        h, w = crop.shape[:2]
        H, W = out.shape[:2]
        ys, xs = slice(max(0, y0), min(H, y0 + h)), slice(max(0, x0), min(W, x0 + w))
        out[ys, xs] = crop[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
        return out

    def composite_mask(self, rows: Drive, k: int) -> np.ndarray:
        """(H, W) float: how much of each pixel of output frame k the engine generated."""
        (x0, y0), _, mask = self.parts.crop_map(int(rows.pose_index[k]))
        m = soften(mask, 2, 3)[0, 0].cpu().numpy()
        full = np.zeros((self.subject.size, self.subject.size), np.float32)
        h, w = m.shape
        S = self.subject.size
        ys, xs = slice(max(0, y0), min(S, y0 + h)), slice(max(0, x0), min(S, x0 + w))
        full[ys, xs] = m[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
        return full

"""The ``speech2lip`` engine: generate only what speech changes, in a canonical view, and put it into real frames.

Decomposition, synthesis, composition (Speech2Lip, Wu et al., ICCV 2023):
the model's expression learner (``motion.pt``, shared by every engine) turns
audio into a mouth shape, or the drive brings one (``--lips``); the implicit lip
model renders the lower face for its code in the canonical view; GAMEM maps
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

from ...audio.windows import audio_channels, feature_windows, renormalise, window_features
from ...compose import RecordedFrames, place
from ...motion import LOOKAHEAD, MotionModel
from ...nn import to_uint8
from ...subject import Subject
from ..base import Engine, EngineConfig
from ..types import Drive
from .blend import soften
from .exemplar import exemplar_path
from .gamem import Camera
from .model import LipModel
from .repose import HeadRepose
from .trainer import Speech2LipModel


@dataclass
class Speech2LipConfig(EngineConfig):
    audio: str = "both"  # audio windows the sync encoder reads (see audio/windows.py)
    # the motion learners (motion.pt: the mouth codes the lip field learns, head motion) train first, on this share
    motion_share: float = 0.15
    expr_members: int = 3  # the learner of models saved before motion.pt served every engine
    expr_hidden: int = 128
    expr_seq: int = 32
    # where the lips' pixels come from: "exemplar" (the training frame whose tracked mouth is nearest the one asked
    # for, along a walk that plays recorded frames on: exemplar.py) or "field" (the paper's implicit lip model)
    mouth: str = "exemplar"
    exemplar_hold: float = 0.5  # cost of holding one recorded mouth, in median nearest distances
    exemplar_jump: float = 2.0  # cost of jumping to another recorded frame (playing on is free)
    exemplar_gap: int = 12  # training: a frame's lips come from a recorded frame at least this far away
    encoding: str = "grid"  # lip field input encoding: "grid" (dense multi-resolution), "hash", "pe" (paper)
    base: str = "warp"  # "warp": displace the canonical frame's pixels + residual; "none": colour (paper)
    field_hidden: int = 64
    field_layers: int = 3
    grid_levels: int = 12
    # canonical pixels per cell of the finest grid level (1 fits per-pixel speckle): bench/RESULTS.md
    grid_cell: float = 2.0  # "speech2lip: the lip field's finest grid cell"
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
    # instance norms in the Blend-Net (they grow a blob at the chin): bench/RESULTS.md "which engine the demo uses"
    blend_norm: bool = False
    # what models saved before these options had
    LEGACY: ClassVar[dict] = {"blend_norm": True, "grid_cell": 1.0, "mouth": "field"}
    blend_batch: int = 2
    hole_prob: float = 0.5
    w_gan: float = 0.05
    w_fm: float = 1.0
    gan_start: int = 200
    lr_sync: float = 1e-3
    lr_grid: float = 1e-2
    lr_field: float = 2e-3
    lr_depth: float = 1e-3
    lr_blend: float = 2e-4
    sync_fraction: float = 0.05
    lips_fraction: float = 0.5  # the rest trains the Blend-Net
    val_frames: int = 8

    def __post_init__(self) -> None:
        audio_channels(self.audio)
        if self.encoding not in ("grid", "hash", "pe") or self.base not in ("warp", "none"):
            raise ValueError(f"encoding must be grid, hash or pe and base warp or none; got {self.encoding}, {self.base}")
        if self.mouth not in ("exemplar", "field"):
            raise ValueError(f"mouth must be exemplar or field, got {self.mouth!r}")

    def code_index(self, frame: int) -> int:
        return int(frame) // max(1, self.code_period)


class Speech2LipEngine(Engine):
    name = "speech2lip"
    Config = Speech2LipConfig
    lookahead = LOOKAHEAD
    free_pose = True
    landmark_lips = True  # renders the drive's mouth shape (--lips audio|tracked); else the expression learner's
    learns_from_motion = True
    # --pose audio replays the recorded frames nearest the learned poses (reposed whole frames tear the head's
    # outline); --pose FILE still reposes
    render_learned_pose = False

    @classmethod
    def trainable(cls, subject: Subject, cfg: Speech2LipConfig, device: str, train_idx, val_idx,
                  motion: MotionModel | None = None) -> Speech2LipModel:
        lips = LipModel(subject, cfg, device, fit_idx=np.asarray(train_idx), motion=motion)
        lips.view.data.indices = np.concatenate([train_idx, val_idx])
        lips.view.data.load()
        return Speech2LipModel(lips, motion, train_idx, val_idx)

    @classmethod
    def load(cls, model_dir: Path, subject: Subject, device: str) -> "Speech2LipEngine":
        ck = torch.load(Path(model_dir) / "weights.pt", map_location="cpu", weights_only=False)
        eng = cls(model_dir, subject, device)
        eng.cfg = Speech2LipConfig.saved(ck["config"])
        eng.features = window_features(eng.cfg.audio)
        eng.model = LipModel(subject, eng.cfg, device, state=ck)
        for m in (eng.model.field, eng.model.blend):
            m.eval()
        eng.model.autocast = eng.autocast  # the lip field's MLPs at the engine's precision (geometry stays fp32)
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
        """The mouth codes to render: the drive's mouth shapes, else the expression learner's for its audio."""
        p = self.model
        if rows.mouth is not None:
            codes = p.pca.encode_points(rows.mouth)
        elif p.expression is not None:  # a model saved with a learner of its own
            windows = feature_windows(self.cfg.audio, rows.visemes, rows.mel_windows)
            if rows.mel_stats is not None:
                windows = renormalise(self.cfg.audio, windows, rows.mel_stats, p.expression.reference())
            codes = p.expression.predict(windows)
        else:
            codes = self.motion().mouth_codes(rows.visemes, rows.mel_windows, rows.mel_stats)
        return torch.from_numpy(codes).to(self.device)

    def _sources(self, codes: torch.Tensor, ks: np.ndarray, state: dict) -> dict[int, int]:
        """Recorded frame whose lips each of ``ks`` shows (mouth="exemplar"): the cheapest walk over the frames
        from ``ks[0]`` to ``lookahead`` after ``ks[-1]`` (however the drive arrived), continuing the last one shown."""
        ex, c = self.model.exemplars, self.cfg
        k0, k1 = int(ks[0]), int(ks[-1]) + 1 + self.lookahead
        walk = exemplar_path(ex, codes[k0:k1].cpu().numpy(), c.exemplar_hold, c.exemplar_jump, state.get("row", -1))
        rows = walk[np.asarray(ks) - k0]
        state["row"] = int(rows[-1])
        return {int(k): int(ex.frames[r]) for k, r in zip(ks, rows)}

    @torch.no_grad()
    def render_batch(self, rows: Drive, ks: np.ndarray, prepared, state: dict) -> list[np.ndarray]:
        p, codes = self.model, self._codes(rows)
        sources = self._sources(codes, ks, state) if self.cfg.mouth == "exemplar" else {}
        frames, crops = [], []
        for k in ks:
            j = int(rows.pose_index[k])
            frame, cam = self._posed(rows, k, j)
            real, lips, mask = p.warp_in(j, codes[k], cam=cam, frame=frame, source=sources.get(int(k)))
            frames.append((frame, p.view.data.origin_of(j, cam)))
            crops.append((real, lips, mask))
        real, lips, mask = (torch.cat(x) for x in zip(*crops))
        with self.autocast():  # Blend-Net (and the lip field's MLPs, LipModel.autocast) in bf16 where native
            out = p.blend(real, lips, mask).float()
        keep = soften(mask, 2, 3)  # the pixels the engine writes; the rest is the recorded frame
        blended = to_uint8(out * keep + real * (1 - keep))
        return [place(frame, crop, origin) for (frame, origin), crop in zip(frames, blended)]

    def composite_mask(self, rows: Drive, k: int) -> np.ndarray:
        """(H, W) float: how much of each pixel of output frame k the engine generated."""
        origin, _, mask = self.model.view.crop_map(int(rows.pose_index[k]))
        S = self.subject.size
        return place(np.zeros((S, S), np.float32), soften(mask, 2, 3)[0, 0].cpu().numpy(), origin)

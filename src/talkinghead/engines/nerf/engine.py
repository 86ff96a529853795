"""The ``nerf`` engine (RAD-NeRF): audio-spatial decomposed grid NeRF with a 2D deformable torso.

Training runs three phases inside one budget (``head``, ``lips``, ``torso``;
shares in the config; ``trainer.py``) on frames at ``size``, chosen from the head: on the CPU the head box
spans ``head_pixels``, on CUDA the subject's own resolution. Rendering: per drive frame the audio code
(momentum smoothed over time, a state the render session carries) or, when the drive carries a mouth
(``--lips audio``: the expression learner's; ``tracked``), that mouth's lip points in the coordinates the
audio code was taught (``LipBasis``), the eye feature and the head pose of the replayed training frame (or a
user pose) condition the head field. A drive that replays recorded frames as
they were (no pose or background of its own) keeps them and renders only what speech changes
(``compose.SpeechFrames``: the lower face from under the nose, the eyes while a drawn blink differs): the
head field's rays under that region's mask at ``size`` (coarser past ``speech_rays``), over the recorded
frame, no torso. A pose or
background of the drive's own renders the whole frame at ``frame_size`` (head and torso over the plate),
pasted over the full-resolution plate with the rendered alpha. Look-ahead: the attention over 8 windows reaches
3 frames ahead and each viseme window 4 more (7 frames, 280 ms at 25 fps; 3
with ``audio=mel``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from ...audio.windows import audio_channels, feature_windows, input_stats, window_features
from ...compose import SpeechFrames, mask_bbox, over
from ...compose.drawing import model_box
from ...subject import Subject
from ..base import Engine, EngineConfig
from ..types import Drive
from .audio import momentum_smooth
from .data import LipBasis, NerfData, head_aabb, stack8
from .fields import FieldConfig, TorsoConfig
from .model import Frame, TalkingNeRF
from .trainer import NerfModel


@dataclass
class NerfConfig(EngineConfig):
    size: int = 0  # training frames and the speech region's render; 0: from head_pixels (CPU), native (CUDA)
    head_pixels: int = 192  # CPU: the head box (compose.drawing.model_box) spans this many pixels at ``size``
    frame_size: int = 0  # whole-frame renders (a pose or background of the drive's own); 0: 128 CPU, size CUDA
    speech_rays: int = -1  # most rays for what speech changes in a replayed frame (coarser above); -1: 4096 CPU, 0: any
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
    lr_decay_steps: int = 20000  # lr falls to 0.1x over this many steps of a phase (instead of lr_half_steps)
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

    def __post_init__(self) -> None:
        audio_channels(self.audio)  # an unknown kind fails here, before anything is written

    def code_index(self, frame: int) -> int:
        """Appearance-code row of a frame (one code per ``code_period`` frames)."""
        return int(frame) // max(1, self.code_period)

    def resolved(self, device: str, frame: int = 512, head_side: float = 512.0) -> "NerfConfig":
        """Sizes filled in for ``device`` and a subject of ``frame``² whose head box is ``head_side`` pixels."""
        cuda = device.startswith("cuda")
        size = self.size or (frame if cuda else int(round(frame * self.head_pixels / max(head_side, 1.0) / 8)) * 8)
        size = max(8, min(size, frame))  # never above the subject's own resolution
        return replace(self, size=size, frame_size=min(self.frame_size or (size if cuda else 128), size),
                       speech_rays=self.speech_rays if self.speech_rays >= 0 else (0 if cuda else 4096),
                       margin=tuple(self.margin))


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


def speech_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the pixels where ``mask`` (H, W) is above 1/255, one pixel of margin; empty: x1 = x0."""
    b = mask_bbox(mask, 1 / 255)
    if b is None:
        return 0, 0, 0, 0
    h, w = mask.shape
    return max(0, b[0] - 1), max(0, b[1] - 1), min(w, b[2] + 1), min(h, b[3] + 1)


def ray_grid(mask: np.ndarray, scale: float) -> tuple[int, int, np.ndarray]:
    """(nx, ny, used): the grid that samples ``mask`` (h, w) at ``scale`` and which of its nx·ny points lie
    under the mask, grown by one point (so upsampling the render back has its neighbours)."""
    h, w = mask.shape
    nx, ny = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(mask, (nx, ny), interpolation=cv2.INTER_AREA) > 0
    return nx, ny, cv2.dilate(small.astype(np.uint8), np.ones((3, 3), np.uint8)).reshape(-1).astype(bool)


LOOKAHEAD = {"visemes": 7, "mel": 3, "both": 7}  # frames i+3's window, reaching 4 frames further


class NerfEngine(Engine):
    name = "nerf"
    Config = NerfConfig
    free_pose = True  # renders any head pose, not only recorded ones
    background_swap = True  # head and torso have alpha: any plate goes behind them
    landmark_lips = True  # --lips audio|tracked: the drive's lip points, through the teacher's basis, are the code
    eye_control = True  # the eye feature conditions the field
    lookahead = max(LOOKAHEAD.values())

    @classmethod
    def resolve_config(cls, config: NerfConfig, subject: Subject, device: str) -> NerfConfig:
        return config.resolved(device, subject.size, model_box(subject.tracks["landmarks"], subject.size)[2])

    @classmethod
    def trainable(cls, subject: Subject, cfg: NerfConfig, device: str, train_idx, val_idx) -> NerfModel:
        data = NerfData(subject, cfg.size, cfg.audio, np.concatenate([train_idx, val_idx]))
        data.load()
        model = build_model(cfg, subject, data.t_scale)
        model.audio_net.norm.set(*input_stats(cfg.audio, data.windows[train_idx]))
        return NerfModel(cfg, model, data, train_idx, val_idx, device)

    @staticmethod
    def load_weights(path: Path, device: str) -> tuple[NerfConfig, TalkingNeRF, dict]:
        """``weights.pt`` → (config, model in eval mode, the checkpoint dict); needs no subject."""
        ck = torch.load(path, map_location="cpu", weights_only=False)
        cfg = NerfConfig(**{**ck["config"], "margin": tuple(ck["config"]["margin"])}).resolved(device)
        model = build_model(cfg, None, ck["t_scale"], aabb=ck["aabb"], n_frames=ck["n_frames"])
        model.load_state_dict(ck["model"])
        model.occupancy.relative, model.occupancy.threshold = True, 10.0  # as baked (see TalkingNeRF)
        return cfg, model.to(device).eval(), ck

    @classmethod
    def load(cls, model_dir: Path, subject: Subject, device: str) -> "NerfEngine":
        eng = cls(model_dir, subject, device)
        eng.cfg, eng.model, ck = cls.load_weights(Path(model_dir) / "weights.pt", device)
        eng.features, eng.lookahead = window_features(eng.cfg.audio), LOOKAHEAD[eng.cfg.audio]
        eng.eye_open = ck["eye_open"]
        eng.data = NerfData(subject, eng.cfg.size, eng.cfg.audio, indices=np.zeros(0, int))
        eng.K = torch.from_numpy(eng.data.K).to(device)
        split = subject.split("train")
        eng.n_train = int(split[-1]) if len(split) else 0
        eng.frames = SpeechFrames(subject, (0, 0, subject.size), subject.tracks["landmarks"])
        # the lip-shape coordinates the audio code was taught (trainer: w_teacher), fitted on the same frames
        eng.lips = LipBasis.fit(subject.tracks["canon_landmarks"], split, eng.model.audio_net.out_dim)
        return eng

    def _plates(self, rows: Drive, state: dict) -> tuple[np.ndarray, torch.Tensor]:
        """(full-resolution plate, ``frame_size`` plate tensor): the subject's, or the drive's background."""
        key = id(rows.background) if rows.background is not None else None
        if state.get("plate_key", -1) != key:
            full = self.subject.background() if rows.background is None else cv2.resize(
                rows.background, (self.subject.size, self.subject.size), interpolation=cv2.INTER_AREA)
            n = self.cfg.frame_size
            small = cv2.resize(full, (n, n), interpolation=cv2.INTER_AREA) if n != full.shape[0] else full
            state.update(plate_key=key, plates=(full, torch.from_numpy(small.astype(np.float32) / 255).to(self.device)))
        return state["plates"]

    @torch.no_grad()
    def render_batch(self, rows: Drive, ks: np.ndarray, prepared, state: dict) -> list[np.ndarray]:
        d, dev = self.data, self.device
        if rows.mouth is not None:  # a mouth shape to render (the expression learner's or tracked): as it is
            codes = torch.from_numpy(self.lips.codes(rows.mouth[ks][:, :LipBasis.POINTS])).to(dev)
        else:  # the paper's audio code, with its test-time smoothing
            windows = feature_windows(self.cfg.audio, rows.visemes, rows.mel_windows)
            codes = self.model.audio_net(torch.from_numpy(stack8(windows, ks)).to(dev))
            codes = momentum_smooth(codes, self.cfg.smoothing, state.get("code"))
        state["code"] = codes[-1]
        out = []
        for a, k in zip(codes, ks):
            j = int(rows.pose_index[k])
            R, t = (torch.from_numpy(x).to(dev) for x in (rows.rotation[k], rows.translation[k])) \
                if rows.rotation is not None else d.pose(j)
            eye = float(np.mean(rows.eye[k])) / self.eye_open
            f = Frame(K=self.K, R=R.to(dev), t=t.to(dev), audio=a, eye=torch.tensor([eye], device=dev),
                      code=self.cfg.code_index(min(j, self.n_train)))
            out.append(self._speech(f, j, rows.eye[k]) if self._replays(rows) else self._whole(f, rows, state))
        return out

    def _whole(self, f: Frame, rows: Drive, state: dict) -> np.ndarray:
        """The whole frame at ``frame_size``: head and torso over the plate, upsampled, over the full plate."""
        plate_full, plate = self._plates(rows, state)
        n, S = self.cfg.frame_size, self.subject.size
        K = self.K.clone()
        K[:2] *= n / self.cfg.size
        r = self.model.render_image(Frame(K, f.R, f.t, f.audio, f.eye, f.code), n, plate)
        colour, alpha = r["colour"].cpu().numpy(), r["alpha"].cpu().numpy()
        if S != n:
            colour = cv2.resize(colour, (S, S), interpolation=cv2.INTER_LINEAR)
            alpha = cv2.resize(alpha, (S, S), interpolation=cv2.INTER_LINEAR)
        return np.clip(over(colour * 255, alpha, plate_full.astype(np.float32)), 0, 255).round().astype(np.uint8)

    def _speech(self, f: Frame, j: int, eye: np.ndarray | None) -> np.ndarray:
        """Recorded frame j with the head rendered at ``size`` (coarser past ``speech_rays``) under the mask of
        what speech changes (and a drawn blink), blended in there; every other pixel is the recording's."""
        frame, mask = self.frames.get(j)["frame"], self.frames.mask_for(j, eye)[..., 0]
        x0, y0, x1, y1 = speech_box(mask)
        if x1 <= x0:
            return frame.copy()
        s, cap = self.cfg.size / self.subject.size, self.cfg.speech_rays
        nx, ny, used = ray_grid(mask[y0:y1, x0:x1], s)
        if cap and used.sum() > cap:  # coarser than ``size``: at most ``speech_rays`` rays
            s *= np.sqrt(cap / used.sum())
            nx, ny, used = ray_grid(mask[y0:y1, x0:x1], s)
        gx = (x0 + (np.arange(nx) + 0.5) * (x1 - x0) / nx) * s - 0.5  # pixel centres at scale s, as render_head takes
        gy = (y0 + (np.arange(ny) + 0.5) * (y1 - y0) / ny) * s - 0.5
        px = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2).astype(np.float32)[used]
        K = self.K.clone()
        K[:2] *= s * self.subject.size / self.cfg.size
        f = Frame(K, f.R, f.t, f.audio, f.eye, f.code)
        rgb, alpha = np.zeros((nx * ny, 3), np.float32), np.zeros(nx * ny, np.float32)
        rgb[used], alpha[used] = (x.cpu().numpy() for x in self.model.render_heads(f, torch.from_numpy(px).to(self.device)))
        rgb = cv2.resize(rgb.reshape(ny, nx, 3), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        alpha = cv2.resize(alpha.reshape(ny, nx), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        drawn = frame.copy()
        drawn[y0:y1, x0:x1] = np.clip(over(rgb * 255, alpha, frame[y0:y1, x0:x1].astype(np.float32)), 0, 255).round()
        return self.frames.paste_for(drawn, j, eye)

    @staticmethod
    def _replays(rows: Drive) -> bool:
        """The drive replays recorded frames as they were (no pose of its own, no other background)."""
        return rows.rotation is None and rows.background is None

    def composite_mask(self, rows: Drive, k: int) -> np.ndarray | None:
        """Replaying: where the render replaces the recorded frame (``SpeechFrames``); else all of it."""
        if not self._replays(rows):
            return None
        return self.frames.mask_for(int(rows.pose_index[k]), rows.eye[k])[..., 0]

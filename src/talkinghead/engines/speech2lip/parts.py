"""The speech2lip model as one object: its geometry, networks and the operations training and rendering share.

``Parts`` holds the canonical view (frame, region box, mask, learnable depth),
the mouth PCA of the model's one expression learner (``motion.pt``; models saved
before it kept a learner of their own), the lip field, the sync encoders and the Blend-Net,
and knows how to render lips at canonical points (``render_points``), warp
them into any frame's crop through GAMEM (``warp_in``) and save itself
(``export`` / ``from_export``).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F

from ...audio.windows import audio_channels, feature_windows, input_stats, local_mel_stats
from ...geometry import face as mesh
from ...geometry.pose import project
from ...lru import Lru
from ...motion import ExpressionConfig, ExpressionModel, MouthPCA
from ...subject import Subject
from .blend import BlendNet
from .data import LipData, canonical_mask, canonical_region
from .exemplar import Exemplars
from .gamem import Camera, CanonicalDepth, frame_camera
from .lipfield import LipField, LipFieldConfig, continuous_query
from .sync import SyncNet

__all__ = ["Parts", "texture_with_margin"]


def texture_with_margin(frame: np.ndarray, box: tuple[int, int, int, int], reach: float) -> tuple[np.ndarray, tuple]:
    """``frame``'s pixels of ``box`` = (x0, y0, w, h) grown on each side by ``reach`` of its size plus 2 px (the
    bicubic filter's support); where that leaves the frame its edge repeats. → (pixels, (mx, my))."""
    x0, y0, w, h = box
    mx, my = int(np.ceil(reach * w)) + 2, int(np.ceil(reach * h)) + 2
    H, W = frame.shape[:2]
    ys = np.clip(np.arange(y0 - my, y0 + h + my), 0, H - 1)
    xs = np.clip(np.arange(x0 - mx, x0 + w + mx), 0, W - 1)
    return frame[ys][:, xs], (mx, my)


class Parts:
    def __init__(self, subject: Subject, cfg, device: str, fit_idx: np.ndarray | None = None,
                 state: dict | None = None, motion=None):
        """Fresh parts for training on frames ``fit_idx`` (``motion``: the trained ``MotionModel`` whose mouth
        codes the lip field learns), or the saved ``state`` of a trained model."""
        self.subject, self.cfg, self.device = subject, cfg, device
        self.autocast = contextlib.nullcontext  # the engine's bf16 context at render time (engine.load)
        tr, af = subject.tracks, subject.audio_features
        if state is None:
            self.c = subject.neutral_frame()
            self.box = canonical_region(subject, fit_idx, self.c)
            init = CanonicalDepth.initial(subject, self.c, self.box)
            mask = canonical_mask(subject, fit_idx, self.c, self.box)
        else:
            self.c, self.box = int(state["c"]), tuple(int(v) for v in state["box"])
            init, mask = np.zeros((self.box[3], self.box[2]), np.float32), np.asarray(state["mask"])
        x0, y0, w, h = self.box
        self.cam_c = frame_camera(subject, self.c, device)
        self.depth = CanonicalDepth(self.box, init).to(device)
        self.depth_init = torch.as_tensor(init, device=device)
        self.mask = torch.as_tensor(mask, dtype=torch.float32, device=device)[None, None]
        ch = audio_channels(cfg.audio)
        self.expression = None  # a learner of its own: only models saved before motion.pt served every engine
        if state is None:  # the motion learners' mouth PCA (without them, e.g. to try the encoders: its own)
            self.pca = motion.expression.pca if motion is not None else MouthPCA().fit(tr["canon_landmarks"], fit_idx)
        elif "pca" in state:
            self.pca = MouthPCA(state["pca"]["comps"].shape[0])
            self.pca.load_state_dict(state["pca"])
        else:
            self.expression = ExpressionModel(ch, ExpressionConfig(members=cfg.expr_members, hidden=cfg.expr_hidden,
                                                                   seq=cfg.expr_seq)).to(device)
            self.expression.load_state_dict(state["expression"])
            self.pca = self.expression.pca
        n_app = cfg.code_index(subject.n_frames - 1) + 1
        self.field = LipField(LipFieldConfig(encoding=cfg.encoding, base=cfg.base, hidden=cfg.field_hidden,
                                             layers=cfg.field_layers, grid_levels=cfg.grid_levels,
                                             grid_max_res=max(2, round(max(w, h) / cfg.grid_cell)), n_app=n_app)).to(device)
        self.low_hw = (max(8, round(cfg.sync_width * h / w)), cfg.sync_width)
        self.sync = SyncNet(ch, cfg.sync_window, self.low_hw).to(device)
        self.blend = BlendNet(cfg.blend_base, norm=cfg.blend_norm).to(device)
        self.windows = feature_windows(cfg.audio, af["visemes"], af["mel_windows"]).astype(np.float32)
        self.windows_t = torch.from_numpy(self.windows).to(device)
        # the statistics of the 5 s around each frame: what normalises its audio as a drive's would be
        self.local_stats = local_mel_stats(af["mel_windows"], ExpressionConfig().context)
        if state is None:
            self.sync.norm.set(*input_stats(cfg.audio, self.windows[np.asarray(fit_idx)]))
        else:
            self.field.texture = torch.zeros(state["texture_shape"], device=device)
            for name in ("field", "depth", "blend", "sync"):
                getattr(self, name).load_state_dict(state[name])
        # the texture is the canonical frame itself, with a margin the lip field's displacements may reach
        # (rebuilt from the subject, also for a model saved before the margin existed)
        self.field.set_texture(*texture_with_margin(subject.frame(self.c), self.box, self.field.cfg.max_shift))
        self.codes_t = torch.from_numpy(self.pca.encode(tr["canon_landmarks"])).to(device)
        self.data = LipData(subject, self.c, self.depth, self.pca,
                            np.asarray(fit_idx if fit_idx is not None else [self.c]), cfg.code_period)
        self.last_train = int(np.max(fit_idx)) if state is None else int(state["last_train"])
        # the recorded mouths the engine may show (mouth="exemplar"): the training frames, never held-out ones
        shown = np.asarray(fit_idx) if state is None else np.asarray(state.get("exemplars", []), np.int64)
        self.exemplars = Exemplars(shown, self.codes_t.cpu().numpy()[shown], self.pca.scale.numpy() ** 2) \
            if len(shown) else None
        if state is not None:
            self.data.crop_wh = tuple(state["crop_wh"])
        lips = tr["canon_landmarks"][self.c][mesh.LIPS_OUTER].astype(np.float64)
        self.mouth_px = project(lips, tr["rotation"][self.c].astype(np.float64),
                                tr["translation"][self.c].astype(np.float64),
                                tr["intrinsics"].astype(np.float64)).mean(0)
        self._maps = Lru(64)
        self._low: dict[int, torch.Tensor] = {}

    # ---- canonical points ------------------------------------------------------------------------
    def uv(self, q: torch.Tensor) -> torch.Tensor:
        x0, y0, w, h = self.box
        return (q - torch.tensor([x0, y0], device=q.device, dtype=q.dtype)) / torch.tensor(
            [w, h], device=q.device, dtype=q.dtype)

    def patch(self, rng: np.random.Generator, size: int) -> torch.Tensor:
        """Pixel centres (size², 2) of a random rectangle of the region: around the mouth half the time."""
        x0, y0, w, h = self.box
        sx, sy = min(size, w), min(size, h)
        if rng.random() < 0.5:
            cx, cy = self.mouth_px - (x0, y0) + rng.normal(0, size / 6, 2)
            ox, oy = int(np.clip(cx - sx / 2, 0, w - sx)), int(np.clip(cy - sy / 2, 0, h - sy))
        else:
            ox, oy = int(rng.integers(0, w - sx + 1)), int(rng.integers(0, h - sy + 1))
        ys, xs = torch.meshgrid(torch.arange(sy) + oy + y0 + 0.5, torch.arange(sx) + ox + x0 + 0.5, indexing="ij")
        return torch.stack([xs, ys], -1).reshape(-1, 2).float().to(self.device)

    def render_points(self, q: torch.Tensor, code: torch.Tensor, app: int | None, continuous: bool = False):
        """Lip colours (N, 3) at canonical pixels ``q`` for one code (K,) and appearance row."""
        n = len(q)
        codes = code.reshape(1, -1).expand(n, -1)
        apps = None if app is None else torch.full((n,), int(app), device=q.device)
        fn = lambda u: self.field(u, codes, apps)  # noqa: E731
        if not continuous:
            return fn(self.uv(q))
        x0, y0, w, h = self.box
        return continuous_query(fn, self.uv(q), torch.tensor([0.5 / w, 0.5 / h], device=q.device))

    def low_grid(self) -> torch.Tensor:
        hs, ws = self.low_hw
        ys, xs = torch.meshgrid((torch.arange(hs) + 0.5) / hs, (torch.arange(ws) + 0.5) / ws, indexing="ij")
        return torch.stack([xs, ys], -1).reshape(-1, 2).to(self.device)

    def render_low(self, codes: torch.Tensor, apps: torch.Tensor) -> torch.Tensor:
        """Grey low-resolution canonical lips (M, h, w) of M codes: what the sync encoder reads."""
        g = self.low_grid()
        m = len(codes)
        rgb = self.field(g.repeat(m, 1), codes.repeat_interleave(len(g), 0), apps.to(self.device).repeat_interleave(len(g)))
        return rgb.mean(-1).reshape(m, *self.low_hw)

    def low_lips(self, frames: np.ndarray) -> torch.Tensor:
        """Real grey low-resolution canonical lips of frames (any shape) → (*shape, h, w)."""
        flat = np.asarray(frames).reshape(-1)
        x0, y0, w, h = self.box
        q = self.low_grid() * torch.tensor([w, h], device=self.device) + torch.tensor([x0, y0], device=self.device)
        for i in flat:
            if int(i) not in self._low:
                with torch.no_grad():
                    self._low[int(i)] = self.data.targets(int(i), q, self.depth, self.device).mean(-1).reshape(
                        *self.low_hw)
        return torch.stack([self._low[int(i)] for i in flat]).reshape(*np.shape(frames), *self.low_hw)

    # ---- GAMEM into a frame's crop --------------------------------------------------------------
    def crop_map(self, j: int, cam: Camera | None = None) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        """(origin, canonical pixels (Hc*Wc, 2) of the crop's pixel centres, region mask (1, 1, Hc, Wc))."""
        key = (j, self.depth.depth._version) if cam is None else None
        hit = self._maps.get(key) if key is not None else None
        if hit is not None:
            return hit
        origin = self.data.origin_of(j, cam)
        cam = cam or frame_camera(self.subject, j, self.device)
        w, h = self.data.crop_wh
        s = 4  # the map is smooth: invert on every 4th pixel, interpolate the rest
        ys, xs = torch.meshgrid(torch.arange(0, h + s, s, device=self.device) + 0.5,
                                torch.arange(0, w + s, s, device=self.device) + 0.5, indexing="ij")
        p = torch.stack([xs + float(origin[0]), ys + float(origin[1])], -1)
        coarse = self.depth.invert(p.reshape(-1, 2), self.cam_c, cam).reshape(1, *p.shape[:2], 2).permute(0, 3, 1, 2)
        fine = torch.stack(torch.meshgrid(torch.arange(h, device=self.device) / (p.shape[0] - 1) / s * 2 - 1,
                                          torch.arange(w, device=self.device) / (p.shape[1] - 1) / s * 2 - 1,
                                          indexing="ij")[::-1], -1)[None]
        q = F.grid_sample(coarse, fine, mode="bilinear", align_corners=True)[0].permute(1, 2, 0).reshape(-1, 2)
        g = (self.uv(q) * 2 - 1).reshape(1, h, w, 2)
        mask = F.grid_sample(self.mask, g, mode="bilinear", padding_mode="zeros", align_corners=False)
        out = (origin, q, mask)
        return self._maps.put(key, out) if key is not None else out

    def warp_in(self, j: int, code: torch.Tensor | None, cam: Camera | None = None, frame: np.ndarray | None = None,
                source: int | None = None):
        """(real crop, lips warped into it, region mask), each (1, C, Hc, Wc), for frame j: the lip field's lips
        for ``code``, or recorded frame ``source``'s own lips (mapped through the canonical view)."""
        origin, q, mask = self.crop_map(j, cam)
        w, h = self.data.crop_wh
        if frame is None and j in self.data.crops:
            real = self.data.crop_tensor(j, self.device)
        else:
            crop = self.data.cut(self.subject.frame(j) if frame is None else frame, origin)
            real = torch.from_numpy(crop).to(self.device).permute(2, 0, 1)[None].float() / 255
        inside = mask.reshape(-1) > 0
        lips = torch.zeros(h * w, 3, device=self.device)
        if source is not None:
            lips[inside] = self.data.targets(int(source), q[inside], self.depth, self.device)
        else:
            with self.autocast():
                lips[inside] = self.render_points(q[inside], code, self.cfg.code_index(min(j, self.last_train))).float()
        return real, lips.T.reshape(1, 3, h, w), mask

    # ---- metrics and saving -----------------------------------------------------------------------
    @torch.no_grad()
    def sync_metrics(self, idx: np.ndarray) -> dict:
        """On held-out windows: how often the synced lip window is the best match of its audio."""
        n = self.cfg.sync_window
        starts = np.asarray(idx)[: max(1, len(idx) - n)]
        w = starts[:, None] + np.arange(n)
        a, v = self.sync.embed_audio(self.windows_t[w]), self.sync.embed_lips(self.low_lips(w))
        sim = a @ v.T
        return {"top1": float((sim.argmax(1) == torch.arange(len(w))).float().mean()),
                "margin": float(sim.diag().mean() - sim.mean())}

    def export(self) -> dict:
        return {"config": asdict(self.cfg), "c": self.c, "box": list(self.box), "last_train": self.last_train,
                "mask": self.mask[0, 0].cpu().numpy(), "crop_wh": list(self.data.crop_wh),
                "texture_shape": list(self.field.texture.shape), "pca": self.pca.state_dict(),
                "exemplars": [] if self.exemplars is None else self.exemplars.frames.tolist(),
                **{k: getattr(self, k).state_dict() for k in ("field", "depth", "blend", "sync")}}

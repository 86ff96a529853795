"""The speech2lip model: the networks that draw lips in the canonical view, and what training and rendering share.

``LipModel`` holds the ``CanonicalView`` (``view.py``: the geometry, with the
learnable depth), the mouth PCA of the model's one expression learner
(``motion.pt``; models saved before it kept a learner of their own), the lip
field, the sync encoders and the Blend-Net. It renders lips at canonical
points (``render_points``) and at the sync encoder's low resolution
(``render_low``, ``low_lips``), puts lips into any frame's crop
(``warp_in``), and saves itself (``export``; a saved ``state`` back in the
constructor).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict

import numpy as np
import torch

from ...audio.windows import audio_channels, feature_windows, input_stats, local_mel_stats
from ...motion import ExpressionConfig, ExpressionModel, MouthPCA
from ...subject import Subject
from .blend import BlendNet
from .exemplar import ExemplarLips, Exemplars
from .gamem import Camera
from .lipfield import LipField, LipFieldConfig, continuous_query
from .sync import SyncNet
from .view import CanonicalView, texture_with_margin

__all__ = ["LipModel"]


class LipModel:
    def __init__(self, subject: Subject, cfg, device: str, fit_idx: np.ndarray | None = None,
                 state: dict | None = None, motion=None):
        """Fresh for training on frames ``fit_idx`` (``motion``: the trained ``MotionModel`` whose mouth codes
        the lip field learns), or the saved ``state`` of a trained model."""
        self.subject, self.cfg, self.device = subject, cfg, device
        self.autocast = contextlib.nullcontext  # the engine's bf16 context at render time (engine.load)
        tr, af = subject.tracks, subject.audio_features
        self.view = view = CanonicalView.fit(subject, fit_idx, device, cfg.code_period) if state is None else \
            CanonicalView.saved(subject, state, device, cfg.code_period)
        x0, y0, w, h = view.box
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
            for name in ("field", "blend", "sync"):
                getattr(self, name).load_state_dict(state[name])
        # the texture is the canonical frame itself, with a margin the lip field's displacements may reach
        # (rebuilt from the subject, also for a model saved before the margin existed)
        self.field.set_texture(*texture_with_margin(subject.frame(view.c), view.box, self.field.cfg.max_shift))
        self.codes_t = torch.from_numpy(self.pca.encode(tr["canon_landmarks"])).to(device)
        self.last_train = int(np.max(fit_idx)) if state is None else int(state["last_train"])
        # the recorded mouths the engine may show (mouth="exemplar"): the training frames, never held-out ones
        shown = np.asarray(fit_idx) if state is None else np.asarray(state.get("exemplars", []), np.int64)
        self.exemplars = Exemplars(shown, self.codes_t.cpu().numpy()[shown], self.pca.scale.numpy() ** 2) \
            if len(shown) else None
        self.exemplar_lips = ExemplarLips(view.canonical_image)  # saved since the exemplars' speed-up; else made here
        if state is not None and "exemplar_lips" in state:
            self.exemplar_lips.load(state["exemplar_lips"])
        self._low: dict[int, torch.Tensor] = {}

    # ---- lips in the canonical view ------------------------------------------------------------
    def render_points(self, q: torch.Tensor, code: torch.Tensor, app: int | None, continuous: bool = False):
        """Lip colours (N, 3) at canonical pixels ``q`` for one code (K,) and appearance row."""
        n = len(q)
        codes = code.reshape(1, -1).expand(n, -1)
        apps = None if app is None else torch.full((n,), int(app), device=q.device)
        fn = lambda u: self.field(u, codes, apps)  # noqa: E731
        if not continuous:
            return fn(self.view.uv(q))
        x0, y0, w, h = self.view.box
        return continuous_query(fn, self.view.uv(q), torch.tensor([0.5 / w, 0.5 / h], device=q.device))

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
        x0, y0, w, h = self.view.box
        q = self.low_grid() * torch.tensor([w, h], device=self.device) + torch.tensor([x0, y0], device=self.device)
        for i in flat:
            if int(i) not in self._low:
                with torch.no_grad():
                    self._low[int(i)] = self.view.targets(int(i), q).mean(-1).reshape(*self.low_hw)
        return torch.stack([self._low[int(i)] for i in flat]).reshape(*np.shape(frames), *self.low_hw)

    # ---- lips into a frame's crop ----------------------------------------------------------------
    def warp_in(self, j: int, code: torch.Tensor | None, cam: Camera | None = None, frame: np.ndarray | None = None,
                source: int | None = None):
        """(real crop, lips warped into it, region mask), each (1, C, Hc, Wc), for frame j: the lip field's lips
        for ``code``, or recorded frame ``source``'s own lips (mapped through the canonical view)."""
        origin, q, mask = self.view.crop_map(j, cam)
        w, h = self.view.data.crop_wh
        real = self.view.real_crop(j, origin, frame)
        inside = mask.reshape(-1) > 0
        lips = torch.zeros(h * w, 3, device=self.device)
        if source is not None:
            img = torch.from_numpy(self.exemplar_lips.image(source).copy()).to(self.device)
            lips[inside] = self.view.sample_canonical(img.permute(2, 0, 1)[None].float() / 255, q[inside])
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
        """``weights.pt``: the view's geometry and depth, the networks' weights and the shown exemplars (keys
        unchanged since the first models, so every saved model loads)."""
        if self.cfg.mouth == "exemplar" and self.exemplars is not None:
            self.exemplar_lips.fill(self.exemplars.frames)
        lips = self.exemplar_lips.state() if self.cfg.mouth == "exemplar" else None
        return {"config": asdict(self.cfg), "last_train": self.last_train, **self.view.state(),
                **({"exemplar_lips": lips} if lips is not None else {}),
                "texture_shape": list(self.field.texture.shape), "pca": self.pca.state_dict(),
                "exemplars": [] if self.exemplars is None else self.exemplars.frames.tolist(),
                **{k: getattr(self, k).state_dict() for k in ("field", "blend", "sync")}}

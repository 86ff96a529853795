"""What the speech2lip engine gives the shared trainer: four phases over one budget.

1. ``expression``: audio windows → mouth-shape code (``motion.ExpressionModel``).
2. ``sync``: the contrastive audio / lip encoders on the subject's real canonical lips.
3. ``lips``: the implicit lip model on random rectangles of the canonical region (continuous sampling),
   conditioned on each frame's tracked code (jittered), L1 + (1 - SSIM); the canonical depth learns from
   the same photometric loss (kept near its initialisation and smooth); the frozen sync encoders score
   lips rendered from the expression learner's codes (the sync loss).
4. ``blend``: the Blend-Net on crops of real frames, its input the lip model's image warped in (holes
   added), L1 + MS-SSIM + PatchGAN with feature matching, as the viseme engine trains its generator.
"""

from __future__ import annotations

import numpy as np
import torch

from ...geometry import face as mesh
from ...motion import MotionData
from ...nn import PatchDiscriminator, feature_matching_loss, gan_loss_d, gan_loss_g, ms_ssim_loss, ssim
from ..base import Phase, TrainModel, Validation
from .blend import add_holes
from .parts import Parts, to_uint8


class Speech2LipModel(TrainModel):
    def __init__(self, parts: Parts, train_idx, val_idx):
        self.p, self.cfg = parts, parts.cfg
        self.train_idx, self.val_idx = np.asarray(train_idx), np.asarray(val_idx)
        self.disc = PatchDiscriminator(3, 32).to(parts.device)
        self.rng = np.random.default_rng(self.cfg.seed)
        self._pred_codes = None
        # the expression learner's batches, as the motion learners draw them (noise augmentation included)
        self.motion_data = MotionData(parts.subject, self.cfg.audio, self.train_idx,
                                      noise_copies=6 if self.cfg.noise_share > 0 else 0, seed=self.cfg.seed)

    def modules(self) -> dict:
        p = self.p
        return {"expression": p.expression, "sync": p.sync, "field": p.field, "depth": p.depth, "blend": p.blend,
                "disc": self.disc}

    def param_groups(self) -> dict:
        c, p = self.cfg, self.p
        grid = [q for n, q in p.field.named_parameters() if n.startswith("grid")]
        net = [q for n, q in p.field.named_parameters() if not n.startswith("grid")]
        fast = dict(betas=(0.9, 0.99), eps=1e-15)
        return {"expression": [{"params": list(p.expression.parameters()), "lr": c.lr_expression}],
                "sync": [{"params": list(p.sync.parameters()), "lr": c.lr_sync}],
                "lips": [{"params": grid, "lr": c.lr_grid, **fast}, {"params": net, "lr": c.lr_field, **fast},
                         {"params": list(p.depth.parameters()), "lr": c.lr_depth}],
                "blend": [{"params": list(p.blend.parameters()), "lr": c.lr_blend, "betas": (0.5, 0.999)}],
                "disc": [{"params": list(self.disc.parameters()), "lr": c.lr_blend, "betas": (0.5, 0.999)}]}

    def phases(self) -> list[Phase]:
        c = self.cfg
        return [Phase("expression", c.expression_fraction, self.expression_batch, {"expression": self.expression_losses}),
                Phase("sync", c.sync_fraction, self.sync_batch, {"sync": self.sync_losses}),
                Phase("lips", c.lips_fraction, self.lips_batch, {"lips": self.lips_losses}),
                Phase("blend", max(0.0, 1 - c.expression_fraction - c.sync_fraction - c.lips_fraction),
                      self.blend_batch, {"blend": self.blend_losses, "disc": self.disc_losses})]

    def lr_scale(self, phase: str, step: int) -> float:
        return 0.5 ** (step / self.cfg.lr_half_steps)

    # ---- 1. expression ----------------------------------------------------------------------------
    def expression_batch(self, step: int) -> dict:
        b = self.motion_data.expression_batch(self.p.expression, self.p.codes_t, self.rng, self.cfg.noise_share)
        return {"w": b["w"].to(self.p.device), "y": b["y"]}

    def expression_losses(self, b: dict, step: int) -> dict:
        return self.p.expression.member_losses(b["w"], b["y"])

    # ---- 2. sync ----------------------------------------------------------------------------------
    def _sync_windows(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(idx)[:, None] + np.arange(self.cfg.sync_window)

    def sync_batch(self, step: int) -> dict:
        n = self.cfg.sync_window
        starts = self.rng.choice(self.train_idx[:-n], self.cfg.sync_batch, replace=False)
        w = self._sync_windows(starts)
        return {"w": self.p.windows_t[w], "lips": self.p.low_lips(w)}

    def sync_losses(self, b: dict, step: int) -> dict:
        return {"nce": self.p.sync.loss(b["w"], b["lips"])}

    # ---- 3. lips ----------------------------------------------------------------------------------
    def predicted_codes(self) -> torch.Tensor:
        """The expression learner's codes for every frame (computed once, after its phase)."""
        if self._pred_codes is None:
            w = self.p.expression_input(self.p.windows, self.p.local_stats)
            self._pred_codes = torch.from_numpy(self.p.expression.predict(w)).to(self.p.device)
        return self._pred_codes

    def lips_batch(self, step: int) -> dict:
        c, p = self.cfg, self.p
        frames = self.rng.choice(self.train_idx, c.frames_per_step)
        return {"frames": frames, "q": [p.patch(self.rng, c.patch) for _ in frames]}

    def lips_losses(self, b: dict, step: int) -> dict:
        c, p = self.cfg, self.p
        out = {"l1": 0.0, "ssim": 0.0}
        for i, q in zip(b["frames"], b["q"]):
            target = p.data.targets(int(i), q, p.depth, p.device)
            code = p.codes_t[int(i)] + c.code_noise * torch.randn_like(p.codes_t[int(i)])
            pred = p.render_points(q, code, p.data.appearance(i), continuous=True)
            img = lambda x: x.T.reshape(1, 3, c.patch, c.patch)  # noqa: E731
            out["l1"] += (pred - target).abs().mean() / len(b["frames"])
            out["ssim"] += c.w_ssim * (1 - ssim(img(pred), img(target), data_range=1.0).mean()) / len(b["frames"])
        r = p.depth.depth - p.depth_init  # the refinement: small and smooth
        out["depth"] = c.w_depth_prior * (r ** 2).mean() + c.w_depth_smooth * (
            (r[1:] - r[:-1]).abs().mean() + (r[:, 1:] - r[:, :-1]).abs().mean())
        if c.w_sync > 0 and step % c.sync_every == 0:
            starts = self.rng.choice(self.train_idx[:-c.sync_window], c.sync_batch // 2, replace=False)
            w = self._sync_windows(starts)
            codes = self.predicted_codes()[torch.from_numpy(w.reshape(-1))]
            lips = p.render_low(codes, torch.from_numpy(w.reshape(-1) // p.data.period)).reshape(len(w), c.sync_window,
                                                                                                 *p.low_hw)
            with torch.no_grad():
                a = p.sync.embed_audio(p.windows_t[w])
            from .sync import info_nce

            out["sync"] = c.w_sync * info_nce(a, p.sync.embed_lips(lips), p.sync.log_temp.exp().detach())
        return out

    # ---- 4. blend ---------------------------------------------------------------------------------
    def blend_batch(self, step: int) -> dict:
        frames = self.rng.choice(self.train_idx, self.cfg.blend_batch)
        with torch.no_grad():
            crops = [self.p.warp_in(int(i), self.p.codes_t[int(i)]) for i in frames]
        real, lips, mask = (torch.cat(x) for x in zip(*crops))
        return {"real": real, "lips": add_holes(lips, self.cfg.hole_prob), "mask": mask}

    def blend_losses(self, b: dict, step: int) -> dict:
        c = self.cfg
        b["fake"] = fake = self.p.blend(b["real"], b["lips"], b["mask"])
        to = lambda x: x * 2 - 1  # noqa: E731
        out = {"l1": (fake - b["real"]).abs().mean(), "ssim": c.w_ssim * ms_ssim_loss(to(fake), to(b["real"]))}
        if step >= c.gan_start:
            f, r = self.disc(to(fake)), self.disc(to(b["real"]))
            out["gan"] = c.w_gan * gan_loss_g(f[-1])
            out["fm"] = c.w_fm * feature_matching_loss(r[:-1], f[:-1])
        return out

    def disc_losses(self, b: dict, step: int) -> dict:
        if step < self.cfg.gan_start:
            return {}
        to = lambda x: x * 2 - 1  # noqa: E731
        return {"d": gan_loss_d(self.disc(to(b["real"]))[-1], self.disc(to(b["fake"].detach()))[-1])}

    # ---- validation and export ------------------------------------------------------------------
    def validation(self, phase: str, modules: dict) -> Validation:
        p, idx = self.p, self.val_idx
        held_out = p.subject.split("val") if len(p.subject.split("val")) >= 2 * self.cfg.sync_window else idx
        if phase == "expression":
            return Validation(metrics=p.expression_metrics(held_out))
        if phase == "sync":
            return Validation(metrics=p.sync_metrics(held_out))
        codes = self.predicted_codes() if phase == "blend" else p.codes_t
        pred, real, boxes = [], [], []
        for i in idx:
            r, lips, mask = p.warp_in(int(i), codes[int(i)])
            out = p.blend(r, lips, mask) if phase == "blend" else lips * mask + r * (1 - mask)
            pred.append(to_uint8(out)[0])
            real.append(to_uint8(r)[0])
            boxes.append(p.subject.tracks["lip_box"][int(i)] - np.tile(p.data.origin_of(int(i)), 2))
        pred, real = np.stack(pred), np.stack(real)
        diff = np.clip(np.abs(pred.astype(int) - real) * 3, 0, 255).astype(np.uint8)
        return Validation(pred=pred, real=real, boxes=np.stack(boxes), extra=[diff])

    def export(self, modules: dict) -> dict:
        return self.p.export()


__all__ = ["Speech2LipModel", "mesh"]

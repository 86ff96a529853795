"""What the speech2lip engine gives the shared trainer: three phases over one budget.

The mouth-shape codes come from the model's one expression learner (``motion.pt``, trained first by the
shared trainer: audio windows → mouth PCA coefficients).

1. ``sync``: the contrastive audio / lip encoders on the subject's real canonical lips.
2. ``lips``: the implicit lip model on random rectangles of the canonical region (continuous sampling),
   conditioned on each frame's tracked code (jittered), L1 + (1 - SSIM); the canonical depth learns from
   the same photometric loss (kept near its initialisation and smooth); the frozen sync encoders score
   lips rendered from the expression learner's codes (the sync loss).
3. ``blend``: the Blend-Net on crops of real frames, its input the lip model's image warped in (holes
   added), L1 + MS-SSIM + PatchGAN with feature matching, as the viseme engine trains its generator.
"""

from __future__ import annotations

import numpy as np
import torch

from ...geometry import face as mesh
from ...nn import PatchDiscriminator, discriminator_gan_losses, generator_gan_losses, ms_ssim_loss, ssim, to_uint8
from ..base import TrainModel
from ..types import Phase, Validation
from .blend import add_holes
from .model import LipModel


class Speech2LipModel(TrainModel):
    def __init__(self, lips: LipModel, motion, train_idx, val_idx):
        self.p, self.cfg, self.motion = lips, lips.cfg, motion
        self.train_idx, self.val_idx = np.asarray(train_idx), np.asarray(val_idx)
        self.disc = PatchDiscriminator(3, 32).to(lips.device)
        self.rng = np.random.default_rng(self.cfg.seed)
        self._pred_codes = None

    def modules(self) -> dict:
        p = self.p
        return {"sync": p.sync, "field": p.field, "depth": p.view.depth, "blend": p.blend, "disc": self.disc}

    def param_groups(self) -> dict:
        c, p = self.cfg, self.p
        grid = [q for n, q in p.field.named_parameters() if n.startswith("grid")]
        net = [q for n, q in p.field.named_parameters() if not n.startswith("grid")]
        fast = dict(betas=(0.9, 0.99), eps=1e-15)
        return {"sync": [{"params": list(p.sync.parameters()), "lr": c.lr_sync}],
                "lips": [{"params": grid, "lr": c.lr_grid, **fast}, {"params": net, "lr": c.lr_field, **fast},
                         {"params": list(p.view.depth.parameters()), "lr": c.lr_depth}],
                "blend": [{"params": list(p.blend.parameters()), "lr": c.lr_blend, "betas": (0.5, 0.999)}],
                "disc": [{"params": list(self.disc.parameters()), "lr": c.lr_blend, "betas": (0.5, 0.999)}]}

    def phases(self) -> list[Phase]:
        c = self.cfg
        blend = Phase("blend", max(0.0, 1 - c.sync_fraction - c.lips_fraction) if c.mouth == "field" else 1.0,
                      self.blend_batch, {"blend": self.blend_losses, "disc": self.disc_losses})
        if c.mouth == "exemplar":  # recorded lips: no lip model (nor its sync loss) to learn
            return [blend]
        return [Phase("sync", c.sync_fraction, self.sync_batch, {"sync": self.sync_losses}),
                Phase("lips", c.lips_fraction, self.lips_batch, {"lips": self.lips_losses}), blend]

    # ---- 1. sync ----------------------------------------------------------------------------------
    def _sync_windows(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(idx)[:, None] + np.arange(self.cfg.sync_window)

    def _sync_starts(self, k: int) -> np.ndarray:
        """``k`` first frames of windows lying wholly inside the training frames."""
        n, ok = self.cfg.sync_window, np.zeros(self.p.subject.n_frames + 1, bool)
        ok[self.train_idx] = True
        s = self.train_idx[self.train_idx + n <= self.p.subject.n_frames]
        s = s[np.all(ok[s[:, None] + np.arange(n)], axis=1)]
        return self.rng.choice(s, k, replace=False)

    def sync_batch(self, step: int) -> dict:
        starts = self._sync_starts(self.cfg.sync_batch)
        w = self._sync_windows(starts)
        return {"w": self.p.windows_t[w], "lips": self.p.low_lips(w)}

    def sync_losses(self, b: dict, step: int) -> dict:
        return {"nce": self.p.sync.loss(b["w"], b["lips"])}

    # ---- 2. lips ----------------------------------------------------------------------------------
    def predicted_codes(self) -> torch.Tensor:
        """The expression learner's codes for every frame, each frame's audio normalised by the 5 s around it
        as a drive's would be (computed once)."""
        if self._pred_codes is None:
            af = self.p.subject.audio_features
            codes = self.motion.mouth_codes(af["visemes"], af["mel_windows"].astype(np.float32), self.p.local_stats)
            self._pred_codes = torch.from_numpy(codes).to(self.p.device)
        return self._pred_codes

    def lips_batch(self, step: int) -> dict:
        c, p = self.cfg, self.p
        frames = self.rng.choice(self.train_idx, c.frames_per_step)
        return {"frames": frames, "q": [p.view.patch(self.rng, c.patch) for _ in frames]}

    def lips_losses(self, b: dict, step: int) -> dict:
        c, p = self.cfg, self.p
        out = {"l1": 0.0, "ssim": 0.0}
        for i, q in zip(b["frames"], b["q"]):
            target = p.view.targets(int(i), q)
            code = p.codes_t[int(i)] + c.code_noise * torch.randn_like(p.codes_t[int(i)])
            pred = p.render_points(q, code, p.view.data.appearance(i), continuous=True)
            img = lambda x: x.T.reshape(1, 3, c.patch, c.patch)  # noqa: E731
            out["l1"] += (pred - target).abs().mean() / len(b["frames"])
            out["ssim"] += c.w_ssim * (1 - ssim(img(pred), img(target), data_range=1.0).mean()) / len(b["frames"])
        r = p.view.depth.depth - p.view.depth_init  # the refinement: small and smooth
        out["depth"] = c.w_depth_prior * (r ** 2).mean() + c.w_depth_smooth * (
            (r[1:] - r[:-1]).abs().mean() + (r[:, 1:] - r[:, :-1]).abs().mean())
        if c.w_sync > 0 and step % c.sync_every == 0:
            starts = self._sync_starts(c.sync_batch // 2)
            w = self._sync_windows(starts)
            codes = self.predicted_codes()[torch.from_numpy(w.reshape(-1))]
            lips = p.render_low(codes, torch.from_numpy(w.reshape(-1) // p.view.data.period)).reshape(
                len(w), c.sync_window, *p.low_hw)
            with torch.no_grad():
                a = p.sync.embed_audio(p.windows_t[w])
            from .sync import info_nce

            out["sync"] = c.w_sync * info_nce(a, p.sync.embed_lips(lips), p.sync.log_temp.exp().detach())
        return out

    # ---- 3. blend ---------------------------------------------------------------------------------
    def exemplar_sources(self, frames: np.ndarray, near: int = 5) -> np.ndarray:
        """For training frames, the recorded lips shown over them: one of the ``near`` exemplars nearest each
        frame's own mouth, at least ``exemplar_gap`` frames away (never its own pixels: as on held-out speech)."""
        ex = self.p.exemplars
        cost = ex.costs(self.p.codes_t.cpu().numpy()[frames])
        cost[ex.exclude(frames, self.cfg.exemplar_gap)] = np.inf
        pick = np.argsort(cost, 1)[:, :near][np.arange(len(frames)), self.rng.integers(0, near, len(frames))]
        return ex.frames[pick]

    def blend_batch(self, step: int) -> dict:
        frames = self.rng.choice(self.train_idx, self.cfg.blend_batch)
        src = self.exemplar_sources(frames) if self.cfg.mouth == "exemplar" else [None] * len(frames)
        with torch.no_grad():
            crops = [self.p.warp_in(int(i), self.p.codes_t[int(i)], source=s) for i, s in zip(frames, src)]
        real, lips, mask = (torch.cat(x) for x in zip(*crops))
        return {"real": real, "lips": add_holes(lips, self.cfg.hole_prob), "mask": mask}

    def _judged(self, b: dict) -> list:
        """(discriminator, Blend-Net output, real crop), the images in [-1, 1] as the discriminator reads them."""
        return [(self.disc, b["fake"] * 2 - 1, b["real"] * 2 - 1)]

    def blend_losses(self, b: dict, step: int) -> dict:
        c = self.cfg
        b["fake"] = fake = self.p.blend(b["real"], b["lips"], b["mask"])
        to = lambda x: x * 2 - 1  # noqa: E731
        return {"l1": (fake - b["real"]).abs().mean(), "ssim": c.w_ssim * ms_ssim_loss(to(fake), to(b["real"])),
                **generator_gan_losses(self._judged(b), step, c.gan_start, c.w_gan, c.w_fm)}

    def disc_losses(self, b: dict, step: int) -> dict:
        return discriminator_gan_losses(self._judged(b), step, self.cfg.gan_start)

    # ---- validation and export ------------------------------------------------------------------
    def validation(self, phase: str, modules: dict) -> Validation:
        p, idx = self.p, self.val_idx
        held_out = p.subject.split("val") if len(p.subject.split("val")) >= 2 * self.cfg.sync_window else idx
        if phase == "sync":
            return Validation(metrics=p.sync_metrics(held_out))
        codes = self.predicted_codes() if phase == "blend" else p.codes_t
        src = [None] * len(idx)
        if self.cfg.mouth == "exemplar":
            from .exemplar import exemplar_path

            src = p.exemplars.frames[exemplar_path(p.exemplars, codes[torch.from_numpy(np.asarray(idx))].cpu().numpy(),
                                                   self.cfg.exemplar_hold, self.cfg.exemplar_jump)]
        pred, real, boxes = [], [], []
        for i, s in zip(idx, src):
            r, lips, mask = p.warp_in(int(i), codes[int(i)], source=s)
            out = p.blend(r, lips, mask) if phase == "blend" else lips * mask + r * (1 - mask)
            pred.append(to_uint8(out)[0])
            real.append(to_uint8(r)[0])
            boxes.append(p.subject.tracks["lip_box"][int(i)] - np.tile(p.view.data.origin_of(int(i)), 2))
        pred, real = np.stack(pred), np.stack(real)
        diff = np.clip(np.abs(pred.astype(int) - real) * 3, 0, 255).astype(np.uint8)
        return Validation(pred=pred, real=real, boxes=np.stack(boxes), extra=[diff])

    def export(self, modules: dict) -> dict:
        return self.p.export()


__all__ = ["Speech2LipModel", "mesh"]

"""What the viseme engine gives the shared trainer: its networks, two phases and their losses.

Phase ``oracle`` trains the hierarchical oracle on real frames; phase
``renderer`` trains the generator, where ``synthetic_fraction`` of every batch
takes the oracle's rendering of mashed keypoints as ground truth. Both phases
have a generator loss dict (smooth L1 with the mouth twice, MS-SSIM, and once
the discriminators join, LSGAN + feature matching) and a discriminator loss
dict for their two PatchGANs (face, mouth). Adam (0.5, 0.999), the learning
rate halving every ``lr_half_steps``.
"""

from __future__ import annotations

import numpy as np
import torch

from ...nn import (PatchDiscriminator, discriminator_gan_losses, generator_gan_losses, ms_ssim_loss, smooth_l1,
                   to_uint8)
from ..base import TrainModel
from ..types import Phase, Validation
from .data import FrameStore, audio_shape
from .networks import VisemeGenerator, VisemeNetConfig
from .oracle import Oracle
from .render import to_tensor


def net_config(cfg) -> VisemeNetConfig:
    window, audio_dim = audio_shape(cfg.audio)
    latent = max(8, min(32, cfg.size // 8))
    return VisemeNetConfig(size=cfg.size, mouth_size=cfg.mouth_size, base=cfg.base, audio_dim=audio_dim,
                           audio_window=window, latent_hw=latent)


class VisemeModel(TrainModel):
    def __init__(self, cfg, store: FrameStore, train_idx, val_idx, device: str):
        self.cfg, self.store, self.device = cfg, store, device
        self.train_idx, self.val_idx = np.asarray(train_idx), np.asarray(val_idx)
        net = net_config(cfg)
        self.gen, self.oracle = VisemeGenerator(net).to(device), Oracle(net).to(device)
        d_base = max(16, cfg.base * 2)
        self.d = {k: PatchDiscriminator(3, d_base).to(device) for k in ("o_face", "o_mouth", "g_face", "g_mouth")}

    def modules(self) -> dict:
        return {"gen": self.gen, "oracle": self.oracle, **{f"d_{k}": v for k, v in self.d.items()}}

    def param_groups(self) -> dict:
        adam = dict(lr=self.cfg.lr, betas=(0.5, 0.999))
        d = lambda *ks: [p for k in ks for p in self.d[k].parameters()]  # noqa: E731
        return {"oracle": [{"params": list(self.oracle.parameters()), **adam}],
                "gen": [{"params": list(self.gen.parameters()), **adam}],
                "d_oracle": [{"params": d("o_face", "o_mouth"), **adam}],
                "d_gen": [{"params": d("g_face", "g_mouth"), **adam}]}

    def phases(self) -> list[Phase]:
        c = self.cfg
        shares = (c.oracle_fraction, 1 - c.oracle_fraction) if c.augment else (0.0, 1.0)
        return [Phase("oracle", shares[0], self.oracle_batch,
                      {"oracle": self.oracle_losses, "d_oracle": self.d_losses("o")}),
                Phase("renderer", shares[1], self.renderer_batch,
                      {"gen": self.renderer_losses, "d_gen": self.d_losses("g")}, tag="val")]

    # ---- batches -----------------------------------------------------------------------------
    def _t(self, arrays, key) -> torch.Tensor:
        x = np.stack([a[key] for a in arrays])
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        return to_tensor(x, self.device)

    def _real(self, idx) -> dict:
        items = [self.store.cache[int(i)] for i in idx]
        return {"full": self._t(items, "full"), "upper": self._t(items, "upper"),
                "mouth_draw": self._t(items, "mouth_draw"), "rgb": self._t(items, "rgb"),
                "mouth_rgb": self._t(items, "mouth_rgb"),
                "audio": torch.from_numpy(self.store.audio_windows[idx]).to(self.device),
                "box": torch.from_numpy(self.store.mouth_boxes[idx]).to(self.device)}

    def oracle_batch(self, step: int) -> dict:
        return self._real(np.random.choice(self.train_idx, self.cfg.batch_size))

    def renderer_batch(self, step: int) -> dict:
        """Real frames, where ``synthetic_fraction`` of the targets become the oracle's rendering of
        frame i's mouth keypoints on frame j's face and pose (keypoint mashing), with i's audio."""
        n = self.cfg.batch_size
        pose_idx = np.random.choice(self.train_idx, n)
        syn = (np.random.rand(n) < self.cfg.synthetic_fraction) if self.cfg.augment else np.zeros(n, bool)
        audio_idx = np.where(syn, np.random.choice(self.train_idx, n), pose_idx)
        b = self._real(pose_idx)
        b["audio"] = torch.from_numpy(self.store.audio_windows[audio_idx]).to(self.device)
        if syn.any():
            rows = np.flatnonzero(syn)
            items = [self.store.mashed(int(audio_idx[r]), int(pose_idx[r])) for r in rows]
            with torch.no_grad():
                self.oracle.eval()
                face, mouth = self.oracle(self._t(items, "full"), self._t(items, "mouth_draw"), b["box"][rows])
                self.oracle.train()
            b["rgb"][rows] = face.clamp(-1, 1)
            b["mouth_rgb"][rows] = mouth.clamp(-1, 1)
        return b

    # ---- loss dicts ----------------------------------------------------------------------------
    def _judged(self, b: dict, who: str) -> list:
        """(discriminator, generated, real) for the face and the mouth of ``who`` (o: oracle, g: generator)."""
        (face, mouth) = b["fake"]
        return [(self.d[f"{who}_face"], face, b["rgb"]), (self.d[f"{who}_mouth"], mouth, b["mouth_rgb"])]

    def _g_losses(self, b: dict, who: str, step: int) -> dict:
        c, (face, mouth) = self.cfg, b["fake"]
        face_t, mouth_t = b["rgb"], b["mouth_rgb"]
        return {"l1": c.w_l1 * (smooth_l1(face, face_t) + 2.0 * smooth_l1(mouth, mouth_t)),
                "ssim": c.w_ssim * (ms_ssim_loss(face, face_t) + ms_ssim_loss(mouth, mouth_t)),
                **generator_gan_losses(self._judged(b, who), step, c.gan_start, c.w_gan, c.w_fm)}

    def oracle_losses(self, b: dict, step: int) -> dict:
        # Half the time the head network sees the real mouth (teacher forcing), half its own.
        b["fake"] = self.oracle(b["full"], b["mouth_draw"], b["box"], mouth_teacher=b["mouth_rgb"],
                                teacher_forcing=step % 2 == 0)
        return self._g_losses(b, "o", step)

    def renderer_losses(self, b: dict, step: int) -> dict:
        b["fake"] = self.gen(b["upper"], b["audio"], b["box"])
        return self._g_losses(b, "g", step)

    def d_losses(self, who: str):
        return lambda b, step: discriminator_gan_losses(self._judged(b, who), step, self.cfg.gan_start)

    # ---- validation and export ------------------------------------------------------------------
    def validation(self, phase: str, modules: dict) -> Validation:
        b = self._real(self.val_idx)
        if phase == "oracle":
            face, draw = modules["oracle"](b["full"], b["mouth_draw"], b["box"])[0], b["full"]
        else:
            face, draw = modules["gen"](b["upper"], b["audio"], b["box"])[0], b["upper"]
        return Validation(pred=to_uint8(face, -1), real=to_uint8(b["rgb"], -1),
                          boxes=self.store.mouth_boxes[self.val_idx], extra=[to_uint8(draw, -1)])

    def export(self, modules: dict) -> dict:
        return {"config": self.cfg.__dict__, "generator": modules["gen"].state_dict(),
                "oracle": modules["oracle"].state_dict()}

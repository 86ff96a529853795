"""Optimisation steps for the viseme engine's two phases (oracle, renderer)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ...evaluate.metrics import psnr
from ...utils import atomic_path
from .data import FrameStore, audio_shape
from .losses import (PatchDiscriminator, feature_matching_loss, gan_loss_d, gan_loss_g, ms_ssim_loss,
                     smooth_l1)
from .networks import VisemeGenerator, VisemeNetConfig
from .oracle import Oracle
from .render import to_tensor


class VisemeTrainer:
    def __init__(self, cfg, store: FrameStore, train_idx, val_idx, device: str, model_dir: Path):
        self.cfg, self.store, self.device, self.model_dir = cfg, store, device, Path(model_dir)
        self.train_idx, self.val_idx = np.asarray(train_idx), np.asarray(val_idx)
        net = self.net_config(cfg)
        self.gen, self.oracle = VisemeGenerator(net).to(device), Oracle(net).to(device)
        d_base = max(16, cfg.base * 2)
        self.d = {k: PatchDiscriminator(3, d_base).to(device) for k in ("o_face", "o_mouth", "g_face", "g_mouth")}
        adam = dict(lr=cfg.lr, betas=(0.5, 0.999))
        self.opt = {
            "oracle": torch.optim.Adam(self.oracle.parameters(), **adam),
            "gen": torch.optim.Adam(self.gen.parameters(), **adam),
            "d_oracle": torch.optim.Adam(list(self.d["o_face"].parameters()) + list(self.d["o_mouth"].parameters()), **adam),
            "d_gen": torch.optim.Adam(list(self.d["g_face"].parameters()) + list(self.d["g_mouth"].parameters()), **adam),
        }

    @staticmethod
    def net_config(cfg) -> VisemeNetConfig:
        window, audio_dim = audio_shape(cfg.audio)
        latent = max(8, min(32, cfg.size // 8))
        return VisemeNetConfig(size=cfg.size, mouth_size=cfg.mouth_size, base=cfg.base, audio_dim=audio_dim,
                               audio_window=window, latent_hw=latent)

    # ---- state -------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"gen": self.gen.state_dict(), "oracle": self.oracle.state_dict(),
                "d": {k: v.state_dict() for k, v in self.d.items()},
                "opt": {k: v.state_dict() for k, v in self.opt.items()}}

    def load_state(self, s: dict) -> None:
        self.gen.load_state_dict(s["gen"])
        self.oracle.load_state_dict(s["oracle"])
        for k, v in s["d"].items():
            self.d[k].load_state_dict(v)
        for k, v in s["opt"].items():
            self.opt[k].load_state_dict(v)

    def _set_lr(self, step: int) -> None:
        lr = self.cfg.lr * 0.5 ** (step / self.cfg.lr_half_steps)
        for opt in self.opt.values():
            for g in opt.param_groups:
                g["lr"] = lr

    # ---- batches -----------------------------------------------------------------------------
    def _t(self, arrays, key, channels: bool = True) -> torch.Tensor:
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

    # ---- losses ------------------------------------------------------------------------------
    def _g_losses(self, face, mouth, face_t, mouth_t, d_face, d_mouth, step) -> tuple[torch.Tensor, dict]:
        c = self.cfg
        rec = smooth_l1(face, face_t) + 2.0 * smooth_l1(mouth, mouth_t)
        ssim = ms_ssim_loss(face, face_t) + ms_ssim_loss(mouth, mouth_t)
        loss = c.w_l1 * rec + c.w_ssim * ssim
        logs = {"l1": rec.item(), "ssim": ssim.item()}
        if step >= c.gan_start:
            fake_f, real_f = d_face(face), d_face(face_t)
            fake_m, real_m = d_mouth(mouth), d_mouth(mouth_t)
            gan = gan_loss_g(fake_f[-1]) + gan_loss_g(fake_m[-1])
            fm = feature_matching_loss(real_f[:-1], fake_f[:-1]) + feature_matching_loss(real_m[:-1], fake_m[:-1])
            loss = loss + c.w_gan * gan + c.w_fm * fm
            logs.update(gan=gan.item(), fm=fm.item())
        return loss, logs

    def _d_step(self, opt, d_face, d_mouth, face, mouth, face_t, mouth_t) -> float:
        opt.zero_grad(set_to_none=True)
        loss = (gan_loss_d(d_face(face_t)[-1], d_face(face.detach())[-1])
                + gan_loss_d(d_mouth(mouth_t)[-1], d_mouth(mouth.detach())[-1]))
        loss.backward()
        opt.step()
        return loss.item()

    # ---- phase 1: oracle -----------------------------------------------------------------------
    def oracle_step(self, step: int) -> dict:
        self._set_lr(step)
        b = self._real(np.random.choice(self.train_idx, self.cfg.batch_size))
        # Half the time the head network sees the real mouth (teacher forcing), half its own.
        face, mouth = self.oracle(b["full"], b["mouth_draw"], b["box"], mouth_teacher=b["mouth_rgb"],
                                  teacher_forcing=step % 2 == 0)
        loss, logs = self._g_losses(face, mouth, b["rgb"], b["mouth_rgb"], self.d["o_face"], self.d["o_mouth"], step)
        self.opt["oracle"].zero_grad(set_to_none=True)
        loss.backward()
        self.opt["oracle"].step()
        if step >= self.cfg.gan_start:
            logs["d"] = self._d_step(self.opt["d_oracle"], self.d["o_face"], self.d["o_mouth"], face, mouth,
                                     b["rgb"], b["mouth_rgb"])
        return logs

    # ---- phase 2: renderer ---------------------------------------------------------------------
    def _mashed_targets(self, b: dict, pose_idx, audio_idx, syn: np.ndarray) -> None:
        """Replace the targets of the ``syn`` samples with the oracle's rendering of mashed keypoints."""
        if not syn.any():
            return
        rows = np.flatnonzero(syn)
        items = [self.store.mashed(int(audio_idx[r]), int(pose_idx[r])) for r in rows]
        full = self._t(items, "full")
        mouth_draw = self._t(items, "mouth_draw")
        with torch.no_grad():
            self.oracle.eval()
            face, mouth = self.oracle(full, mouth_draw, b["box"][rows])
            self.oracle.train()
        b["rgb"][rows] = face.clamp(-1, 1)
        b["mouth_rgb"][rows] = mouth.clamp(-1, 1)

    def renderer_step(self, step: int) -> dict:
        self._set_lr(step)
        n = self.cfg.batch_size
        pose_idx = np.random.choice(self.train_idx, n)
        syn = (np.random.rand(n) < self.cfg.synthetic_fraction) if self.cfg.augment else np.zeros(n, bool)
        audio_idx = np.where(syn, np.random.choice(self.train_idx, n), pose_idx)
        b = self._real(pose_idx)
        b["audio"] = torch.from_numpy(self.store.audio_windows[audio_idx]).to(self.device)
        self._mashed_targets(b, pose_idx, audio_idx, syn)
        face, mouth = self.gen(b["upper"], b["audio"], b["box"])
        loss, logs = self._g_losses(face, mouth, b["rgb"], b["mouth_rgb"], self.d["g_face"], self.d["g_mouth"], step)
        self.opt["gen"].zero_grad(set_to_none=True)
        loss.backward()
        self.opt["gen"].step()
        if step >= self.cfg.gan_start:
            logs["d"] = self._d_step(self.opt["d_gen"], self.d["g_face"], self.d["g_mouth"], face, mouth,
                                     b["rgb"], b["mouth_rgb"])
        return logs

    # ---- validation ----------------------------------------------------------------------------
    @torch.no_grad()
    def _validate(self, render, tag: str, step: int) -> dict:
        b = self._real(self.val_idx)
        face, draw = render(b)
        img = ((face.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        gt = ((b["rgb"] + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        boxes = self.store.mouth_boxes[self.val_idx]
        full = [psnr(p, g) for p, g in zip(img, gt)]
        mouth = []
        for p, g, (x0, y0, x1, y1) in zip(img, gt, boxes.round().astype(int)):
            x0, y0 = max(0, x0), max(0, y0)
            mouth.append(psnr(p[y0:y1, x0:x1], g[y0:y1, x0:x1]))
        self._preview(tag, step, gt[:2], img[:2], draw[:2])
        return {f"{tag}_psnr": float(np.mean(full)), f"{tag}_psnr_mouth": float(np.mean(mouth))}

    def validate_oracle(self, step: int) -> dict:
        self.oracle.eval()
        out = self._validate(lambda b: (self.oracle(b["full"], b["mouth_draw"], b["box"])[0], b["full"]),
                             "oracle", step)
        self.oracle.train()
        return out

    def validate_renderer(self, step: int) -> dict:
        self.gen.eval()
        out = self._validate(lambda b: (self.gen(b["upper"], b["audio"], b["box"])[0], b["upper"]),
                             "val", step)
        self.gen.train()
        return out

    def _preview(self, tag: str, step: int, gt, pred, draw) -> None:
        d = ((draw.clamp(-1, 1) + 1) * 127.5).round().byte().cpu().numpy()[:, 0]
        rows = [np.concatenate([g, p, np.repeat(x[..., None], 3, -1)], axis=1) for g, p, x in zip(gt, pred, d)]
        out = self.model_dir / "previews"
        out.mkdir(exist_ok=True)
        with atomic_path(out / f"{tag}_{step:06d}.png") as tmp:
            cv2.imwrite(str(tmp), np.concatenate(rows, axis=0)[..., ::-1])

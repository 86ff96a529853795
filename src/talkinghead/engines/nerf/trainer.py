"""Optimisation of the NeRF engine's three phases (RAD-NeRF Sec. 3.4 / App. A).

* ``head``: rays of one or two frames per step, mostly inside the head's box;
  predicted head composited over the frame's torso-and-background (head pixels
  replaced by the plate) so the field learns the head only. Losses: colour
  MSE, alpha entropy (1e-3), L1 on the audio coordinate of rays outside the
  face region (0.1: audio may only move the face).
* ``lips``: the face field fine-tuned on square patches over the lips, MSE
  plus a structural term (1 - SSIM; LPIPS needs downloaded weights).
  Deviation: in ``head`` the audio code is also regressed onto the tracked lip
  shape (``lip_codes``, weight ``w_teacher``). The paper's input, a pretrained
  ASR model's logits, already carries that structure and it trains for 10^5
  GPU steps; with our soft visemes and a few thousand CPU steps the code's
  lip-unrelated variation kept the field from finding the mouth at all.
* ``torso``: head frozen; the deformable 2D torso field learns the rest of the
  frame, composited over the background plate.

Adam with the grids at 10x the networks' learning rate, exponential decay,
EMA (0.95) of all weights (the EMA copy is what validation and export use).
"""

from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np
import torch

from ...evaluate.metrics import psnr
from ...utils import atomic_path
from .data import NerfData, lip_codes, stack8
from .model import Frame, TalkingNeRF


def ssim_patch(a: torch.Tensor, b: torch.Tensor, win: int = 7) -> torch.Tensor:
    """Mean SSIM of two (3, H, W) images in [0, 1] with a box window."""
    pool = torch.nn.functional.avg_pool2d
    a, b = a[None], b[None]
    mu_a, mu_b = pool(a, win, 1), pool(b, win, 1)
    va = pool(a * a, win, 1) - mu_a ** 2
    vb = pool(b * b, win, 1) - mu_b ** 2
    cov = pool(a * b, win, 1) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (va + vb + c2))
    return s.mean()


class NerfTrainer:
    def __init__(self, cfg, model: TalkingNeRF, data: NerfData, train_idx, val_idx, device: str, model_dir: Path):
        self.cfg, self.model, self.data, self.device = cfg, model.to(device), data, device
        self.model_dir = Path(model_dir)
        self.train_idx, self.val_idx = np.asarray(train_idx), np.asarray(val_idx)
        self.rng = np.random.default_rng(cfg.seed)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.K = torch.from_numpy(data.K).to(device)
        self.bg = torch.from_numpy(data.background.astype(np.float32) / 255).to(device)
        self.opt = {"head": self._adam([model.face, model.audio_net]), "lips": self._adam([model.face], 0.2),
                    "torso": self._adam([model.torso])}
        self.phase_step0: dict[str, int] = {}
        canon = data.subject.tracks["canon_landmarks"]
        self.lip_code = torch.from_numpy(lip_codes(canon, self.train_idx, model.audio_net.out_dim)).to(device)

    def _adam(self, modules, scale: float = 1.0) -> torch.optim.Adam:
        grid, net = [], []
        for m in modules:
            for name, p in m.named_parameters():
                (grid if "grid" in name.split(".")[0] or name.startswith(("spatial", "audio_grid")) else net).append(p)
        lr = self.cfg.lr * scale
        return torch.optim.Adam([{"params": grid, "lr": lr * 10, "base": lr * 10},
                                 {"params": net, "lr": lr, "base": lr}], betas=(0.9, 0.99), eps=1e-15)

    # ---- state -------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                "opt": {k: v.state_dict() for k, v in self.opt.items()}}

    def load_state(self, s: dict) -> None:
        self.model.load_state_dict(s["model"])
        self.ema.load_state_dict(s["ema"])
        for k, v in s["opt"].items():
            self.opt[k].load_state_dict(v)

    @torch.no_grad()
    def _ema_update(self) -> None:
        d = self.cfg.ema
        for pe, p in zip(self.ema.parameters(), self.model.parameters()):
            pe.mul_(d).add_(p.detach(), alpha=1 - d)
        for be, b in zip(self.ema.buffers(), self.model.buffers()):
            be.copy_(b)

    def _step_opt(self, name: str, loss: torch.Tensor, step: int) -> None:
        opt = self.opt[name]
        decay = 0.1 ** min(1.0, step / self.cfg.lr_decay_steps)
        for g in opt.param_groups:
            g["lr"] = g["base"] * decay
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        self._ema_update()

    # ---- conditions ----------------------------------------------------------------------------
    def audio_codes(self, idx: np.ndarray, model: TalkingNeRF | None = None) -> torch.Tensor:
        """``(len(idx), audio_dim)`` audio codes of training frames ``idx``."""
        w = torch.from_numpy(stack8(self.data.windows, np.asarray(idx))).to(self.device)
        return (model or self.model).audio_net(w)

    def frame(self, i: int, model: TalkingNeRF | None = None, code: int | None = None) -> Frame:
        R, t = self.data.pose(i)
        return Frame(K=self.K, R=R.to(self.device), t=t.to(self.device), audio=self.audio_codes([i], model)[0],
                     eye=torch.tensor([self.data.eye[i]], device=self.device),
                     code=self.cfg.code_index(np.clip(i if code is None else code, 0, self.train_idx.max())))

    def _maybe_update_occupancy(self, step: int) -> None:
        if step % self.cfg.occ_every or step < self.cfg.occ_warmup:
            return
        idx = self.rng.choice(self.train_idx, self.cfg.occ_conditions)
        with torch.no_grad():
            codes = self.audio_codes(idx)
            eye = torch.tensor([float(self.data.eye[idx].mean())], device=self.device)
            self.model.update_occupancy(codes, eye)

    @torch.no_grad()
    def bake(self, n: int = 16) -> float:
        """Final occupancy of the exported (EMA) model: max over ``n`` training frames' audio and eyes."""
        idx = self.rng.choice(self.train_idx, min(n, len(self.train_idx)), replace=False)
        codes = self.audio_codes(idx, self.ema)
        eyes = torch.from_numpy(self.data.eye[idx]).to(self.device)[:, None]
        return self.ema.bake_occupancy(codes, eyes)

    # ---- phases --------------------------------------------------------------------------------
    def head_step(self, step: int) -> dict:
        self._maybe_update_occupancy(step)
        c, loss, logs = self.cfg, 0.0, {}
        for i in self.rng.choice(self.train_idx, c.frames_per_step):
            px = self.data.pixels(int(i), c.rays_per_frame, self.rng, lip_share=c.lip_rays)
            tg = {k: v.to(self.device) for k, v in self.data.targets(int(i), px).items()}
            h = self.model.render_head(self.frame(int(i)), torch.from_numpy(px).float().to(self.device),
                                       perturb=True, use_occupancy=step >= c.occ_warmup)
            pred = h["rgb"] + (1 - h["alpha"][:, None]) * tg["bg_torso"]
            a = h["alpha"].clamp(1e-5, 1 - 1e-5)
            entropy = -(a * a.log() + (1 - a) * (1 - a).log()).mean()
            amb = (h["ambient"] * (~tg["face"]).float()).mean()
            mse = ((pred - tg["rgb"]) ** 2).mean()
            # Deviation: the head mask from prepare supervises alpha, else skin that resembles the
            # plate is happily explained as "transparent head over background".
            mask = ((h["alpha"] - tg["head"].float()) ** 2).mean()
            loss = loss + mse + c.w_entropy * entropy + c.w_ambient * amb + c.w_mask * mask
            logs = {"mse": mse.item(), "amb": amb.item()}
        loss = loss / c.frames_per_step
        if c.w_teacher > 0:  # audio code -> tracked lip shape (deviation, see the engine's docstring)
            idx = self.rng.choice(self.train_idx, c.teacher_batch)
            code = self.audio_codes(idx)
            teach = ((code - self.lip_code[torch.from_numpy(idx).to(self.device)]) ** 2).mean()
            loss = loss + c.w_teacher * teach
            logs["teacher"] = teach.item()
        self._step_opt("head", loss, step)
        return logs

    def lips_step(self, step: int) -> dict:
        c = self.cfg
        i = int(self.rng.choice(self.train_idx))
        side = c.lip_patch
        px = self.data.patch(i, side, self.rng)
        tg = {k: v.to(self.device) for k, v in self.data.targets(i, px).items()}
        h = self.model.render_head(self.frame(i), torch.from_numpy(px).float().to(self.device), perturb=True)
        pred = h["rgb"] + (1 - h["alpha"][:, None]) * tg["bg_torso"]
        mse = ((pred - tg["rgb"]) ** 2).mean()
        img = lambda x: x.T.reshape(3, side, side)  # noqa: E731
        structural = 1 - ssim_patch(img(pred), img(tg["rgb"]))
        self._step_opt("lips", mse + c.w_ssim * structural, step)
        return {"mse": mse.item(), "ssim": 1 - structural.item()}

    def torso_step(self, step: int) -> dict:
        c = self.cfg
        i = int(self.rng.choice(self.train_idx))
        px = self.data.pixels(i, c.rays_per_frame * c.frames_per_step, self.rng, region="torso")
        tg = {k: v.to(self.device) for k, v in self.data.targets(i, px).items()}
        pt = torch.from_numpy(px).float().to(self.device)
        f = self.frame(i)
        with torch.no_grad():
            h = self.model.render_head(Frame(**{**f.__dict__, "audio": f.audio.detach()}), pt)
        t = self.model.render_torso(f, pt, self.data.size)
        pred = self.model.compose(h, t, tg["plate"])
        mse = ((pred - tg["rgb"]) ** 2).mean()
        self._step_opt("torso", mse, step)
        return {"mse": mse.item()}

    # ---- validation ----------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self, tag: str, step: int, torso: bool) -> dict:
        d, full, mouth, rows = self.data, [], [], []
        for k, i in enumerate(self.val_idx):
            img = self.ema.render_image(self.frame(int(i), self.ema), d.size, self.bg, torso=torso)["image"]
            pred = (img.clamp(0, 1) * 255).round().byte().cpu().numpy()
            gt = d.images[int(i)]
            if not torso:  # head phases: judge the head over the real torso/background
                head = np.isin(d.labels[int(i)], (2, 3))
                gt = np.where(head[..., None], gt, pred)
            x0, y0, x1, y1 = np.round(d.lip_box[int(i)]).astype(int)
            full.append(psnr(pred, gt))
            mouth.append(psnr(pred[max(0, y0):y1, max(0, x0):x1], gt[max(0, y0):y1, max(0, x0):x1]))
            if k < 2:
                rows.append(np.concatenate([gt, pred], 1))
        out = self.model_dir / "previews"
        out.mkdir(exist_ok=True)
        with atomic_path(out / f"{tag}_{step:06d}.png") as tmp:
            cv2.imwrite(str(tmp), np.concatenate(rows, 0)[..., ::-1])
        return {f"{tag}_psnr": float(np.mean(full)), f"{tag}_psnr_mouth": float(np.mean(mouth))}

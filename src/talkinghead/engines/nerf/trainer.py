"""What the NeRF engine gives the shared trainer: three phases (RAD-NeRF Sec. 3.4 / App. A).

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
EMA (0.95) of all weights kept by the trainer (the averaged copy is what
validation and export use).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch

from ...compose import over
from ...compose.labels import HEAD_LABELS
from ...nn import ssim
from ...progress import info
from ..base import TrainModel
from ..types import Phase, Validation
from .data import NerfData, lip_codes, stack8
from .model import Frame, TalkingNeRF


class NerfModel(TrainModel):
    def __init__(self, cfg, model: TalkingNeRF, data: NerfData, train_idx, val_idx, device: str):
        self.cfg, self.model, self.data, self.device = cfg, model.to(device), data, device
        self.train_idx, self.val_idx = np.asarray(train_idx), np.asarray(val_idx)
        self.ema = {"model": cfg.ema}
        self.rng = np.random.default_rng(cfg.seed)
        self.K = torch.from_numpy(data.K).to(device)
        self.bg = torch.from_numpy(data.background.astype(np.float32) / 255).to(device)
        canon = data.subject.tracks["canon_landmarks"]
        self.lip_code = torch.from_numpy(lip_codes(canon, self.train_idx, model.audio_net.out_dim)).to(device)

    def modules(self) -> dict:
        return {"model": self.model}

    def _groups(self, modules, scale: float = 1.0) -> list[dict]:
        grid, net = [], []
        for m in modules:
            for name, p in m.named_parameters():
                (grid if "grid" in name.split(".")[0] or name.startswith(("spatial", "audio_grid")) else net).append(p)
        lr, adam = self.cfg.lr * scale, dict(betas=(0.9, 0.99), eps=1e-15)
        return [{"params": grid, "lr": lr * 10, **adam}, {"params": net, "lr": lr, **adam}]

    def param_groups(self) -> dict:
        m = self.model
        return {"head": self._groups([m.face, m.audio_net]), "lips": self._groups([m.face], 0.2),
                "torso": self._groups([m.torso])}

    def phases(self) -> list[Phase]:
        c = self.cfg
        return [Phase("head", c.head_fraction, self.head_batch, {"head": self.head_losses}),
                Phase("lips", c.lips_fraction, self.lips_batch, {"lips": self.lips_losses}),
                Phase("torso", max(0.0, 1 - c.head_fraction - c.lips_fraction), self.torso_batch,
                      {"torso": self.torso_losses})]

    def lr_scale(self, phase: str, step: int) -> float:
        return 0.1 ** min(1.0, step / self.cfg.lr_decay_steps)

    # ---- conditions ----------------------------------------------------------------------------
    def audio_codes(self, idx: np.ndarray, model: TalkingNeRF | None = None) -> torch.Tensor:
        """``(len(idx), audio_dim)`` audio codes of training frames ``idx``."""
        w = torch.from_numpy(stack8(self.data.windows, np.asarray(idx))).to(self.device)
        return (model or self.model).audio_net(w)

    def frame(self, i: int, model: TalkingNeRF | None = None) -> Frame:
        R, t = self.data.pose(i)
        return Frame(K=self.K, R=R.to(self.device), t=t.to(self.device), audio=self.audio_codes([i], model)[0],
                     eye=torch.tensor([self.data.eye[i]], device=self.device),
                     code=self.cfg.code_index(np.clip(i, 0, self.train_idx.max())))

    def _targets(self, i: int, px: np.ndarray) -> dict:
        return {k: v.to(self.device) for k, v in self.data.targets(i, px).items()}

    # ---- head: the field over the real torso and background --------------------------------------
    def head_batch(self, step: int) -> dict:
        c = self.cfg
        if step % c.occ_every == 0 and step >= c.occ_warmup:
            idx = self.rng.choice(self.train_idx, c.occ_conditions)
            with torch.no_grad():
                eye = torch.tensor([float(self.data.eye[idx].mean())], device=self.device)
                self.model.update_occupancy(self.audio_codes(idx), eye)
        frames = []
        for i in self.rng.choice(self.train_idx, c.frames_per_step):
            px = self.data.pixels(int(i), c.rays_per_frame, self.rng, lip_share=c.lip_rays)
            frames.append((int(i), px, self._targets(int(i), px)))
        teach = self.rng.choice(self.train_idx, c.teacher_batch) if c.w_teacher > 0 else None
        return {"frames": frames, "teacher": teach}

    def head_losses(self, b: dict, step: int) -> dict:
        c, n = self.cfg, len(b["frames"])
        out = {"mse": 0.0, "entropy": 0.0, "ambient": 0.0, "mask": 0.0}
        for i, px, tg in b["frames"]:
            h = self.model.render_head(self.frame(i), torch.from_numpy(px).float().to(self.device),
                                       perturb=True, use_occupancy=step >= c.occ_warmup)
            a = h["alpha"].clamp(1e-5, 1 - 1e-5)
            out["mse"] += ((over(h["rgb"], h["alpha"], tg["bg_torso"]) - tg["rgb"]) ** 2).mean() / n
            out["entropy"] += c.w_entropy * -(a * a.log() + (1 - a) * (1 - a).log()).mean() / n
            out["ambient"] += c.w_ambient * (h["ambient"] * (~tg["face"]).float()).mean() / n
            # Deviation: the head mask from prepare supervises alpha, else skin that resembles the
            # plate is happily explained as "transparent head over background".
            out["mask"] += c.w_mask * ((h["alpha"] - tg["head"].float()) ** 2).mean() / n
        if b["teacher"] is not None:  # audio code -> tracked lip shape (deviation, see the module docstring)
            idx = b["teacher"]
            target = self.lip_code[torch.from_numpy(idx).to(self.device)]
            out["teacher"] = c.w_teacher * ((self.audio_codes(idx) - target) ** 2).mean()
        return out

    # ---- lips: square patches, MSE + structure ---------------------------------------------------
    def lips_batch(self, step: int) -> dict:
        i = int(self.rng.choice(self.train_idx))
        px = self.data.patch(i, self.cfg.lip_patch, self.rng)
        return {"i": i, "px": px, "tg": self._targets(i, px)}

    def lips_losses(self, b: dict, step: int) -> dict:
        side, tg = self.cfg.lip_patch, b["tg"]
        h = self.model.render_head(self.frame(b["i"]), torch.from_numpy(b["px"]).float().to(self.device),
                                   perturb=True)
        pred = over(h["rgb"], h["alpha"], tg["bg_torso"])
        img = lambda x: x.T.reshape(1, 3, side, side)  # noqa: E731
        return {"mse": ((pred - tg["rgb"]) ** 2).mean(),
                "ssim": self.cfg.w_ssim * (1 - ssim(img(pred), img(tg["rgb"]), data_range=1.0,
                                                    win=min(11, side - 1 | 1)).mean())}

    # ---- torso: head frozen, the 2D deformable field over the plate -------------------------------
    def torso_batch(self, step: int) -> dict:
        c = self.cfg
        i = int(self.rng.choice(self.train_idx))
        px = self.data.pixels(i, c.rays_per_frame * c.frames_per_step, self.rng, region="torso")
        return {"i": i, "px": px, "tg": self._targets(i, px)}

    def torso_losses(self, b: dict, step: int) -> dict:
        pt, tg = torch.from_numpy(b["px"]).float().to(self.device), b["tg"]
        f = self.frame(b["i"])
        with torch.no_grad():
            h = self.model.render_head(Frame(**{**f.__dict__, "audio": f.audio.detach()}), pt)
        t = self.model.render_torso(f, pt, self.data.size)
        return {"mse": ((self.model.compose(h, t, tg["plate"]) - tg["rgb"]) ** 2).mean()}

    # ---- validation and export ------------------------------------------------------------------
    def validation(self, phase: str, modules: dict) -> Validation:
        d, model, pred, real = self.data, modules["model"], [], []
        for i in self.val_idx:
            img = model.render_image(self.frame(int(i), model), d.size, self.bg, torso=phase == "torso")["image"]
            p = (img.clamp(0, 1) * 255).round().byte().cpu().numpy()
            gt = d.images[int(i)]
            if phase != "torso":  # head phases: judge the head over the real torso/background
                gt = np.where(np.isin(d.labels[int(i)], HEAD_LABELS)[..., None], gt, p)
            pred.append(p)
            real.append(gt)
        return Validation(pred=np.stack(pred), real=np.stack(real), boxes=d.lip_box[self.val_idx])

    @torch.no_grad()
    def bake(self, model: TalkingNeRF, n: int = 16) -> float:
        """Final occupancy of the exported model: max over ``n`` training frames' audio and eyes."""
        idx = self.rng.choice(self.train_idx, min(n, len(self.train_idx)), replace=False)
        eyes = torch.from_numpy(self.data.eye[idx]).to(self.device)[:, None]
        return model.bake_occupancy(self.audio_codes(idx, model), eyes)

    def export(self, modules: dict) -> dict:
        model, d = modules["model"], self.data
        info(f"occupancy grid: {self.bake(model):.0%} of the head box occupied")
        j = int(self.train_idx[len(self.train_idx) // 2])
        return {"config": asdict(self.cfg), "model": model.state_dict(), "t_scale": d.t_scale,
                "eye_open": d.eye_open, "aabb": list(model.face.cfg.aabb), "n_frames": d.subject.n_frames,
                "K": d.K, "sample_pose": (d.rot[j], d.trans[j])}

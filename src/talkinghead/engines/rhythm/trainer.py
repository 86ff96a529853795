"""What the rhythm engine gives the shared trainer: one phase, the generator against two discriminators.

Each step takes a few training frames as targets, their tracked meshes drawn and textured from the
reference (``data.py``), the K references (never one within ``gap`` frames of a target), the matched
reference (``matcher.py``, jittered) and trains the whole generator: L1 (more on the mouth box), MS-SSIM,
an L1 on the warped matched frame (so the flow learns to align it), and from ``gan_start`` on two
PatchGANs (the crop and half of it, each seeing the target drawing) with feature matching.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...nn import PatchDiscriminator, discriminator_gan_losses, generator_gan_losses, ms_ssim_loss, to_uint8
from ..base import TrainModel
from ..types import Phase, Validation
from .data import RhythmData
from .matcher import match, pose_cost
from .networks import RhythmGenerator

__all__ = ["RhythmModel", "box_mask"]


def box_mask(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 1, size, size) 1 inside each box (B, 4) x0, y0, x1, y1 pixels, else 0."""
    c = torch.arange(size, device=boxes.device, dtype=boxes.dtype) + 0.5
    inx = (c[None] >= boxes[:, :1]) & (c[None] < boxes[:, 2:3])
    iny = (c[None] >= boxes[:, 1:2]) & (c[None] < boxes[:, 3:4])
    return (iny[:, :, None] & inx[:, None, :]).to(boxes.dtype)[:, None]


def images(x: np.ndarray, device: str) -> torch.Tensor:
    """uint8 (B, S, S, C) → float (B, C, S, S) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(x)).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1


def drawings(x: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).to(device)[:, None].float() / 255


def projections(x: np.ndarray, device: str) -> torch.Tensor:
    """uint8 (B, S, S, 4) projected images with masks → (B, 4, S, S): the image in [-1, 1] (0 off the mask), the mask."""
    t = torch.from_numpy(np.ascontiguousarray(x)).to(device).permute(0, 3, 1, 2).float() / 255
    m = t[:, 3:]
    return torch.cat([(t[:, :3] * 2 - 1) * m, m], 1)


class RhythmModel(TrainModel):
    def __init__(self, cfg, data: RhythmData, refs: np.ndarray, train_idx, val_idx, device: str):
        self.cfg, self.data, self.device = cfg, data, device
        self.refs = np.asarray(refs)
        self.gen = RhythmGenerator(cfg.net()).to(device)
        self.disc = torch.nn.ModuleList([PatchDiscriminator(4, cfg.disc_base, 3),
                                         PatchDiscriminator(4, cfg.disc_base, 2)]).to(device)
        near = np.abs(np.asarray(train_idx)[:, None] - self.refs[None]).min(1) <= cfg.gap
        self.targets = np.asarray(train_idx)[~near]  # frames no reference sits next to (see ``offered``)
        self.val_idx = np.asarray(val_idx)
        self.rng = np.random.default_rng(cfg.seed)
        self.ref_img = images(np.stack([data.crops[int(r)] for r in self.refs]), device)
        self.ref_draw = drawings(data.drawings[self.refs], device)

    def modules(self) -> dict:
        return {"gen": self.gen, "disc": self.disc}

    def param_groups(self) -> dict:
        c = self.cfg
        return {"gen": [{"params": list(self.gen.parameters()), "lr": c.lr, "betas": (0.5, 0.999)}],
                "disc": [{"params": list(self.disc.parameters()), "lr": c.lr, "betas": (0.5, 0.999)}]}

    def phases(self) -> list[Phase]:
        return [Phase("render", 1.0, self.batch, {"gen": self.gen_losses, "disc": self.disc_losses})]

    # ---- a batch ----------------------------------------------------------------------------------
    def offered(self, idx: np.ndarray) -> np.ndarray:
        """(B, K) bool: the references a target may use (none within ``gap`` frames of it)."""
        return np.abs(np.asarray(idx)[:, None] - self.refs[None]) > self.cfg.gap

    def matched(self, idx: np.ndarray, offered: np.ndarray, jitter: float) -> np.ndarray:
        """(B,) frame indices of the references matched to targets ``idx`` by tracked head pose."""
        d = self.data
        cost = pose_cost(d.rot[idx], d.trans[idx], d.rot[self.refs], d.trans[self.refs])
        return self.refs[match(cost, offered, jitter, self.rng)]

    def tensors(self, idx: np.ndarray, jitter: float) -> dict:
        d, dev = self.data, self.device
        offered = self.offered(idx)
        m = self.matched(idx, offered, jitter)
        return {"real": images(np.stack([d.crops[int(i)] for i in idx]), dev),
                "drawing": drawings(d.drawings[idx], dev), "projected": projections(d.projections[idx], dev),
                "matched": images(np.stack([d.crops[int(i)] for i in m]), dev),
                "matched_drawing": drawings(d.drawings[m], dev),
                "offered": torch.from_numpy(offered).to(dev), "boxes": torch.from_numpy(d.boxes[idx]).to(dev)}

    def batch(self, step: int) -> dict:
        return self.tensors(self.rng.choice(self.targets, self.cfg.batch_size), self.cfg.jitter)

    def render(self, gen: RhythmGenerator, b: dict) -> dict:
        refs = gen.embed.references(self.ref_img, self.ref_draw)
        return gen(refs, b["drawing"], b["projected"], b["matched"], b["matched_drawing"], b["offered"])

    # ---- losses -----------------------------------------------------------------------------------
    def _judged(self, b: dict) -> list:
        half = lambda x: F.avg_pool2d(x, 2)  # noqa: E731
        fake, real = torch.cat([b["fake"], b["drawing"]], 1), torch.cat([b["real"], b["drawing"]], 1)
        return [(self.disc[0], fake, real), (self.disc[1], half(fake), half(real))]

    def gen_losses(self, b: dict, step: int) -> dict:
        c = self.cfg
        out = self.render(self.gen, b)
        b["fake"] = fake = out["image"]
        err = (fake - b["real"]).abs()
        mouth = box_mask(b["boxes"], fake.shape[-1])
        return {"l1": err.mean(), "mouth": c.w_mouth * (err * mouth).sum() / (3 * mouth.sum()).clamp_min(1),
                "ssim": c.w_ssim * ms_ssim_loss(fake, b["real"]),
                "warp": c.w_warp * (out["warped"] - b["real"]).abs().mean(),
                **generator_gan_losses(self._judged(b), step, c.gan_start, c.w_gan, c.w_fm)}

    def disc_losses(self, b: dict, step: int) -> dict:
        return discriminator_gan_losses(self._judged(b), step, self.cfg.gan_start)

    # ---- validation and export --------------------------------------------------------------------
    @torch.no_grad()
    def validation(self, phase: str, modules: dict) -> Validation:
        b = self.tensors(self.val_idx, 0.0)
        out = self.render(modules["gen"], b)
        return Validation(pred=to_uint8(out["image"], -1), real=to_uint8(b["real"], -1),
                          boxes=self.data.boxes[self.val_idx],
                          extra=[to_uint8(b["projected"][:, :3], -1), to_uint8(out["warped"], -1)])

    def export(self, modules: dict) -> dict:
        return {"config": self.cfg.__dict__, "generator": modules["gen"].state_dict(),
                "references": self.refs.tolist()}

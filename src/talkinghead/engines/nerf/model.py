"""The talking-portrait NeRF: audio network + audio-spatial face field + deformable torso.

``TalkingNeRF`` owns the networks and knows how to render pixels of one frame:
the head by volume rendering rays through the canonical head box (≤ 16
samples, empty space skipped by the occupancy grid), the torso as a 2D field
of the pixel position and the head pose. ``compose`` alpha-composites head
over torso over a background plate, which can be any image at render time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .audio import AudioNet
from .fields import FaceField, FieldConfig, TorsoConfig, TorsoField, pose_features
from ...compose import over
from ...geometry.camera import pixel_rays
from .rendering import OccupancyGrid, ray_aabb, render_rays


@dataclass
class Frame:
    """Conditions of one rendered frame (tensors on the model's device)."""

    K: torch.Tensor  # (3, 3)
    R: torch.Tensor  # (3, 3)
    t: torch.Tensor  # (3,)
    audio: torch.Tensor  # (64,) audio code
    eye: torch.Tensor  # (1,)
    code: int  # appearance code index (a training frame)


class TalkingNeRF(nn.Module):
    def __init__(self, field: FieldConfig, torso: TorsoConfig, audio_in: int, occ_res: int = 64,
                 n_samples: int = 16, t_scale: float = 100.0):
        super().__init__()
        self.audio_net = AudioNet(audio_in, out_dim=field.audio_dim)
        self.face = FaceField(field)
        self.torso = TorsoField(torso)
        # Training prunes only near-empty cells (absolute 0.01: cells pruned early can never grow back);
        # the final bake switches to RAD-NeRF's min(mean density, 10) rule for rendering speed.
        self.occupancy = OccupancyGrid(occ_res, field.aabb, threshold=0.01, dilate=1)
        self.n_samples, self.t_scale = n_samples, t_scale

    @property
    def aabb(self) -> torch.Tensor:
        return self.face.aabb

    def render_head(self, f: Frame, px: torch.Tensor, perturb: bool = False,
                    use_occupancy: bool = True) -> dict[str, torch.Tensor]:
        """``px (P, 2)`` pixel positions → rgb (P, 3), alpha (P,), ambient (P,) = Σ w·|x_a|."""
        origins, dirs = pixel_rays(f.K, f.R, f.t, px + 0.5)
        code = torch.tensor([f.code], device=px.device)

        def field_fn(points, ray_ids):
            m = points.shape[0]
            return self.face(points, f.audio.expand(m, -1), f.eye.expand(m, -1), code.expand(m))

        out = render_rays(field_fn, origins, dirs, self.aabb, self.n_samples,
                          self.occupancy if use_occupancy else None, perturb=perturb)
        w = out["weights"][out["keep"]]
        amb = out["samples"]["x_a"].abs().sum(-1)
        ambient = torch.zeros(px.shape[0], device=px.device, dtype=w.dtype).index_add_(0, out["ray_ids"], w * amb)
        return {"rgb": out["rgb"], "alpha": out["alpha"], "ambient": ambient, "n_evaluated": out["n_evaluated"]}

    def render_torso(self, f: Frame, px: torch.Tensor, size: int) -> dict[str, torch.Tensor]:
        p = (px + 0.5) / size
        pose = pose_features(f.R, f.t, self.t_scale).expand(px.shape[0], -1)
        code = torch.full((px.shape[0],), f.code, device=px.device, dtype=torch.long)
        return self.torso(p, pose, code.clamp(max=self.torso.codes.num_embeddings - 1))

    @staticmethod
    def compose(head: dict, torso: dict | None, background: torch.Tensor) -> torch.Tensor:
        """Head over torso over background: premultiplied 'over'."""
        under = background if torso is None else over(torso["rgb"] * torso["alpha"][:, None], torso["alpha"],
                                                          background)
        return over(head["rgb"], head["alpha"], under)

    @torch.no_grad()
    def update_occupancy(self, audio_codes: torch.Tensor, eye: torch.Tensor, decay: float = 0.95) -> None:
        """Max density over the given audio conditions (RAD-NeRF's occupancy over sampled audio)."""
        for k, a in enumerate(audio_codes):
            def dens(x, a=a):
                m = x.shape[0]
                return self.face.density(x, a.expand(m, -1), eye.expand(m, -1), None)
            self.occupancy.update(dens, decay=decay if k == 0 else 1.0, jitter=True)

    @torch.no_grad()
    def bake_occupancy(self, audio_codes: torch.Tensor, eyes: torch.Tensor) -> float:
        """Rebuild the grid from scratch as the max density over the given conditions; returns the
        occupied fraction. Done once after training so no stale (decayed) history remains."""
        self.occupancy.initialised.fill_(False)
        self.occupancy.relative, self.occupancy.threshold = True, 10.0
        for k, (a, e) in enumerate(zip(audio_codes, eyes)):
            def dens(x, a=a, e=e):
                m = x.shape[0]
                return self.face.density(x, a.expand(m, -1), e.expand(m, -1), None)
            self.occupancy.update(dens, decay=1.0, jitter=False)
        return float(self.occupancy.occupied().float().mean())

    @torch.no_grad()
    def render_heads(self, f: Frame, px: torch.Tensor, chunk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The head at pixel positions ``px (P, 2)`` (pixel (x, y) covers [x, x+1) × [y, y+1) under ``f.K``):
        premultiplied rgb (P, 3) and alpha (P,); only rays that hit the head box are marched."""
        dev = px.device
        chunk = chunk or (1 << 20 if dev.type == "cuda" else 1 << 14)
        rgb, alpha = torch.zeros(len(px), 3, device=dev), torch.zeros(len(px), device=dev)
        near, far = ray_aabb(*pixel_rays(f.K, f.R, f.t, px + 0.5), self.aabb)
        for s in (far > near).nonzero()[:, 0].split(chunk):
            h = self.render_head(f, px[s])
            rgb[s], alpha[s] = h["rgb"], h["alpha"]
        return rgb, alpha

    @torch.no_grad()
    def render_image(self, f: Frame, size: int, background: torch.Tensor, torso: bool = True,
                     chunk: int | None = None) -> dict[str, torch.Tensor]:
        """Whole frame at ``size``²: premultiplied head+torso colour, its alpha and the composite."""
        dev = background.device
        chunk = chunk or (1 << 20 if dev.type == "cuda" else 1 << 14)
        ys, xs = torch.meshgrid(torch.arange(size, device=dev), torch.arange(size, device=dev), indexing="ij")
        px = torch.stack([xs, ys], -1).reshape(-1, 2).float()
        bg = background.reshape(-1, 3)
        colour, alpha = torch.zeros(size * size, 3, device=dev), torch.zeros(size * size, device=dev)
        head_rgb, head_a = self.render_heads(f, px, chunk)
        if torso:
            for s in torch.arange(size * size, device=dev).split(chunk):
                t = self.render_torso(f, px[s], size)
                colour[s] = t["rgb"] * t["alpha"][:, None]
                alpha[s] = t["alpha"]
        colour = over(head_rgb, head_a, colour)
        alpha = over(head_a, head_a, alpha)
        out = over(colour, alpha, bg)
        return {"colour": colour.reshape(size, size, 3), "alpha": alpha.reshape(size, size),
                "image": out.reshape(size, size, 3)}

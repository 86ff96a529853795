"""Hierarchical oracle generator of the ``viseme`` engine (NEON, Sec. 3.2 / App. F).

NEON's oracle renders a face from the *full* landmark drawing (mouth landmarks
included), so it has no audio ambiguity.  It is hierarchical: a mouth network
first renders a high-resolution mouth from the landmark drawing cropped to the
mouth box, then a head network *outpaints* the rest of the head around that
mouth, given the full drawing plus the mouth pasted (downsampled) into an
otherwise empty canvas and the paste mask.  During training the head network
may be teacher-forced with the ground-truth mouth; at inference it always gets
the mouth network's output.

Choices where the paper is silent: both networks are U-Nets (``talkinghead.nn.UNet``: strided 3x3 conv
blocks down to ``latent_hw``-ish resolution, residual blocks at the bottleneck,
nearest-upsample + conv blocks up with skip concatenations), widths follow the
renderer's ``VisemeNetConfig.base``; the empty canvas is 0 (mid-grey in
[-1, 1]); without teacher forcing the face loss also trains the mouth network
(gradients flow through the paste).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...nn import UNet
from .networks import VisemeNetConfig, box_grid, crop_mouth

__all__ = ["MouthOracle", "HeadOracle", "Oracle", "paste_image"]


def paste_image(canvas_hw: tuple[int, int], mouth_rgb: torch.Tensor, mouth_box: torch.Tensor,
                ref_size: float | None = None, feather: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample ``mouth_rgb`` (B,C,m,m) into an empty (zero) canvas at ``mouth_box``.

    Returns ``(canvas (B,C,H,W), mask (B,1,H,W))``; the mask is 1 inside the box
    (hard unless ``feather`` > 0) and the canvas is ``mouth * mask``.  Box
    coordinates are in pixels of a ``ref_size`` crop (default: canvas width).
    """
    h, w = canvas_hw
    grid, mask = box_grid(mouth_box, (h, w), float(w if ref_size is None else ref_size), feather)
    sampled = nn.functional.grid_sample(mouth_rgb, grid.to(mouth_rgb.dtype), mode="bilinear",
                                        padding_mode="border", align_corners=False)
    mask = mask.to(mouth_rgb.dtype)
    return sampled * mask, mask


def _depth(side: int, target: int) -> int:
    return max(1, int(math.log2(max(2, side // max(4, target)))))


class MouthOracle(nn.Module):
    """Full-landmark drawing cropped to the mouth box (B,1,m,m) -> mouth RGB (B,3,m,m)."""

    def __init__(self, cfg: VisemeNetConfig) -> None:
        super().__init__()
        m = cfg.mouth_size
        depth = _depth(m, cfg.latent_hw // 2)
        self.net = UNet(1, 3, max(4, cfg.base // 2), depth, 4 * cfg.base, cfg.n_res)

    def forward(self, drawing_mouth: torch.Tensor) -> torch.Tensor:
        return self.net(drawing_mouth)


class HeadOracle(nn.Module):
    """Outpaints the head: [drawing (1), pasted mouth canvas (3), mask (1)] -> face RGB (B,3,S,S)."""

    def __init__(self, cfg: VisemeNetConfig) -> None:
        super().__init__()
        depth = _depth(cfg.size, cfg.latent_hw // 2)
        self.net = UNet(5, 3, max(4, cfg.base // 2), depth, 4 * cfg.base, cfg.n_res)

    def forward(self, drawing: torch.Tensor, canvas: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([drawing, canvas, mask], dim=1))


class Oracle(nn.Module):
    """Mouth oracle + head oracle -> ``(face_rgb (B,3,S,S), mouth_rgb (B,3,m,m))``.

    ``forward(drawing_full, mouth_box)`` crops the mouth network's input from
    the full-landmark drawing (B,1,size,size); ``forward(drawing_full,
    mouth_draw, mouth_box)`` uses a mouth drawing (B,1,m,m) rendered directly
    at mouth resolution instead (sharper lines).  ``mouth_box`` (B,4) is
    x0,y0,x1,y1 in face-crop pixels.  Teacher forcing: in training mode, with
    ``mouth_teacher`` (B,3,m,m; the ground-truth mouth) given and
    ``teacher_forcing`` true, the head network is fed it instead of the mouth
    network's output (which is still returned, for its own loss); in eval mode
    the head always gets the mouth network's output.
    """

    def __init__(self, cfg: VisemeNetConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or VisemeNetConfig()
        self.mouth_net = MouthOracle(cfg)
        self.head_net = HeadOracle(cfg)

    def forward(self, drawing_full: torch.Tensor, mouth_in: torch.Tensor,
                mouth_box: torch.Tensor | None = None, mouth_teacher: torch.Tensor | None = None,
                teacher_forcing: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, ref = self.cfg, float(self.cfg.size)
        if mouth_box is None:  # forward(drawing_full, mouth_box)
            mouth_box = mouth_in
            mouth_in = crop_mouth(drawing_full, mouth_box, cfg.mouth_size, ref_size=ref)
        mouth = self.mouth_net(mouth_in)
        use_gt = teacher_forcing and self.training and mouth_teacher is not None
        src = mouth_teacher.to(mouth.dtype) if use_gt else mouth
        canvas, mask = paste_image(drawing_full.shape[-2:], src, mouth_box, ref_size=ref)
        return self.head_net(drawing_full, canvas, mask), mouth

"""Hierarchical oracle generator of the ``viseme`` engine (NEON, Sec. 3.2 / App. F).

NEON's oracle renders a face from the *full* landmark drawing (mouth landmarks
included), so it has no audio ambiguity.  It is hierarchical: a mouth network
first renders a high-resolution mouth from the landmark drawing cropped to the
mouth box, then a head network *outpaints* the rest of the head around that
mouth, given the full drawing plus the mouth pasted (downsampled) into an
otherwise empty canvas and the paste mask.  During training the head network
may be teacher-forced with the ground-truth mouth; at inference it always gets
the mouth network's output.

Choices where the paper is silent: both networks are U-Nets (strided 3x3 conv
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

from .networks import ResBlock, VisemeNetConfig, box_grid, conv_block, crop_mouth

__all__ = ["UNet", "MouthOracle", "HeadOracle", "Oracle", "paste_image"]


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


class UNet(nn.Module):
    """Encoder-decoder with skip connections: (B,in_ch,S,S) -> (B,out_ch,S,S) in [-1, 1].

    ``depth`` strided blocks halve the resolution; channels are ``ch0 * 2**level``
    capped at ``ch_max``; ``2 * max(1, n_res)`` residual blocks sit at the bottleneck.
    """

    def __init__(self, in_ch: int, out_ch: int, ch0: int, depth: int, ch_max: int, n_res: int = 1) -> None:
        super().__init__()
        chs = [min(ch0 * 2 ** i, ch_max) for i in range(depth + 1)]
        self.stem = conv_block(in_ch, chs[0], k=3)
        self.downs = nn.ModuleList(conv_block(chs[i], chs[i + 1], 3, stride=2) for i in range(depth))
        self.mid = nn.Sequential(*[ResBlock(chs[-1]) for _ in range(max(1, n_res) * 2)])
        self.ups = nn.ModuleList(
            nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"), conv_block(chs[i + 1], chs[i]))
            for i in reversed(range(depth)))
        self.merges = nn.ModuleList(conv_block(2 * chs[i], chs[i]) for i in reversed(range(depth)))
        self.head = nn.Sequential(nn.Conv2d(chs[0], out_ch, 3, padding=1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        h = self.mid(skips.pop())
        for up, merge in zip(self.ups, self.merges):
            h = merge(torch.cat([up(h), skips.pop()], dim=1))
        return self.head(h)


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

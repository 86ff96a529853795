"""Convolutional building blocks shared by the image engines (pix2pixHD-style).

``conv_block`` is Conv -> InstanceNorm(affine) -> LeakyReLU(0.2); ``ResBlock`` is
pix2pixHD's residual block; ``UNet`` an encoder-decoder with skip
concatenations built from both. Instance norm runs as GroupNorm with one
channel per group: identical maths, about 10x faster on a CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["InstanceNorm", "conv_block", "ResBlock", "UNet"]


class InstanceNorm(nn.Module):
    """``nn.InstanceNorm2d(affine=True)`` computed as GroupNorm with one channel per
    group: identical maths (no running stats, as pix2pixHD), ~10x faster on CPU."""

    def __init__(self, ch: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(ch))
        self.bias = nn.Parameter(torch.zeros(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, x.shape[1], self.weight, self.bias, self.eps)


def conv_block(cin: int, cout: int, k: int = 3, stride: int = 1, norm: bool = True) -> nn.Sequential:
    """Conv -> InstanceNorm(affine) -> LeakyReLU(0.2), the basic block (``norm=False``: no normalisation)."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding=(k - 1) // 2 if stride == 1 else 1),
                         InstanceNorm(cout) if norm else nn.Identity(), nn.LeakyReLU(0.2, inplace=True))


class ResBlock(nn.Module):
    """pix2pixHD residual block: x + IN(conv(LReLU(IN(conv(x)))))."""

    def __init__(self, ch: int, norm: bool = True) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_block(ch, ch, norm=norm), nn.Conv2d(ch, ch, 3, padding=1),
                                  InstanceNorm(ch) if norm else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UNet(nn.Module):
    """Encoder-decoder with skip connections: (B,in_ch,S,S) -> (B,out_ch,S,S), ``tanh`` output in [-1, 1].

    ``depth`` strided blocks halve the resolution; channels are ``ch0 * 2**level``
    capped at ``ch_max``; ``2 * max(1, n_res)`` residual blocks sit at the bottleneck.
    Upsampling is nearest x2 + conv (no checkerboard). ``out_act=None`` leaves the
    output linear (e.g. a residual). ``norm=False`` drops the instance norms: with them, a net trained
    adversarially can learn a bright "droplet" at a fixed spot that carries signal past the
    normalisation (StyleGAN2, Sec. 2), as the speech2lip Blend-Net did on the synthetic speaker.
    """

    def __init__(self, in_ch: int, out_ch: int, ch0: int, depth: int, ch_max: int, n_res: int = 1,
                 out_act: str | None = "tanh", norm: bool = True) -> None:
        super().__init__()
        chs = [min(ch0 * 2 ** i, ch_max) for i in range(depth + 1)]
        self.stem = conv_block(in_ch, chs[0], k=3, norm=norm)
        self.downs = nn.ModuleList(conv_block(chs[i], chs[i + 1], 3, stride=2, norm=norm) for i in range(depth))
        self.mid = nn.Sequential(*[ResBlock(chs[-1], norm) for _ in range(max(1, n_res) * 2)])
        self.ups = nn.ModuleList(
            nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"), conv_block(chs[i + 1], chs[i], norm=norm))
            for i in reversed(range(depth)))
        self.merges = nn.ModuleList(conv_block(2 * chs[i], chs[i], norm=norm) for i in reversed(range(depth)))
        out = [nn.Conv2d(chs[0], out_ch, 3, padding=1)]
        if out_act == "tanh":
            out.append(nn.Tanh())
        elif out_act is not None:
            raise ValueError(f"out_act must be 'tanh' or None, got {out_act!r}")
        self.head = nn.Sequential(*out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        h = self.mid(skips.pop())
        for up, merge in zip(self.ups, self.merges):
            h = merge(torch.cat([up(h), skips.pop()], dim=1))
        return self.head(h)

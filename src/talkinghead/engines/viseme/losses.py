"""Discriminator and losses of the ``viseme`` engine (NEON, Sec. 3.3 / App. F).

NEON trains its generators pix2pixHD-style: a PatchGAN discriminator, an
adversarial loss, a discriminator feature-matching loss, a pixel loss and a
perceptual loss, applied to the face and (separately) to the mouth crop.

Choices made here:

* Adversarial loss: least-squares GAN (LSGAN, Mao et al. 2017), the pix2pixHD
  default; it is stable with small batches and pairs well with feature
  matching.  The discriminator uses spectral normalisation by default
  (no batch statistics, robust at batch size 1-8); instance norm is optional.
* Perceptual term: the paper uses a VGG perceptual loss, but pretrained VGG
  weights cannot be downloaded here, so a differentiable multi-scale SSIM
  (Wang et al. 2003) with a Gaussian window replaces it; it is structure- and
  contrast-sensitive like a perceptual loss and needs no weights.
* Pixel loss: smooth L1 (Huber) with ``beta=0.05`` for images in [-1, 1] —
  L1-like on visible errors (sharp results), quadratic on tiny residuals.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = [
    "PatchDiscriminator", "gan_loss_d", "gan_loss_g", "feature_matching_loss",
    "smooth_l1", "ms_ssim", "ms_ssim_loss",
]

Logits = torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...]


class PatchDiscriminator(nn.Module):
    """pix2pix PatchGAN (70x70 receptive field for ``n_layers=3``).

    4x4 convs: ``n_layers`` with stride 2 (widths ``base * 2**i`` capped at
    ``8 * base``), one with stride 1, then a stride-1 conv to one logit per
    patch; LeakyReLU(0.2) after every hidden conv.  ``in_ch`` may include a
    conditioning input concatenated to the image (e.g. 3 + 1 for RGB +
    drawing).  ``forward`` returns one list, pix2pixHD-style: the hidden
    activations (for feature matching, ``out[:-1]``) followed by the (B,1,h,w)
    patch logits (``out[-1]``).
    """

    def __init__(self, in_ch: int = 3, base: int = 64, n_layers: int = 3,
                 spectral: bool = True, instance: bool = False) -> None:
        super().__init__()
        wrap = spectral_norm if spectral else (lambda m: m)

        def block(cin: int, cout: int, stride: int, norm: bool) -> nn.Sequential:
            layers: list[nn.Module] = [wrap(nn.Conv2d(cin, cout, 4, stride, padding=1))]
            if norm and instance:
                layers.append(nn.InstanceNorm2d(cout, affine=True))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return nn.Sequential(*layers)

        blocks = [block(in_ch, base, 2, norm=False)]
        ch = base
        for i in range(1, n_layers + 1):
            out = min(base * 2 ** i, base * 8)
            blocks.append(block(ch, out, 2 if i < n_layers else 1, norm=True))
            ch = out
        self.blocks = nn.ModuleList(blocks)
        self.out = wrap(nn.Conv2d(ch, 1, 4, 1, padding=1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for blk in self.blocks:
            x = blk(x)
            outs.append(x)
        outs.append(self.out(x))
        return outs


def _as_list(x: Logits) -> list[torch.Tensor]:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def gan_loss_d(real_logits: Logits, fake_logits: Logits) -> torch.Tensor:
    """LSGAN discriminator loss 0.5 * (E[(D(real) - 1)^2] + E[D(fake)^2]), summed over scales."""
    return sum(0.5 * ((r - 1).pow(2).mean() + f.pow(2).mean())
               for r, f in zip(_as_list(real_logits), _as_list(fake_logits)))


def gan_loss_g(fake_logits: Logits) -> torch.Tensor:
    """LSGAN generator loss E[(D(fake) - 1)^2], summed over scales."""
    return sum((f - 1).pow(2).mean() for f in _as_list(fake_logits))


def feature_matching_loss(real_feats: list[torch.Tensor], fake_feats: list[torch.Tensor]) -> torch.Tensor:
    """pix2pixHD feature matching: mean over layers of L1(fake, real.detach())."""
    if not real_feats:
        raise ValueError("no features to match")
    return sum(F.l1_loss(f, r.detach()) for r, f in zip(real_feats, fake_feats)) / len(real_feats)


def smooth_l1(pred: torch.Tensor, target: torch.Tensor, beta: float = 0.05,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """Smooth-L1 (Huber) pixel loss; with ``mask`` (B,1,H,W) a mask-weighted mean."""
    loss = F.smooth_l1_loss(pred, target, beta=beta, reduction="none")
    if mask is None:
        return loss.mean()
    mask = mask.expand_as(loss)
    return (loss * mask).sum() / mask.sum().clamp_min(1e-6)


_MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003


def _gauss_blur(x: torch.Tensor, win: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian filtering, 'valid' borders, per channel."""
    t = torch.arange(win, device=x.device, dtype=x.dtype) - (win - 1) / 2
    g = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, win).expand(c, 1, 1, win), groups=c)
    return F.conv2d(x, g.view(1, 1, win, 1).expand(c, 1, win, 1), groups=c)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, scales: int = 3, data_range: float = 2.0,
            win: int = 11, sigma: float = 1.5, eps: float = 1e-4) -> torch.Tensor:
    """Per-sample multi-scale SSIM (B,) of images (B,C,H,W), differentiable.

    Contrast-structure terms at every scale and luminance at the coarsest,
    combined with the standard MS-SSIM exponents (renormalised to the number
    of scales).  For small images the number of scales is reduced until the
    coarsest side is >= 7 pixels and the window shrinks to fit (sigma scaled
    with it); terms are clamped at ``eps`` so the fractional powers stay finite.
    """
    side = min(x.shape[-2:])
    scales = max(1, min(scales, len(_MS_WEIGHTS)))
    while scales > 1 and side // 2 ** (scales - 1) < 7:
        scales -= 1
    last = side // 2 ** (scales - 1)
    w = min(win, last if last % 2 else last - 1)
    if w < 1:
        raise ValueError(f"image too small for SSIM: {tuple(x.shape)}")
    s = sigma * w / win
    weights = torch.tensor(_MS_WEIGHTS[:scales], device=x.device, dtype=x.dtype)
    weights = weights / weights.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    terms = []
    for j in range(scales):
        if j:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        mx, my = _gauss_blur(x, w, s), _gauss_blur(y, w, s)
        sxx = _gauss_blur(x * x, w, s) - mx * mx
        syy = _gauss_blur(y * y, w, s) - my * my
        sxy = _gauss_blur(x * y, w, s) - mx * my
        cs = ((2 * sxy + c2) / (sxx + syy + c2)).flatten(1).mean(1)
        if j == scales - 1:
            lum = ((2 * mx * my + c1) / (mx * mx + my * my + c1)).flatten(1).mean(1)
            cs = cs * lum
        terms.append(cs.clamp_min(eps))
    return torch.prod(torch.stack(terms, dim=1) ** weights, dim=1)


def ms_ssim_loss(x: torch.Tensor, y: torch.Tensor, scales: int = 3, data_range: float = 2.0) -> torch.Tensor:
    """1 - mean MS-SSIM; the perceptual term standing in for VGG (no weights to download).

    Images are expected in [-1, 1] (``data_range=2``); 0 for identical inputs.
    """
    return 1.0 - ms_ssim(x, y, scales=scales, data_range=data_range).mean()

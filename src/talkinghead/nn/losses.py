"""Differentiable image losses: smooth L1 and (multi-scale) SSIM, one implementation of each.

* ``smooth_l1``: Huber with ``beta=0.05`` for images in [-1, 1] -- L1-like on
  visible errors (sharp results), quadratic on tiny residuals.
* ``ssim`` / ``ms_ssim``: Wang et al. (2004 / 2003) with a Gaussian window and
  'valid' borders; the evaluation metric (``talkinghead.metrics.ssim``) runs
  this same function in float64. ``ms_ssim_loss`` stands in for a VGG
  perceptual loss, whose weights cannot be downloaded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["smooth_l1", "ssim", "ms_ssim", "ms_ssim_loss"]


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


def _moments(x: torch.Tensor, y: torch.Tensor, win: int, sigma: float):
    """Local means, variances and covariance under the Gaussian window ('valid' part)."""
    mx, my = _gauss_blur(x, win, sigma), _gauss_blur(y, win, sigma)
    sxx = _gauss_blur(x * x, win, sigma) - mx * mx
    syy = _gauss_blur(y * y, win, sigma) - my * my
    sxy = _gauss_blur(x * y, win, sigma) - mx * my
    return mx, my, sxx, syy, sxy


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0, win: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Per-sample SSIM (B,) of images (B,C,H,W), Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 13(4), 2004.

    The SSIM map ``(2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))``
    with ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2``, ``L = data_range``, averaged over every window fully
    inside the image and over channels. Images must be at least ``win`` pixels on each side.
    """
    if min(x.shape[-2:]) < win:
        raise ValueError(f"image too small for a {win}x{win} SSIM window: {tuple(x.shape)}")
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mx, my, sxx, syy, sxy = _moments(x, y, win, sigma)
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return (num / den).flatten(1).mean(1)


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
        mx, my, sxx, syy, sxy = _moments(x, y, w, s)
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

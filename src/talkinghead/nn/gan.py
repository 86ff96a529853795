"""PatchGAN discriminator and its losses (pix2pix / pix2pixHD), shared by the image engines.

* Adversarial loss: least-squares GAN (LSGAN, Mao et al. 2017), the pix2pixHD
  default; stable with small batches and pairs well with feature matching.
  The discriminator uses spectral normalisation by default (no batch
  statistics, robust at batch size 1-8); instance norm is optional.
* Feature matching: L1 between the discriminator's hidden activations on real
  and generated images (pix2pixHD), the perceptual term we can train on the
  subject itself (no pretrained VGG can be downloaded).
* ``generator_gan_losses`` / ``discriminator_gan_losses``: the two loss dicts of
  a GAN phase, for one or more (discriminator, generated, real) triples, empty
  before the step the discriminators join at (pure reconstruction until then).
"""

from __future__ import annotations

import functools
import operator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["PatchDiscriminator", "gan_loss_d", "gan_loss_g", "feature_matching_loss", "generator_gan_losses",
           "discriminator_gan_losses"]

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


Judged = list[tuple[nn.Module, torch.Tensor, torch.Tensor]]  # (discriminator, generated, real) triples


def generator_gan_losses(judged: Judged, step: int, start: int, w_gan: float, w_fm: float) -> dict:
    """The generator's adversarial terms from step ``start`` on: ``gan`` (LSGAN) and ``fm`` (feature matching),
    each summed over the triples and weighted; ``{}`` before (the discriminators have not joined)."""
    if step < start:
        return {}
    seen = [(d(fake), d(real)) for d, fake, real in judged]
    return {"gan": w_gan * _total(gan_loss_g(f[-1]) for f, _ in seen),
            "fm": w_fm * _total(feature_matching_loss(r[:-1], f[:-1]) for f, r in seen)}


def discriminator_gan_losses(judged: Judged, step: int, start: int) -> dict:
    """The discriminators' loss from step ``start`` on: ``d``, LSGAN summed over the triples (the generated
    images detached); ``{}`` before, so their optimiser does not step."""
    if step < start:
        return {}
    return {"d": _total(gan_loss_d(d(real)[-1], d(fake.detach())[-1]) for d, fake, real in judged)}


def _total(terms) -> torch.Tensor:
    """``a + b + ...`` (no ``0 +`` first: one term stays the very tensor, its gradient path unchanged)."""
    return functools.reduce(operator.add, terms)

"""Shared torch building blocks (one of each): layers, the PatchGAN and its losses, SSIM, input scaling.

Engines compose their networks from these (diffusers' "shared blocks, one model per file"):

* :mod:`.blocks` -- ``InstanceNorm``, ``conv_block``, ``ResBlock``, ``UNet``
* :mod:`.gan` -- ``PatchDiscriminator``, LSGAN losses, discriminator feature matching, a GAN phase's loss dicts
* :mod:`.losses` -- ``smooth_l1``, ``ssim``, ``ms_ssim``, ``ms_ssim_loss`` (differentiable, any float dtype)
* :mod:`.standardise` -- ``Standardise``, per-channel input statistics kept with the weights
* :mod:`.hashgrid` -- ``HashGrid``, Instant-NGP's multi-resolution hash encoding in pure PyTorch
* :mod:`.encoding` -- ``posenc``, NeRF's positional encoding
* :mod:`.images` -- ``to_uint8``, network images back to uint8 pictures
"""

from .blocks import InstanceNorm, ResBlock, UNet, conv_block
from .encoding import posenc, posenc_dim
from .gan import (PatchDiscriminator, discriminator_gan_losses, feature_matching_loss, gan_loss_d, gan_loss_g,
                  generator_gan_losses)
from .hashgrid import HashGrid
from .images import to_uint8
from .losses import ms_ssim, ms_ssim_loss, smooth_l1, ssim
from .standardise import Standardise

__all__ = ["InstanceNorm", "ResBlock", "UNet", "conv_block", "PatchDiscriminator", "feature_matching_loss",
           "gan_loss_d", "gan_loss_g", "generator_gan_losses", "discriminator_gan_losses", "HashGrid", "posenc",
           "posenc_dim", "ms_ssim", "ms_ssim_loss", "smooth_l1", "ssim", "Standardise", "to_uint8"]

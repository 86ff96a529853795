"""The shared torch blocks (talkinghead.nn): U-Net, PatchGAN and its losses, SSIM / MS-SSIM, Standardise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkinghead.metrics import ssim as ssim_metric
from talkinghead.nn import (PatchDiscriminator, Standardise, UNet, discriminator_gan_losses, feature_matching_loss,
                            gan_loss_d, gan_loss_g, generator_gan_losses, ms_ssim_loss, smooth_l1, ssim, to_uint8)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_discriminator_and_gan_losses():
    d = PatchDiscriminator(in_ch=3, base=8, n_layers=3)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    *feats, logits = d(x)
    assert len(feats) == 4 and logits.shape[:2] == (2, 1) and logits.shape[-1] == 6
    fake = d(x.flip(-1))[-1]
    assert gan_loss_d(logits, fake) >= 0 and gan_loss_g(fake) >= 0
    assert gan_loss_g(torch.ones(2, 1, 6, 6)) == 0
    assert gan_loss_d(torch.ones(2, 1, 6, 6), torch.zeros(2, 1, 6, 6)) == 0
    fake_feats = d(x * 0.5)[:-1]
    fm = feature_matching_loss(feats, fake_feats)
    assert fm > 0 and feature_matching_loss(feats, feats) == 0
    assert smooth_l1(x, x) == 0 and smooth_l1(x, x + 1) > 0
    d_in = PatchDiscriminator(in_ch=4, base=8, spectral=False, instance=True)
    assert d_in(torch.rand(1, 4, 64, 64))[-1].shape == (1, 1, 6, 6)


def test_a_gan_phase_loss_dicts_join_at_their_step_and_sum_over_discriminators():
    """Before ``start`` both dicts are empty (no discriminator runs, its optimiser skips); from it on they are
    the weighted sums of the LSGAN and feature-matching terms over every (discriminator, fake, real)."""
    d1, d2 = PatchDiscriminator(3, 8).eval(), PatchDiscriminator(3, 8).eval()  # eval: spectral norm fixed
    fake = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_()
    real = [torch.rand(2, 3, 64, 64) * 2 - 1 for _ in range(2)]
    judged = [(d1, fake, real[0]), (d2, fake * 0.5, real[1])]
    assert generator_gan_losses(judged, 9, 10, 0.05, 1.0) == {} and discriminator_gan_losses(judged, 9, 10) == {}
    g = generator_gan_losses(judged, 10, 10, 0.05, 2.0)
    want_gan = 0.05 * (gan_loss_g(d1(fake)[-1]) + gan_loss_g(d2(fake * 0.5)[-1]))
    want_fm = 2.0 * (feature_matching_loss(d1(real[0])[:-1], d1(fake)[:-1])
                     + feature_matching_loss(d2(real[1])[:-1], d2(fake * 0.5)[:-1]))
    assert set(g) == {"gan", "fm"} and torch.equal(g["gan"], want_gan) and torch.equal(g["fm"], want_fm)
    d = discriminator_gan_losses(judged, 10, 10)["d"]
    assert torch.equal(d, gan_loss_d(d1(real[0])[-1], d1(fake)[-1]) + gan_loss_d(d2(real[1])[-1], d2(fake * 0.5)[-1]))
    d.backward()
    assert fake.grad is None  # the generated images are detached for the discriminators


def test_to_uint8_maps_either_range_to_0_255_and_grey_to_rgb():
    x = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]).reshape(1, 1, 1, 6)
    assert to_uint8(x, -1)[0, 0, :, 0].tolist() == [0, 0, 128, 191, 255, 255]  # 127.5 and 191.25, rounded
    assert to_uint8(x)[0, 0, :, 0].tolist() == [0, 0, 0, 128, 255, 255]
    assert to_uint8(x).shape == (1, 1, 6, 3) and to_uint8(torch.rand(2, 3, 4, 5)).shape == (2, 4, 5, 3)


def test_ms_ssim_loss():
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert ms_ssim_loss(x, x).abs() < 1e-5
    losses = [ms_ssim_loss(x, (x + s * torch.randn_like(x)).clamp(-1, 1)).item() for s in (0.05, 0.2, 0.6)]
    assert 0 < losses[0] < losses[1] < losses[2]
    small = torch.rand(1, 3, 16, 16)
    y = small.clone().requires_grad_(True)
    loss = ms_ssim_loss(small, y + 0.1 * torch.randn_like(small))
    loss.backward()
    assert torch.isfinite(loss) and loss > 0 and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_ssim_closed_forms_and_the_metric_is_the_same_function():
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    torch.testing.assert_close(ssim(x, x, data_range=1.0), torch.ones(2, dtype=torch.float64))
    # a constant offset c on a flat image: luminance term (2 m (m + c) + C1) / (m^2 + (m + c)^2 + C1)
    m, c, c1 = 0.4, 0.2, 0.01 ** 2
    flat = torch.full((1, 1, 16, 16), m, dtype=torch.float64)
    want = (2 * m * (m + c) + c1) / (m * m + (m + c) ** 2 + c1)
    torch.testing.assert_close(ssim(flat, flat + c, data_range=1.0), torch.tensor([want], dtype=torch.float64))
    a = np.random.default_rng(0).integers(0, 256, (24, 20, 3)).astype(np.uint8)
    b = np.clip(a + np.random.default_rng(1).normal(0, 25, a.shape), 0, 255).astype(np.uint8)
    t = lambda v: torch.from_numpy(v.astype(np.float64)).permute(2, 0, 1)[None]  # noqa: E731
    assert ssim_metric(a, b) == pytest.approx(float(ssim(t(a), t(b), data_range=255)[0]), abs=1e-12)
    with pytest.raises(ValueError):
        ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


@pytest.mark.parametrize("depth", [1, 3])
def test_unet_shapes_range_and_linear_head(depth):
    net = UNet(5, 3, ch0=8, depth=depth, ch_max=32)
    y = net(torch.randn(2, 5, 32, 32))
    assert y.shape == (2, 3, 32, 32) and y.abs().max() <= 1
    lin = UNet(4, 3, ch0=8, depth=depth, ch_max=32, out_act=None)
    assert lin(torch.randn(1, 4, 32, 32) * 50).abs().max() > 1  # a residual head is not squashed
    with pytest.raises(ValueError):
        UNet(1, 1, 4, 1, 8, out_act="relu")


def test_standardise_applies_and_saves_its_statistics():
    s = Standardise(3)
    x = torch.randn(4, 3)
    assert torch.equal(s(x), x)  # identity until set
    s.set([1.0, 2.0, 3.0], [2.0, 4.0, 0.5])
    torch.testing.assert_close(s(x), (x - torch.tensor([1.0, 2, 3])) / torch.tensor([2.0, 4, 0.5]))
    t = Standardise(3)
    t.load_state_dict(s.state_dict())
    assert torch.equal(t(x), s(x))
    old = Standardise(3)
    old.load_state_dict({}, strict=True)  # weights saved before the statistics existed keep the identity
    assert torch.equal(old(x), x)

"""Tests of the viseme engine's networks (NEON generator, oracle, feature paste)."""

from __future__ import annotations

import pytest
import torch

from talkinghead.engines.viseme.networks import (
    VisemeGenerator, VisemeNetConfig, crop_mouth, paste_features,
)
from talkinghead.engines.viseme.oracle import Oracle, paste_image

CFG = dict(base=8, size=64, mouth_size=32, latent_hw=8)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _inputs(cfg: VisemeNetConfig, b: int = 2):
    drawing = torch.rand(b, 1, cfg.size, cfg.size) * 2 - 1
    audio = torch.randn(b, cfg.audio_window, cfg.audio_dim)
    box = torch.tensor([[20.0, 36.0, 44.0, 56.0], [16.0, 30.0, 48.0, 54.0]])[:b]
    return drawing, audio, box


def test_generator_shapes_and_range():
    cfg = VisemeNetConfig(**CFG)
    g = VisemeGenerator(cfg)
    face, mouth = g(*_inputs(cfg))
    assert face.shape == (2, 3, 64, 64) and mouth.shape == (2, 3, 32, 32)
    assert face.abs().max() <= 1 and mouth.abs().max() <= 1
    with torch.no_grad():
        face2, none = g(*_inputs(cfg), return_mouth=False)
    assert none is None and face2.shape == face.shape


def test_generator_logmel_config():
    cfg = VisemeNetConfig(**CFG, audio_dim=80, audio_window=16)
    face, mouth = VisemeGenerator(cfg)(*_inputs(cfg, 1))
    assert face.shape == (1, 3, 64, 64) and mouth.shape == (1, 3, 32, 32)


@pytest.mark.parametrize("kind", ["visemes", "mel", "both"])
def test_audio_kinds_windows_and_stored_standardisation(kind):
    import numpy as np

    from talkinghead.audio.windows import input_stats
    from talkinghead.engines.viseme.data import audio_shape, audio_windows

    rng = np.random.default_rng(0)
    vis = rng.dirichlet(np.ones(15), 30).astype(np.float32)
    mel = rng.normal(-9.0, 4.0, (30, 16, 80)).astype(np.float32)
    win = audio_windows(kind, vis, mel)
    steps, ch = audio_shape(kind)
    assert win.shape == (30, steps, ch) == (30, *{"visemes": (6, 15), "mel": (16, 80), "both": (16, 95)}[kind])
    cfg = VisemeNetConfig(**CFG, audio_dim=ch, audio_window=steps)
    g = VisemeGenerator(cfg).eval()
    shift, scale = input_stats(kind, win)
    drawing, _, box = _inputs(cfg, 2)
    with torch.no_grad():
        ref, _ = g(drawing, torch.from_numpy((win[:2] - shift) / scale), box)
        g.audio_enc.norm.set(shift, scale)  # the generator now standardises raw windows itself
        out, _ = g(drawing, torch.from_numpy(win[:2]), box)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    assert "audio_enc.norm.scale" in g.state_dict()
    if kind == "visemes":
        np.testing.assert_array_equal(scale, 1)  # probabilities are left alone
    with pytest.raises(ValueError, match="audio must be one of"):
        audio_shape("mfcc")


def test_oracle_shapes_and_teacher_forcing():
    cfg = VisemeNetConfig(**CFG)
    oracle = Oracle(cfg)
    drawing, _, box = _inputs(cfg)
    face, mouth = oracle(drawing, box)
    assert face.shape == (2, 3, 64, 64) and mouth.shape == (2, 3, 32, 32)
    assert face.abs().max() <= 1 and mouth.abs().max() <= 1
    gt = torch.zeros(2, 3, 32, 32)
    face_tf, mouth_tf = oracle(drawing, box, mouth_teacher=gt)
    assert not torch.allclose(face_tf, face) and torch.allclose(mouth_tf, mouth)
    # teacher forcing cuts the head-loss gradient path into the mouth network
    face_tf.sum().backward()
    assert all(p.grad is None for p in oracle.mouth_net.parameters())
    # separately drawn mouth input; eval mode ignores the teacher
    oracle.eval()
    mouth_draw = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        f1, m1 = oracle(drawing, mouth_draw, box, mouth_teacher=gt)
        f2, m2 = oracle(drawing, mouth_draw, box)
    assert torch.equal(f1, f2) and m1.shape == (2, 3, 32, 32)


def test_paste_features_exact_inside_box():
    face = torch.randn(2, 5, 32, 32)
    mouth = torch.full((2, 5, 16, 16), 7.0)
    box = torch.tensor([[16.0, 24.0, 40.0, 48.0], [0.0, 0.0, 64.0, 64.0]])  # ref 64 -> feature px /2
    out = paste_features(face, mouth, box, ref_size=64.0, feather=0.0)
    inside = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
    inside[0, :, 12:24, 8:20] = True
    inside[1] = True
    inside = inside.expand_as(out)
    assert torch.allclose(out[inside], torch.tensor(7.0))
    assert torch.equal(out[~inside], face[~inside])
    # moving the box moves the pasted region
    moved = paste_features(face, mouth, box + torch.tensor([[8.0, -8.0, 8.0, -8.0], [0, 0, 0, 0]]), 64.0)
    assert torch.allclose(moved[0, :, 8:20, 12:24], torch.tensor(7.0))
    assert torch.equal(moved[0, :, 20:24, 8:12], face[0, :, 20:24, 8:12])
    # feathered mask: only the edge ring is blended, the face features are not mutated
    soft = paste_features(face, mouth, box, 64.0, feather=1.0)
    assert torch.allclose(soft[0, :, 13:23, 9:19], torch.tensor(7.0))
    assert torch.equal(soft[0, :, :, :7], face[0, :, :, :7])


def test_paste_features_resamples_mouth_pattern():
    face = torch.zeros(1, 1, 64, 64)
    ramp = torch.arange(16.0).view(1, 1, 1, 16).expand(1, 1, 16, 16)
    out = paste_features(face, ramp, torch.tensor([[8.0, 8.0, 40.0, 40.0]]), 64.0)
    # box is 32 px wide for 16 source px: each source column covers 2 output columns
    row = out[0, 0, 20, 8:40]
    assert torch.all(row[1:] >= row[:-1]) and row[0] == 0 and row[-1] == 15


def test_crop_mouth_matches_analytic_ramp():
    h = w = 64
    xs = torch.arange(w, dtype=torch.float32) + 0.5
    ys = torch.arange(h, dtype=torch.float32) + 0.5
    img = torch.stack([xs.view(1, w).expand(h, w), ys.view(h, 1).expand(h, w)])[None].repeat(2, 1, 1, 1)
    box = torch.tensor([[10.0, 20.0, 42.0, 36.0], [5.5, 7.25, 50.0, 60.0]])
    crop = crop_mouth(img, box, 16)
    t = (torch.arange(16, dtype=torch.float32) + 0.5) / 16
    for i in range(2):
        ex = box[i, 0] + t * (box[i, 2] - box[i, 0])
        ey = box[i, 1] + t * (box[i, 3] - box[i, 1])
        assert torch.allclose(crop[i, 0], ex.view(1, 16).expand(16, 16), atol=1e-4)
        assert torch.allclose(crop[i, 1], ey.view(16, 1).expand(16, 16), atol=1e-4)
    # box coordinates in a 128-px reference frame on a 64-px image
    assert torch.allclose(crop_mouth(img, box * 2, 16, ref_size=128.0), crop, atol=1e-4)


def test_paste_image_roundtrip():
    mouth = torch.rand(1, 3, 16, 16) * 2 - 1
    box = torch.tensor([[20.0, 24.0, 36.0, 40.0]])  # 1:1 scale -> exact round trip
    canvas, mask = paste_image((64, 64), mouth, box)
    assert canvas.shape == (1, 3, 64, 64) and mask.shape == (1, 1, 64, 64)
    assert mask.sum() == 16 * 16 and canvas[..., :24, :].abs().max() == 0
    assert torch.equal(mask[0, 0, 24:40, 20:36], torch.ones(16, 16))
    back = crop_mouth(canvas, box, 16)
    assert torch.allclose(back, mouth, atol=1e-5)


def test_gradients_reach_audio_encoder_and_mouth_decoder():
    cfg = VisemeNetConfig(**CFG)
    g = VisemeGenerator(cfg)
    face, _ = g(*_inputs(cfg), return_mouth=False)
    face.square().mean().backward()
    for name, mod in (("audio", g.audio_enc), ("mouth", g.mouth_dec), ("kp", g.kp_enc)):
        grads = [p.grad for p in mod.parameters()]
        assert all(gr is not None for gr in grads), name
        assert sum(gr.abs().sum() for gr in grads) > 0, name
    assert all(p.grad is None for p in g.mouth_rgb.parameters())


def test_tiny_generator_overfits_and_uses_audio():
    cfg = VisemeNetConfig(**CFG)
    g = VisemeGenerator(cfg)
    n = 4
    drawing = (torch.rand(1, 1, 64, 64) > 0.9).float().expand(n, -1, -1, -1) * 2 - 1  # same drawing
    audio = torch.randn(n, cfg.audio_window, cfg.audio_dim)
    box = torch.tensor([[16.0, 32.0, 48.0, 56.0]]).repeat(n, 1)
    levels = torch.tensor([-0.8, -0.2, 0.4, 0.9]).view(n, 1, 1, 1)
    target = torch.zeros(n, 3, 64, 64)
    target[:, :, 32:56, 16:48] = levels  # only the mouth differs between samples
    target[:, 0, :20] = 0.5
    mouth_target = crop_mouth(target, box, cfg.mouth_size)
    opt = torch.optim.Adam(g.parameters(), lr=2e-3)
    losses = []
    for _ in range(150):
        face, mouth = g(drawing, audio, box)
        loss = (face - target).abs().mean() + (mouth - mouth_target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5, (losses[0], losses[-1])
    with torch.no_grad():
        face, mouth = g(drawing, audio, box)
    means = mouth.mean(dim=(1, 2, 3))
    assert torch.all(means[1:] > means[:-1] + 0.2), means
    face_mouth = face[:, :, 36:52, 20:44].mean(dim=(1, 2, 3))
    assert torch.all(face_mouth[1:] > face_mouth[:-1] + 0.2), face_mouth


def test_inference_path_matches_training_path():
    cfg = VisemeNetConfig(**CFG)
    g = VisemeGenerator(cfg).eval()
    drawing, audio, box = _inputs(cfg)
    face_ref, _ = g(drawing, audio, box.double())  # grad path: paste into a copy
    g.for_inference()
    with torch.inference_mode():  # in-place paste, channels-last weights
        face, mouth = g(drawing.contiguous(memory_format=torch.channels_last), audio, box, return_mouth=False)
    assert mouth is None and torch.allclose(face, face_ref, atol=1e-5)

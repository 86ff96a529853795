"""Tests of the RAD-NeRF building blocks: hash grid, volume rendering, occupancy pruning, audio net, fields."""

from __future__ import annotations

import math

import pytest
import torch

from talkinghead.engines.nerf.audio import AudioNet, momentum_smooth
from talkinghead.engines.nerf.fields import FaceField, FieldConfig, TorsoConfig, TorsoField, pose_features
from talkinghead.nn.hashgrid import HashGrid, level_resolutions, naive_hash_encode
from talkinghead.engines.nerf.rendering import (
    OccupancyGrid, composite, ray_aabb, render_rays, sample_along_rays, trunc_exp,
)

BOX = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)
SMALL = dict(grid_levels=4, grid_log2_size=12, grid_max_res=64, audio_grid_levels=4,
             audio_grid_log2_size=10, audio_grid_max_res=64, geo_feat_dim=16, n_codes=5)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _front_rays(n: int, span: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """``n*n`` parallel +z rays from z=-3 over ``[-span, span]^2``."""
    xy = torch.stack(torch.meshgrid(torch.linspace(-span, span, n), torch.linspace(-span, span, n),
                                    indexing="ij"), -1).reshape(-1, 2)
    origins = torch.cat([xy, torch.full_like(xy[:, :1], -3.0)], -1)
    return origins, torch.tensor([0.0, 0.0, 1.0]).expand_as(origins)


# ---------------------------------------------------------------- hash grid

def test_level_resolutions_hit_the_ends():
    res = level_resolutions(16, 16, 2048)
    assert res[0] == 16 and res[-1] == 2048 and res == sorted(res)


@pytest.mark.parametrize("dim,log2", [(1, 6), (2, 10), (3, 13)])
def test_hashgrid_matches_naive_reference(dim, log2):
    grid = HashGrid(dim, n_levels=6, n_features=2, log2_hashmap_size=log2, desired_resolution=128)
    assert 0 < grid.n_dense < grid.n_levels  # both dense and hashed levels are exercised
    with torch.no_grad():
        grid.embeddings.uniform_(-1, 1)
    x = torch.cat([torch.rand(500, dim), torch.zeros(1, dim), torch.ones(1, dim)])
    torch.testing.assert_close(grid(x), naive_hash_encode(grid, x), atol=1e-5, rtol=1e-5)


def test_hashgrid_shape_and_gradients():
    grid = HashGrid(3, n_levels=8, n_features=2, log2_hashmap_size=14, desired_resolution=256)
    x = torch.rand(4, 5, 3, requires_grad=True)
    y = grid(x)
    assert y.shape == (4, 5, 16)
    assert grid.embeddings.abs().max() <= 1e-4
    (y * torch.randn_like(y)).sum().backward()
    assert grid.embeddings.grad is not None and grid.embeddings.grad.abs().sum() > 0
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_dense_level_reads_vertices_exactly():
    grid = HashGrid(2, n_levels=1, n_features=3, log2_hashmap_size=12, desired_resolution=16)
    with torch.no_grad():
        grid.embeddings.normal_()
    i, j = 5, 11
    x = torch.tensor([[i / 16, j / 16]])
    torch.testing.assert_close(grid(x)[0], grid.embeddings[i + 17 * j])


# ---------------------------------------------------------------- rendering

def test_trunc_exp_gradient_is_clamped():
    x = torch.tensor([1.0, 20.0], requires_grad=True)
    y = trunc_exp(x)
    y.sum().backward()
    torch.testing.assert_close(y.detach(), torch.exp(x.detach()))
    torch.testing.assert_close(x.grad, torch.tensor([math.e, math.exp(15.0)]))


def test_constant_density_has_closed_form_opacity():
    origins, dirs = _front_rays(3)
    near, far = ray_aabb(origins, dirs, BOX)
    torch.testing.assert_close(far - near, torch.full((9,), 2.0))
    t, deltas = sample_along_rays(near, far, 7, perturb=True)
    assert ((t >= near[:, None]) & (t <= far[:, None])).all()
    sigma = torch.full_like(t, 1.3)
    colour = torch.tensor([0.2, 0.5, 0.9])
    out = composite(sigma, colour.expand(*t.shape, 3), deltas, t)
    expected = 1 - math.exp(-1.3 * 2.0)
    torch.testing.assert_close(out["alpha"], torch.full((9,), expected))
    torch.testing.assert_close(out["rgb"], expected * colour.expand(9, 3))
    assert ((out["depth"] > near * out["alpha"]) & (out["depth"] < far * out["alpha"])).all()


def test_piecewise_density_matches_product_formula():
    sigma = torch.rand(4, 6) * 3
    deltas = torch.rand(4, 6) * 0.5
    out = composite(sigma, torch.rand(4, 6, 3), deltas)
    alpha = 1 - torch.exp(-sigma * deltas)
    for r in range(4):
        trans = 1.0
        for i in range(6):
            assert abs(out["weights"][r, i].item() - alpha[r, i].item() * trans) < 1e-6
            trans *= 1 - alpha[r, i].item()
        assert abs(out["alpha"][r].item() - (1 - trans)) < 1e-6


def test_ray_missing_box_is_transparent():
    origins = torch.tensor([[0.0, 0.0, -3.0], [0.0, 0.0, 0.0]])
    dirs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    near, far = ray_aabb(origins, dirs, BOX)
    assert near[0] == far[0] and near[1] == 0 and far[1] == 1
    field = lambda p, ids: (torch.full((p.shape[0],), 5.0), torch.ones(p.shape[0], 3))  # noqa: E731
    out = render_rays(field, origins, dirs, BOX, 8)
    assert out["alpha"][0] == 0 and out["alpha"][1] > 0.9 and out["n_evaluated"] == 8


# ---------------------------------------------------------------- occupancy pruning

def _sphere_field(centre: torch.Tensor, radius: float = 0.35):
    def density(p: torch.Tensor) -> torch.Tensor:
        return torch.where((p - centre).norm(dim=-1) < radius, 30.0, 0.0)

    def field(p: torch.Tensor, ids: torch.Tensor):
        return {"sigma": density(p), "rgb": torch.sigmoid(3 * p)}
    return density, field


def test_occupancy_grid_keeps_running_max():
    occ = OccupancyGrid(4, BOX)
    assert occ.mask_samples(torch.zeros(1, 3)).all()  # never updated: keep everything
    for value, decay in ((1.0, 1.0), (0.5, 1.0), (0.0, 0.5)):
        occ.update(lambda p, v=value: torch.full((p.shape[0],), v), decay=decay)
    torch.testing.assert_close(occ.density, torch.full((4, 4, 4), 0.5))
    assert not occ.mask_samples(torch.tensor([[1.5, 0.0, 0.0]])).any()


def test_occupancy_pruning_is_lossless_and_halves_the_work():
    conditions = [torch.tensor([0.0, y, 0.1]) for y in (-0.15, 0.0, 0.15)]  # "audio" moves the sphere
    occ = OccupancyGrid(32, BOX, threshold=0.01, dilate=1)
    for i, c in enumerate(conditions):
        occ.update(_sphere_field(c)[0], decay=0.9 if i == 0 else 1.0)
    origins, dirs = _front_rays(16)
    for c in (conditions[0], conditions[2]):
        density, field = _sphere_field(c)
        dense = render_rays(field, origins, dirs, BOX, 64)
        pruned = render_rays(field, origins, dirs, BOX, 64, occupancy=occ)
        pts = origins[:, None] + dense["t"][..., None] * dirs[:, None]
        assert occ.mask_samples(pts[density(pts) > 0]).all()  # fair: no occupied sample is dropped
        assert dense["alpha"].max() > 0.9
        assert pruned["n_evaluated"] <= 0.5 * dense["n_evaluated"]
        for key in ("rgb", "alpha"):
            assert (pruned[key] - dense[key]).abs().max() < 1e-2


# ---------------------------------------------------------------- audio

@pytest.mark.parametrize("channels", [15, 80])
def test_audio_net_shapes_and_attention(channels):
    net = AudioNet(channels)
    out, weights = net(torch.randn(3, 8, 16, channels), return_weights=True)
    assert out.shape == (3, 64) and weights.shape == (3, 8)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    # starts on the frame's own window (index 4 of frames i-4 .. i+3): softmax of a logit 3 vs 0s
    torch.testing.assert_close(weights[:, 4], torch.full((3,), math.exp(3) / (math.exp(3) + 7)))


def test_audio_windows_both_and_input_standardisation():
    import numpy as np

    from talkinghead.audio.windows import AUDIO_KINDS, feature_windows, input_stats

    rng = np.random.default_rng(0)
    vis = rng.dirichlet(np.ones(15), 40).astype(np.float32)
    mel = rng.normal(-9.0, 4.0, (40, 16, 80)).astype(np.float32) + np.linspace(-3, 3, 80, dtype=np.float32)
    both = feature_windows("both", vis, mel)
    assert both.shape == (40, 16, AUDIO_KINDS["both"])
    np.testing.assert_array_equal(both[..., :15], feature_windows("visemes", vis, mel))
    np.testing.assert_array_equal(both[..., 15:], mel)
    with pytest.raises(ValueError, match="audio must be one of"):
        feature_windows("mfcc", vis, mel)
    shift, scale = input_stats("both", both[:30])
    z = (both[:30] - shift) / scale
    np.testing.assert_allclose(z[..., 15:].reshape(-1, 80).mean(0), 0, atol=1e-4)  # mel bands standardised
    np.testing.assert_allclose(z[..., 15:].reshape(-1, 80).std(0), 1, atol=1e-3)
    np.testing.assert_array_equal(z[..., :15], both[:30, :, :15])  # viseme probabilities untouched
    # the network applies the stored statistics itself, and they travel in its state dict
    net = AudioNet(95)
    ref = net(torch.from_numpy(np.ascontiguousarray(z[None, :8])))
    net.norm.set(shift, scale)
    torch.testing.assert_close(net(torch.from_numpy(both[None, :8])), ref, rtol=1e-4, atol=1e-5)
    other = AudioNet(95)
    other.load_state_dict(net.state_dict())
    torch.testing.assert_close(other.norm.scale, torch.from_numpy(scale))
    old = {k: v for k, v in net.state_dict().items() if not k.startswith("norm.")}  # saved before the stats
    fresh = AudioNet(95)
    fresh.load_state_dict(old)  # strict: the missing statistics stay the identity of a new network
    torch.testing.assert_close(fresh.norm.scale, torch.ones(95))
    torch.testing.assert_close(fresh.norm.shift, torch.zeros(95))


def test_appearance_codes_are_shared_by_runs_of_frames():
    from talkinghead.engines.nerf.engine import NerfConfig, build_model

    cfg = NerfConfig(size=32, grid_levels=4, grid_log2_size=10, code_period=25)
    assert [cfg.code_index(i) for i in (0, 24, 25, 49, 50)] == [0, 0, 1, 1, 2]
    m = build_model(cfg, None, 100.0, aabb=(-1, -1, -1, 1, 1, 1), n_frames=51)
    assert m.face.codes.num_embeddings == 3 and m.torso.codes.num_embeddings == 3
    per_frame = build_model(NerfConfig(size=32, grid_levels=4, grid_log2_size=10, code_period=1), None, 100.0,
                            aabb=(-1, -1, -1, 1, 1, 1), n_frames=51)
    assert per_frame.face.codes.num_embeddings == 51


def test_lip_codes_follow_the_main_lip_motion_with_unit_variance():
    import numpy as np

    from talkinghead.engines.nerf.data import lip_codes
    from talkinghead.geometry.face import LIPS_INNER

    rng = np.random.default_rng(0)
    n = 200
    canon = np.tile(rng.normal(0, 3, (1, 478, 3)), (n, 1, 1))
    opening = np.sin(np.arange(n) / 5.0)  # the lower inner lip moves down and up
    lower = LIPS_INNER[11:]
    canon[:, lower, 1] += 2.0 * opening[:, None]
    canon[:, :, :2] += rng.normal(0, 0.01, (n, 478, 2))  # tracking jitter
    fit = np.arange(0, n, 2)
    codes = lip_codes(canon, fit, 64)
    assert codes.shape == (n, 64) and codes.dtype == np.float32
    assert abs(codes[fit, 0].std() - 1) < 1e-5 and abs(codes[fit].mean()) < 1e-5
    assert abs(np.corrcoef(codes[:, 0], opening)[0, 1]) > 0.999  # the first column is the opening
    assert codes[fit, 1:].std(0).max() < 0.05  # jitter keeps its small natural scale (not whitened)
    wide = lip_codes(canon, fit, 96)  # 40 lip points x (x, y) = 80 columns carry the shape
    np.testing.assert_array_equal(wide[:, 80:], 0)
    assert np.abs(wide[:, :64] - codes).max() < 1e-5


def test_lip_basis_reads_the_drive_s_mouth_points_as_the_teacher_reads_landmarks():
    """A drive's mouth (motion.MOUTH_POINTS order, pose-free) gets the codes the audio code was taught for the
    same lips; the fitting frames' mean mouth is the zero code."""
    import numpy as np

    from talkinghead.engines.nerf.data import LipBasis, lip_codes, lip_points
    from talkinghead.motion import MOUTH_POINTS

    rng = np.random.default_rng(1)
    canon = rng.normal(0, 3, (60, 478, 3))
    fit = np.arange(0, 60, 3)
    basis = LipBasis.fit(canon, fit, 32)
    mouths = canon[:, MOUTH_POINTS, :2]  # what --lips audio|tracked puts in the drive
    np.testing.assert_allclose(basis.codes(mouths[:, :LipBasis.POINTS]), lip_codes(canon, fit, 32), atol=1e-5)
    mean = lip_points(canon[fit]).mean(0)[None]
    assert np.abs(basis.codes(mean)).max() < 1e-5


def test_momentum_smooth_step_response():
    beta, k, n = 0.7, 3, 10
    a = torch.zeros(n, 64)
    a[k:] = 1.0
    out = momentum_smooth(a, beta)
    expected = torch.tensor([0.0 if i < k else 1 - beta ** (i - k + 1) for i in range(n)])
    torch.testing.assert_close(out, expected[:, None].expand(n, 64))
    torch.testing.assert_close(momentum_smooth(a + 2, beta)[0], a[0] + 2)
    # streamed in chunks, carrying the last output, it is the same sequence bit for bit
    b = torch.randn(n, 8)
    parts, prev = [], None
    for chunk in b.split(3):
        parts.append(momentum_smooth(chunk, beta, prev))
        prev = parts[-1][-1]
    assert torch.equal(torch.cat(parts), momentum_smooth(b, beta))


# ---------------------------------------------------------------- fields

def _face_inputs(m: int, cfg: FieldConfig):
    return (torch.rand(m, 3) * 2 - 1, torch.randn(m, cfg.audio_dim), torch.rand(m, cfg.eye_dim),
            torch.randint(0, cfg.n_codes, (m,)))


@pytest.mark.parametrize("coords", [1, 2, 3])
def test_face_field_outputs(coords):
    cfg = FieldConfig(audio_dim_coords=coords, **SMALL)
    field = FaceField(cfg)
    x, a, eye, idx = _face_inputs(100, cfg)
    out = field(x, a, eye, idx)
    assert out["sigma"].shape == (100,) and out["rgb"].shape == (100, 3) and out["x_a"].shape == (100, coords)
    assert (out["sigma"] >= 0).all() and (out["rgb"] >= 0).all() and (out["rgb"] <= 1).all()
    assert out["x_a"].abs().max() <= 1
    torch.testing.assert_close(field.density(x, a, eye, idx), out["sigma"])
    assert field(x, a).keys() == out.keys()  # eye / code optional


def test_face_field_audio_path_is_live():
    cfg = FieldConfig(**SMALL)
    field = FaceField(cfg)
    x, a, eye, idx = _face_inputs(64, cfg)
    a.requires_grad_(True)
    out = field(x, a, eye, idx)
    (out["sigma"].sum() + out["rgb"].sum()).backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    with torch.no_grad():
        field.audio_grid.embeddings.uniform_(-1, 1)
        diff = field(x, a, eye, idx)["sigma"] - field(x, torch.randn_like(a), eye, idx)["sigma"]
    assert diff.abs().max() > 1e-3


def test_face_field_fits_constant_colour_through_renderer():
    cfg = FieldConfig(**SMALL)
    field = FaceField(cfg)
    origins, dirs = _front_rays(6, span=0.6)
    audio, eye = torch.randn(1, cfg.audio_dim), torch.zeros(1, 1)
    target = torch.tensor([0.9, 0.2, 0.4])

    def field_fn(p: torch.Tensor, ids: torch.Tensor):
        zeros = torch.zeros_like(ids)
        return field(p, audio[zeros], eye[zeros], zeros)

    opt = torch.optim.Adam(field.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # ~1k samples per step: threading only adds overhead (and stalls under load)
    try:
        losses = _fit(field_fn, opt, origins, dirs, target)
    finally:
        torch.set_num_threads(threads)
    assert losses[-1] < losses[0] / 5
    out = render_rays(field_fn, origins, dirs, BOX, 16)
    assert out["samples"]["x_a"].shape == (out["n_evaluated"], 2)


def _fit(field_fn, opt, origins, dirs, target, steps: int = 100) -> list[float]:
    losses = []
    for _ in range(steps):
        out = render_rays(field_fn, origins, dirs, BOX, 16, perturb=True)
        loss = ((out["rgb"] - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_torso_field_outputs():
    cfg = TorsoConfig(grid_levels=4, grid_log2_size=10, grid_max_res=64, n_codes=3)
    torso = TorsoField(cfg)
    R = torch.linalg.matrix_exp(torch.zeros(50, 3, 3))
    pose = pose_features(R, torch.randn(50, 3), t_scale=4.0)
    p = torch.rand(50, 2, requires_grad=True)
    out = torso(p, pose, torch.randint(0, 3, (50,)))
    assert out["rgb"].shape == (50, 3) and out["alpha"].shape == (50,) and out["offset"].shape == (50, 2)
    assert (out["rgb"] >= 0).all() and (out["rgb"] <= 1).all()
    assert (out["alpha"] >= 0).all() and (out["alpha"] <= 1).all()
    assert out["offset"].abs().max() <= cfg.max_offset
    out["alpha"].sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()

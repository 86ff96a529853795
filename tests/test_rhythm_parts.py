"""The rhythm engine's parts on closed forms: the fast rasteriser, the 3-D-aware projection, the matcher, the
references and the hybrid embedding's attention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkinghead.engines.rhythm.matcher import choose_references, match, pose_cost
from talkinghead.engines.rhythm.mesh import project_image, projection_map, textured
from talkinghead.engines.rhythm.networks import HybridEmbedding, RhythmGenerator, RhythmNetConfig, warp
from talkinghead.engines.rhythm.trainer import box_mask
from talkinghead.engines.rhythm.engine import RhythmConfig, feathered_square
from talkinghead.geometry.pose import canonical_face, intrinsics, matrix_from_euler, project, rotation_angle_deg
from talkinghead.geometry.raster import face_triangles, interpolate, rasterise, triangle_ids
from talkinghead.metrics import psnr

S = 128


def posed(yaw=0.0, pitch=0.0, roll=0.0, tx=0.0):
    """The canonical face at a pose, in pixels of a 128² image (and its depths)."""
    c, R, t = canonical_face(), matrix_from_euler(yaw, pitch, roll), np.array([tx, 0.0, 45.0])
    K = intrinsics(380, S, S)
    return project(c, R, t, K), (c @ R.T + t)[:, 2]


def texture(seed=0) -> np.ndarray:
    """A smooth random colour texture (S, S, 3) uint8 (band-limited: bilinear sampling reproduces it)."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (16, 16, 3)).astype(np.float32)
    return np.clip(cv2.resize(small, (S, S), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def test_painter_rasteriser_agrees_with_the_z_buffer():
    uv, z = posed(18, 6, 3)
    tris = face_triangles()
    a, cov_a = rasterise(uv, z, z, tris, (S, S))
    ids = triangle_ids(uv, z, tris, (S, S))
    b, cov_b = interpolate(ids, uv, z, tris)
    both = cov_a & cov_b
    assert both.sum() >= 0.98 * cov_a.sum() and cov_b.sum() <= 1.05 * cov_a.sum()
    d = np.abs(a - b)[both]  # cm; painter's order and the z-buffer may pick different triangles at a silhouette
    assert np.median(d) < 1e-6 and np.mean(d < 0.05) > 0.9 and np.mean(d < 0.5) > 0.98


def test_projection_at_the_reference_pose_reproduces_the_reference():
    uv, z = posed(5, -3)
    ref = texture()
    where, covered = projection_map(uv, textured(uv), uv, z, S)
    img, m = project_image(torch.from_numpy(ref).permute(2, 0, 1).float(), where, covered)
    out = img.permute(1, 2, 0).round().clamp(0, 255).byte().numpy()
    assert covered.mean() > 0.2
    assert psnr(out[covered], ref[covered]) >= 35
    assert torch.equal(m[0].bool(), torch.from_numpy(covered))


def test_projected_landmarks_land_on_the_posed_mesh_within_a_pixel():
    """At a pose 12° away, the reference position each target pixel takes is the reference's own position of
    the same surface point: sampled at the posed landmarks, the map gives the reference's landmarks."""
    ref_uv, _ = posed(0, 0)
    uv, z = posed(12, 4, 2, tx=1.0)
    where, covered = projection_map(ref_uv, textured(ref_uv), uv, z, S)
    g = torch.from_numpy(where).permute(2, 0, 1)[None]
    grid = torch.from_numpy(uv / S * 2 - 1).float()[None, None]
    at = torch.nn.functional.grid_sample(g, grid, mode="bilinear", align_corners=False)[0, :, 0].T.numpy()
    x, y = (np.clip(np.floor(uv[:, i] - 0.5).astype(int), 0, S - 2) for i in (0, 1))
    inner = covered[y, x] & covered[y + 1, x] & covered[y, x + 1] & covered[y + 1, x + 1]  # bilinear reads 4
    depth, _ = interpolate(triangle_ids(uv, z, face_triangles(), (S, S)), uv, z, face_triangles())
    inner &= np.abs(depth[y, x, 0] - z) < 0.3  # seen at the new pose (not behind the nose)
    from talkinghead.geometry.face import RIGID, NOSE_BRIDGE

    pts = [i for i in RIGID + NOSE_BRIDGE if inner[i]]
    assert len(pts) >= 20
    assert np.abs(at[pts] - ref_uv[pts]).max() < 1.0


def test_a_turned_away_triangle_gives_no_texture():
    uv, _ = posed(0, 0)
    turned, _ = posed(75, 0)  # the far cheek faces away at 75°
    assert textured(uv).mean() > 0.9 and textured(turned).mean() < textured(uv).mean() - 0.05


def test_the_matcher_picks_the_nearest_pose_among_those_offered():
    rng = np.random.default_rng(1)
    eul = rng.uniform(-20, 20, (8, 3))
    refs_R = np.stack([matrix_from_euler(*e) for e in eul])
    refs_t = np.zeros((8, 3))
    targets = rng.uniform(-20, 20, (30, 3))
    R = np.stack([matrix_from_euler(*e) for e in targets])
    picked = match(pose_cost(R, np.zeros((30, 3)), refs_R, refs_t))
    nearest = np.argmin(rotation_angle_deg(refs_R[None], R[:, None]), 1)
    assert np.array_equal(picked, nearest)
    offered = np.ones((30, 8), bool)
    offered[np.arange(30), nearest] = False
    assert not np.any(match(pose_cost(R, np.zeros((30, 3)), refs_R, refs_t), offered) == nearest)
    jittered = match(pose_cost(R, np.zeros((30, 3)), refs_R, refs_t), jitter=50.0, rng=rng)
    assert 0 < np.mean(jittered == nearest) < 1  # noise on the costs: the nearest most of the time, not always


def test_references_start_frontal_with_open_eyes_and_spread_over_poses():
    rng = np.random.default_rng(2)
    n = 300
    euler = rng.normal(0, 8, (n, 3))
    euler[17] = [0.5, -0.5, 0]  # the most frontal ...
    eye = np.full((n, 2), 0.3)
    euler[40] = [0.1, 0.1, 0]
    eye[40] = 0.05  # ... one more frontal, but blinking
    aperture = np.abs(rng.normal(0.1, 0.05, n))
    aperture[17] = aperture[40] = 0.0
    refs = choose_references(euler, eye, aperture, np.arange(n), 8)
    assert refs[0] == 17 and len(set(refs.tolist())) == 8
    spread = np.ptp(euler[refs, 0])
    assert spread > 0.6 * np.ptp(euler[:, 0])  # farthest-point sampling reaches the extremes


def test_attention_sums_to_one_and_prefers_the_reference_identical_to_the_target():
    torch.manual_seed(0)
    emb = HybridEmbedding(RhythmNetConfig(size=64, base=8, bottom=8))
    draws = (torch.rand(6, 1, 64, 64) > 0.9).float()
    refs = emb.references(torch.rand(6, 3, 64, 64) * 2 - 1, draws)
    w = emb.attention(refs, draws[[3, 1]])
    assert torch.allclose(w.sum(1), torch.ones(2), atol=1e-5)
    assert w[0].argmax() == 3 and w[1].argmax() == 1
    offered = torch.ones(2, 6, dtype=torch.bool)
    offered[0, 3] = False
    w = emb.attention(refs, draws[[3, 1]], offered)
    assert w[0, 3] == 0 and torch.allclose(w.sum(1), torch.ones(2), atol=1e-5)
    att = emb.attend(refs, w)
    assert set(att) == set(refs["acts"]) and att[8].shape[0] == 2


def test_the_generator_makes_a_crop_and_starts_with_the_matched_frame_unwarped():
    torch.manual_seed(0)
    cfg = RhythmNetConfig(size=64, base=8, bottom=8)
    gen = RhythmGenerator(cfg)
    refs = gen.embed.references(torch.rand(4, 3, 64, 64) * 2 - 1, torch.rand(4, 1, 64, 64))
    matched = torch.rand(2, 3, 64, 64) * 2 - 1
    out = gen(refs, torch.rand(2, 1, 64, 64), torch.rand(2, 4, 64, 64), matched, torch.rand(2, 1, 64, 64))
    assert out["image"].shape == (2, 3, 64, 64) and out["image"].abs().max() <= 1
    assert torch.allclose(out["warped"], matched, atol=1e-5)  # the flow starts at zero
    shifted = warp(matched, torch.full((2, 2, 64, 64), 0.0).index_fill_(1, torch.tensor([0]), 2.0))
    assert torch.allclose(shifted[..., 10:50], matched[..., 12:52], atol=1e-5)  # +2 px in x reads 2 px right


def test_masks_and_config():
    m = box_mask(torch.tensor([[2.0, 4.0, 6.0, 5.0]]), 8)[0, 0]
    assert m.sum() == 4 * 1 and m[4, 2:6].sum() == 4
    f = feathered_square(40, 8)
    assert f.shape == (40, 40, 1) and f[20, 20, 0] == 1 and f[0, 20, 0] < 0.1 and f[20, 0, 0] < 0.1
    assert RhythmConfig().resolved("cpu").size == 128 and RhythmConfig().resolved("cuda").size == 256
    with pytest.raises(ValueError):
        RhythmConfig(paste="all")
    with pytest.raises(ValueError):
        RhythmNetConfig(size=100)


def test_the_lower_face_follows_the_mouth_it_is_given():
    """Frames whose lower face moves with the jaw (one linear mode, noise-free): the fitted map gives a held-out
    frame's whole lower face back from its mouth and jaw alone."""
    from talkinghead.geometry.pose import lower_face
    from talkinghead.motion import MOUTH_POINTS, LowerFace

    rng = np.random.default_rng(0)
    base = canonical_face()
    modes = rng.normal(0, 0.1, (2, *base.shape))
    modes[:, np.setdiff1d(np.arange(len(base)), lower_face())] = 0  # speech moves only the lower face
    coef = rng.uniform(-1, 1, (60, 2))
    frames = base + np.einsum("nk,kvc->nvc", coef, modes)
    lf = LowerFace(frames[:50], ridge=1e-9)
    for f in frames[50:]:
        np.testing.assert_allclose(lf(f[MOUTH_POINTS, :2]), f[lower_face()], atol=1e-6)
        np.testing.assert_allclose(lf.apply(frames[0], f[MOUTH_POINTS, :2]), f, atol=1e-6)  # on another frame

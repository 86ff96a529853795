"""Speech2Lip's parts on their own: GAMEM geometry, canonical depth, continuous sampling, the lip field,
the contrastive sync encoders and the expression learner's PCA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkinghead.engines.speech2lip.data import canonical_region
from talkinghead.engines.speech2lip.gamem import CanonicalDepth, face_depth, frame_camera, map_points
from talkinghead.engines.speech2lip.lipfield import (DenseGrid2D, LipField, LipFieldConfig, continuous_query,
                                                     corner_weights)
from talkinghead.subject import Subject


@pytest.fixture(scope="module")
def subject(speaker_subject):
    return Subject.open(speaker_subject)


@pytest.fixture(scope="module")
def canonical(subject):
    c = subject.neutral_frame()
    box = canonical_region(subject, subject.split("train"), c)
    return c, box, CanonicalDepth(box, CanonicalDepth.initial(subject, c, box))


def test_depth_initialisation_is_the_rasterised_landmark_depth_inside_the_face(subject, canonical):
    c, (x0, y0, w, h), depth = canonical
    d, covered = face_depth(subject, c)
    inside = covered[y0:y0 + h, x0:x0 + w]
    assert inside.mean() > 0.5
    np.testing.assert_array_equal(depth.depth.detach().numpy()[inside], d[y0:y0 + h, x0:x0 + w][inside])
    # beyond the face it is filled smoothly, never zero
    assert depth.depth.min() > 0.8 * d[covered].min()
    # the rasterised depth is the tracked landmarks' camera depth at their own pixels
    tr = subject.tracks
    X = tr["canon_landmarks"][c].astype(np.float64) @ tr["rotation"][c].T + tr["translation"][c]
    px = np.round(tr["landmarks"][c][:, :2] - 0.5).astype(int)
    on = covered[px[:, 1], px[:, 0]]
    assert np.median(np.abs(d[px[on, 1], px[on, 0]] - X[on, 2])) < 0.05  # cm


def test_gamem_round_trip_returns_within_a_pixel(subject, canonical):
    """O2C with the observed frame's own face depth, then C2O with the canonical depth, lands back
    on the same pixel: the synthetic speaker's geometry is consistent across poses."""
    c, (x0, y0, w, h), depth = canonical
    cam_c = frame_camera(subject, c)
    tr = subject.tracks
    far = np.argsort(-np.linalg.norm(tr["euler_deg"] - tr["euler_deg"][c], axis=1))[:3]  # the most turned frames
    for i in far:
        d, covered = face_depth(subject, int(i))
        ys, xs = np.nonzero(covered)
        p = torch.from_numpy(np.stack([xs, ys], 1) + 0.5).float()
        cam_i = frame_camera(subject, int(i))
        q = map_points(p, torch.from_numpy(d[ys, xs]), cam_i, cam_c)
        inside = (q[:, 0] > x0 + 1) & (q[:, 0] < x0 + w - 1) & (q[:, 1] > y0 + 1) & (q[:, 1] < y0 + h - 1)
        back = depth.c2o(q[inside], cam_c, cam_i).detach()
        err = (back - p[inside]).norm(dim=1)
        assert inside.sum() > 500
        assert float(err.median()) < 0.5 and float(torch.quantile(err, 0.95)) < 1.0, (i, err.median(), err.max())
        # and the renderer's inverse of C2O finds the canonical pixels again (but where the surface folds)
        inv = (depth.invert(back, cam_c, cam_i) - q[inside]).norm(dim=1)
        assert float(torch.quantile(inv, 0.99)) < 0.1 and float(inv.max()) < 1.0


def test_map_points_identity_and_pure_translation(subject):
    cam = frame_camera(subject, 0)
    p = torch.rand(50, 2) * 200 + 20
    z = torch.full((50,), 60.0)
    torch.testing.assert_close(map_points(p, z, cam, cam), p, atol=1e-3, rtol=0)
    moved = type(cam)(cam.R, cam.t + torch.tensor([1.0, 0.0, 0.0]), cam.K)  # 1 cm to the right at 60 cm
    shift = map_points(p, z, cam, moved) - p
    torch.testing.assert_close(shift[:, 0], torch.full((50,), float(cam.K[0, 0]) / 60.0), atol=1e-3, rtol=0)


def test_continuous_sampling_weights_sum_to_one_and_reproduce_constants_and_planes():
    for shift in (0.0, 0.1, 0.24):
        half = torch.tensor([0.5, 0.5])
        signs = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
        w = corner_weights(signs * half + shift)
        assert float(w.sum()) == pytest.approx(1.0, abs=1e-6) and (w > 0).all()
    centres = torch.rand(100, 2)
    const = continuous_query(lambda u: torch.full((len(u), 3), 0.37), centres, torch.tensor([0.01, 0.02]))
    assert torch.equal(const, torch.full((100, 3), 0.37)) or torch.allclose(const, torch.full((100, 3), 0.37),
                                                                            atol=1e-7, rtol=0)
    # bilinear weights: a plane is reproduced at the centre exactly
    plane = lambda u: (2 * u[:, :1] - 3 * u[:, 1:] + 0.5)  # noqa: E731
    got = continuous_query(plane, centres, torch.tensor([0.01, 0.02]))
    torch.testing.assert_close(got, plane(centres), atol=1e-6, rtol=0)


@pytest.mark.parametrize("encoding", ["grid", "hash", "pe"])
def test_lip_field_shapes_range_and_warp_start(encoding):
    f = LipField(LipFieldConfig(encoding=encoding, grid_max_res=32, grid_levels=4, n_app=3))
    tex = (np.arange(16 * 24 * 3).reshape(16, 24, 3) % 251).astype(np.uint8)
    f.set_texture(tex)
    uv = torch.rand(64, 2)
    out = f(uv, torch.randn(64, 20), torch.randint(0, 3, (64,)))
    assert out.shape == (64, 3) and out.min() >= 0 and out.max() <= 1
    # "warp" starts as the canonical frame itself: F at pixel centres returns its pixels
    ys, xs = torch.meshgrid((torch.arange(16) + 0.5) / 16, (torch.arange(24) + 0.5) / 24, indexing="ij")
    centres = torch.stack([xs, ys], -1).reshape(-1, 2)
    img = f(centres, torch.zeros(len(centres), 20)).reshape(16, 24, 3)
    torch.testing.assert_close(img, torch.from_numpy(tex).float() / 255, atol=1e-5, rtol=0)


def test_texture_margin_reads_the_frame_past_the_region_and_keeps_the_region_where_it_was():
    from talkinghead.engines.speech2lip.view import texture_with_margin

    frame = (np.arange(40 * 50 * 3).reshape(40, 50, 3) % 253).astype(np.uint8)
    tex, (mx, my) = texture_with_margin(frame, (10, 5, 20, 16), 0.1)
    assert (mx, my) == (4, 4) and tex.shape == (16 + 8, 20 + 8, 3)
    np.testing.assert_array_equal(tex[my:-my, mx:-mx], frame[5:21, 10:30])  # the region itself
    np.testing.assert_array_equal(tex[:, :mx], frame[1:25, 6:10])  # the frame's own pixels beside it
    np.testing.assert_array_equal(tex[0], frame[1, 6:34])  # (row 5 - 4 = 1 is still inside the frame)
    edge, _ = texture_with_margin(frame, (0, 0, 20, 16), 0.1)  # past the frame: its edge repeats
    np.testing.assert_array_equal(edge[:4, 4:24], np.repeat(frame[:1, :20], 4, 0))

    # the lip field reads the region's pixels at the same uv with or without the margin; a displacement past
    # the region's left edge reads the frame there (without a margin: the edge column repeated)
    f = LipField(LipFieldConfig(grid_max_res=8, grid_levels=2, max_shift=0.15))
    ys, xs = torch.meshgrid((torch.arange(16) + 0.5) / 16, (torch.arange(20) + 0.5) / 20, indexing="ij")
    centres = torch.stack([xs, ys], -1).reshape(-1, 2)
    f.set_texture(tex, (mx, my))
    img = f(centres, torch.zeros(len(centres), 20)).reshape(16, 20, 3)
    torch.testing.assert_close(img, torch.from_numpy(frame[5:21, 10:30]).float() / 255, atol=1e-5, rtol=0)
    with torch.no_grad():
        f.mlp[-1].bias[0] = -10.0  # tanh -> -1: every point moves 0.15 of the width (3 px) to the left
    moved = f(centres, torch.zeros(len(centres), 20)).reshape(16, 20, 3)
    torch.testing.assert_close(moved, torch.from_numpy(frame[5:21, 7:27]).float() / 255, atol=2e-3, rtol=0)


def test_dense_grid_is_bilinear_between_its_vertices():
    g = DenseGrid2D(levels=1, features=1, base=4, max_res=4)
    with torch.no_grad():
        g.levels[0].copy_(torch.arange(25.0).reshape(1, 1, 5, 5))  # value = 5 * row + col
    uv = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.125, 0.375]])  # lattice units: x * 4
    torch.testing.assert_close(g(uv)[:, 0], torch.tensor([0.0, 24.0, 5 * 1.5 + 0.5]))


def test_sync_loss_is_lower_for_synced_than_shifted_pairs(subject):
    """A short contrastive training on the synthetic speaker already tells its synced lip windows
    from the same video's shifted ones."""
    from talkinghead.engines.speech2lip.engine import Speech2LipConfig
    from talkinghead.engines.speech2lip.model import LipModel
    from talkinghead.engines.speech2lip.sync import info_nce

    torch.manual_seed(0)
    cfg = Speech2LipConfig(expr_members=1, sync_width=32)
    tri = subject.split("train")
    p = LipModel(subject, cfg, "cpu", fit_idx=tri)
    opt = torch.optim.Adam(p.sync.parameters(), 1e-3)
    rng = np.random.default_rng(0)
    n = cfg.sync_window
    for _ in range(150):
        w = rng.choice(tri[:-n], 32, replace=False)[:, None] + np.arange(n)
        loss = p.sync.loss(p.windows_t[w], p.low_lips(w))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        w = rng.choice(tri[10:-n - 10], 24, replace=False)[:, None] + np.arange(n)
        a = p.sync.embed_audio(p.windows_t[w])
        synced = info_nce(a, p.sync.embed_lips(p.low_lips(w)), 0.1)
        shifted = info_nce(a, p.sync.embed_lips(p.low_lips(w + 8)), 0.1)  # lips 0.32 s later
    assert float(synced) < float(shifted) - 0.3, (float(synced), float(shifted))


def test_mouth_pca_round_trip_within_half_a_pixel(subject):
    """The 20-component PCA of the pose-free mouth reproduces the tracked mouth landmarks within 0.5 px."""
    from talkinghead.geometry.pose import project
    from talkinghead.motion import MOUTH_POINTS, MouthPCA

    tr = subject.tracks
    pca = MouthPCA(20).fit(tr["canon_landmarks"], subject.split("train"))
    idx = subject.split("val")
    back = pca.decode(pca.encode(tr["canon_landmarks"][idx]), tr["canon_landmarks"][idx])
    R, t, K = (tr[k].astype(np.float64) for k in ("rotation", "translation", "intrinsics"))
    err = []
    for n, i in enumerate(idx):
        X = np.concatenate([back[n], tr["canon_landmarks"][i][:, 2:]], 1)[MOUTH_POINTS]
        err.append(np.linalg.norm(project(X, R[i], t[i], K) - tr["landmarks"][i][MOUTH_POINTS, :2], axis=1).max())
    assert np.max(err) * 512 / subject.size < 0.5, np.max(err)


def _exemplars(n: int = 200, k: int = 4, seed: int = 0):
    """Recorded frames 0..n-1 whose mouth codes follow a smooth random walk."""
    from talkinghead.engines.speech2lip.exemplar import Exemplars

    rng = np.random.default_rng(seed)
    codes = np.cumsum(rng.normal(0, 0.3, (n, k)), 0)
    return Exemplars(np.arange(n), codes, np.ones(k)), codes


def test_exemplars_replay_a_recorded_run_exactly():
    """Asked for the mouths of recorded frames 50..79 in order, the walk and the path show exactly those frames."""
    from talkinghead.engines.speech2lip.exemplar import ExemplarWalk, exemplar_path

    ex, codes = _exemplars()
    want = np.arange(50, 80)
    assert np.array_equal(ex.frames[exemplar_path(ex, codes[want])], want)
    assert np.array_equal(ex.frames[ExemplarWalk(ex).rows(codes[want])], want)


def test_exemplars_play_on_rather_than_flicker_between_near_mouths():
    """Near-equal mouths: the choice plays recorded frames on (a run) instead of jumping to each nearest one."""
    from talkinghead.engines.speech2lip.exemplar import ExemplarWalk, exemplar_path

    ex, codes = _exemplars()
    rng = np.random.default_rng(1)
    asked = codes[100:140] + rng.normal(0, 0.4, (40, codes.shape[1]))  # the run, blurred by noise
    nearest = np.argmin(ex.costs(asked), 1)
    base = np.mean(np.diff(nearest) == 1)
    for rows, least in ((exemplar_path(ex, asked), 0.6), (ExemplarWalk(ex).rows(asked), base + 0.2)):
        runs = np.mean(np.diff(rows) == 1)
        assert runs > least and runs > base + 0.2, (runs, base)
        assert np.mean((asked - ex.codes[rows]) ** 2) < 4 * np.mean((asked - ex.codes[nearest]) ** 2) + 0.1


def test_exemplars_jump_when_the_mouth_asked_for_is_elsewhere():
    from talkinghead.engines.speech2lip.exemplar import exemplar_path

    ex, codes = _exemplars()
    asked = np.concatenate([codes[20:30], codes[150:160]])
    assert np.array_equal(ex.frames[exemplar_path(ex, asked)], np.r_[20:30, 150:160])
    # continuing from a given row: playing on from 19 is free, so frame 20 follows it
    assert exemplar_path(ex, codes[20:25], prev=19)[0] == 20


def test_exemplars_never_include_a_frames_neighbours_when_excluded():
    ex, _ = _exemplars()
    m = ex.exclude(np.array([10, 100]), 3)
    assert m[0].sum() == 7 and m[0, 7:14].all() and not m[0, 14] and m[1, 97:104].all()


def test_exemplar_lips_are_the_recorded_frames_pixels_in_the_canonical_view_and_survive_saving(subject, canonical):
    """A frame's stored canonical lips, resampled at canonical pixels, match warping the frame itself there (within
    JPEG loss), are made once, and come back identical from the saved state."""
    from talkinghead.engines.speech2lip.exemplar import ExemplarLips
    from talkinghead.engines.speech2lip.view import CanonicalView

    c, box, depth = canonical
    view = CanonicalView(subject, c, box, np.ones((box[3], box[2]), np.float32), depth.depth.detach().numpy(),
                         "cpu", subject.split("train"), 25)
    made = []
    store = ExemplarLips(lambda i: made.append(i) or view.canonical_image(i))
    i = int(subject.split("train")[7])
    x0, y0, w, h = box
    q = torch.tensor([[x0 + 0.3 * w, y0 + 0.6 * h], [x0 + 0.55 * w, y0 + 0.4 * h], [x0 + 0.7 * w, y0 + 0.8 * h]])
    img = torch.from_numpy(store.image(i).copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        direct = view.targets(i, q)
    assert img.shape == (1, 3, h, w)
    assert float((view.sample_canonical(img, q) - direct).abs().max()) < 6 / 255
    store.image(i)
    assert made == [i]  # computed once, then decoded from the kept JPEG
    back = ExemplarLips(lambda i: pytest.fail("a saved image was made again")).load(store.state())
    assert np.array_equal(back.image(i), store.image(i))

"""The torch pinhole camera (geometry/camera.py) against closed forms, round trips and gradcheck."""

from __future__ import annotations

import numpy as np
import torch

from talkinghead.geometry import pose as P
from talkinghead.geometry.camera import inverse_transform, pixel_rays, project, transform, unproject

K = torch.tensor([[500.0, 0, 64], [0, 480.0, 48], [0, 0, 1]], dtype=torch.float64)


def _pose():
    R = torch.from_numpy(P.matrix_from_euler(12.0, -7.0, 4.0))
    return R, torch.tensor([0.4, -0.3, 60.0], dtype=torch.float64)


def test_project_closed_form_exact():
    X = torch.tensor([[0.0, 0.0, 10.0], [2.0, -1.0, 4.0], [1.0, 3.0, 2.0]], dtype=torch.float64)
    want = torch.tensor([[64.0, 48.0], [64 + 500 * 0.5, 48 - 480 * 0.25], [64 + 250.0, 48 + 720.0]],
                        dtype=torch.float64)
    torch.testing.assert_close(project(X, K), want, atol=0, rtol=0)


def test_unproject_inverts_project_and_keeps_depth():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(4, 5, 3, generator=g, dtype=torch.float64) * torch.tensor([20, 20, 50.0]) + torch.tensor(
        [-10, -10, 5.0])
    Ks = K.clone()
    Ks[0, 1] = 3.0  # with skew too
    back = unproject(project(X, Ks), X[..., 2], Ks)
    torch.testing.assert_close(back, X, atol=1e-12, rtol=0)


def test_transform_round_trip_and_numpy_agreement():
    R, t = _pose()
    X = torch.from_numpy(P.canonical_face()[:50])
    torch.testing.assert_close(inverse_transform(transform(X, R, t), R, t), X, atol=1e-12, rtol=0)
    uv_np = P.project(X.numpy(), R.numpy(), t.numpy(), K.numpy())
    torch.testing.assert_close(project(transform(X, R, t), K), torch.from_numpy(uv_np), atol=1e-9, rtol=0)


def test_gradcheck():
    X = (torch.rand(6, 3, dtype=torch.float64) + torch.tensor([0, 0, 2.0])).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: project(x, K), (X,))
    uv = (torch.rand(6, 2, dtype=torch.float64) * 100).requires_grad_()
    z = (torch.rand(6, dtype=torch.float64) + 1).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: unproject(a, b, K), (uv, z))


def test_pixel_rays_conventions():
    Kf = K.float()
    o, d = pixel_rays(Kf, torch.eye(3), torch.tensor([0.0, 0.0, 4.0]), torch.tensor([[64.0, 48.0], [100.0, 48.0]]))
    torch.testing.assert_close(o[0], torch.tensor([0.0, 0.0, -4.0]))
    torch.testing.assert_close(d[0], torch.tensor([0.0, 0.0, 1.0]))
    assert d[1, 0] > 0 and abs(d[1, 1]) < 1e-6 and torch.allclose(d.norm(dim=-1), torch.ones(2))
    # A ray through a point's pixel passes through the point, in front of the camera.
    R, t = (x.float() for x in _pose())
    X = torch.tensor([[0.3, 0.2, -0.4], [-0.5, 0.1, 0.6]])
    o, d = pixel_rays(Kf, R, t, project(transform(X, R, t), Kf))
    to_x = X - o
    assert torch.linalg.cross(to_x, d).norm(dim=-1).max() < 1e-4 and ((to_x * d).sum(-1) > 0).all()
    assert np.allclose(o[0].numpy(), (-R.T @ t).numpy(), atol=1e-5)

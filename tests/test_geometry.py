"""Pure geometry functions against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.geometry import face as F
from talkinghead.geometry import pose as P


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3))
    R = P.matrix_from_euler(20, -10, 35)
    Y = 2.5 * X @ R.T + [1, -2, 3]
    s, R2, t = P.umeyama(X, Y)
    assert s == pytest.approx(2.5) and np.allclose(R2, R) and np.allclose(t, [1, -2, 3])


@pytest.mark.parametrize("ypr", [(0, 0, 0), (30, -20, 10), (-60, 45, -80), (5, 0, 170)])
def test_euler_round_trip(ypr):
    R = P.matrix_from_euler(*ypr)
    assert np.allclose(R @ R.T, np.eye(3)) and np.linalg.det(R) == pytest.approx(1)
    assert np.allclose(P.euler_from_matrix(R), ypr, atol=1e-9)


def test_roll_is_clockwise_on_screen():
    R = P.matrix_from_euler(0, 0, 90)
    assert np.allclose(R @ [1, 0, 0], [0, 1, 0])  # x (right) turns to y (down)


def test_rotation_angle():
    assert P.rotation_angle_deg(np.eye(3), P.matrix_from_euler(0, 0, 25)) == pytest.approx(25)


def test_backprojection_inverts_projection_and_removes_pose():
    canon = P.canonical_face()
    K = P.intrinsics(800, 512, 512)
    R, t = P.matrix_from_euler(15, -8, 5), np.array([1.0, -2.0, 60.0])
    deformed = canon.copy()
    deformed[F.LIPS_INNER[10:], 1] += 0.8  # open the mouth by 8 mm
    uv = P.project(deformed, R, t, K)
    back = P.backproject_to_canonical(uv, canon, R, t, K)
    rigid_err = np.abs(back[F.RIGID] - canon[F.RIGID]).max()
    assert rigid_err < 1e-6
    assert F.mouth_aperture(back) > F.mouth_aperture(canon) + 0.05


def test_pnp_recovers_a_known_pose():
    canon = P.canonical_face()
    K = P.intrinsics(1000, 512, 512)
    R, t = P.matrix_from_euler(-12, 6, 3), np.array([0.5, 1.0, 55.0])
    uv = P.project(canon, R, t, K)
    R2, t2, err = P.solve_pnp(uv[F.RIGID], canon[F.RIGID], K, np.eye(3), np.array([0, 0, 50.0]))
    assert err < 1e-3 and P.rotation_angle_deg(R, R2) < 0.01 and np.allclose(t, t2, atol=1e-3)


def test_signals_on_the_canonical_face():
    c = P.canonical_face()
    assert F.face_scale(c) == pytest.approx(9.0)
    eye = F.eye_openness(c)
    assert eye.shape == (2,) and 0.15 < eye[0] < 0.4 and eye[0] == pytest.approx(eye[1])
    closed = c.copy()
    for up, lo in F.INNER_LIP_PAIRS:
        closed[up] = closed[lo] = (c[up] + c[lo]) / 2
    assert F.mouth_aperture(closed) == pytest.approx(0, abs=1e-9)
    assert np.allclose(F.polygon_area(np.array([[0, 0], [2, 0], [2, 3], [0, 3.0]])), 6)


def test_index_lists_match_mediapipe_topology():
    from mediapipe.python.solutions import face_mesh_connections as C

    def nodes(edges):
        return {i for e in edges for i in e}

    assert set(F.FACE_OVAL) == nodes(C.FACEMESH_FACE_OVAL)
    assert set(F.LEFT_EYE) == nodes(C.FACEMESH_LEFT_EYE)
    assert set(F.RIGHT_EYE) == nodes(C.FACEMESH_RIGHT_EYE)
    assert set(F.LIPS_OUTER) | set(F.LIPS_INNER) == nodes(C.FACEMESH_LIPS)
    assert len(F.RIGID) == 30 and not set(F.RIGID) & nodes(C.FACEMESH_LIPS)

"""Pure parts of the viseme engine and the say stage: mashing, drawings, eyes, pose schedules."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.compose import drawing as D
from talkinghead.engines.viseme.data import eye_override
from talkinghead.engines.viseme.mashing import mash
from talkinghead.geometry import face as F
from talkinghead.geometry import pose as P
from talkinghead.drive import natural_blinks, pingpong

K = P.intrinsics(900, 256, 256)


def posed(yaw, pitch, roll, mouth_open=0.0):
    """A face with the mouth opened by ``mouth_open`` cm, its pose, pixels and pose-free landmarks."""
    X = P.canonical_face().copy()
    low = P.lower_face()
    chinward = X[low, 1] > X[13, 1]  # below the lip line: the lower lip and jaw drop
    X[low[chinward], 1] += mouth_open
    R, t = P.matrix_from_euler(yaw, pitch, roll), np.array([0.5, 1.0, 60.0])
    uv = P.project(X, R, t, K)
    canon = P.backproject_to_canonical(uv, P.canonical_face(), R, t, K)
    return uv, canon, R, t


def test_mash_with_itself_is_identity():
    uv, canon, R, t = posed(10, -5, 3, 0.5)
    assert np.abs(mash(canon, canon, R, t, K) - uv).max() < 1e-6


def test_mash_takes_mouth_from_i_and_pose_from_j():
    uv_i, canon_i, _, _ = posed(-15, 8, -4, 1.0)  # open mouth, turned left
    uv_j, canon_j, R_j, t_j = posed(20, -6, 5, 0.0)  # closed mouth, turned right
    m = mash(canon_i, canon_j, R_j, t_j, K)
    upper = np.setdiff1d(np.arange(F.N_LANDMARKS), P.lower_face())
    assert np.abs(m[upper] - uv_j[upper]).max() < 1e-6  # j's face and pose
    # i's mouth opening, now seen under j's pose. Not exact: lifting pixels to 3-D assumes the
    # rigid face's depth for the moved lips, an error of a fraction of a pixel at 35° of yaw.
    open_j = posed(20, -6, 5, 1.0)[0]
    assert np.median(np.abs(m[P.lower_face()] - open_j[P.lower_face()])) < 1.0
    ap = lambda uv: F.mouth_aperture(np.concatenate([uv, np.zeros((len(uv), 1))], 1))
    assert ap(m) > ap(uv_j) + 0.05


def test_upper_drawing_hides_the_mouth_and_full_drawing_shows_it():
    uv, *_ = posed(0, 0, 0)
    box = np.array([uv[:, 0].min() - 20, uv[:, 1].min() - 20, 200.0])
    up = D.draw(uv, box, 128, full=False)
    full = D.draw(uv, box, 128, full=True)
    lips = D.to_box(uv[F.LIPS_OUTER], box, 128)
    (x0, y0), (x1, y1) = np.floor(lips.min(0)).astype(int), np.ceil(lips.max(0)).astype(int) + 1
    assert up[y0:y1, x0:x1].max() == 0 and full[y0:y1, x0:x1].max() == 255
    assert up.max() == 255  # eyes, brows, nose are there
    # Opening the mouth changes the full drawing but not the upper one.
    uv2 = posed(0, 0, 0, 1.0)[0]
    assert np.array_equal(D.draw(uv2, box, 128, full=False), up)
    assert not np.array_equal(D.draw(uv2, box, 128, full=True), full)


def test_eye_override_opens_and_closes():
    uv, *_ = posed(5, 0, 0)
    lm = np.concatenate([uv, np.zeros((len(uv), 1))], 1)
    e = F.eye_openness(lm)
    assert np.allclose(eye_override(lm, e, e), lm)
    closed = eye_override(lm, e, np.array([0.0, 0.0]))
    assert np.all(F.eye_openness(closed) < 0.01)
    half = eye_override(lm, e, e / 2)
    assert np.allclose(F.eye_openness(half), e / 2, rtol=0.05)


def test_pingpong_has_no_jumps_and_covers_the_range():
    idx = pingpong(500, 10, 60)
    assert idx.min() == 10 and idx.max() == 59
    assert np.abs(np.diff(idx)).max() == 1
    assert np.all(pingpong(5, 3, 4) == 3)


def test_natural_blinks_are_spaced_and_short():
    eye = natural_blinks(25 * 60, 25, np.array([0.3, 0.3]), seed=1)
    closed = eye[:, 0] < 0.15
    starts = np.flatnonzero(np.diff(closed.astype(int)) == 1)
    gaps = np.diff(starts) / 25
    assert 10 <= len(starts) <= 30 and gaps.min() >= 1.9 and gaps.max() <= 6.3
    assert closed.mean() < 0.1

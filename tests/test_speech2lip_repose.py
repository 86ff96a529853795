"""Pose-controllable synthesis: the still frame's head re-rendered at other poses through its depth."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkinghead.compose import HEAD_LABELS
from talkinghead.engines.speech2lip.gamem import Camera, CanonicalDepth, frame_camera
from talkinghead.engines.speech2lip.repose import HeadRepose, trace_back
from talkinghead.geometry.pose import matrix_from_euler
from talkinghead.subject import Subject


@pytest.fixture(scope="module")
def repose(speaker_subject):
    subject = Subject.open(speaker_subject)
    return HeadRepose(subject, subject.neutral_frame())


def test_trace_back_of_a_plane_moved_sideways_is_a_constant_shift():
    K = torch.tensor([[300.0, 0, 64], [0, 300.0, 64], [0, 0, 1]])
    src = Camera(torch.eye(3), torch.tensor([0.0, 0.0, 50.0]), K)
    dst = Camera(torch.eye(3), torch.tensor([0.5, 0.0, 50.0]), K)  # 5 mm to the right at 50 cm
    depth = CanonicalDepth((0, 0, 128, 128), np.full((128, 128), 50.0, np.float32))
    q, err = trace_back(depth, src, dst, (128, 128))
    ys, xs = torch.meshgrid(torch.arange(128) + 0.5, torch.arange(128) + 0.5, indexing="ij")
    torch.testing.assert_close(q[..., 0], xs - 300.0 * 0.5 / 50.0, atol=1e-3, rtol=0)
    torch.testing.assert_close(q[..., 1], ys, atol=1e-3, rtol=0)
    assert float(err.max()) < 1e-3


def test_repose_at_the_still_pose_returns_the_still_frame(repose):
    out = repose.render(repose.cam)
    diff = np.abs(out.astype(int) - repose.subject.frame(repose.s).astype(int))
    assert out.shape == (repose.subject.size,) * 2 + (3,) and out.dtype == np.uint8
    assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 2


def test_turned_head_puts_each_face_point_where_the_pose_projects_it(repose):
    """Yaw 12° and pitch -6°: the traced-back pixel of each projected landmark is that landmark's pixel
    in the still frame (the rasterised depth is the landmarks' own depth there)."""
    subject, s = repose.subject, repose.s
    tr = subject.tracks
    R0 = tr["rotation"][s].astype(np.float64)
    R = matrix_from_euler(12.0, -6.0, 0.0) @ R0
    cam = Camera(torch.as_tensor(R, dtype=torch.float32), repose.cam.t, repose.cam.K)
    X = tr["canon_landmarks"][s].astype(np.float64)
    K = tr["intrinsics"].astype(np.float64)
    uv = (X @ R.T + tr["translation"][s]) @ K.T
    p_new = uv[:, :2] / uv[:, 2:]
    q, err = trace_back(repose.depth, repose.cam, cam, (subject.size,) * 2, stride=1)
    ij = np.clip(np.floor(p_new).astype(int), 0, subject.size - 1)
    found = q[ij[:, 1], ij[:, 0]].numpy()  # at the pixel the landmark projects into
    src = tr["landmarks"][s][:, :2]
    miss = np.linalg.norm(found - src, axis=1)
    assert np.median(miss) < 1.5, np.median(miss)
    out = repose.render(cam)
    moved = np.abs(out.astype(int) - subject.frame(s).astype(int)).mean()
    assert moved > 1.0  # the head really moved
    head = np.isin(subject.mask(s), HEAD_LABELS)
    assert np.abs(out[~head].astype(int) - subject.frame(s)[~head].astype(int)).mean() < moved

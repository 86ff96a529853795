"""Issue #3 acceptance: `prepare` on a 10 s synthetic speaker recovers its ground truth."""

from __future__ import annotations

import os

import numpy as np
import pytest

from talkinghead.evaluate.temporal import detect_blinks
from talkinghead.geometry.pose import rotation_angle_deg
from talkinghead.subject import Subject

pytestmark = pytest.mark.slow  # prepares a synthetic video


@pytest.fixture(scope="module")
def synth_subject(tmp_path_factory):
    os.environ["TALKINGHEAD_QUIET"] = "1"
    from talkinghead.prepare.pipeline import PrepareConfig, prepare
    from talkinghead.synth.speaker import synthesize_speaker

    tmp = tmp_path_factory.mktemp("synthprep")
    video = synthesize_speaker(tmp / "s.mp4", seconds=10, seed=1, size=256)
    truth = dict(np.load(tmp / "s.truth.npz"))
    subject = Subject.open(prepare(video, tmp / "subject", config=PrepareConfig(size=256)))
    return subject, truth


def test_face_found_and_aperture_follows_truth(synth_subject):
    s, truth = synth_subject
    tr = s.tracks
    assert s.n_frames == len(truth["aperture"]) == 250
    assert tr["found"].mean() >= 0.95
    r = np.corrcoef(tr["aperture"], truth["aperture"])[0, 1]
    assert r >= 0.9, r


def test_head_rotation_within_3_degrees(synth_subject):
    s, truth = synth_subject
    est, gt = s.tracks["rotation"].astype(np.float64), truth["rotation"].astype(np.float64)
    # The photo's own pose is unknown to the truth (it is relative to the photo): remove one
    # constant rotation B with est_i ≈ gt_i · B, fitted by least squares on SO(3).
    U, _, Vt = np.linalg.svd(np.einsum("nji,njk->ik", est, gt))
    M = U @ np.diag([1, 1, np.linalg.det(U @ Vt)]) @ Vt
    err = rotation_angle_deg(est @ M, gt)
    assert np.median(err) < 3.0, np.median(err)
    # The motion is really there (not a constant pose passing by luck).
    assert np.ptp(truth["euler_deg"][:, 0]) > 4.0


def test_every_blink_is_detected(synth_subject):
    s, truth = synth_subject
    blink = truth["blink"].astype(bool)
    starts = np.flatnonzero(np.diff(np.concatenate([[0], blink.astype(int)])) == 1)
    ends = np.flatnonzero(np.diff(np.concatenate([blink.astype(int), [0]])) == -1) + 1
    assert len(starts) >= 1
    found = detect_blinks(s.tracks["eye"].mean(1), s.fps)
    for a, b in zip(starts, ends):
        assert any(fa <= b + 2 and fb >= a - 2 for fa, fb in found), (a, b, found)

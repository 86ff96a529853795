"""``drive.schedule.replay_path``: generated head poses replayed as a walk through the recorded frames."""

from __future__ import annotations

import numpy as np

from talkinghead.drive.schedule import replay_path


def walk(costs: np.ndarray, **kw) -> np.ndarray:
    return replay_path(iter(costs), costs.shape[1], costs.shape[0], **kw)


def test_a_target_moving_one_frame_a_step_is_followed_exactly():
    m, n = 50, 30
    target = 10 + np.arange(n)
    costs = np.abs(np.arange(m)[None] - target[:, None]).astype(float)
    assert np.array_equal(walk(costs), target)
    assert np.array_equal(walk(costs[:, ::-1]), m - 1 - target)  # backwards too


def test_free_costs_give_a_walk_of_single_steps_without_holds_or_jumps():
    k = walk(np.zeros((40, 25)))
    assert np.all(np.abs(np.diff(k)) == 1) and k.min() >= 0 and k.max() < 25


def test_a_still_target_sways_in_runs_instead_of_flickering():
    """What the greedy nearest-frame replay did with a near-still head: 5, 6, 5, 6, ... every frame."""
    n = 200
    costs = 0.1 * np.abs(np.arange(30)[None] - 5.0).repeat(n, 0)
    k = walk(costs)
    d = np.diff(k)
    turns = int(np.sum(d[1:] * d[:-1] < 0))
    assert np.all(np.abs(d) == 1) and turns <= n // 5 and np.abs(k - 5).max() <= 8


def test_it_jumps_only_when_staying_costs_more_than_the_jump():
    m, n = 100, 40
    target = np.where(np.arange(n) < 20, 10, 80)  # the head turns far away halfway
    near = np.abs(np.arange(m)[None] - target[:, None]).astype(float)
    k = walk(near, jump=6.0)
    assert int(np.sum(np.abs(np.diff(k)) > 1)) == 1
    assert abs(k[5] - 10) <= 3 and abs(k[-5] - 80) <= 3
    k = walk(0.001 * near, jump=6.0)  # being far is cheap: walking on beats the jump
    assert int(np.sum(np.abs(np.diff(k)) > 1)) == 0


def test_one_recorded_frame():
    assert np.array_equal(walk(np.zeros((7, 1))), np.zeros(7))

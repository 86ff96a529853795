"""The budgeted, resumable phase under every engine's training (train/loop.py), on a counter instead of a model."""

from __future__ import annotations

import csv

import pytest

from talkinghead.train.loop import PhaseRun, run_phase


def counting_phase(state: dict, calls: list, stop_at: int | None = None, minutes: float = 100.0) -> PhaseRun:
    def step_fn(step: int) -> dict:
        if step == stop_at:
            raise KeyboardInterrupt
        calls.append(step)
        state["w"] += 1
        return {"loss": 1.0 / (step + 1)}

    return PhaseRun("p", steps=25, seconds=None, step_fn=step_fn, state_fn=lambda: dict(state),
                    load_fn=state.update, validate_fn=lambda step: {"p_psnr": 20.0 + step},
                    checkpoint_minutes=minutes, log_every=10)


def rows(model_dir) -> list[dict]:
    with open(model_dir / "train_log.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_a_phase_runs_its_steps_logs_them_and_is_skipped_once_done(tmp_path):
    state, calls = {"w": 0}, []
    last = run_phase(tmp_path, counting_phase(state, calls))
    assert calls == list(range(25)) and state["w"] == 25 and 0 < last["loss"] < 1
    log = rows(tmp_path)
    assert [r["step"] for r in log] == ["10", "20", "25"]  # every log_every steps, and the end with validation
    assert log[-1]["p_psnr"] == "45.0" and not log[0]["p_psnr"]
    calls.clear()
    assert run_phase(tmp_path, counting_phase(state, calls)) == {"loss": 1.0 / 25}  # done: nothing runs again
    assert calls == []


def test_an_interrupted_phase_resumes_at_its_last_checkpoint_with_its_state(tmp_path):
    state, calls = {"w": 0}, []
    with pytest.raises(KeyboardInterrupt):
        run_phase(tmp_path, counting_phase(state, calls, stop_at=12, minutes=0.0))  # a checkpoint every step
    assert calls == list(range(12))
    state, calls = {"w": -100}, []
    run_phase(tmp_path, counting_phase(state, calls))
    assert calls == list(range(12, 25)) and state["w"] == 25  # the counter came back from the checkpoint

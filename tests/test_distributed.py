"""Data-parallel training (train/distributed.py): gloo on the CPU, two processes."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from talkinghead.engines import get_engine
from talkinghead.train.distributed import World, average_gradients, launch, same_everywhere, stop_together

from conftest import VISEME_TINY


def _collectives(out: str) -> None:
    import torch.distributed as dist

    from talkinghead.train.distributed import setup

    world, _ = setup("cpu")
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.full((3,), float(world.rank + 1))
    q = torch.nn.Parameter(torch.zeros(2))  # no gradient on any rank: left alone
    average_gradients([p, q], world)
    found = {"mean": p.grad.tolist(), "q": q.grad is None,
             "stop": [stop_together(world.rank == 1, world), stop_together(False, world)]}
    m = torch.nn.Linear(2, 2)
    torch.nn.init.constant_(m.weight, 1.0), torch.nn.init.constant_(m.bias, 0.5)
    found["same"] = same_everywhere({"m": m})
    with torch.no_grad():
        m.weight[0, 0] += world.rank  # rank 1 differs
    found["differ"] = not same_everywhere({"m": m})
    r = torch.nn.Parameter(torch.zeros(1))
    if world.rank == 0:
        r.grad = torch.ones(1)
    try:
        average_gradients([r], world)
        found["mismatch"] = "passed"
    except RuntimeError as e:
        found["mismatch"] = str(e)
    dist.barrier()
    torch.save(found, Path(out) / f"rank{world.rank}.pt")


def test_gradients_average_over_ranks_and_a_mismatch_is_an_error(tmp_path):
    launch(2, _collectives, str(tmp_path))
    for rank in (0, 1):
        f = torch.load(tmp_path / f"rank{rank}.pt")
        assert f["mean"] == [1.5, 1.5, 1.5] and f["q"]  # (1 + 2) / 2 on both ranks
        assert f["stop"] == [True, False]  # one rank done: all stop, on the same step
        assert f["same"] and f["differ"]
        assert "different parameters" in f["mismatch"]


def test_a_single_process_is_a_world_of_one(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    w = World.from_env()
    assert w.main and not w.active and stop_together(True, w)


def _torchrun_rank(out: str) -> None:
    """What one torchrun rank does: ``train`` with the world in the environment (here: no such subject)."""
    from talkinghead.errors import InputError
    from talkinghead.train.pipeline import train

    try:
        train(Path(out) / "missing", "viseme", Path(out) / "model", steps=1, device="cpu")
        said = "trained"
    except InputError as e:
        said = str(e)
    (Path(out) / f"said{os.environ['RANK']}.txt").write_text(said)


def test_under_torchrun_rank_0_checks_the_request_and_every_rank_gets_its_error(tmp_path):
    launch(2, _torchrun_rank, str(tmp_path))  # sets RANK / WORLD_SIZE / MASTER_* as torchrun does
    said = [(tmp_path / f"said{r}.txt").read_text() for r in (0, 1)]
    assert said[0] == said[1] and "missing" in said[0], said
    assert not (tmp_path / "model").exists()


def _train_cmd(subject, model, steps, settings=True):
    sets = sum([["--set", s] for s in VISEME_TINY + ["checkpoint_minutes=0.02"]], []) if settings else []
    return [sys.executable, "-m", "talkinghead", "train", str(subject), "--engine", "viseme", "-o", str(model),
            "--nproc", "2", "--steps", str(steps), "--device", "cpu", *sets]


def _log(model) -> list[dict]:
    with open(model / "train_log.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_two_processes_train_write_once_and_resume_after_a_kill(speaker_subject, tmp_path):
    model = tmp_path / "model"
    env = {**os.environ, "TALKINGHEAD_QUIET": "1"}
    proc = subprocess.Popen(_train_cmd(speaker_subject, model, 400), env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpt = model / "checkpoint_renderer.pt"
    t0 = time.time()
    while not ckpt.exists() and proc.poll() is None and time.time() - t0 < 240:
        time.sleep(0.2)
    assert ckpt.exists(), proc.communicate()[1][-2000:]
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both ranks, mid-phase
    proc.wait()
    assert not (model / "weights.pt").exists()
    before = [int(r["step"]) for r in _log(model) if r["phase"] == "renderer"]
    assert before and len(before) == len(set(before))  # rank 0 alone logs: each row once, not once per rank
    killed_at = before[-1]

    loud = {k: v for k, v in env.items() if k != "TALKINGHEAD_QUIET"}  # its info lines
    done = subprocess.run(_train_cmd(speaker_subject, model, 400, settings=False), env=loud, capture_output=True,
                          text=True, timeout=600)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said[-2000:]
    assert "resuming" in said and "2 ranks hold the same weights" in said, said[-2000:]
    files = sorted(p.name for p in model.iterdir())
    assert files.count("weights.pt") == 1 and not [f for f in files if "rank" in f]
    rows = [r for r in _log(model) if r["phase"] == "renderer"]
    steps = [int(r["step"]) for r in rows]
    c = get_engine("viseme").Config()
    planned = round(400 * (1 - c.motion_share) * (1 - c.oracle_fraction))  # the renderer's share of the steps
    assert steps[-1] == planned and max(steps) == planned
    after = [s for s in steps if s > killed_at]
    assert after and len(after) == len(set(after))
    l1 = [float(r["l1"]) for r in rows if r.get("l1")]
    assert l1[-1] < 0.7 * l1[0], (l1[0], l1[-1])

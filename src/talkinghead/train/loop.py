"""A budgeted, resumable training phase: the loop under ``Trainer`` (``trainer.py``).

``run_phase`` calls ``step_fn(step)`` until the phase's step or time budget
is spent, showing a progress bar with the running losses and an ETA. Every
``checkpoint_minutes`` it saves ``checkpoint_<phase>.pt`` atomically (so a
killed run resumes there), runs the validation (a PSNR line and a preview
image) and appends to ``train_log.csv``.
"""

from __future__ import annotations

import csv
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..progress import bar, info
from ..utils import atomic_path


@dataclass
class PhaseRun:
    name: str
    steps: int | None  # None: time budget only
    seconds: float | None  # None: step budget only
    step_fn: Callable[[int], dict[str, float]]
    state_fn: Callable[[], dict]  # what to checkpoint (state_dicts)
    load_fn: Callable[[dict], None]
    validate_fn: Callable[[int], dict[str, float]] | None = None
    checkpoint_minutes: float = 3.0
    log_every: int = 10
    extra: dict = field(default_factory=dict)
    writer: bool = True  # False on every rank but the first of a data-parallel run: it writes nothing
    stop_fn: Callable[[bool], bool] = lambda done: done  # every rank's verdict → the one they all follow
    start_fn: Callable[[int], None] | None = None  # called with the first step, after a resume


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_checkpoint(path: Path, payload: dict) -> None:
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)


def run_phase(model_dir: Path, phase: PhaseRun) -> dict:
    """Run (or resume, or skip if finished) one phase; returns its last losses."""
    model_dir = Path(model_dir)
    ckpt_path = model_dir / f"checkpoint_{phase.name}.pt"
    step, elapsed, done = _resume(ckpt_path, phase)
    if done is not None:
        return done
    if phase.start_fn:
        phase.start_fn(step)
    log = model_dir / "train_log.csv"
    b = _progress(phase, step, elapsed)
    losses: dict[str, float] = {}
    running: dict[str, float] = {}
    last_ckpt = time.perf_counter()
    t0 = time.perf_counter() - elapsed

    def checkpoint(done: bool) -> None:
        if not phase.writer:
            return
        payload = {"step": step, "elapsed": time.perf_counter() - t0, "state": phase.state_fn(),
                   "rng": _rng_state(), "done": done, "losses": losses}
        save_checkpoint(ckpt_path, payload)

    def finished() -> bool:
        spent = phase.steps is not None and step >= phase.steps
        return phase.stop_fn(spent or phase.seconds is not None and time.perf_counter() - t0 >= phase.seconds)

    try:
        while not finished():
            t_step = time.perf_counter()
            losses = phase.step_fn(step)
            step += 1
            for k, v in losses.items():
                running[k] = v if k not in running else 0.9 * running[k] + 0.1 * v
            b.set_postfix({"step": step, **{k: f"{v:.3g}" for k, v in list(running.items())[:4]}}, refresh=False)
            # a time budget's last step overshoots it a little: never push the bar past its total
            b.update(min(time.perf_counter() - t_step, max(0.0, b.total - b.n)) if phase.steps is None else 1)
            row = _row(phase, step, t0, running) if step % phase.log_every == 0 and phase.writer else None
            if phase.writer and time.perf_counter() - last_ckpt >= phase.checkpoint_minutes * 60:
                checkpoint(False)
                last_ckpt = time.perf_counter()
                row = row or _row(phase, step, t0)
                if phase.validate_fn:
                    val, said = _validate(phase, step)
                    row.update(val)
                    b.write(f"{phase.name} step {step}: {said}")
            if row:
                _append_csv(log, row)
    finally:
        b.close()
    checkpoint(True)
    if not phase.writer:
        return running
    row = _row(phase, step, t0, running)
    if phase.validate_fn:
        val, said = _validate(phase, step)
        row.update(val)
        info(f"{phase.name} done, {step} steps: {said}")
    _append_csv(log, row)
    return running


def _resume(ckpt_path: Path, phase: PhaseRun) -> tuple[int, float, dict | None]:
    """(step, seconds spent, the losses of a finished phase or None) from the phase's checkpoint, its state
    and random generators restored; (0, 0.0, None) without one."""
    if not ckpt_path.exists():
        return 0, 0.0, None
    ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    phase.load_fn(ck["state"])
    if ck.get("done"):
        info(f"{phase.name}: already trained ({ck['step']} steps), skipping")
        return ck["step"], ck.get("elapsed", 0.0), ck.get("losses", {})
    _set_rng(ck["rng"])
    info(f"{phase.name}: resuming at step {ck['step']} ({ck['elapsed'] / 60:.1f} min done)")
    return ck["step"], ck["elapsed"], None


def _progress(phase: PhaseRun, step: int, elapsed: float):
    """The phase's progress bar: seconds of a time budget, or steps."""
    by_time = phase.steps is None
    total = phase.seconds if by_time else phase.steps
    return bar(total, phase.name, unit="s" if by_time else "step", initial=min(elapsed, total) if by_time else step,
               bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]" if by_time else None)


def _row(phase: PhaseRun, step: int, t0: float, running: dict | None = None) -> dict:
    """A ``train_log.csv`` row: the phase, step, seconds so far and the running losses."""
    return {"phase": phase.name, "step": step, "seconds": round(time.perf_counter() - t0, 2),
            **{k: round(v, 5) for k, v in (running or {}).items()}}


def _validate(phase: PhaseRun, step: int) -> tuple[dict, str]:
    """The phase's validation at ``step`` and its one-line summary."""
    val = phase.validate_fn(step)
    return val, ", ".join(f"{k} {v:.2f}" for k, v in val.items())


def _append_csv(path: Path, row: dict) -> None:
    """Append a row; the header grows when new columns appear (rewritten whole)."""
    rows = []
    if path.exists():
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    rows.append({k: str(v) for k, v in row.items()})
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    with atomic_path(path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=cols, restval="")
            w.writeheader()
            w.writerows(rows)

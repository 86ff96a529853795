"""``talkinghead train``: subject directory → model directory, resumable (the loop is ``trainer.py``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from ..engines import Budget, get_engine, resolve_device
from ..errors import InputError
from ..progress import info
from ..subject import Subject
from ..outputs import output_dir
from .distributed import World, from_main, launch, setup
from .trainer import Trainer


def parse_overrides(config_cls, pairs: list[str]):
    """``key=value`` strings → a config instance (values parsed as JSON when possible)."""
    known = {f.name: f for f in fields(config_cls)}
    kw = {}
    for p in pairs or []:
        if "=" not in p:
            raise InputError(f"--set expects key=value, got {p!r}")
        k, v = p.split("=", 1)
        if k not in known:
            raise InputError(f"unknown setting {k!r}; known: {', '.join(known)}")
        try:
            kw[k] = json.loads(v)
        except json.JSONDecodeError:
            kw[k] = v
    try:
        return config_cls(**kw)
    except ValueError as e:  # a config's own check of a value
        raise InputError(f"--set: {e}") from None


def default_model_dir(subject_dir: str | Path, engine: str) -> Path:
    """Where ``train`` writes without ``-o``: ``SUBJECT_<engine>`` beside the subject."""
    p = Path(subject_dir)
    return p.with_name(f"{p.name}_{engine}")


@dataclass
class TrainJob:
    """What ``train`` decided before any training: the engine, its settings, the budget, where it writes."""
    engine: str
    subject: Path
    model_dir: Path
    config: object | None  # None: already trained, nothing to do
    budget: Budget
    device: str


def train(subject_dir: str | Path, engine: str, model_dir: str | Path | None = None,
          minutes: float | None = None, steps: int | None = None, device: str = "auto",
          overrides: list[str] | None = None, force: bool = False, nproc: int = 1) -> Path:
    """Train (or resume) ``engine`` on a subject. ``nproc`` > 1: that many data-parallel processes on this
    machine (one per GPU on CUDA); under torchrun every rank calls this and rank 0 decides."""
    world = World.from_env()
    if nproc < 1:
        raise InputError("--nproc must be at least 1")
    if nproc > 1 and world.active:
        raise InputError("--nproc starts its own processes; under torchrun leave it out")
    if world.active:
        world, _ = setup(resolve_device(device))
        job = from_main(_plan_or_error(subject_dir, engine, model_dir, minutes, steps, device, overrides, force)
                        if world.main else None, world)
        if isinstance(job, Exception):
            raise job
    else:
        job = plan(subject_dir, engine, model_dir, minutes, steps, device, overrides, force)
    if job.config is None:
        return job.model_dir
    if nproc > 1:
        if job.device.startswith("cuda") and nproc > torch.cuda.device_count():
            raise InputError(f"--nproc {nproc} needs as many GPUs; this machine has {torch.cuda.device_count()}")
        launch(nproc, run_job, job)
    else:
        run_job(job)
    return job.model_dir


def run_job(job: TrainJob) -> None:
    """Train a planned job in this process (one rank of a data-parallel world, or alone)."""
    world, dev = setup(job.device)
    if world.main:
        where = f"{dev}, {world.size} processes" if world.active else dev
        info(f"training {job.engine} on {job.subject} on {where} -> {job.model_dir}")
    Trainer(get_engine(job.engine), Subject.open(job.subject), job.config, job.budget, dev, job.model_dir,
            world).run()


def _plan_or_error(*args) -> TrainJob | Exception:
    try:
        return plan(*args)
    except (InputError, OSError) as e:  # every rank raises it (none waits for a plan that never comes)
        return e


def plan(subject_dir, engine, model_dir, minutes, steps, device, overrides, force) -> TrainJob:
    """Check everything and open the model directory (fresh, forced afresh, or to resume)."""
    subject = Subject.open(subject_dir)
    cls = get_engine(engine)
    if minutes is not None and minutes <= 0 or steps is not None and steps <= 0:
        raise InputError("--minutes and --steps must be positive")
    config = parse_overrides(cls.Config, overrides)  # bad settings fail before anything is written
    model_dir = Path(model_dir) if model_dir else default_model_dir(subject.path, engine)
    model_dir, ours = output_dir(model_dir, ("model.json",), force, "train")
    model_dir.mkdir(exist_ok=True)
    meta_path = model_dir / "model.json"
    if ours and force:
        info(f"{model_dir}: --force, training afresh")
        clear_model(model_dir)
    job = TrainJob(engine, subject.path, model_dir, config, Budget(steps=steps, minutes=minutes), resolve_device(device))
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("engine") != engine:
            raise InputError(f"{model_dir} holds a {meta.get('engine')!r} model; choose another -o for {engine!r}")
        if meta.get("subject", {}).get("key") != subject.meta["key"]:
            raise InputError(f"{model_dir} was trained on another subject; choose another -o")
        if meta.get("status") == "trained":
            info(f"{model_dir}: already trained; pass --force to train it again")
            job.config = None
            return job
        if overrides:
            raise InputError(f"{model_dir}: resuming keeps the settings it started with; drop --set")
        job.config = cls.Config.saved(meta["config"])
        info(f"{model_dir}: resuming")
    return job


def train_motion(subject_dir: str | Path, model_dir: str | Path, minutes: float | None = None,
                 steps: int | None = None, device: str = "auto", seed: int = 0, force: bool = False) -> Path:
    """Only the motion learners of a subject → ``MODEL/motion.pt`` (a model directory of that subject, or a
    new one). Trains from scratch and replaces an earlier ``motion.pt`` only when done."""
    from ..engines.base import EngineConfig
    from .trainer import split_indices

    subject = Subject.open(subject_dir)
    if minutes is not None and minutes <= 0 or steps is not None and steps <= 0:
        raise InputError("--minutes and --steps must be positive")
    model_dir = Path(model_dir)
    model_dir, _ = output_dir(model_dir, ("model.json", "motion.pt"), force, "train-motion")
    model_dir.mkdir(exist_ok=True)
    meta_path = model_dir / "model.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("subject", {}).get("key") != subject.meta["key"]:
            raise InputError(f"{model_dir} was trained on another subject; choose another -o")
    for old in model_dir.glob("checkpoint_motion_*.pt"):  # start afresh, not from an earlier run's end
        old.unlink()
    cfg = EngineConfig(seed=seed)
    dev = resolve_device(device)
    info(f"training the motion learners on {subject.path} ({subject.n_frames} frames) on {dev} -> {model_dir}")
    budget = Budget(steps=steps, minutes=3.0 if minutes is None and steps is None else minutes)
    train_idx, val_idx = split_indices(subject, cfg.val_frames)
    Trainer(None, subject, cfg, budget, dev, model_dir).fit_motion(train_idx, val_idx)
    return model_dir / "motion.pt"


def clear_model(model_dir: Path) -> None:
    """Remove what ``train`` wrote in ``model_dir`` (the files the model directory layout names, and its
    evaluate reports), nothing else."""
    import shutil

    from ..evaluate.report import REPORT_MARKERS

    for pattern in ("model.json", "weights.pt", "checkpoint_*.pt", "train_log.csv", "motion.pt"):
        for p in model_dir.glob(pattern):
            p.unlink()
    for d in [model_dir / "previews", *model_dir.glob("eval_*")]:
        if d.is_dir() and (d.name == "previews" or any((d / m).exists() for m in REPORT_MARKERS)):
            shutil.rmtree(d)


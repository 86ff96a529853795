"""The one training loop of every engine (nerfstudio's Trainer beside the engines' ``TrainModel``).

``Trainer.run`` owns what does not differ between methods:

* seeding (python, numpy, torch) before the engine builds anything;
* the split: the subject's train frames, and ``val_frames`` evenly spaced held-out
  frames (the last tenth of train when the subject has no validation split);
* ``model.json`` (status ``training``, then ``trained``) and ``weights.pt`` (written last,
  atomically, from the engine's ``export``);
* the budget: each phase gets its ``share`` of the steps or minutes;
* optimisers (Adam over the engine's parameter groups, learning rates scaled by its
  ``lr_scale``), the loss: per optimiser the sum of its loss dict, in one place;
* an exponential moving average of the modules the engine names, used for
  validation and export;
* checkpoints and resume (``loop.run_phase``), validation PSNR over the frame and the
  mouth box (``metrics.validate_frames``) and a preview image (real | rendered | extras);
* data parallelism (``distributed.py``): gradients averaged over the ranks, rank 0 the only writer.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from pathlib import Path

import cv2
import numpy as np
import torch

from ..engines.base import TrainModel
from ..engines.modeldir import write_meta
from ..engines.types import Budget, Phase
from ..errors import InputError
from ..metrics import validate_frames
from ..subject import Subject
from ..progress import info
from ..utils import atomic_path
from .distributed import World, average_gradients, broadcast_modules, same_everywhere, stop_together
from .loop import PhaseRun, run_phase


def split_indices(subject: Subject, val_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(train frames, ``val_frames`` evenly spaced held-out frames)."""
    train_idx, val_idx = subject.split("train"), subject.split("val")
    if len(val_idx) == 0:
        val_idx = train_idx[-max(1, len(train_idx) // 10):]
    pick = np.linspace(0, len(val_idx) - 1, min(val_frames, len(val_idx))).astype(int)
    return train_idx, val_idx[pick]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    def __init__(self, engine_cls, subject: Subject, config, budget: Budget, device: str, model_dir: Path,
                 world: World = World()):
        """``engine_cls`` None: a trainer for the motion learners alone (``fit_motion``). ``world``: this
        process's rank among data-parallel ones (``distributed.setup``)."""
        self.engine_cls, self.subject, self.budget, self.device = engine_cls, subject, budget, device
        self.model_dir, self.world = Path(model_dir), world
        self.config = engine_cls.resolve_config(config, subject, device) if engine_cls else config

    @property
    def seed(self) -> int:
        """This rank's seed: its own batches (rank 0's weights are broadcast, so all start alike)."""
        return self.config.seed + 7919 * self.world.rank

    # ---- the run -------------------------------------------------------------------------------
    def run(self) -> None:
        cfg, name, main = self.config, self.engine_cls.name, self.world.main
        seed_everything(self.seed)
        if main:
            write_meta(self.model_dir, name, cfg, self.subject, status="training", budget=self.budget.__dict__)
        train_idx, val_idx = split_indices(self.subject, cfg.val_frames)
        share, first = cfg.motion_share, self.engine_cls.learns_from_motion
        if first and share <= 0:
            raise InputError(f"the {name} engine learns from the motion learners: motion_share must be above 0")
        kw = {"motion": self.fit_motion(train_idx, val_idx, share)} if first else {}
        seed_everything(self.seed)
        ranked = dataclasses.replace(cfg, seed=self.seed) if self.world.active else cfg
        self.fit(self.engine_cls.trainable(self.subject, ranked, self.device, train_idx, val_idx, **kw), 1 - share)
        if main:
            with atomic_path(self.model_dir / "weights.pt", suffix=".pt") as tmp:
                torch.save(self.model.export(self.eval_modules()), tmp)
        if share > 0 and not first:
            self.fit_motion(train_idx, val_idx, share)
        if main:
            write_meta(self.model_dir, name, cfg, self.subject, status="trained", budget=self.budget.__dict__)

    def fit(self, model: TrainModel, share: float = 1.0) -> None:
        """Every phase of ``model`` with its share of ``share`` of the budget."""
        self.model = model
        self.optimisers = {k: self._adam(groups) for k, groups in model.param_groups().items()}
        modules = model.modules()
        if self.world.active:
            broadcast_modules(modules)
        self.ema = {k: copy.deepcopy(modules[k]).requires_grad_(False) for k in model.ema}
        for phase in model.phases():
            if phase.share > 0:
                run_phase(self.model_dir, self._phase_run(phase, share))
        if self.world.active:
            if not same_everywhere(self.eval_modules()):
                raise RuntimeError("data-parallel ranks ended with different weights")
            if self.world.main:
                info(f"{self.world.size} ranks hold the same weights")

    def fit_motion(self, train_idx, val_idx, share: float = 1.0):
        """The motion learners (``train/motion.py``) on ``share`` of the budget, saved as ``motion.pt``;
        returns the trained ``MotionModel`` (in eval mode)."""
        from ..motion import MotionConfig
        from .motion import MotionTrainModel

        seed_everything(self.seed)
        m = MotionTrainModel(self.subject, MotionConfig(), train_idx, val_idx, self.seed)
        self.fit(m, share)
        if self.world.main:
            m.model.save(self.model_dir, self.subject.meta["key"])
        return m.model.eval()

    def _phase_run(self, phase: Phase, share: float = 1.0) -> PhaseRun:
        b, share, w = self.budget, phase.share * share, self.world
        ranked = {} if not w.active else {
            "writer": w.main, "stop_fn": lambda done: stop_together(done, w),
            # a resumed rank restored rank 0's random state: its own again, new at every resume
            "start_fn": lambda step: seed_everything(self.seed + 104729 * step)}
        return PhaseRun(
            name=phase.name,
            steps=None if b.steps is None else max(1, int(round(b.steps * share))),
            seconds=None if b.minutes is None else b.minutes * 60 * share,
            step_fn=lambda step: self.step(phase, step), state_fn=self.state, load_fn=self.load_state,
            validate_fn=lambda step: self.validate(phase, step),
            checkpoint_minutes=self.config.checkpoint_minutes, **ranked)

    @staticmethod
    def _adam(groups: list[dict]) -> torch.optim.Adam:
        groups = [{**g, "base_lr": g["lr"]} for g in groups]
        return torch.optim.Adam(groups)

    # ---- one step: the loss of each optimiser, summed here -------------------------------------
    def step(self, phase: Phase, step: int) -> dict[str, float]:
        scale = self.model.lr_scale(phase.name, step)
        batch = phase.batch(step)
        logs: dict[str, float] = {}
        for opt_name, loss_dict in phase.losses.items():
            opt = self.optimisers[opt_name]
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * scale
            terms = loss_dict(batch, step)
            if not terms:
                continue
            total = sum(terms.values())
            opt.zero_grad(set_to_none=True)
            total.backward()
            if self.world.active:
                average_gradients([p for g in opt.param_groups for p in g["params"]], self.world)
            opt.step()
            logs.update({k: float(v.detach()) for k, v in terms.items()})
        self._update_ema()
        return logs

    @torch.no_grad()
    def _update_ema(self) -> None:
        modules = self.model.modules()
        for name, avg in self.ema.items():
            d = self.model.ema[name]
            for pe, p in zip(avg.parameters(), modules[name].parameters()):
                pe.mul_(d).add_(p.detach(), alpha=1 - d)
            for be, b in zip(avg.buffers(), modules[name].buffers()):
                be.copy_(b)

    def eval_modules(self) -> dict:
        """The modules validation and export use: the averaged copies where there are any."""
        return {**self.model.modules(), **self.ema}

    # ---- checkpoints ---------------------------------------------------------------------------
    def state(self) -> dict:
        return {"modules": {k: m.state_dict() for k, m in self.model.modules().items()},
                "ema": {k: m.state_dict() for k, m in self.ema.items()},
                "opt": {k: o.state_dict() for k, o in self.optimisers.items()}}

    def load_state(self, s: dict) -> None:
        if "modules" not in s:
            raise InputError(f"{self.model_dir}: its checkpoints come from an older talkinghead; "
                             "delete the model directory (or choose another -o) to train again")
        for k, m in self.model.modules().items():
            m.load_state_dict(s["modules"][k])
        for k, m in self.ema.items():
            m.load_state_dict(s["ema"][k])
        for k, o in self.optimisers.items():
            o.load_state_dict(s["opt"][k])

    # ---- validation ----------------------------------------------------------------------------
    def validate(self, phase: Phase, step: int) -> dict[str, float]:
        modules = self.eval_modules()
        was = {k: m.training for k, m in modules.items()}
        for m in modules.values():
            m.eval()
        try:
            with torch.no_grad():
                v = self.model.validation(phase.name, modules)
        finally:
            for k, m in modules.items():
                m.train(was[k])
        tag = phase.tag or phase.name
        found = dict(v.metrics)
        if v.pred is not None:
            rows = [np.concatenate([r, p, *(e[i] for e in v.extra)], axis=1)
                    for i, (r, p) in enumerate(zip(v.real[:2], v.pred[:2]))]
            out = self.model_dir / "previews"
            out.mkdir(exist_ok=True)
            with atomic_path(out / f"{tag}_{step:06d}.png") as tmp:
                cv2.imwrite(str(tmp), np.concatenate(rows, axis=0)[..., ::-1])
            found.update(validate_frames(v.pred, v.real, v.boxes))
        return {f"{tag}_{k}": float(val) for k, val in found.items()}

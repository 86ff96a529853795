"""The motion learners as phases of the shared trainer: every engine's ``train`` ends with them,
``train-motion`` runs them alone. Held-out metrics per phase: the expression learner's aperture r and
LMD before any rendering; the head learner's motion statistics (``motion/metrics.py``)."""

from __future__ import annotations

import numpy as np
import torch

from ..engines.base import TrainModel
from ..engines.types import Phase, Validation
from ..motion import MotionConfig, MotionData, MotionModel
from ..motion.metrics import expression_metrics, head_metrics
from ..subject import Subject

__all__ = ["MotionTrainModel"]


class MotionTrainModel(TrainModel):
    def __init__(self, subject: Subject, cfg: MotionConfig, train_idx, val_idx, seed: int = 0):
        self.subject, self.cfg = subject, cfg
        self.train_idx = np.asarray(train_idx)
        held = subject.split("val")
        self.held_out = held if len(held) >= 2 * cfg.head.chunk else np.asarray(val_idx)
        self.rng = np.random.default_rng(seed)
        self.data = MotionData(subject, cfg.audio, self.train_idx, seed=seed, voices=cfg.voices,
                               silences=cfg.silences)
        self.model = MotionModel(cfg)
        self.model.fit_stats(subject, self.train_idx, self.data.windows, self.data.poses)
        self.codes = torch.from_numpy(self.model.expression.pca.encode(subject.tracks["canon_landmarks"]))
        ap = subject.tracks["aperture"][self.train_idx]
        self.rest = self.codes[self.train_idx][torch.from_numpy(ap <= np.percentile(ap, 10))].mean(0)

    def modules(self) -> dict:
        return {"motion": self.model}

    def param_groups(self) -> dict:
        m, c = self.model, self.cfg
        return {"expression": [{"params": list(m.expression.parameters()), "lr": c.expression.lr}],
                "head": [{"params": list(m.head.gen.parameters()), "lr": c.head.lr, "betas": (0.5, 0.999)}],
                "head_disc": [{"params": list(m.head.disc.parameters()), "lr": c.head.lr, "betas": (0.5, 0.999)}]}

    def phases(self) -> list[Phase]:
        m, c = self.model, self.cfg
        return [Phase("motion_expression", c.expression_share,
                      lambda step: self.data.expression_batch(m.expression, self.codes, self.rng, c.noise_share,
                                                                         c.voice_share, c.silence_share, self.rest),
                      {"expression": lambda b, step: m.expression.member_losses(b["w"], b["y"])}),
                Phase("motion_head", 1 - c.expression_share,
                      lambda step: self.data.head_batch(c.head, self.rng, c.noise_share),
                      {"head": lambda b, step: m.head.gen_losses(b), "head_disc": lambda b, step: m.head.disc_losses(b)})]

    def validation(self, phase: str, modules: dict) -> Validation:
        m: MotionModel = modules["motion"]
        if phase == "motion_expression":
            return Validation(metrics=expression_metrics(m, self.subject, self.held_out))
        return Validation(metrics=head_metrics(m, self.subject, self.held_out, self.train_idx))

    def export(self, modules: dict) -> dict:
        return {}

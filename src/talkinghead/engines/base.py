"""The engine interface: every engine trains from a subject and renders from a ``Drive``.

An engine is a class with a ``name``, a ``Config`` dataclass (defaults work),
and three methods::

    Engine.train(subject, model_dir, config, budget, device)   # resumable
    engine = Engine.load(model_dir, device)
    for frame in engine.render(drive): ...                     # subject-size RGB frames

The shared stages do the rest: ``train`` parses budgets and writes the model
directory's metadata, ``say`` turns audio/text into a ``Drive`` (audio
features, replayed poses, blinks) and encodes video, ``evaluate`` builds a
``Drive`` from held-out frames and compares.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator

import numpy as np

from ..subject import Subject


@dataclass
class Drive:
    """Per-output-frame driving signals, all of length N.

    ``pose_index[k]`` is the subject frame whose head pose, upper face,
    torso and background output frame k takes (the training track replayed,
    or one frame held for a still pose). ``eye`` overrides eye openness.
    """

    fps: float
    visemes: np.ndarray  # (N, 15) soft visemes
    mel_windows: np.ndarray  # (N, 16, 80) log-mel windows
    pose_index: np.ndarray  # (N,) int
    eye: np.ndarray  # (N, 2) eye area ratio (right, left)
    audio: np.ndarray | None = None  # 16 kHz mono, for muxing
    rotation: np.ndarray | None = None  # (N, 3, 3) user head pose (engines that can render any pose)
    translation: np.ndarray | None = None  # (N, 3) cm, with ``rotation``

    def __post_init__(self):
        n = len(self.visemes)
        for name in ("mel_windows", "pose_index", "eye"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Drive.{name} has {len(getattr(self, name))} frames, visemes {n}")

    def __len__(self) -> int:
        return len(self.visemes)


@dataclass
class Budget:
    """Stop training after ``steps`` or ``minutes``, whichever comes first."""

    steps: int | None = None
    minutes: float | None = None

    def __post_init__(self):
        if self.steps is None and self.minutes is None:
            self.minutes = 10.0


class Engine(ABC):
    name: ClassVar[str]
    Config: ClassVar[type]

    def __init__(self, model_dir: Path, subject: Subject, device: str):
        self.model_dir, self.subject, self.device = Path(model_dir), subject, device

    @classmethod
    @abstractmethod
    def train(cls, subject: Subject, model_dir: Path, config, budget: Budget, device: str) -> None:
        """Train (or resume) into ``model_dir``; must leave ``weights.pt`` when done."""

    @classmethod
    @abstractmethod
    def load(cls, model_dir: Path, subject: Subject, device: str) -> "Engine":
        ...

    @abstractmethod
    def render(self, drive: Drive, batch_size: int = 8) -> Iterator[np.ndarray]:
        """Yield one RGB uint8 frame of the subject's size per drive frame."""

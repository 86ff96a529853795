"""The plain types the engine interface speaks in: a ``Drive`` to render, a training ``Budget``, and what a
``TrainModel`` hands the trainer (its ``Phase``s and ``Validation``s). Data only (a ``Drive`` slices and joins
itself); they import nothing of the package, so every module can use them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, ClassVar, Iterator

import numpy as np

__all__ = ["Budget", "Drive", "LossDict", "Phase", "Validation"]


@dataclass
class Drive:
    """Per-output-frame driving signals, all of length N (a whole utterance or one chunk of it).

    ``pose_index[k]`` is the subject frame whose head pose, upper face, torso
    and background output frame k takes (the training track replayed, or one
    frame held for a still pose). ``eye`` is the eye openness to render.
    ``visemes`` / ``mel_windows`` are None when the engine does not need them.
    """

    fps: float
    visemes: np.ndarray | None  # (N, 15) soft visemes
    mel_windows: np.ndarray | None  # (N, 16, 80) log-mel windows
    pose_index: np.ndarray  # (N,) int
    eye: np.ndarray  # (N, 2) eye area ratio (right, left)
    audio: np.ndarray | None = None  # 16 kHz mono, for muxing (whole drives only)
    rotation: np.ndarray | None = None  # (N, 3, 3) user head pose (engines with free_pose)
    translation: np.ndarray | None = None  # (N, 3) cm, with ``rotation``
    background: np.ndarray | None = None  # (S, S, 3) uint8 plate to render over (engines with background_swap)
    mel_stats: tuple | None = None  # per-band (mean, std) of the utterance's log-mel (a stream: so far)
    mouth: np.ndarray | None = None  # (N, 61, 2) pose-free mouth + jaw from the expression learner (--lips audio)

    ROWS: ClassVar[tuple[str, ...]] = ("visemes", "mel_windows", "pose_index", "eye", "rotation", "translation",
                                       "mouth")

    def __post_init__(self):
        n = len(self.pose_index)
        for name in self.ROWS:
            v = getattr(self, name)
            if v is not None and len(v) != n:
                raise ValueError(f"Drive.{name} has {len(v)} frames, pose_index {n}")

    def __len__(self) -> int:
        return len(self.pose_index)

    def rows(self, a: int, b: int) -> "Drive":
        """Frames ``a .. b-1`` (no audio: chunks are for rendering)."""
        return replace(self, audio=None, **{k: None if getattr(self, k) is None else getattr(self, k)[a:b]
                                            for k in self.ROWS})

    def chunks(self, n: int) -> Iterator["Drive"]:
        for a in range(0, len(self), max(1, n)):
            yield self.rows(a, min(len(self), a + n))

    @staticmethod
    def concat(parts: list["Drive"]) -> "Drive":
        def cat(k):
            vs = [getattr(p, k) for p in parts]
            return None if vs[0] is None else np.concatenate(vs)
        return replace(parts[-1], audio=None, **{k: cat(k) for k in Drive.ROWS})


@dataclass
class Budget:
    """Stop training after ``steps`` or ``minutes``, whichever comes first."""

    steps: int | None = None
    minutes: float | None = None

    def __post_init__(self):
        if self.steps is None and self.minutes is None:
            self.minutes = 10.0


LossDict = Callable[[dict, int], dict]  # (batch, step) -> {name: weighted loss tensor}


@dataclass
class Phase:
    """One training phase: a share of the budget, a batch per step, and per optimiser a loss dict.

    Every step the trainer builds ``batch(step)``; then for each ``(optimiser, loss_dict)`` in order
    it sums the returned terms, back-propagates and steps that optimiser (an empty dict skips it,
    e.g. a discriminator before it joins). ``tag`` names the phase's validation columns and previews.
    """

    name: str
    share: float
    batch: Callable[[int], dict]
    losses: dict[str, LossDict]
    tag: str | None = None


@dataclass
class Validation:
    """Held-out frames to compare: uint8 (N, H, W, 3) ``pred`` and ``real``, mouth ``boxes`` (N, 4)
    x0, y0, x1, y1 in their pixels, and optional extra preview panels (N, H, W, 3); and/or ``metrics``
    a phase measures itself (a phase that renders no image leaves ``pred`` None)."""

    pred: np.ndarray | None = None
    real: np.ndarray | None = None
    boxes: np.ndarray | None = None
    extra: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)

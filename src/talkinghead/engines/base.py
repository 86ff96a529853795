"""The engine interface: what an engine declares, trains and renders; the shared stages do the rest.

An engine is a class with a ``name``, a ``Config`` dataclass (defaults work), its
abilities as class attributes, and three things to supply::

    model = Engine.trainable(subject, config, device, train_idx, val_idx)  # a TrainModel
    engine = Engine.load(model_dir, subject, device)
    frames = engine.render_batch(rows, ks, prepared)                      # a few frames

``train/trainer.py`` runs a ``TrainModel`` (seeding, split, budget shares,
optimisers, checkpoints, resume, EMA, validation, previews, export);
``drive/`` turns speech into a ``Drive`` checked against the engine's
abilities; ``engines/session.py`` renders a drive that arrives in chunks, with
the engine's declared look-ahead. ``say``, ``evaluate`` and ``serve`` all render
through that one session. The plain types (``Drive``, ``Phase``, ...) live in ``types.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator

import numpy as np

from ..subject import Subject
from .session import RenderSession, render_drive
from .types import Budget, Drive, Phase, Validation

__all__ = ["ABILITIES", "Budget", "Drive", "Engine", "EngineConfig", "Phase", "TrainModel", "Validation"]


@dataclass
class EngineConfig:
    """Settings every engine has (its own ``Config`` extends this); the trainer reads them."""

    seed: int = 0
    val_frames: int = 8  # held-out frames compared at each checkpoint
    checkpoint_minutes: float = 3.0
    motion_share: float = 0.1  # of the budget: the motion learners (motion.pt), trained after the engine
    lr_half_steps: int = 3000  # every learning rate halves every this many steps (``TrainModel.lr_scale``)
    # Settings added after models were saved without them: the values those models were built with.
    LEGACY: ClassVar[dict] = {}

    @classmethod
    def saved(cls, d: dict) -> "EngineConfig":
        """The config a model or an unfinished run saved (``LEGACY`` fills settings it predates; settings
        since retired are dropped)."""
        from dataclasses import fields

        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in {**cls.LEGACY, **d}.items() if k in known})


class TrainModel(ABC):
    """What an engine gives the shared trainer (nerfstudio's Model): the trainer does the rest.

    ``ema`` maps module names to the decay of an exponential moving average the trainer keeps;
    validation and export then see the averaged copies.
    """

    ema: dict[str, float] = {}
    cfg: EngineConfig  # its settings (the motion learners': a ``MotionConfig``, with its own ``lr_half_steps``)

    @abstractmethod
    def modules(self) -> dict:
        """``{name: nn.Module}``: everything trained (checkpointed and averaged by name)."""

    @abstractmethod
    def param_groups(self) -> dict[str, list[dict]]:
        """``{optimiser: [Adam param group, ...]}``; a group may set ``lr``, ``betas``, ``eps``."""

    @abstractmethod
    def phases(self) -> list[Phase]:
        ...

    def lr_scale(self, phase: str, step: int) -> float:
        """Factor on every group's initial learning rate at ``step`` of ``phase``: halved every
        ``cfg.lr_half_steps`` steps (a model with another schedule overrides this)."""
        return 0.5 ** (step / self.cfg.lr_half_steps)

    @abstractmethod
    def validation(self, phase: str, modules: dict) -> Validation:
        """Render the held-out frames with ``modules`` (averaged where the trainer keeps an EMA)."""

    @abstractmethod
    def export(self, modules: dict) -> dict:
        """The payload of ``weights.pt``: whatever ``Engine.load`` needs (no subject frames)."""


ABILITIES = {
    "free_pose": "render any head pose (--pose FILE)",
    "background_swap": "swap the background (--background)",
    "eye_control": "set eye openness (--eye, blinks)",
    "landmark_lips": "render the mouth from the expression learner's landmarks (--lips audio)",
}


class Engine(ABC):
    """A trained model that renders frames of one subject. See the module docstring."""

    name: ClassVar[str]
    Config: ClassVar[type]
    # Abilities: what a drive may ask of this engine (checked by ``require``).
    free_pose: ClassVar[bool] = False  # any head pose, not only recorded ones
    # ``--pose audio``: render the generated poses themselves (free-pose engines), or replay the recorded frames
    # nearest in pose, where an engine's free poses do not yet look right over a whole head.
    render_learned_pose: ClassVar[bool] = True
    background_swap: ClassVar[bool] = False  # renders over a plate that can be replaced
    eye_control: ClassVar[bool] = False  # renders the drive's eye openness
    landmark_lips: ClassVar[bool] = False  # renders the mouth from the drive's ``mouth`` landmarks
    # Training reads the motion learners (the mouth codes of ``motion.pt``): the trainer trains them first and
    # passes the ``MotionModel`` to ``trainable(..., motion=...)``.
    learns_from_motion: ClassVar[bool] = False
    # Per-frame audio features the drive must carry ("visemes", "mel"); an instance may narrow them.
    features: tuple[str, ...] = ("visemes", "mel")
    # Frames of drive needed after frame k before k can be rendered (future audio context).
    lookahead: int = 0
    # ``prepare_batch`` / ``render_batch`` may run on two threads at once (for different sessions): no
    # shared state changes while rendering beyond what a lock guards (live serving renders side by side).
    thread_safe: ClassVar[bool] = False

    def __init__(self, model_dir: Path, subject: Subject, device: str):
        self.model_dir, self.subject, self.device = Path(model_dir), subject, device
        self.precision = "fp32"  # set by ``load_engine``; see ``autocast``

    def autocast(self):
        """Context for the engine's network calls at render time: bfloat16 autocast when
        ``precision`` is ``bf16`` (``nn.precision``), else nothing. Engines whose networks
        keep their quality in bfloat16 wrap their forward passes in it."""
        from ..nn.precision import autocast

        return autocast(self.device, self.precision)

    # ---- training ------------------------------------------------------------------------------
    @classmethod
    def resolve_config(cls, config, subject: Subject, device: str):
        """The config as trained (e.g. a resolution chosen for the device); written to model.json."""
        return config

    @classmethod
    @abstractmethod
    def trainable(cls, subject: Subject, config, device: str, train_idx: np.ndarray,
                  val_idx: np.ndarray) -> TrainModel:
        """A fresh ``TrainModel`` for ``subject`` (seeded by the trainer before this is called)."""

    # ---- rendering -----------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def load(cls, model_dir: Path, subject: Subject, device: str) -> "Engine":
        """The trained engine from ``model_dir/weights.pt``."""

    def prepare_batch(self, rows: Drive, ks: np.ndarray):
        """CPU-side work for frames ``ks`` of ``rows`` (run on a worker thread, one batch ahead)."""
        return None

    @abstractmethod
    def render_batch(self, rows: Drive, ks: np.ndarray, prepared, state: dict) -> list[np.ndarray]:
        """RGB uint8 frames of the subject's size for rows ``ks`` of ``rows``.

        ``rows`` holds at least ``lookahead`` frames after ``ks[-1]`` unless the drive has ended,
        and the recent past; ``state`` persists across the batches of one session.
        """

    def motion(self):
        """The model's motion learners (``motion.pt``, a ``MotionModel``), loaded once: for engines whose mouth
        comes from the expression learner when the drive brings none. One clear error without them."""
        if getattr(self, "_motion", None) is None:
            from ..errors import InputError
            from ..motion import MotionModel

            self._motion = MotionModel.load(self.model_dir, self.subject.meta["key"])
            if self._motion is None:
                raise InputError(f"{self.model_dir} has no motion.pt: its mouth comes from the motion learners; run "
                                 f"`talkinghead train-motion SUBJECT -o {self.model_dir}`")
        return self._motion

    def composite_mask(self, rows: Drive, k: int) -> np.ndarray | None:
        """(H, W) float in [0, 1]: how much of each pixel of output frame k this engine generated
        (the rest is copied from the recorded frame); None: every pixel is generated."""
        return None

    def session(self, batch_size: int = 8, first_batch: int | None = None) -> RenderSession:
        return RenderSession(self, batch_size, first_batch=first_batch)

    def render(self, drive: Drive, batch_size: int = 8, chunk: int | None = None) -> Iterator[np.ndarray]:
        """Every frame of a whole drive, fed to a session in chunks (the path live output takes)."""
        return render_drive(self, drive, batch_size, chunk)

    @classmethod
    def abilities(cls) -> list[str]:
        return [text for key, text in ABILITIES.items() if getattr(cls, key)]

    @classmethod
    def cannot(cls, ability: str) -> str:
        """The one line that says this engine lacks ``ability`` and what it can do instead."""
        can = cls.abilities() + ["replay recorded poses (--pose train|still)"]
        return f"the {cls.name} engine cannot {ABILITIES[ability]}; it can {', '.join(can)}"

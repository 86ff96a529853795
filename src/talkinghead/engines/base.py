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
through that one session.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, ClassVar, Iterator

import numpy as np

from ..errors import InputError
from ..subject import Subject


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


@dataclass
class EngineConfig:
    """Settings every engine has (its own ``Config`` extends this); the trainer reads them."""

    seed: int = 0
    val_frames: int = 8  # held-out frames compared at each checkpoint
    checkpoint_minutes: float = 3.0
    motion_share: float = 0.1  # of the budget: the motion learners (motion.pt), trained after the engine
    # Settings added after models were saved without them: the values those models were built with.
    LEGACY: ClassVar[dict] = {}

    @classmethod
    def saved(cls, d: dict) -> "EngineConfig":
        """The config a model or an unfinished run saved (``LEGACY`` fills settings it predates; settings
        since retired are dropped)."""
        from dataclasses import fields

        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in {**cls.LEGACY, **d}.items() if k in known})


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


class TrainModel(ABC):
    """What an engine gives the shared trainer (nerfstudio's Model): the trainer does the rest.

    ``ema`` maps module names to the decay of an exponential moving average the trainer keeps;
    validation and export then see the averaged copies.
    """

    ema: dict[str, float] = {}

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
        """Factor on every group's initial learning rate at ``step`` of ``phase``."""
        return 1.0

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

    def composite_mask(self, rows: Drive, k: int) -> np.ndarray | None:
        """(H, W) float in [0, 1]: how much of each pixel of output frame k this engine generated
        (the rest is copied from the recorded frame); None: every pixel is generated."""
        return None

    def session(self, batch_size: int = 8, first_batch: int | None = None):
        from .session import RenderSession

        return RenderSession(self, batch_size, first_batch=first_batch)

    def render(self, drive: Drive, batch_size: int = 8, chunk: int | None = None) -> Iterator[np.ndarray]:
        """Every frame of a whole drive, fed to a session in chunks (the path live output takes)."""
        s = self.session(batch_size)
        for part in drive.chunks(chunk or max(batch_size, int(round(drive.fps)))):
            yield from s.push(part)
        yield from s.end()

    @classmethod
    def abilities(cls) -> list[str]:
        return [text for key, text in ABILITIES.items() if getattr(cls, key)]

    @classmethod
    def require(cls, ability: str) -> None:
        """One clear error when a drive asks for an ability this engine lacks."""
        if not getattr(cls, ability):
            can = cls.abilities() + ["replay recorded poses (--pose train|still)"]
            others = [n for n, c in _registered().items() if getattr(c, ability, False)]
            raise InputError(f"the {cls.name} engine cannot {ABILITIES[ability]}; it can "
                             f"{', '.join(can)}" + (f"; engines that can: {', '.join(others)}" if others else ""))


def _registered() -> dict:
    from . import ENGINES, get_engine

    out = {}
    for name in ENGINES:
        try:
            out[name] = get_engine(name)
        except Exception:  # noqa: BLE001 - an engine that cannot import is simply not suggested
            continue
    return out


"""``build_drive``: the one way ``say``, ``evaluate`` and ``serve`` turn speech into what an engine renders.

It checks the request against the engine's declared abilities first (one clear
error naming what the engine can do), computes only the audio features the
engine declares, and takes poses and eyes from a ``Schedule``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..audio.windows import mel_stats
from ..engines import available_engines
from ..engines.base import Engine
from ..engines.types import Drive
from ..errors import InputError
from ..motion import MOTION_FILE, MotionModel
from .schedule import Poses, Schedule, blink_rate
from .speech import Speech, load_speech


def read_background(path: str | Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{path}: not a readable image")
    return img[..., ::-1].copy()


def motion_of(engine: Engine) -> MotionModel:
    """The model directory's motion learners (``motion.pt``), or one clear error saying how to get them."""
    m = MotionModel.load(engine.model_dir, engine.subject.meta["key"])
    if m is None:
        raise InputError(f"{engine.model_dir} has no motion learner ({MOTION_FILE}) for --pose/--lips audio: run "
                         f"`talkinghead train-motion SUBJECT -o {engine.model_dir}` or use --pose train|still|FILE")
    return m


def default_pose(engine: Engine) -> str:
    """``audio`` (head motion from the learner) when the model has one, else ``train`` (replay)."""
    return "audio" if (engine.model_dir / MOTION_FILE).is_file() else "train"


def default_lips(engine: Engine) -> str:
    """``audio`` (the expression learner's landmarks) for engines that render from landmarks when the model
    has a motion learner (measured better on held-out frames: see the README), else ``engine``."""
    return "audio" if engine.landmark_lips and (engine.model_dir / MOTION_FILE).is_file() else "engine"


LIPS = ("engine", "audio", "tracked")


def tracked_mouth(subject, frames: np.ndarray) -> np.ndarray:
    """(N, len(MOUTH_POINTS), 2) the pose-free mouth and jaw tracked in subject frames ``frames``."""
    from ..motion import MOUTH_POINTS

    return subject.tracks["canon_landmarks"][np.asarray(frames)][:, MOUTH_POINTS, :2].astype(np.float32)


SELDOM_BLINKS = 8.0  # a minute: a recording that blinks less gets natural blinks added to its replay


def resolved_blink(engine: Engine, blink: str, pose) -> str:
    """``auto`` for an engine that draws the eyes, replaying a recording that blinks seldom (under
    ``SELDOM_BLINKS`` a minute; people blink ~15-20 times): ``natural`` (blinks added); else as given.
    Given frame indices (self-driven evaluation), poses from a file and a still pose are left alone."""
    if blink != "auto" or not engine.eye_control or not (isinstance(pose, str) and pose in ("train", "audio")):
        return blink
    return "natural" if blink_rate(engine.subject) < SELDOM_BLINKS else "auto"


def require(engine: Engine, ability: str) -> None:
    """One clear error when a drive asks for an ability ``engine`` lacks, naming the engines that have it."""
    if getattr(engine, ability):
        return
    others = [name for name, cls in available_engines().items() if getattr(cls, ability, False)]
    raise InputError(engine.cannot(ability) + (f"; engines that can: {', '.join(others)}" if others else ""))


def check_request(engine: Engine, pose="train", background=None, eye_level: float | None = None,
                  lips: str = "engine", blink: str = "auto") -> None:
    """Every ability a drive can ask of an engine, checked in this one place."""
    if isinstance(pose, (str, Path)) and str(pose) not in ("train", "still", "audio"):
        require(engine, "free_pose")
    if lips not in LIPS:
        raise InputError(f"unknown --lips {lips!r}; use engine (the engine's own audio → mouth), audio "
                         "(the expression learner's landmarks) or tracked (the replayed frames' own, evaluation)")
    if lips != "engine":
        require(engine, "landmark_lips")
    if lips == "tracked" and isinstance(pose, (str, Path)):
        raise InputError("--lips tracked renders recorded frames with their own tracked mouths: only for "
                         "`talkinghead evaluate` (held-out frames), not for new speech")
    if background is not None:
        require(engine, "background_swap")
    if eye_level is not None or blink == "natural":
        require(engine, "eye_control")


def build_drive(engine: Engine, audio: str | Path | None = None, text: str | None = None,
                speech: Speech | None = None, pose="train", blink: str = "auto", eye_level: float | None = None,
                background: str | Path | np.ndarray | None = None, seed: int = 0, lips: str = "engine") -> Drive:
    """A whole drive for ``engine`` from ``audio`` (a file), ``text`` (TTS) or ready ``speech``.

    ``pose``: ``train``, ``still``, ``audio`` (the motion learner's head motion for this speech), a pose
    file, or recorded frame indices (see ``Schedule``);
    ``background``: an image (path or RGB array) to render over, for engines that can; ``lips``: ``engine``
    (its own audio → mouth), ``audio`` (the expression learner's landmarks, engines with landmark_lips) or
    ``tracked`` (the replayed frames' own tracked mouths: the renderer alone, for evaluation).
    """
    check_request(engine, pose, background, eye_level, lips, blink)
    subject = engine.subject
    if speech is None:
        want = engine.features if str(pose) != "audio" and lips != "audio" else ("visemes", "mel")
        speech = load_speech(audio, text, subject.fps, want)
    motion = motion_of(engine) if str(pose) == "audio" or lips == "audio" else None
    blink = resolved_blink(engine, blink, pose)
    if str(pose) == "audio":
        pose = Poses(motion.head_motion(speech.visemes, speech.mel_windows, seed),
                     engine.free_pose and engine.render_learned_pose)
    schedule = Schedule(subject, pose=pose, blink=blink, eye_level=eye_level, seed=seed)
    if isinstance(background, (str, Path)):
        background = read_background(background)
    stats = None if speech.mel_windows is None else mel_stats(speech.mel_windows)
    rows = schedule.rows(0, len(speech))
    mouth = motion.mouth_points(speech.visemes, speech.mel_windows, closures=speech.exact) if lips == "audio" else \
        tracked_mouth(subject, rows["pose_index"]) if lips == "tracked" else None
    return Drive(fps=subject.fps, visemes=speech.visemes, mel_windows=speech.mel_windows, audio=speech.audio, mouth=mouth,
                 background=background, mel_stats=stats, **rows)

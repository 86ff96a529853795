"""Engines: interchangeable talking-head models behind one interface (see ``base``).

Adding an engine: a folder ``engines/<name>/`` with its ``Engine`` subclass, and one
line in ``ENGINES`` (or ``register_engine`` from a plugin or a test).
"""

from __future__ import annotations

from importlib import import_module

from ..errors import InputError
from .base import Engine, EngineConfig, TrainModel
from .types import Budget, Drive, Phase, Validation

ENGINES: dict[str, str | type[Engine]] = {
    "viseme": "talkinghead.engines.viseme.engine:VisemeEngine",
    "nerf": "talkinghead.engines.nerf.engine:NerfEngine",
    "speech2lip": "talkinghead.engines.speech2lip.engine:Speech2LipEngine",
    "rhythm": "talkinghead.engines.rhythm.engine:RhythmEngine",
}


def register_engine(name: str, engine: str | type[Engine]) -> None:
    """Make ``engine`` (a class, or ``"module:Class"``) available as ``--engine name``."""
    ENGINES[name] = engine


def get_engine(name: str) -> type[Engine]:
    if name not in ENGINES:
        raise InputError(f"unknown engine {name!r}; available: {', '.join(sorted(ENGINES))}")
    entry = ENGINES[name]
    if not isinstance(entry, str):
        return entry
    module, cls = entry.split(":")
    return getattr(import_module(module), cls)


def available_engines() -> dict[str, type[Engine]]:
    """``{name: class}`` of every registered engine that imports (one that cannot is left out)."""
    out = {}
    for name in ENGINES:
        try:
            out[name] = get_engine(name)
        except Exception:  # noqa: BLE001 - an engine that cannot import is simply not offered
            continue
    return out


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but no CUDA GPU is available")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise InputError(f"unknown device {device!r}; use auto, cpu or cuda")
    return device


__all__ = ["Budget", "Drive", "Engine", "EngineConfig", "ENGINES", "Phase", "TrainModel", "Validation",
           "available_engines", "get_engine", "register_engine", "resolve_device"]

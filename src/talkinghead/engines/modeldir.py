"""The model directory every engine writes::

    model.json        format version, engine, config, subject (path + key), training status
    weights.pt        final weights (written last; its presence means "trained")
    checkpoint_*.pt   resumable training state per phase
    train_log.csv     step, phase, seconds, losses, validation PSNR
    previews/         GT | prediction | drawing images at checkpoints
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path

from .. import __version__
from ..errors import InputError
from ..nn.allocator import reuse_freed_memory
from ..nn.precision import resolve_precision
from ..subject import Subject
from ..utils import write_json

MODEL_FORMAT = 1


def write_meta(model_dir: Path, engine: str, config, subject: Subject, **extra) -> dict:
    meta = {
        "format_version": MODEL_FORMAT, "engine": engine,
        "config": asdict(config) if is_dataclass(config) else dict(config),
        "subject": {"path": str(subject.path.resolve()), "key": subject.meta["key"],
                    "fps": subject.fps, "size": subject.size, "n_frames": subject.n_frames},
        "talkinghead": __version__,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
    }
    write_json(Path(model_dir) / "model.json", meta)
    return meta


def read_meta(model_dir: Path) -> dict:
    p = Path(model_dir) / "model.json"
    if not p.is_file():
        raise InputError(f"{model_dir}: not a model directory (no model.json); run `talkinghead train`")
    meta = json.loads(p.read_text())
    if meta.get("format_version") != MODEL_FORMAT:
        raise InputError(f"{model_dir}: model format {meta.get('format_version')} is not {MODEL_FORMAT}")
    if not (Path(model_dir) / "weights.pt").is_file():
        raise InputError(f"{model_dir}: training has not finished (no weights.pt); run `talkinghead train` again to resume")
    return meta


def open_subject(meta: dict, subject: str | Path | None = None) -> Subject:
    """The subject a model was trained on (or ``subject``, which must be the same one)."""
    path = Path(subject) if subject else Path(meta["subject"]["path"])
    if not path.exists():
        raise InputError(f"the model's subject directory {path} is missing; pass --subject DIR")
    s = Subject.open(path)
    if s.meta.get("key") != meta["subject"]["key"]:
        raise InputError(f"subject {path} is not the one this model was trained on "
                         "(different video or prepare settings)")
    return s


def load_engine(model_dir: Path, device: str, subject: str | Path | None = None, precision: str = "fp32"):
    """The trained engine in ``model_dir``; ``precision`` (``auto``, ``fp32``, ``bf16``) for its render-time
    networks, ``auto`` = bfloat16 where the device computes it natively (``nn.precision``)."""
    from . import get_engine

    reuse_freed_memory()  # a renderer asks for the same large buffers every batch (nn/allocator.py)
    meta = read_meta(model_dir)
    engine = get_engine(meta["engine"]).load(Path(model_dir), open_subject(meta, subject), device)
    engine.precision = resolve_precision(precision, device)
    return engine

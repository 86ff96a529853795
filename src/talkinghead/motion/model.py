"""``MotionModel``: both learners of one subject, saved as ``motion.pt`` in a model directory.

``head_motion(speech)`` gives a drive's head poses, ``mouth(speech)`` its
pose-free mouth and jaw landmarks; every engine's model directory can hold
one (``talkinghead train`` trains it as a share of the budget,
``talkinghead train-motion`` alone).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..audio.windows import audio_channels, feature_windows, mel_stats, renormalise
from ..errors import InputError
from ..subject import Subject
from ..utils import atomic_path
from .expression import ExpressionConfig, ExpressionModel
from .head import HeadConfig, HeadMotionModel, speech_energy

__all__ = ["MotionConfig", "MotionModel", "MOTION_FILE", "FORMAT"]

MOTION_FILE = "motion.pt"
FORMAT = 1


@dataclass
class MotionConfig:
    audio: str = "both"
    # the paper's loss on landmarks, and the mouth's motion matched per sequence (its deviation and that of its
    # velocity: no regression to an average mouth); bench/RESULTS.md "the expression learner"
    expression: ExpressionConfig = field(default_factory=lambda: ExpressionConfig(loss_power=1.0, w_moment=1.0))
    head: HeadConfig = field(default_factory=HeadConfig)
    expression_share: float = 0.65  # of the motion budget; the head learner gets the rest
    noise_share: float = 0.3  # training sequences with noise added at a random 6-30 dB SNR
    lr_half_steps: int = 3000  # the learners' learning rates halve every this many steps
    voices: int = 0  # re-voiced copies of the subject's speech (audio/revoice.py) the expression learner sees
    voice_share: float = 0.0  # training sequences drawn from one of them
    silences: int = 4  # copies of the subject's speech with quiet pauses cut in, the mouth closed there
    silence_share: float = 0.3  # training sequences drawn from one of them

    @classmethod
    def from_dict(cls, d: dict) -> "MotionConfig":
        return cls(**{**d, "expression": ExpressionConfig(**d["expression"]), "head": HeadConfig(**d["head"])})


def close_lips(codes: np.ndarray, visemes: np.ndarray, closed: np.ndarray) -> np.ndarray:
    """``codes`` pulled to the ``closed`` mouth over frames of bilabial phones (p, b, m): fully where the phone
    covers the frame, half on the frames either side (the lips close and part over about 80 ms)."""
    from ..audio.visemes import BILABIAL

    v = np.clip(np.asarray(visemes, np.float64)[:, BILABIAL] * 2, 0, 1)
    g = np.maximum(v, 0.5 * np.maximum(np.r_[0, v[:-1]], np.r_[v[1:], 0]))
    return (codes + g[:, None] * (closed[None] - codes)).astype(np.float32)


class MotionModel(nn.Module):
    def __init__(self, cfg: MotionConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or MotionConfig()
        ch = audio_channels(cfg.audio)
        self.expression = ExpressionModel(ch, cfg.expression)
        self.head = HeadMotionModel(ch, cfg.head)
        self.register_buffer("reference_poses", torch.zeros(cfg.head.ref, 6, dtype=torch.float64))
        # the person's lips closed (mean code of the training frames least open): where exact phones say p, b, m
        self.register_buffer("closed_code", torch.full((cfg.expression.n_coeffs,), float("nan")))

    def fit_stats(self, subject: Subject, train_idx: np.ndarray, windows: np.ndarray, poses: np.ndarray) -> None:
        af = subject.audio_features
        stats = self.expression.fit(self.cfg.audio, windows, subject, train_idx)
        ap = subject.tracks["aperture"][train_idx]
        shut = np.asarray(train_idx)[ap <= np.percentile(ap, 10)]
        self.closed_code.copy_(torch.from_numpy(self.expression.pca.encode(subject.tracks["canon_landmarks"][shut]).mean(0)))
        self.head.fit_stats(poses[train_idx], speech_energy(af["mel_windows"][train_idx]), stats)
        # the clip a generated motion starts from: a typical 3 s of training (median motion energy; the
        # calmest one made the style encoder ask for half the person's motion)
        r = self.cfg.head.ref
        p = poses[train_idx]
        if len(p) > r:
            energy = np.convolve(np.linalg.norm(np.diff(p[:, :3], axis=0), axis=1), np.ones(r - 1), "valid")
            s = int(np.argsort(energy)[len(energy) // 2])
            self.reference_poses.copy_(torch.from_numpy(p[s:s + r]))
        else:
            self.reference_poses.copy_(torch.from_numpy(np.resize(p, (r, 6))))

    # ---- a drive's motion ---------------------------------------------------------------------
    def windows(self, visemes: np.ndarray | None, mel_windows: np.ndarray | None, stats=None) -> np.ndarray:
        """A drive's audio windows, its log-mel mapped from its own statistics (``stats``: per band, or per
        frame; default: those of ``mel_windows``) to the training audio's."""
        n = len(visemes if visemes is not None else mel_windows)
        vis = visemes if visemes is not None else np.zeros((n, 15), np.float32)
        mel = mel_windows if mel_windows is not None else np.zeros((n, 16, 80), np.float32)
        w = feature_windows(self.cfg.audio, vis, mel).astype(np.float32)
        if self.cfg.audio == "visemes":
            return w
        if mel_windows is None:  # no log-mel: the learners read the visemes alone (as in mel dropout)
            w[..., -80:] = self.expression.reference()[0]
            return w
        return renormalise(self.cfg.audio, w, mel_stats(mel_windows) if stats is None else stats,
                           self.expression.reference())

    def head_motion(self, visemes, mel_windows, seed: int = 0) -> np.ndarray:
        """(N, 6) yaw, pitch, roll (deg), tx, ty, tz for a drive's N frames."""
        return self.head.generate(self.windows(visemes, mel_windows), self.reference_poses.numpy(), seed)

    def mouth_codes(self, visemes, mel_windows, stats=None, closures: bool = False) -> np.ndarray:
        """(N, K) the mouth PCA coefficients a drive's audio asks for (``stats``: see ``windows``). ``closures``:
        the visemes come from exact phone timings (TTS): the lips meet on every p, b, m, as they must."""
        codes = self.expression.predict(self.windows(visemes, mel_windows, stats))
        if closures and visemes is not None and torch.isfinite(self.closed_code).all():
            codes = close_lips(codes, visemes, self.closed_code.numpy())
        return codes

    def mouth_points(self, visemes, mel_windows, stats=None, closures: bool = False) -> np.ndarray:
        """(N, len(MOUTH_POINTS), 2) the pose-free mouth and jaw a drive's audio asks for."""
        codes = self.mouth_codes(visemes, mel_windows, stats, closures)
        return self.expression.pca.points(codes).astype(np.float32)

    # ---- files ----------------------------------------------------------------------------------
    def save(self, model_dir: str | Path, subject_key: str) -> Path:
        path = Path(model_dir) / MOTION_FILE
        with atomic_path(path, suffix=".pt") as tmp:
            torch.save({"format": FORMAT, "subject": subject_key, "config": asdict(self.cfg),
                        "state": self.state_dict()}, tmp)
        return path

    @classmethod
    def load(cls, model_dir: str | Path, subject_key: str | None = None) -> "MotionModel | None":
        """The model directory's motion learners, or None when it has none."""
        path = Path(model_dir) / MOTION_FILE
        if not path.is_file():
            return None
        ck = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(ck, dict) or ck.get("format") != FORMAT:
            raise InputError(f"{path}: not a motion model of this talkinghead version; run train-motion again")
        if subject_key is not None and ck["subject"] != subject_key:
            raise InputError(f"{path}: trained on another subject; run train-motion for this one")
        m = cls(MotionConfig.from_dict(ck["config"]))
        m.load_state_dict(ck["state"], strict=False)  # files from before closed_code: no forced closures
        return m.eval()

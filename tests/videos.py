"""Test videos made from a real face that ships with scikit-image (the astronaut photo)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import skimage.data

from talkinghead.io.video import VideoWriter
from talkinghead.synth.variants import tag_rotation  # noqa: F401 - re-exported for the tests

# Region of the 512x512 astronaut photo holding her head and shoulders.
FACE_REGION = (96, 0, 352, 256)  # x0, y0, x1, y1


def astronaut_frame(size: int = 512) -> np.ndarray:
    """Head-and-shoulders crop of the astronaut, upscaled: face ~0.36 of the width."""
    x0, y0, x1, y1 = FACE_REGION
    crop = skimage.data.astronaut()[y0:y1, x0:x1]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC)


def tone(seconds: float, sr: int = 16000) -> np.ndarray:
    """A voiced-like buzz with syllable-rate amplitude modulation (not silent)."""
    t = np.arange(int(seconds * sr)) / sr
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (0.2 * env * np.sign(np.sin(2 * np.pi * 140 * t)) * 0.5).astype(np.float32)


def motion(n: int, roll_deg: float = 12.0, shift_px: float = 18.0) -> list[np.ndarray]:
    """Known per-frame 2x3 affines: in-plane rotation about the face and translation."""
    k = np.arange(n)
    angles = roll_deg * np.sin(2 * np.pi * k / n)
    dx = shift_px * np.sin(2 * np.pi * k / n * 2)
    dy = 0.6 * shift_px * np.cos(2 * np.pi * k / n)
    out = []
    for a, x, y in zip(angles, dx, dy):
        M = cv2.getRotationMatrix2D((256.0, 200.0), float(a), 1.0)
        M[:, 2] += (x, y)
        out.append(M)
    return out


def write_moving_astronaut(path: Path, seconds: float = 4.0, fps: float = 25.0,
                           audio: np.ndarray | None = None, with_audio: bool = True) -> list[np.ndarray]:
    """Write the moving-astronaut video; returns the affine applied to each frame."""
    n = int(round(seconds * fps))
    base = astronaut_frame()
    mats = motion(n)
    wav = (audio if audio is not None else tone(seconds)) if with_audio else None
    with VideoWriter(path, fps, (512, 512), audio=wav) as w:
        for M in mats:
            w.write(cv2.warpAffine(base, M, (512, 512), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT))
    return mats


def write_frames(path: Path, frames, fps: float = 25.0, audio: np.ndarray | None = None) -> None:
    frames = list(frames)
    h, w = frames[0].shape[:2]
    with VideoWriter(path, fps, (w, h), audio=audio) as wr:
        for f in frames:
            wr.write(f)

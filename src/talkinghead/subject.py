"""The subject directory: what ``prepare`` writes and every engine trains from.

Layout (format version 1)::

    subject.json         metadata: fps, size, frame count, split, crop, source hash, versions
    frames/000000.jpg    RGB crops, size x size, JPEG quality 95
    masks/000000.png     uint8 labels: 0 background, 1 neck/torso, 2 head, 3 face region
    tracks.npz           landmarks, pose, intrinsics, eye openness, aperture, boxes (see TRACK_KEYS)
    background.png       background plate (temporal median, holes filled)
    audio.wav            16 kHz mono, exactly n_frames / fps seconds
    audio_features.npz   log-mel, mel windows, soft visemes per frame, recognised phones
    preview.png          a frame with landmarks, pose axes and masks, plus signal plots
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError

FORMAT_VERSION = 1
TRACK_KEYS = {
    "landmarks": "(N, 478, 3) float32 crop pixels (z scaled like x), temporally smoothed",
    "found": "(N,) bool, face detected in this frame (False = interpolated)",
    "rotation": "(N, 3, 3) head rotation, X_cam = R X_canon + t",
    "translation": "(N, 3) cm, camera frame (x right, y down, z forward)",
    "euler_deg": "(N, 3) yaw, pitch, roll; R = Rz(roll) Rx(pitch) Ry(yaw)",
    "intrinsics": "(3, 3) pinhole camera matrix for the crop",
    "reproj_px": "(N,) RMS reprojection error of the rigid points",
    "subject_shape": "(478, 3) cm, this person's mean face in the canonical frame",
    "canon_landmarks": "(N, 478, 3) cm, pose-free landmarks K_f = P^-1 proj^-1(K)",
    "eye": "(N, 2) eye area ratio (right, left)",
    "aperture": "(N,) inner-lip gap / outer-eye-corner distance, pose-free (x, y of canon_landmarks)",
    "lip_box": "(N, 4) x0, y0, x1, y1 crop pixels, square around the lips",
    "face_box": "(N, 4) x0, y0, x1, y1 crop pixels, tight around all landmarks",
}


@dataclass
class Subject:
    """Read access to a prepared subject directory."""

    path: Path

    @classmethod
    def open(cls, path: str | Path) -> "Subject":
        path = Path(path)
        if not (path / "subject.json").is_file():
            raise InputError(f"{path}: not a prepared subject (no subject.json); run `talkinghead prepare`")
        s = cls(path)
        if s.meta.get("format_version") != FORMAT_VERSION:
            raise InputError(f"{path}: subject format {s.meta.get('format_version')} is not "
                             f"{FORMAT_VERSION}; prepare it again")
        return s

    @cached_property
    def meta(self) -> dict:
        return json.loads((self.path / "subject.json").read_text())

    @property
    def fps(self) -> float:
        return float(self.meta["fps"])

    @property
    def size(self) -> int:
        return int(self.meta["size"])

    @property
    def n_frames(self) -> int:
        return int(self.meta["n_frames"])

    def split(self, name: str) -> np.ndarray:
        """Frame indices of ``train`` or ``val``. The held-out ``val`` range is usually the last frames; where it
        lies inside the ``train`` range (a held-out stretch in the middle), ``train`` skips it."""
        lo, hi = self.meta["split"][name]
        idx = np.arange(lo, hi)
        if name == "train":
            vlo, vhi = self.meta["split"].get("val", (hi, hi))
            idx = idx[(idx < vlo) | (idx >= vhi)]
        return idx

    @cached_property
    def tracks(self) -> dict[str, np.ndarray]:
        with np.load(self.path / "tracks.npz") as z:
            return {k: z[k] for k in z.files}

    @cached_property
    def audio_features(self) -> dict[str, np.ndarray]:
        with np.load(self.path / "audio_features.npz", allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def frame(self, i: int) -> np.ndarray:
        """RGB uint8 (size, size, 3)."""
        img = cv2.imread(str(self.path / "frames" / f"{i:06d}.jpg"), cv2.IMREAD_COLOR)
        if img is None:
            raise InputError(f"{self.path}: frame {i} is missing")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)  # a new array (a reversed-stride copy is ~10x slower)

    def mask(self, i: int) -> np.ndarray:
        """uint8 label map (size, size); see module docstring."""
        m = cv2.imread(str(self.path / "masks" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        if m is None:
            raise InputError(f"{self.path}: mask {i} is missing")
        return m

    def neutral_frame(self) -> int:
        """A training frame near the median head pose with open eyes and a closed mouth: the still pose
        of ``say`` and the canonical view of speech2lip."""
        tr = self.tracks
        idx = self.split("train")
        e = tr["euler_deg"][idx]
        dev = np.linalg.norm(e - np.median(e, axis=0), axis=1)
        eye = tr["eye"][idx].mean(1)
        ap = tr["aperture"][idx]
        score = dev / (dev.std() + 1e-6) + 2 * (eye < np.median(eye)) + ap / (ap.std() + 1e-6)
        return int(idx[np.argmin(score)])

    def background(self) -> np.ndarray:
        return cv2.imread(str(self.path / "background.png"), cv2.IMREAD_COLOR)[..., ::-1].copy()

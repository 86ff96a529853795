"""Training data for the viseme engine, held in memory at model resolution.

For every frame: the model crop (RGB), its upper-face drawing (renderer
input), its full drawing (oracle input), the high-resolution mouth crop and
mouth drawing (sampled from the subject frame, not upsampled), the mouth box
and the viseme/mel window. Mashed samples are drawn on the fly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ...audio.visemes import viseme_windows
from ...audio.windows import audio_channels, feature_windows
from ...geometry import face as mesh
from ...geometry.pose import project
from ...progress import bar
from ...subject import Subject
from ...compose import drawing as D
from .mashing import mash


def eye_override(lm: np.ndarray, current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Landmarks with each eye opened/closed to ``target`` openness (eye area ratio).

    Contour points move towards/away from the line between the eye corners,
    scaled by target / current (upper and lower lids alike).
    """
    out = lm.copy()
    for k, (contour, (a, b)) in enumerate(((mesh.RIGHT_EYE, mesh.EYE_CORNERS["right"]),
                                           (mesh.LEFT_EYE, mesh.EYE_CORNERS["left"]))):
        ratio = float(np.clip(target[k] / max(current[k], 1e-3), 0.0, 2.0))
        p0, p1 = out[a, :2], out[b, :2]
        d = (p1 - p0) / max(np.linalg.norm(p1 - p0), 1e-6)
        pts = out[contour, :2] - p0
        along = pts @ d
        perp = pts - along[:, None] * d
        out[contour, :2] = p0 + along[:, None] * d + perp * ratio
        iris = mesh.RIGHT_IRIS if k == 0 else mesh.LEFT_IRIS
        out[iris[1:], 1] = out[iris[0], 1] + (out[iris[1:], 1] - out[iris[0], 1]) * min(1.0, ratio)
    return out


def audio_windows(kind: str, visemes: np.ndarray, mel_windows: np.ndarray) -> np.ndarray:
    """Per-frame audio windows: NEON's 6-frame viseme window (N, 6, 15) for ``"visemes"``, else the
    shared 16-step windows of ``audio/windows.py`` (log-mel, or visemes and log-mel side by side)."""
    if kind == "visemes":
        return viseme_windows(np.asarray(visemes), 6).astype(np.float32)
    return feature_windows(kind, visemes, mel_windows)


def audio_shape(kind: str) -> tuple[int, int]:
    """(window steps, channels) of ``audio_windows(kind, ...)``."""
    channels = audio_channels(kind)
    return (6, channels) if kind == "visemes" else (16, channels)


@dataclass
class FrameStore:
    subject: Subject
    size: int
    mouth_size: int
    audio: str = "visemes"  # or "mel", "both"

    def __post_init__(self):
        tr = self.subject.tracks
        self.landmarks = tr["landmarks"]
        self.box = D.model_box(self.landmarks, self.subject.size)
        # Mouth boxes follow the *neutral* lips under each frame's pose, so they never reveal the mouth state.
        lips = np.stack([project(tr["subject_shape"][mesh.LIPS_OUTER].astype(np.float64), R, t,
                                 tr["intrinsics"].astype(np.float64)).mean(0)
                         for R, t in zip(tr["rotation"].astype(np.float64), tr["translation"].astype(np.float64))])
        lip_side = np.median(tr["lip_box"][:, 2] - tr["lip_box"][:, 0]) * self.size / self.box[2]
        self.mouth_frac = float(np.clip(1.2 * lip_side / self.size, 0.15, 0.6))
        c = D.to_box(lips, self.box, self.size)
        half = self.mouth_frac * self.size / 2
        self.mouth_boxes = np.concatenate([c - half, c + half], axis=1).astype(np.float32)
        af = self.subject.audio_features
        self.audio_windows = audio_windows(self.audio, af["visemes"], af["mel_windows"])
        self.canon = tr["canon_landmarks"]
        self.rot, self.trans, self.K = tr["rotation"], tr["translation"], tr["intrinsics"]
        self.cache: dict[int, dict] = {}

    def mouth_box_subject(self, i: int) -> np.ndarray:
        """Frame i's mouth box as (x0, y0, side) in subject pixels."""
        s = self.box[2] / self.size
        x0, y0, x1, _ = self.mouth_boxes[i]
        return np.array([self.box[0] + x0 * s, self.box[1] + y0 * s, (x1 - x0) * s])

    def load(self, indices, desc: str = "load frames") -> None:
        M = np.array([[self.size / self.box[2], 0, -self.box[0] * self.size / self.box[2]],
                      [0, self.size / self.box[2], -self.box[1] * self.size / self.box[2]]])
        b = bar(len(indices), desc, unit="f")
        for i in indices:
            i = int(i)
            if i in self.cache:
                b.update()
                continue
            frame, labels = self.subject.frame(i), self.subject.mask(i)
            mb = self.mouth_box_subject(i)
            mM = np.array([[self.mouth_size / mb[2], 0, -mb[0] * self.mouth_size / mb[2]],
                           [0, self.mouth_size / mb[2], -mb[1] * self.mouth_size / mb[2]]])
            self.cache[i] = {
                "rgb": cv2.warpAffine(frame, M, (self.size, self.size), flags=cv2.INTER_AREA),
                "mouth_rgb": cv2.warpAffine(frame, mM, (self.mouth_size, self.mouth_size), flags=cv2.INTER_LINEAR),
                "upper": D.draw(self.landmarks[i], self.box, self.size, full=False, labels=labels),
                "full": D.draw(self.landmarks[i], self.box, self.size, full=True, labels=labels),
                "mouth_draw": D.draw(self.landmarks[i], mb, self.mouth_size, full=True),
                "silhouette": D.silhouette(labels, self.box, self.size,
                                           float(D.to_box(self.landmarks[i, [234, 454]], self.box, self.size)[:, 1].min())),
            }
            b.update()
        b.close()

    def mashed(self, i: int, j: int) -> dict:
        """Drawings for audio/mouth of i on the face and pose of j (j must be loaded)."""
        lm = mash(self.canon[i], self.canon[j], self.rot[j], self.trans[j], self.K)
        mb = self.mouth_box_subject(j)
        full = D.draw(lm, self.box, self.size, full=True)
        full = np.maximum(full, self.cache[j]["silhouette"])
        return {"full": full, "mouth_draw": D.draw(lm, mb, self.mouth_size, full=True)}

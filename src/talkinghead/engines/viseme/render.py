"""Inference helpers: the upper-face drawings of replayed frames and the paste back into them.

The rendered model crop is resized to the model box and blended into subject
frame j only where speech changes it (``compose.SpeechFrames``: the lower face
from under the nose down, the eyes only while a drawn blink differs from j's),
so the eyes, brows, forehead, hair, torso and background stay the recorded,
sharp pixels.
"""

from __future__ import annotations

import numpy as np
import torch

from ...compose import SpeechFrames
from ...subject import Subject
from ...compose import drawing as D
from ...motion import LowerFace
from .data import FrameStore, eye_override
from .mashing import mash


def to_tensor(x: np.ndarray, device: str, channels_last: bool = False) -> torch.Tensor:
    """uint8 (B, C, H, W) → float in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(x)).to(device).float().div_(127.5).sub_(1.0)
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t


class Compositor:
    def __init__(self, subject: Subject, store: FrameStore, cache: int = 64):
        self.store, self.box, self.lm = store, store.box, store.landmarks
        self.eye = subject.tracks["eye"]
        self.lower = LowerFace(store.canon[subject.split("train")])
        x0, y0, side = self.box
        self.frames = SpeechFrames(subject, (int(round(x0)), int(round(y0)), int(round(side))), self.lm, cache)

    def upper_drawing(self, j: int, eye: np.ndarray | None = None) -> np.ndarray:
        lm = self.lm[j]
        if eye is not None:
            lm = eye_override(lm, self.eye[j], eye)
        return D.draw(lm, self.box, self.store.size, full=False, labels=self.frames.get(j)["labels"])

    def full_drawing(self, j: int, mouth: np.ndarray, eye: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(full drawing, mouth drawing) of frame j with its mouth and jaw replaced by ``mouth`` (pose-free
        points, ``motion.MOUTH_POINTS`` order) and its whole lower face moved with them (``motion.LowerFace``:
        frame j's own chin and cheeks would carry its own mouth), placed at j's pose as keypoint mashing places
        another frame's mouth."""
        st = self.store
        canon = self.lower.apply(st.canon[j], mouth)
        lm = mash(canon, st.canon[j], st.rot[j], st.trans[j], st.K)
        if eye is not None:
            lm = eye_override(lm, self.eye[j], eye)
        labels = self.frames.get(j)["labels"]
        full = D.draw(lm, self.box, st.size, full=True, labels=labels)
        return full, D.draw(lm, st.mouth_box_subject(j), st.mouth_size, full=True)

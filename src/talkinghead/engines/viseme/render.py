"""Inference helpers: per-pose-frame drawings and the compositor.

The compositor pastes a rendered model crop back into subject frame j: the
crop is resized to the model box and blended under a feathered mask of j's
lower face, so hair, torso and background stay the recorded pixels.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import cv2
import numpy as np
import torch

from ...subject import Subject
from . import drawing as D
from .data import FrameStore, eye_override


def to_tensor(x: np.ndarray, device: str, channels_last: bool = False) -> torch.Tensor:
    """uint8 (B, C, H, W) → float in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(x)).to(device).float().div_(127.5).sub_(1.0)
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t


class Compositor:
    def __init__(self, subject: Subject, store: FrameStore, cache: int = 64):
        self.subject, self.store = subject, store
        self.box = store.box
        self.lm = store.landmarks
        self.eye = subject.tracks["eye"]
        self._cache: OrderedDict[int, dict] = OrderedDict()
        self._size = cache
        self._lock = threading.Lock()  # drawings are made on a worker thread while frames are pasted
        x0, y0, side = self.box
        self.region = (int(round(x0)), int(round(y0)), int(round(side)))

    def _frame(self, j: int) -> dict:
        with self._lock:
            if j in self._cache:
                self._cache.move_to_end(j)
                return self._cache[j]
        labels = self.subject.mask(j)
        x0, y0, side = self.region
        mask = D.composite_mask(self.lm[j], labels.shape, feather=max(3.0, side / 40))
        item = {"frame": self.subject.frame(j), "labels": labels,
                "mask": mask[y0:y0 + side, x0:x0 + side, None]}
        with self._lock:
            self._cache[j] = item
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return item

    def upper_drawing(self, j: int, eye: np.ndarray | None = None) -> np.ndarray:
        lm = self.lm[j]
        if eye is not None:
            lm = eye_override(lm, self.eye[j], eye)
        return D.draw(lm, self.box, self.store.size, full=False, labels=self._frame(j)["labels"])

    def paste(self, crop: np.ndarray, j: int) -> np.ndarray:
        item = self._frame(j)
        x0, y0, side = self.region
        out = item["frame"].copy()
        h, w = out.shape[:2]
        patch = cv2.resize(crop, (side, side), interpolation=cv2.INTER_LINEAR if side > crop.shape[0] else cv2.INTER_AREA)
        ys, xs = slice(max(0, y0), min(h, y0 + side)), slice(max(0, x0), min(w, x0 + side))
        py, px = slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0)
        m = item["mask"][py, px]
        region = out[ys, xs].astype(np.float32)
        out[ys, xs] = (region + m * (patch[py, px].astype(np.float32) - region)).round().astype(np.uint8)
        return out

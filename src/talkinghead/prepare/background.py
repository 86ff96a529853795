"""Background plate: per-pixel temporal median of background pixels, holes filled.

Only a bounded sample of frames is kept (evenly spaced), so memory does not
grow with the video. Pixels never seen as background are filled smoothly by a
push-pull pyramid (average of known neighbours at coarser scales).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..compose.fill import push_pull_fill


class BackgroundAccumulator:
    def __init__(self, n_frames: int, max_samples: int = 40, dilate_px: int = 9):
        k = min(n_frames, max_samples)
        self.wanted = set(np.linspace(0, n_frames - 1, k).round().astype(int).tolist())
        self.frames: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        self.kernel = np.ones((dilate_px, dilate_px), np.uint8)

    def add(self, index: int, rgb: np.ndarray, background: np.ndarray) -> None:
        """``background``: bool mask of pixels that show background in this frame."""
        if index in self.wanted:
            person = cv2.dilate((~background).astype(np.uint8), self.kernel)  # keep off the edges
            self.frames.append(rgb)
            self.masks.append(person == 0)

    def plate(self) -> tuple[np.ndarray, np.ndarray]:
        """(plate RGB uint8, known-mask) from the samples."""
        stack = np.stack(self.frames).astype(np.float32)
        known = np.stack(self.masks)
        stack[~known] = np.nan
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(stack, axis=0)
        seen = known.any(axis=0)
        med[~seen] = 0
        return np.clip(push_pull_fill(med, seen), 0, 255).astype(np.uint8), seen

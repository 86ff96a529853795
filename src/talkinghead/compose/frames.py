"""``RecordedFrames``: the subject frames an engine pastes into, with labels and paste masks, cached;
``SpeechFrames``: those masks made of what speech changes (and a drawn blink).

Rendering replays recorded frames (the drive's ``pose_index``); consecutive
output frames mostly reuse a few of them, so each is read and its mask built
once. Thread-safe: engines prepare the next batch on a worker thread while the
current one is pasted.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..lru import Lru
from ..subject import Subject
from .blend import paste
from .masks import eye_mask, speech_face_mask

MaskFn = Callable[[int, tuple[int, int]], "np.ndarray | tuple[np.ndarray, ...]"]  # (j, (H, W)) -> float (H, W) mask(s)


class RecordedFrames:
    """Frame ``j`` of ``subject`` with its label map and the ``mask_fn`` mask cut to ``region``.

    ``region`` = (x0, y0, side) in subject pixels: the square a generated crop covers (no
    ``mask_fn``: frames and labels only). ``mask_fn`` may give several masks: a paste is blended under the
    most of the first and the others weighted per paste (e.g. the eyes, where a drawn blink differs from
    the recording).
    """

    def __init__(self, subject: Subject, region: tuple[int, int, int] = (0, 0, 0), mask_fn: MaskFn | None = None,
                 cache: int = 64):
        self.subject, self.region, self.mask_fn = subject, tuple(int(v) for v in region), mask_fn
        self._cache = Lru(cache)

    def get(self, j: int) -> dict:
        """``{"frame": (H, W, 3) uint8, "labels": (H, W) uint8, "mask": (side, side, 1) float32,
        "extra": [(side, side, 1) float16, ...]}`` (the masks after the first)."""
        item = self._cache.get(j)
        if item is not None:
            return item
        labels = self.subject.mask(j)
        x0, y0, side = self.region
        mask, extra = None, []
        if self.mask_fn is not None:  # copies of the region: a view would keep the whole frame's mask alive
            m = self.mask_fn(j, labels.shape)
            mask, *extra = [np.array(x[y0:y0 + side, x0:x0 + side, None]) for x in
                            ([m] if isinstance(m, np.ndarray) else m)]
            extra = [x.astype(np.float16) for x in extra]
        item = {"frame": self.subject.frame(j), "labels": labels, "mask": mask, "extra": extra}
        return self._cache.put(j, item)

    def mask(self, j: int, weights=()) -> np.ndarray:
        """(side, side, 1) the paste mask of frame ``j``: the first mask, and where ``weights`` (one per
        further mask, 0 leaves it out) say, the most of it and the others times their weight."""
        item = self.get(j)
        out = item["mask"]
        for x, w in zip(item["extra"], weights):
            if w > 0:
                out = np.maximum(out, x.astype(np.float32) * np.float32(min(w, 1.0)))
        return out

    def paste(self, crop: np.ndarray, j: int, weights=()) -> np.ndarray:
        """Recorded frame ``j`` with ``crop`` (side-agnostic square) blended in under its mask (``mask``)."""
        return paste(self.get(j)["frame"], crop, self.region, self.mask(j, weights))


class SpeechFrames(RecordedFrames):
    """Recorded frames a rendered crop goes into only where speech changes them: the lower face from under
    the nose down (``speech_face_mask``), and the eyes (``eye_mask``) only as far as the drawn eye openness
    differs from the frame's own (a blink added, ``--eye``); the eyes, brows, forehead, hair, torso and
    background stay the recording. ``landmarks`` (N, 478, 2+) in subject pixels; ``eye``: the openness
    the crop was drawn at (None: the frame's own)."""

    def __init__(self, subject: Subject, region: tuple[int, int, int], landmarks: np.ndarray, cache: int = 64):
        feather = max(3.0, region[2] / 40)
        super().__init__(subject, region, lambda j, shape: (speech_face_mask(landmarks[j], shape, feather),
                                                            eye_mask(landmarks[j], shape, feather / 2)), cache)
        self.eye = subject.tracks["eye"]

    def weights(self, j: int, eye: np.ndarray | None) -> tuple[float]:
        """The eye mask's weight: how far the drawn openness (the more of both eyes) differs from frame j's
        own: 0 (the recording, within 2 %) … 1 (15 % off)."""
        if eye is None:
            return (0.0,)
        off = float(np.abs(np.asarray(eye, np.float64) / np.maximum(self.eye[j], 1e-3) - 1.0).max())
        return (min(1.0, max(0.0, (off - 0.02) / 0.13)),)

    def mask_for(self, j: int, eye: np.ndarray | None) -> np.ndarray:
        """(side, side, 1) where a crop drawn at openness ``eye`` replaces frame j."""
        return self.mask(j, self.weights(j, eye))

    def paste_for(self, crop: np.ndarray, j: int, eye: np.ndarray | None) -> np.ndarray:
        """Recorded frame j with ``crop`` (drawn at openness ``eye``) blended in under ``mask_for``."""
        return self.paste(crop, j, self.weights(j, eye))

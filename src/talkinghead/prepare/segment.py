"""Per-frame segmentation: person vs background (SelfieSegmentation), split by
landmarks into head and neck/torso, plus the face region.

Labels (one uint8 PNG per frame, defined in ``compose.labels``): 0 background,
1 neck/torso, 2 head (hair, ears, face), 3 face region (inside the face oval). The head/torso split is the
jaw line: the lower half of the face oval, extended sideways at the level of
its ends.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..compose.labels import FACE, HEAD, TORSO
from ..geometry import face as mesh
from ..geometry.face import JAW


class PersonSegmenter:
    """mediapipe SelfieSegmentation (general model, 256x256) returning a soft mask."""

    def __init__(self):
        from ..progress import interrupts_deferred, native_stderr_silenced

        with interrupts_deferred(), native_stderr_silenced():
            import mediapipe as mp

            self._seg = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
            self._seg.process(np.zeros((64, 64, 3), np.uint8))  # first call logs its set-up warnings

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return self._seg.process(rgb).segmentation_mask

    def close(self) -> None:
        self._seg.close()


def jaw_line_y(lm: np.ndarray, width: int) -> np.ndarray:
    """For every image column, the y of the jaw line (held flat beyond the jaw's ends)."""
    pts = lm[JAW, :2]
    order = np.argsort(pts[:, 0])
    xs, ys = pts[order, 0], pts[order, 1]
    return np.interp(np.arange(width), xs, ys)


def face_polygon_mask(lm: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(lm[mesh.FACE_OVAL, :2]).astype(np.int32)], 1)
    return m.astype(bool)


def label_map(person: np.ndarray, lm: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Combine a soft person mask and crop-space landmarks into the label image."""
    h, w = person.shape
    fg = person > threshold
    face = face_polygon_mask(lm, (h, w))
    above_jaw = np.arange(h)[:, None] < jaw_line_y(lm, w)[None, :]
    labels = np.zeros((h, w), np.uint8)
    labels[fg] = TORSO
    labels[fg & above_jaw] = HEAD
    labels[face] = FACE  # the face counts even where the segmenter is unsure
    return labels

"""The lower face that goes with a mouth: chin, cheeks and the skin around the lips follow the lips and jaw.

An engine that draws a requested mouth into a replayed frame must move that frame's whole lower face with it,
or the frame's own chin and cheeks (its own mouth, on held-out frames) show through, and a face held still
opens its mouth only half (bench/RESULTS.md, "the `rhythm` engine").
"""

from __future__ import annotations

import numpy as np

from ..geometry.pose import lower_face
from .expression import MOUTH_POINTS

__all__ = ["LowerFace"]


class LowerFace:
    """Pose-free lower-face points (``geometry.pose.lower_face``, 3-D) as a linear function of the mouth and jaw
    (``MOUTH_POINTS``, x and y), fitted by ridge regression on training frames' tracked landmarks."""

    def __init__(self, canon: np.ndarray, ridge: float = 1e-3):
        self.idx = lower_face()
        X = canon[:, MOUTH_POINTS, :2].reshape(len(canon), -1).astype(np.float64)
        Y = canon[:, self.idx].reshape(len(canon), -1).astype(np.float64)
        self.mx, self.my = X.mean(0), Y.mean(0)
        Xc = X - self.mx
        A = Xc.T @ Xc
        self.W = np.linalg.solve(A + ridge * np.trace(A) / len(A) * np.eye(len(A)), Xc.T @ (Y - self.my))

    def __call__(self, mouth: np.ndarray) -> np.ndarray:
        """(len(lower_face), 3) the lower face that goes with ``mouth`` (len(MOUTH_POINTS), 2)."""
        return (self.my + (np.asarray(mouth, np.float64).reshape(-1) - self.mx) @ self.W).reshape(-1, 3)

    def apply(self, canon: np.ndarray, mouth: np.ndarray) -> np.ndarray:
        """A copy of pose-free landmarks ``canon`` (478, 3) with the lower face of ``mouth`` and that mouth."""
        out = np.asarray(canon, np.float64).copy()
        out[self.idx] = self(mouth)
        out[MOUTH_POINTS, :2] = mouth
        return out

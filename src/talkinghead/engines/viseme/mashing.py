"""Keypoint mashing (NEON Sec. 3.3): audio of frame i, head pose of frame j.

Frame i's pose-free landmarks ``K_f = P⁻¹·proj⁻¹(K)`` give its mouth shape
free of head motion; frame j's give the rest of the face. The mashed shape
takes the lower face (lips, jaw, chin) from i and everything else from j,
then is re-posed with j's head pose and projected. The oracle renders it into
a synthetic ground-truth image for (audio of i, pose of j), a pairing that
never occurs in the recording: the renderer can no longer predict the mouth
from the head pose.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ...geometry.pose import canonical_face, lower_face, project


@lru_cache(maxsize=1)
def seam() -> np.ndarray:
    """Upper-face points within 1.2 cm above the lower-face cut, near the midline."""
    c = canonical_face()
    upper = np.setdiff1d(np.arange(len(c)), lower_face())
    cut = c[lower_face(), 1].min()
    return upper[(c[upper, 1] > cut - 1.2) & (np.abs(c[upper, 0]) < 5.0)]


def mash(canon_i: np.ndarray, canon_j: np.ndarray, R_j: np.ndarray, t_j: np.ndarray,
         K: np.ndarray) -> np.ndarray:
    """Pixel landmarks (478, 2) with i's mouth on j's face and pose.

    i's lower face is shifted by the mean offset between j and i at the seam,
    so small differences in the two pose-free shapes do not tear the face.
    """
    X = canon_j.astype(np.float64).copy()
    Xi = canon_i.astype(np.float64)
    s = seam()
    X[lower_face()] = Xi[lower_face()] + (X[s] - Xi[s]).mean(axis=0)
    return project(X, R_j.astype(np.float64), t_j.astype(np.float64), K.astype(np.float64))

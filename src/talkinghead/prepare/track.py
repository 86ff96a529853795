"""Face tracking: mediapipe FaceMesh (478 points with iris) over a frame stream.

``FaceTracker`` wraps the legacy FaceMesh solution in video mode with up to
two faces, so a second person is noticed. The largest face is kept; if the
largest face jumps to another person mid-video (faces swap) that is an error,
since the subject would change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import FaceError
from ..geometry import face as mesh
from ..progress import interrupts_deferred, native_stderr_silenced

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _facemesh(static: bool, max_faces: int):
    with interrupts_deferred(), native_stderr_silenced():
        from absl import logging as absl_logging
        import mediapipe as mp

        absl_logging.set_verbosity(absl_logging.ERROR)
        fm = mp.solutions.face_mesh.FaceMesh(static_image_mode=static, max_num_faces=max_faces,
                                             refine_landmarks=True, min_detection_confidence=0.5,
                                             min_tracking_confidence=0.5)
        fm.process(np.zeros((64, 64, 3), np.uint8))  # first call logs its set-up warnings
    return fm


def detect_landmarks(img: np.ndarray) -> list[np.ndarray]:
    """All faces in one still RGB image, each (478, 3) pixels (z scaled like x), largest first."""
    with _facemesh(True, 4) as fm:
        return _faces(fm, img)


def square(rgb: np.ndarray) -> np.ndarray:
    """The frame padded with black on the right or bottom to a square: FaceMesh's landmark projection is only
    right for square input (mediapipe warns "NORM_RECT without IMAGE_DIMENSIONS"), and with padding there
    pixel coordinates stay those of the original frame."""
    h, w = rgb.shape[:2]
    if h == w:
        return rgb
    out = np.zeros((max(h, w), max(h, w), 3), rgb.dtype)
    out[:h, :w] = rgb
    return out


def _faces(fm, rgb: np.ndarray) -> list[np.ndarray]:
    """Every face FaceMesh finds in ``rgb``, (478, 3) pixels (z scaled like x), largest first."""
    sq = square(rgb)
    side = sq.shape[0]
    out = []
    for f in fm.process(sq).multi_face_landmarks or []:
        out.append(np.array([(p.x * side, p.y * side, p.z * side) for p in f.landmark], dtype=np.float32))
    return sorted(out, key=lambda lm: -_area(lm))


def _area(lm: np.ndarray) -> float:
    x0, y0, x1, y1 = mesh.bbox(lm)
    return float((x1 - x0) * (y1 - y0))


@dataclass
class FaceTracker:
    """Feed frames in order; collect landmarks of the largest face per frame."""

    max_faces: int = 2
    landmarks: list = field(default_factory=list)  # (478, 3) or None per frame
    multi_face_frames: int = 0
    swaps: int = 0

    def __post_init__(self):
        self._fm = _facemesh(False, self.max_faces)
        self._last_center = None

    def update(self, rgb: np.ndarray) -> np.ndarray | None:
        faces = _faces(self._fm, rgb)
        if not faces:
            self.landmarks.append(None)
            return None
        chosen = faces[0]
        if len(faces) > 1:
            self.multi_face_frames += 1
            if self._last_center is not None:
                # Keep following the same person when sizes are close; count real swaps.
                centers = [mesh.bbox(f).reshape(2, 2).mean(0) for f in faces]
                near = int(np.argmin([np.linalg.norm(c - self._last_center) for c in centers]))
                if near != 0:
                    self.swaps += 1
                    chosen = faces[near]
        x0, y0, x1, y1 = mesh.bbox(chosen)
        self._last_center = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        self.landmarks.append(chosen)
        return chosen

    def close(self) -> None:
        self._fm.close()

    def result(self, max_missing: float = 0.10) -> tuple[np.ndarray, np.ndarray]:
        """Stacked (N, 478, 3) landmarks with gaps interpolated, and the found-mask.

        Raises FaceError when no face is found or more than ``max_missing`` of
        frames lack one, or when the largest face switches between people.
        """
        n = len(self.landmarks)
        found = np.array([lm is not None for lm in self.landmarks])
        if n == 0 or not found.any():
            raise FaceError("no face found in the video")
        miss = 1.0 - found.mean()
        if miss > max_missing:
            raise FaceError(f"face missing in {miss:.0%} of frames (more than {max_missing:.0%}); "
                            "use a video where the face stays visible")
        if self.swaps > max(2, 0.02 * n):
            raise FaceError(f"two faces swap places as the largest {self.swaps} times; "
                            "crop the video to one person")
        lm = np.stack([x if x is not None else np.zeros((mesh.N_LANDMARKS, 3), np.float32)
                       for x in self.landmarks])
        return interpolate_gaps(lm, found), found


def interpolate_gaps(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linear interpolation over time of rows where ``valid`` is False (ends held)."""
    t = np.arange(len(x))
    good = np.flatnonzero(valid)
    if len(good) == len(x):
        return x
    flat = x.reshape(len(x), -1)
    out = np.empty_like(flat)
    for j in range(flat.shape[1]):
        out[:, j] = np.interp(t, good, flat[good, j])
    return out.reshape(x.shape)

"""One streaming pass over a video: FaceMesh landmarks and the face signals metrics need.

``analyze_video`` decodes the video once, frame by frame (never holding the
frames), tracks the face with :class:`~talkinghead.prepare.track.FaceTracker`
and returns per-frame landmarks, mouth aperture, eye openness and lip box,
plus the audio track. Frames without a face are NaN rows, never interpolated:
metrics decide for themselves how to treat gaps.

The mouth aperture is pose-free when possible: the head pose of every tracked
frame is estimated (:func:`~talkinghead.prepare.pose.estimate_poses`, as
``prepare`` does) and the aperture is measured on the pose-free landmarks, so
nodding or turning does not read as opening or closing the mouth. If the pose
fit fails (e.g. very few tracked frames) the image-space aperture is used,
which is still normalised by the eye distance. Both read ~0 for closed lips.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from ..audio.wav import SAMPLE_RATE
from ..errors import FaceError, InputError
from ..geometry import face as mesh
from ..io.video import count_frames, iter_frames, probe
from ..progress import bar, warn



@dataclass
class VideoAnalysis:
    """Per-frame face signals of one video; NaN where no face was found."""

    path: str
    fps: float
    size: tuple[int, int]             # (width, height) after rotation
    landmarks: np.ndarray             # (N, 478, 3) float32 image pixels, NaN rows where no face
    found: np.ndarray                 # (N,) bool
    aperture: np.ndarray              # (N,) float64 mouth aperture (pose-free if ``pose_free``)
    eye: np.ndarray                   # (N, 2) eye openness (right, left)
    lip_box: np.ndarray               # (N, 4) x0, y0, x1, y1 pixels
    pose_free: bool                   # whether ``aperture`` comes from pose-free landmarks
    audio: np.ndarray | None = None   # float32 mono at ``sample_rate``; None without a track
    sample_rate: int = SAMPLE_RATE
    samples: dict[int, np.ndarray] = field(default_factory=dict)  # frame index -> RGB uint8

    @property
    def n_frames(self) -> int:
        return len(self.found)

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps


def pose_free_aperture(landmarks: np.ndarray, found: np.ndarray, size: tuple[int, int]) -> np.ndarray | None:
    """Mouth aperture of the pose-free (canonical) landmarks, frontal view; NaN where not found.

    ``estimate_poses`` assumes a square image with the principal point in its
    centre, so a W x H frame is treated as padded to a centred S x S square
    (S = max(W, H)). Returns None when the pose fit fails.
    """
    from ..prepare.pose import estimate_poses

    idx = np.flatnonzero(found)
    out = np.full(len(found), np.nan)
    if len(idx) == 0:
        return out
    w, h = size
    side = max(w, h)
    lm = landmarks[idx].astype(np.float64)
    lm[..., 0] += (side - w) / 2.0
    lm[..., 1] += (side - h) / 2.0
    try:
        canon = estimate_poses(lm, side)["canon_landmarks"]
    except Exception as e:  # noqa: BLE001 - cv2/numpy failures on degenerate tracks
        warn(f"head-pose fit failed ({e.__class__.__name__}: {e}); using the image-space mouth aperture")
        return None
    # Frontal (x, y) only: the canonical z of every point is the subject's mean
    # shape's, not a measurement, and in 3-D it adds a constant-ish offset
    # (~0.04 on a closed mouth of the synthetic speaker; xy reads ~0.003).
    ap = mesh.mouth_aperture(canon[..., :2].astype(np.float64))
    if not np.all(np.isfinite(ap)):
        return None
    out[idx] = ap
    return out


def analyze_video(path: str | os.PathLike, fps: float | None = None, max_frames: int | None = None,
                  keep: Iterable[int] = (), with_audio: bool = True, require_face: bool = True,
                  on_frame: Callable[[int, np.ndarray, np.ndarray | None], None] | None = None,
                  ) -> VideoAnalysis:
    """Track the face in every frame of ``path`` (streamed once) and measure it.

    ``fps``: frame rate to sample at (default: the video's own average rate).
    ``keep``: frame indices whose RGB frames are kept in ``samples`` (for the
    report). ``with_audio``: also decode the audio track (16 kHz mono float32;
    None when the video has none). ``on_frame(i, rgb, landmarks_or_None)`` is
    called for every frame during the pass, for per-frame image metrics that
    must not hold the frames. Raises ``FaceError`` if no frame has a face and
    ``require_face`` is set.
    """
    info = probe(path)
    fps = float(fps or info.fps)
    if not (fps > 0 and np.isfinite(fps)):
        raise InputError(f"{path}: cannot determine the frame rate; pass fps")
    total = count_frames(info, fps)
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    landmarks, samples = track_frames(path, fps, max_frames, total, {int(k) for k in keep}, on_frame)
    found = np.isfinite(landmarks).all(axis=(1, 2))
    if require_face and not found.any():
        raise FaceError(f"{path}: no face found in any frame")
    size = (info.width, info.height)
    aperture, eye, box, pose_free = face_signals(landmarks, found, size)
    audio = None
    if with_audio and info.has_audio:
        from ..audio.wav import load_audio

        audio = load_audio(path, sr=SAMPLE_RATE)
    return VideoAnalysis(path=str(path), fps=fps, size=size, landmarks=landmarks, found=found,
                         aperture=aperture, eye=eye, lip_box=box, pose_free=pose_free,
                         audio=audio, samples=samples)


def track_frames(path, fps: float, max_frames: int | None, total: int | None, keep: set[int],
                 on_frame=None) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """FaceMesh over the frames of ``path`` (streamed once) → ((N, 478, 3) landmarks, NaN where no face;
    the RGB frames of ``keep``); ``on_frame`` as ``analyze_video``'s."""
    from ..prepare.track import FaceTracker

    nan_lm = np.full((mesh.N_LANDMARKS, 3), np.nan, np.float32)
    rows: list[np.ndarray] = []
    samples: dict[int, np.ndarray] = {}
    tracker = FaceTracker()
    try:
        with bar(total=total or None, desc="track", unit="frame") as pbar:
            for i, rgb in enumerate(iter_frames(path, fps, max_frames=max_frames)):
                lm = tracker.update(rgb)
                rows.append(nan_lm if lm is None else np.asarray(lm, np.float32))
                if i in keep:
                    samples[i] = rgb.copy()
                if on_frame is not None:
                    on_frame(i, rgb, lm)
                tracker.landmarks.clear()  # we keep our own copy; don't hold two
                pbar.update()
    finally:
        tracker.close()
    if not rows:
        raise InputError(f"{path}: no frames decoded")
    return np.stack(rows), samples


def face_signals(landmarks: np.ndarray, found: np.ndarray, size: tuple[int, int]):
    """(aperture (N,), eye openness (N, 2), lip box (N, 4), whether the aperture is pose-free) of tracked
    landmarks, NaN where no face was found; pose-free where the head pose can be fitted (``pose_free_aperture``)."""
    n = len(found)
    aperture, eye, box = np.full(n, np.nan), np.full((n, 2), np.nan), np.full((n, 4), np.nan)
    pose_free = False
    if found.any():
        lmf = landmarks[found].astype(np.float64)
        eye[found] = mesh.eye_openness(lmf)
        box[found] = mesh.lip_box(lmf)
        ap = pose_free_aperture(landmarks, found, size)
        if ap is not None:
            aperture, pose_free = ap, True
        else:
            aperture[found] = mesh.mouth_aperture(lmf)
    return aperture, eye, box, pose_free

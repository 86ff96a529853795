"""Head pose and eyes per output frame: which recorded frame to replay, a user pose, blinks.

A ``Schedule`` answers for any range of output frames without knowing how many
will come, so a stream (live audio) and a whole file get the same rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..subject import Subject


def pingpong(n: int, lo: int, hi: int, start: int = 0) -> np.ndarray:
    """Indices lo..hi-1 played forwards then backwards, repeated: output frames start..start+n-1."""
    span = hi - lo
    if span <= 1:
        return np.full(n, lo)
    period = 2 * (span - 1)
    k = (start + np.arange(n)) % period
    return lo + np.where(k < span, k, period - k)


def still_frame(subject: Subject) -> int:
    """The frame a still pose holds: the subject's neutral frame (``Subject.neutral_frame``)."""
    return subject.neutral_frame()


class Blinks:
    """Eye openness with blinks every 2-6 s lasting ~0.2 s (a dip to 10 %), for any frame range."""

    def __init__(self, fps: float, open_eye: np.ndarray, seed: int = 0):
        self.fps, self.open_eye = fps, np.asarray(open_eye, np.float32)
        self.rng = np.random.default_rng(seed)
        self.times: list[tuple[float, float]] = []  # (start s, duration s)
        self.next_t = float(self.rng.uniform(0.5, 2.5))

    def closure(self, a: int, b: int) -> np.ndarray:
        """(b - a,) factor on eye openness for output frames a..b-1: 1 open, 0.1 at a blink's middle."""
        while self.next_t * self.fps < b:  # draw blinks as far as needed, in the same order always
            self.times.append((self.next_t, float(self.rng.uniform(0.15, 0.25))))
            self.next_t += float(self.rng.uniform(2.0, 6.0))
        out = np.ones(b - a, np.float32)
        k = np.arange(a, b) / self.fps
        for t, dur in self.times:
            out *= 1 - 0.9 * np.clip(1 - np.abs(k - t - dur / 2) / (dur / 2), 0, 1)  # triangle
        return out

    def rows(self, a: int, b: int) -> np.ndarray:
        return np.tile(self.open_eye, (b - a, 1)) * self.closure(a, b)[:, None]


def natural_blinks(n: int, fps: float, open_eye: np.ndarray, seed: int = 0) -> np.ndarray:
    """(n, 2) eye openness with natural blinks (see ``Blinks``)."""
    return Blinks(fps, open_eye, seed).rows(0, n)


def open_eye_level(subject: Subject) -> np.ndarray:
    """(2,) the subject's eyes open: the 70th percentile of the training frames' openness."""
    lo, hi = subject.meta["split"]["train"]
    return np.percentile(subject.tracks["eye"][lo:hi], 70, axis=0)


def eyes_shut(subject: Subject, frames: np.ndarray) -> np.ndarray:
    """(len(frames),) bool: the recorded frames where both eyes are under 60 % of open (a blink)."""
    return (subject.tracks["eye"][np.asarray(frames)] < 0.6 * open_eye_level(subject)).all(1)


def blink_rate(subject: Subject) -> float:
    """Blinks a minute in the training frames (``eyes_shut``, counted where they start)."""
    lo, hi = subject.meta["split"]["train"]
    shut = eyes_shut(subject, np.arange(lo, hi))
    starts = int(np.count_nonzero(shut[1:] & ~shut[:-1]) + (1 if len(shut) and shut[0] else 0))
    return starts / max((hi - lo) / subject.fps / 60.0, 1e-9)


def has_blink(subject: Subject, frames: np.ndarray) -> bool:
    """Whether the recorded ``frames`` show a blink (``eyes_shut``)."""
    return bool(eyes_shut(subject, frames).any())


def load_pose_table(path: str | Path) -> np.ndarray:
    """A user head-pose file → (M, 3|6) rows.

    ``.npy`` or whitespace/comma text, one row per output frame (looped if
    shorter): ``yaw pitch roll`` in degrees (translation of the still frame) or
    ``yaw pitch roll tx ty tz`` (cm), conventions as ``tracks.npz``.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"--pose {path}: use train, still or an existing pose file")
    try:
        arr = np.load(p) if p.suffix == ".npy" else np.loadtxt(p, delimiter="," if p.suffix == ".csv" else None,
                                                                ndmin=2)
    except ValueError as e:
        raise InputError(f"{p}: not a pose table ({e})") from None
    arr = np.atleast_2d(np.asarray(arr, np.float64))
    if arr.ndim != 2 or arr.shape[1] not in (3, 6) or len(arr) == 0 or not np.isfinite(arr).all():
        raise InputError(f"{p}: expected rows of 'yaw pitch roll' or 'yaw pitch roll tx ty tz', got shape {arr.shape}")
    return arr


class Poses:
    """Generated head poses (N, 6): yaw, pitch, roll (deg), tx, ty, tz. ``free``: the engine renders any
    pose; otherwise each output frame replays the training frame nearest in pose."""

    def __init__(self, values: np.ndarray, free: bool):
        self.values, self.free = np.asarray(values, np.float64), free


def nearest_pose_frames(subject: Subject, poses: np.ndarray, lo: int, hi: int, jump: float = 6.0) -> np.ndarray:
    """For each pose a training frame (lo..hi-1) near it (rotation, in the training deviations), along a path
    through the recording (``replay_path``): the head plays recorded stretches, forwards or backwards, and
    jumps elsewhere only when that is worth it (``jump``: its cost; inf: never); no frame-to-frame flicker."""
    from ..motion.head import pose_vectors

    train = pose_vectors(subject.tracks["rotation"][lo:hi], subject.tracks["translation"][lo:hi])[:, :3]
    scale = np.maximum(train.std(0), 1e-6)
    rows = (np.linalg.norm((p[:3] - train) / scale, axis=1) for p in np.asarray(poses))
    return lo + replay_path(rows, len(train), len(poses), jump=jump)


def replay_path(costs, m: int, n: int, turn: float = 1.5, jump: float = 6.0) -> np.ndarray:
    """The cheapest walk through recorded frames 0..m-1 for ``n`` output frames (Viterbi): ``costs`` yields,
    per output frame, each recorded frame's cost (m,). Stepping to the next frame in the direction of travel
    is free, turning round costs ``turn``, going anywhere else costs ``jump`` (holding a frame is not a
    step: the picture would freeze)."""
    if m == 1:
        return np.zeros(n, np.int64)
    inf = np.inf
    f = None  # f[d, j]: cost of the best walk ending at frame j having moved in direction d (0: +1, 1: -1)
    back = np.empty((n, 2, m), np.int8)  # 0: from j∓1 same direction, 1: turned round there, 2: jumped
    jumps_from = np.empty(n, np.int64)  # the state a jump at step k comes from (flattened 2 * m index)
    for k, c in enumerate(costs):
        c = np.asarray(c, np.float64)
        if f is None:
            f = np.stack([c, c])
            back[k] = 2
            jumps_from[k] = 0
            continue
        fwd, bwd = np.full(m, inf), np.full(m, inf)  # arriving at j from j-1 (moving +1) / from j+1 (moving -1)
        fwd[1:], bwd[:-1] = f[0, :-1], f[1, 1:]
        fwd_turn, bwd_turn = np.full(m, inf), np.full(m, inf)
        fwd_turn[1:], bwd_turn[:-1] = f[1, :-1] + turn, f[0, 1:] + turn
        jumps_from[k] = int(f.argmin())
        leap = f.flat[jumps_from[k]] + jump
        new = np.empty_like(f)
        for d, (same, turned) in enumerate(((fwd, fwd_turn), (bwd, bwd_turn))):
            options = np.stack([same, turned, np.full(m, leap)])
            back[k, d] = options.argmin(0)
            new[d] = options.min(0) + c
        f = new
    out = np.empty(n, np.int64)
    d, j = divmod(int(f.argmin()), m)
    for k in range(n - 1, -1, -1):
        out[k] = j
        how = back[k, d, j]
        if k == 0:
            break
        if how == 2:
            d, j = divmod(int(jumps_from[k]), m)
        else:
            j = j - 1 if d == 0 else j + 1  # where it came from
            d = d if how == 0 else 1 - d
    return out


class Schedule:
    """Rows of a drive other than audio: ``pose_index``, ``eye``, and ``rotation``/``translation``.

    ``pose``: ``"train"`` replays the training track back and forth, ``"still"`` holds one
    frame, a path reads a pose table (engines with free poses), an int array gives the
    recorded frames to replay (self-driven evaluation), ``Poses`` are generated ones (the head
    motion learner). ``blink``: ``"auto"`` (the replayed frames' own eyes when replaying, else
    natural blinks), ``"natural"`` (natural blinks also over replayed eyes: for a recording with
    few blinks) or ``"none"``; ``eye_level`` (0 closed … 1 open) holds the eyes at a fixed openness.
    """

    def __init__(self, subject: Subject, pose="train", blink: str = "auto", eye_level: float | None = None,
                 seed: int = 0):
        from ..geometry.pose import matrix_from_euler

        self.subject, tr = subject, subject.tracks
        self.lo, self.hi = subject.meta["split"]["train"]
        self.frames = None
        if isinstance(pose, Poses):  # generated poses: rendered as given, or replaying the nearest frames
            self.frames = None if pose.free else nearest_pose_frames(subject, pose.values, self.lo, self.hi)
            pose = pose.values if pose.free else "train"
        elif not isinstance(pose, (str, Path)):
            self.frames = np.asarray(pose, np.int64)
        self.replay = self.frames is not None or isinstance(pose, str) and pose == "train"
        self.table = None
        if self.frames is None and (isinstance(pose, np.ndarray) or pose not in ("train", "still")):
            t = pose if isinstance(pose, np.ndarray) else load_pose_table(pose)
            self.table = (np.stack([matrix_from_euler(*row[:3]) for row in t]).astype(np.float32),
                          t[:, 3:].astype(np.float32) if t.shape[1] == 6 else None)
        self.still = still_frame(subject) if not self.replay else None
        if blink not in ("auto", "natural", "none"):
            raise InputError(f"unknown --blink {blink!r}; use auto, natural or none")
        if eye_level is not None and not 0 <= eye_level <= 1.5:
            raise InputError(f"--eye {eye_level}: use 0 (closed) … 1 (open)")
        self.track_eye = tr["eye"]
        self.open_eye = open_eye_level(subject)
        self.blink, self.eye_level = blink, eye_level
        self.blinks = Blinks(subject.fps, self.open_eye, seed)

    def rows(self, a: int, b: int) -> dict[str, np.ndarray | None]:
        n = b - a
        if self.frames is not None:
            if b > len(self.frames):
                raise InputError(f"the drive has {b} frames but only {len(self.frames)} poses were given")
            pose_index = self.frames[a:b]
        elif self.replay:
            pose_index = pingpong(n, self.lo, self.hi, start=a)
        else:
            pose_index = np.full(n, self.still)
        rot = trans = None
        if self.table is not None:
            k = np.arange(a, b) % len(self.table[0])
            rot = self.table[0][k]
            trans = (self.table[1][k] if self.table[1] is not None
                     else np.tile(self.subject.tracks["translation"][self.still], (n, 1)).astype(np.float32))
        if self.eye_level is not None:
            eye = np.tile(self.open_eye * self.eye_level, (n, 1))
        elif self.blink == "none":
            eye = np.tile(self.open_eye, (n, 1))
        else:
            eye = self.track_eye[pose_index] if self.replay else self.blinks.rows(a, b)
            if self.replay and self.blink == "natural":
                eye = eye * self.blinks.closure(a, b)[:, None]
        return {"pose_index": pose_index.astype(np.int64), "eye": eye.astype(np.float32),
                "rotation": rot, "translation": trans}

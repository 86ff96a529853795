"""Which recorded mouth to show: the training frame whose tracked mouth is nearest the one asked for.

Unit selection (Video Rewrite's idea, in the canonical view of Speech2Lip): every mouth
drawn is one the person really made, its pixels taken from that frame and mapped into the
output frame through GAMEM, so teeth, tongue and lip texture are real and as sharp as the
video. The target cost is the squared distance of the mouth and jaw landmarks (the PCA
coefficients weighted by their variance); a walk that plays recorded frames on in order
is preferred (real motion between neighbouring frames), holding one frame costs ``hold``
and jumping anywhere else ``jump`` (both in units of the median nearest distance, so the
same settings suit any face). ``ExemplarWalk`` decides frame by frame (a live stream needs
no look-back), ``exemplar_path`` a whole sequence at once (Viterbi), for comparison.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from ...progress import bar

__all__ = ["Exemplars", "ExemplarLips", "ExemplarWalk", "exemplar_path"]


class Exemplars:
    def __init__(self, frames: np.ndarray, codes: np.ndarray, weights: np.ndarray):
        """``frames`` (M,) recorded frame indices one may show, ``codes`` (M, K) their mouth coefficients,
        ``weights`` (K,) per coefficient (its variance: the distance is then the landmarks')."""
        self.frames = np.asarray(frames, np.int64)
        self.codes = np.asarray(codes, np.float64)
        self.w = np.asarray(weights, np.float64)
        self.next = np.full(len(self.frames), -1)  # row of the recorded frame after each, where it is one
        where = {int(f): k for k, f in enumerate(self.frames)}
        for k, f in enumerate(self.frames):
            self.next[k] = where.get(int(f) + 1, -1)
        d = self.costs(self.codes[:: max(1, len(self.codes) // 200)])
        d[d <= 0] = np.inf  # a frame's distance to itself
        self.scale = float(np.median(d.min(1))) if np.isfinite(d).any() else 1.0

    def costs(self, codes: np.ndarray) -> np.ndarray:
        """(N, K) requested codes → (N, M) weighted squared distances to every exemplar."""
        c = np.asarray(codes, np.float64)
        return ((c[:, None, :] - self.codes[None]) ** 2 * self.w).sum(-1)

    def exclude(self, frames: np.ndarray, near: int) -> np.ndarray:
        """(N, M) bool: exemplars within ``near`` recorded frames of each of ``frames`` (training: never its own)."""
        return np.abs(self.frames[None] - np.asarray(frames)[:, None]) <= near


class ExemplarWalk:
    """Frame-by-frame choice: go on to the next recorded frame while it stays close enough, else the best."""

    def __init__(self, ex: Exemplars, hold: float = 0.5, jump: float = 2.0):
        self.ex, self.hold, self.jump = ex, hold, jump
        self.prev = -1  # row of the last exemplar shown

    def step(self, cost: np.ndarray) -> int:
        """One output frame: its (M,) costs → the row chosen."""
        c = cost / self.ex.scale
        best = int(np.argmin(c))
        if self.prev < 0:
            self.prev = best
            return best
        options = [(c[best] + self.jump, best), (c[self.prev] + self.hold, self.prev)]
        nxt = self.ex.next[self.prev]
        if nxt >= 0:
            options.append((c[nxt], int(nxt)))
        self.prev = min(options)[1]
        return self.prev

    def rows(self, codes: np.ndarray) -> np.ndarray:
        return np.array([self.step(c) for c in self.ex.costs(codes)], np.int64)


def exemplar_path(ex: Exemplars, codes: np.ndarray, hold: float = 0.5, jump: float = 2.0,
                  prev: int = -1) -> np.ndarray:
    """(N,) exemplar rows for a sequence: the cheapest walk (Viterbi) with the costs of ``ExemplarWalk``,
    continuing from row ``prev`` (the one shown before the sequence; -1: none)."""
    c = ex.costs(codes) / ex.scale
    n, m = c.shape
    f = c[0].copy()
    if prev >= 0:
        step = np.full(m, jump)
        step[prev] = hold
        if ex.next[prev] >= 0:
            step[ex.next[prev]] = 0.0
        f += step
    back = np.empty((n, m), np.int64)
    back[0] = np.arange(m)
    has_prev = np.flatnonzero(ex.next >= 0)
    for k in range(1, n):
        best = int(np.argmin(f))
        cand = np.full(m, f[best] + jump)
        src = np.full(m, best)
        held = f + hold
        better = held < cand
        cand[better], src[better] = held[better], np.arange(m)[better]
        tgt = ex.next[has_prev]
        go = f[has_prev] < cand[tgt]
        cand[tgt[go]], src[tgt[go]] = f[has_prev][go], has_prev[go]
        f = cand + c[k]
        back[k] = src
    out = np.empty(n, np.int64)
    out[-1] = int(np.argmin(f))
    for k in range(n - 1, 0, -1):
        out[k - 1] = back[k, out[k]]
    return out


class ExemplarLips:
    """Each exemplar's lips in the canonical view, kept JPEG-compressed (a few KB a frame) and saved with the
    model: showing a recorded mouth is then one small decode and one resample, not a warp of the whole
    recorded frame. ``make(i)`` → (h, w, 3) uint8 computes a frame's image the first time it is asked for."""

    def __init__(self, make: Callable[[int], np.ndarray], quality: int = 95):
        self.make, self.quality = make, quality
        self.jpeg: dict[int, np.ndarray] = {}

    def image(self, i: int) -> np.ndarray:
        """(h, w, 3) uint8 RGB of recorded frame ``i``'s canonical lips."""
        i = int(i)
        if i not in self.jpeg:
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(self.make(i)[..., ::-1]),
                                   [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            self.jpeg[i] = buf.reshape(-1)
        return cv2.imdecode(self.jpeg[i], cv2.IMREAD_COLOR)[..., ::-1]

    def fill(self, frames: np.ndarray, desc: str = "exemplar lips") -> None:
        """Compute the images of ``frames`` not kept yet (before saving)."""
        todo = [int(i) for i in frames if int(i) not in self.jpeg]
        b = bar(len(todo), desc, unit="f")
        for i in todo:
            self.image(i)
            b.update()
        b.close()

    def state(self) -> dict:
        """The kept images as two arrays (frames, JPEG bytes end to end, where each ends)."""
        frames = sorted(self.jpeg)
        bufs = [self.jpeg[i] for i in frames]
        return {"frames": np.asarray(frames, np.int64),
                "bytes": np.concatenate(bufs) if bufs else np.zeros(0, np.uint8),
                "ends": np.cumsum([len(b) for b in bufs]).astype(np.int64)}

    def load(self, state: dict) -> "ExemplarLips":
        starts = np.concatenate([[0], state["ends"][:-1]]) if len(state["ends"]) else []
        for i, a, b in zip(state["frames"], starts, state["ends"]):
            self.jpeg[int(i)] = np.asarray(state["bytes"][a:b], np.uint8)
        return self

"""``Timeline``: what one live session shows and plays, slot by slot, on one clock.

Output time is cut into slots of 1/fps seconds. Slot n is video frame n and
audio samples ``round(n * sr / fps)`` … ``round((n + 1) * sr / fps)`` (16 kHz).
Whichever track first needs slot n decides it, once, so sound and picture can
never disagree: the slot holds the next frame of the current answer together
with that frame's own audio, or, when no answer is playing, the idle loop and
silence. If an answer's next frame is not rendered in time, the slot holds the
last picture and plays silence, and the answer resumes one slot later: a
stutter, never a lip-sync drift.

Answers wait in a short queue (``max_queue``); ``interrupt`` drops the current
one and the queue at once (barge-in). Events (``speaking`` / ``idle``, with the
wall-clock time the slot is shown) go to ``on_event``.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

import numpy as np

from ..audio.wav import SAMPLE_RATE
from ..errors import InputError
from .idle import IdleLoop
from .render import Renderer, Utterance

LEAD = 3  # an answer's head motion starts this many loop frames past the idle position (its render time)


class Timeline:
    def __init__(self, loop: IdleLoop, renderer: Renderer, make_utterance: Callable[..., Utterance],
                 on_event: Callable[[dict], None] | None = None, max_queue: int = 4, gap_s: float = 1.0,
                 prebuffer_s: float = 0.0, start_wait_s: float = 0.0):
        self.loop, self.renderer, self.make_utterance = loop, renderer, make_utterance
        self.fps, self.sr = loop.fps, SAMPLE_RATE
        self.on_event = on_event or (lambda e: None)
        self.max_queue, self.gap_s = max_queue, gap_s
        self.prebuffer = int(round(prebuffer_s * self.fps))
        self.start_wait_s = start_wait_s  # a whole answer may start this much later to play without a stutter
        self.t0: float | None = None  # wall-clock time of slot 0
        self.decided = 0  # slots decided so far
        self.images: dict[int, np.ndarray] = {}
        self.pcm, self.pcm_base = np.zeros(0, np.float32), 0
        self.idle_pos = 0
        self.current: Utterance | None = None
        self.queue: deque = deque()  # requests: {kind, pcm (list of arrays), phones, ended}
        self.last_image = loop.frame(0)
        self.stats = {"holds": 0}
        self.closed = False

    # ---- requests (the event loop) ---------------------------------------------------------------
    def say(self, pcm: np.ndarray, phones=None, kind: str = "text") -> None:
        """Queue a whole answer (16 kHz audio, optional known phones)."""
        self._enqueue({"kind": kind, "pcm": [np.asarray(pcm, np.float32)], "phones": phones, "ended": True})

    def stream(self, pcm: np.ndarray) -> None:
        """Streamed speech: continues the streamed answer being fed (or waiting its turn), or starts one."""
        pcm = np.asarray(pcm, np.float32).reshape(-1)
        u = self._feeding()
        if u is not None:
            u.feed(pcm)
            self.renderer.wake()
        elif self.queue and self.queue[-1]["kind"] == "stream" and not self.queue[-1]["ended"]:
            self.queue[-1]["pcm"].append(pcm)
        else:
            self._enqueue({"kind": "stream", "pcm": [pcm], "phones": None, "ended": False})

    def end_stream(self) -> None:
        """The streamed answer has all its audio."""
        u = self._feeding()
        if u is not None:
            u.finish()
            self.renderer.wake()
        elif self.queue and self.queue[-1]["kind"] == "stream":
            self.queue[-1]["ended"] = True

    def interrupt(self) -> None:
        self.queue.clear()
        if self.current is not None:
            self._drop(self.current, "interrupted")

    def close(self) -> None:
        self.closed = True
        self.interrupt()

    def _feeding(self) -> Utterance | None:
        u = self.current
        return u if u is not None and u.kind == "stream" and not u.input_done else None

    def _enqueue(self, req) -> None:
        if self.closed:
            raise InputError("this session has ended")
        if len(self.queue) >= self.max_queue:
            raise InputError(f"{self.max_queue} answers are already waiting; stop or wait")
        self.queue.append(req)
        if self.current is None:
            self._start_next()

    def _start_next(self) -> Utterance | None:
        if not self.queue:
            return None
        req = self.queue.popleft()
        u = self.make_utterance(offset=self.idle_pos + LEAD, phones=req["phones"], kind=req["kind"])
        self.current = u
        for pcm in req["pcm"]:
            u.feed(pcm)
        if req["ended"]:
            u.finish()
        self.renderer.add(u)
        return u

    def _drop(self, u: Utterance, why: str) -> None:
        u.cancel()
        self.renderer.wake()
        if u.played:
            self.idle_pos = u.offset + u.played
        self.current = None
        self.on_event({"type": "idle", "utterance": u.id, "reason": why, "t": self._wall(self.decided)})
        self._start_next()

    # ---- the clock (the media tracks) -----------------------------------------------------------
    def clock(self) -> float:
        if self.t0 is None:
            self.t0 = time.time()
        return self.t0

    def _wall(self, n: int) -> float:
        return self.clock() + n / self.fps

    def slot_bounds(self, n: int) -> tuple[int, int]:
        return int(round(n * self.sr / self.fps)), int(round((n + 1) * self.sr / self.fps))

    def image(self, n: int) -> np.ndarray:
        """The picture of slot n (decides slots up to n)."""
        self._decide_to(n)
        return self.images.get(n, self.last_image)

    def samples(self, a: int, b: int) -> np.ndarray:
        """Audio samples a..b-1 of the session (decides the slots they fall in)."""
        n = int(np.floor((b - 1) * self.fps / self.sr))
        while self.slot_bounds(n)[1] < b:
            n += 1
        self._decide_to(n)
        out = self.pcm[max(0, a - self.pcm_base):max(0, b - self.pcm_base)]  # what was read before is gone
        if b > self.pcm_base:  # the audio track reads forwards: forget what it has read
            self.pcm, self.pcm_base = self.pcm[b - self.pcm_base:], b
        return np.pad(out, (b - a - len(out), 0)) if len(out) < b - a else out

    def _decide_to(self, n: int) -> None:
        while self.decided <= n:
            self._decide(self.decided)
            self.decided += 1
        for k in [k for k in self.images if k < n - 8]:
            del self.images[k]

    def _decide(self, n: int) -> None:
        a, b = self.slot_bounds(n)
        u, img, pcm = self.current, None, None
        if u is not None and u.kind == "stream" and not u.input_done and time.monotonic() - u.last_feed > self.gap_s:
            u.finish()  # the speaker went quiet: the answer ends with the audio it has
            self.renderer.wake()
        if u is not None:
            if u.ready(self.prebuffer if u.kind == "stream" else 0, self.start_wait_s):
                img, pcm = u.take()
                self.renderer.wake()
                if u.played == 1:
                    self.on_event({"type": "speaking", "utterance": u.id, "t": self._wall(n)})
            elif u.finished():
                self.idle_pos = u.offset + u.played
                self.current = None
                self.on_event({"type": "idle", "utterance": u.id, "reason": "done", "t": self._wall(n)})
                self._start_next()
            elif u.played:
                img, pcm = self.last_image, np.zeros(b - a, np.float32)  # late frame: hold, in sync
                self.stats["holds"] += 1
        if img is None:  # idle (also while an answer's first frames render)
            img, pcm = self.loop.frame(self.idle_pos), np.zeros(b - a, np.float32)
            self.idle_pos += 1
        self.last_image = img
        self.images[n] = img
        self.pcm = np.concatenate([self.pcm, pcm[:b - a]])

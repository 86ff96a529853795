"""Frames for live sessions: answers rendered as their audio arrives (the idle loop: ``idle.py``).

* ``Utterance``: one answer. Its audio (16 kHz) comes all at once (text through
  TTS, an uploaded file) or in chunks (a microphone, an agent's TTS); a
  ``DriveStream`` and the engine's ``RenderSession`` turn it into frames a few
  at a time. Its head motion continues the idle loop from where the loop was,
  so the head does not jump when the person starts or stops talking. Frames
  wait in a bounded buffer (``max_ahead``); a client that stops taking them
  stops the rendering, never grows memory.
* ``Renderer``: ``workers`` threads (default 2) render the answers of all
  sessions; an answer is rendered by one worker at a time (its batches stay in
  order), two sessions' answers render side by side (a batch's convolutions
  split poorly over two cores; two batches do not: bench/RESULTS.md "live
  serving"). An engine not marked ``thread_safe`` renders under one lock, which
  ``POST /say`` and the idle loop share, batch by batch.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque

import numpy as np
import torch

from ..audio.wav import SAMPLE_RATE
from ..drive.stream import DriveStream
from ..engines.base import Engine
from ..errors import InputError
from ..progress import warn
from .idle import IdleLoop

MAX_UTTERANCE_S = 600.0  # longest single answer (its head motion is laid out in advance)
# an answer starts when its rendering is projected to take at most this times its playing time: the first
# batch renders slower than the later, larger ones, so an idle server is not made to wait by it
PLAY_THROUGH_SLACK = 1.1


class LockedEngine:
    """The engine with ``prepare_batch`` / ``render_batch`` under one lock: sessions share it batch by batch.
    A ``thread_safe`` engine gets a lock that never blocks (its batches may render side by side). Its
    ``session`` and ``render`` are the engine's own, run over the locked batches."""

    session, render = Engine.session, Engine.render

    def __init__(self, engine):
        self._engine = engine
        self.lock = contextlib.nullcontext() if getattr(engine, "thread_safe", False) else threading.Lock()

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def prepare_batch(self, rows, ks):
        with self.lock:
            return self._engine.prepare_batch(rows, ks)

    def render_batch(self, rows, ks, prepared, state):
        with self.lock:
            return self._engine.render_batch(rows, ks, prepared, state)


class DecoderPool:
    """Live phone decoders (pocketsphinx, ~0.1 s to make) handed to streamed answers and back."""

    def __init__(self, warm: int = 1):
        from ..audio.phones import _make_decoder

        self._make, self.lock = _make_decoder, threading.Lock()
        self.free = [_make_decoder() for _ in range(warm)]

    def acquire(self):
        with self.lock:
            if self.free:
                return self.free.pop()
        return self._make()

    def release(self, decoder) -> None:
        with self.lock:
            self.free.append(decoder)


class Utterance:
    """One answer: 16 kHz audio in (``feed`` / ``finish``), frames and their audio out (``take``)."""

    _ids = iter(range(1, 1 << 62))

    def __init__(self, engine, loop: IdleLoop, offset: int, phones=None, decoder=None, batch_size: int = 4,
                 first_batch: int | None = None, max_ahead: int = 50, max_buffer_s: float = 60.0,
                 commit_s: float = 0.2, kind: str = "text", pool: DecoderPool | None = None):
        self.id, self.kind, self.offset = next(self._ids), kind, int(offset)
        self.pool = pool
        decoder = pool.acquire() if phones is None and pool is not None else None
        self.fps, self.max_ahead = loop.fps, max_ahead
        n_max = int(MAX_UTTERANCE_S * self.fps) + 64
        self.stream = DriveStream(engine, phones=phones, recognise=phones is None, pose=loop.poses(offset, n_max),
                                  blink=loop.blink, seed=self.id, decoder=decoder, commit_s=commit_s)
        self.session = engine.session(batch_size, first_batch)
        self.chunk = max(1, int(round(batch_size * SAMPLE_RATE / self.fps)))
        self.max_buffer = int(max_buffer_s * SAMPLE_RATE)
        self.lock = threading.Lock()
        self.pending: deque[np.ndarray] = deque()  # fed audio not yet given to the stream
        self.audio, self.audio_base = np.zeros(0, np.float32), 0  # fed audio not yet played, from sample audio_base
        self.frames: deque[np.ndarray] = deque()  # rendered, not yet played
        self.fed = self.rendered = self.played = 0
        self.input_done = self.render_done = self.cancelled = False
        self.last_feed = time.monotonic()
        self.started: float | None = None  # when its rendering began
        self.first_at: float | None = None  # when its first frame was rendered

    # ---- audio in (the event loop) -------------------------------------------------------------
    def feed(self, pcm: np.ndarray) -> None:
        pcm = np.asarray(pcm, np.float32).reshape(-1)
        with self.lock:
            if self.input_done:
                raise InputError("this answer has ended; start a new one")
            if self.fed - self.audio_base + len(pcm) > self.max_buffer:
                raise InputError(f"speech is arriving more than {self.max_buffer / SAMPLE_RATE:.0f} s ahead of "
                                 "playback; send it in real time")
            if self.fed + len(pcm) > MAX_UTTERANCE_S * SAMPLE_RATE:
                raise InputError(f"one answer is at most {MAX_UTTERANCE_S:.0f} s; start a new one")
            self.pending.append(pcm)
            self.audio = np.concatenate([self.audio, pcm])
            self.fed += len(pcm)
            self.last_feed = time.monotonic()

    def finish(self) -> None:
        with self.lock:
            self.input_done = True

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            self.frames.clear()
            self.pending.clear()

    # ---- rendering (the renderer thread) ---------------------------------------------------------
    def work(self) -> bool:
        """Render what the audio so far allows, one chunk; False when there is nothing to do now."""
        with self.lock:
            if self.cancelled or self.render_done or len(self.frames) >= self.max_ahead:
                return False
            take = self._take_pending()
            end = self.input_done and not self.pending
        if take is None and not end:
            return False
        if self.started is None:
            self.started = time.monotonic()
        new = list(self.session.push(self.stream.push(take))) if take is not None else []
        if end:
            new += list(self.session.push(self.stream.end())) + list(self.session.end())
        with self.lock:
            if self.cancelled:
                return True
            self.frames.extend(new)
            self.rendered += len(new)
            self.render_done = end
            if self.first_at is None and self.rendered:
                self.first_at = time.monotonic()
        return True

    def has_work(self) -> bool:
        """Something to render now: audio not rendered yet (or its end) and room in the frame buffer."""
        with self.lock:
            return (not (self.cancelled or self.render_done) and len(self.frames) < self.max_ahead
                    and (bool(self.pending) or self.input_done))

    def _take_pending(self) -> np.ndarray | None:
        if not self.pending:
            return None
        parts, n = [], 0
        while self.pending and n < self.chunk:
            x = self.pending.popleft()
            if n + len(x) > self.chunk:
                x, rest = x[:self.chunk - n], x[self.chunk - n:]
                self.pending.appendleft(rest)
            parts.append(x)
            n += len(x)
        return np.concatenate(parts)

    def close(self) -> None:
        """Hand the live phone decoder back (on a renderer worker, while no other one holds this answer)."""
        decoder = self.stream.close()
        if decoder is not None and self.pool is not None:
            self.pool.release(decoder)

    # ---- playback (the event loop) ---------------------------------------------------------------
    def ready(self, prebuffer: int = 0, max_wait_s: float = 0.0) -> bool:
        """Frame ``played`` can be shown. Before the first: ``prebuffer`` frames or the end, and an answer
        whose audio is all in also waits (at most ``max_wait_s`` after its first frame, or until the buffer
        is full) until, at the rate it renders, every later frame will be ready before playback reaches it:
        on a busy server it starts a little later instead of stuttering; on an idle one, at its first frame."""
        with self.lock:
            if self.played or self.render_done:
                return bool(self.frames)
            if len(self.frames) <= prebuffer:
                return False
            now = time.monotonic()
            if not self.input_done or len(self.frames) >= self.max_ahead or now - self.first_at >= max_wait_s:
                return True
            rate = self.rendered / max(now - self.started, 1e-3)  # frames a second, as it renders now
            total = self.fed * self.fps / SAMPLE_RATE
            return (total - self.rendered) / rate <= PLAY_THROUGH_SLACK * total / self.fps

    def finished(self) -> bool:
        with self.lock:
            return self.cancelled or (self.render_done and not self.frames)

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """The next frame and its audio (the samples of its 1/fps seconds)."""
        with self.lock:
            img = self.frames.popleft()
            m = self.played
            a, b = (int(round(k * SAMPLE_RATE / self.fps)) for k in (m, m + 1))
            pcm = self.audio[a - self.audio_base:b - self.audio_base]
            self.audio, self.audio_base = self.audio[b - self.audio_base:], b
            self.played += 1
        if len(pcm) < b - a:
            pcm = np.pad(pcm, (0, b - a - len(pcm)))
        return img, pcm


class Renderer:
    """``workers`` threads rendering every live utterance; ``wake()`` when audio arrives or frames are taken.

    Each worker takes the next answer no other worker holds (round robin), renders one chunk of it, and puts
    it back, so one answer's chunks render in order and two answers render at once."""

    def __init__(self, workers: int = 2):
        self.active: list[Utterance] = []
        self.busy: set[int] = set()  # ids of the answers a worker holds now
        self.turn = 0
        self.cores = torch.get_num_threads()  # split between the answers rendering at once
        self.lock, self.event = threading.Lock(), threading.Event()
        self.stopped = False
        self.error: BaseException | None = None
        self.threads = [threading.Thread(target=self._run, name=f"talkinghead-render-{i}", daemon=True)
                        for i in range(max(1, workers))]
        for t in self.threads:
            t.start()

    def add(self, u: Utterance) -> None:
        with self.lock:
            self.active.append(u)
        self.wake()

    def wake(self) -> None:
        self.event.set()

    def stop(self) -> None:
        for u in list(self.active):
            u.cancel()
        self.stopped = True
        self.wake()
        for t in self.threads:
            t.join(timeout=10)

    def _next(self) -> tuple[list[Utterance], Utterance | None]:
        """(answers finished and to close, the next answer to render or None), claiming the latter."""
        with self.lock:
            gone = [u for u in self.active if (u.cancelled or u.render_done) and u.id not in self.busy]
            self.active = [u for u in self.active if u not in gone]
            working = [u for u in self.active if u.id in self.busy or u.has_work()]
            free = [u for u in working if u.id not in self.busy]
            if not free:
                return gone, None
            self.turn += 1
            u = free[self.turn % len(free)]
            self.busy.add(u.id)
            # the cores go to the answers with work now: one a full buffer holds back lends its share
            share = max(1, self.cores // min(len(self.threads), len(working)))
        if share != torch.get_num_threads():  # this thread's own setting (OpenMP keeps one per thread; threads
            torch.set_num_threads(share)  # started later, e.g. POST /say's, begin with the last value set)
        return gone, u

    def _run(self) -> None:
        tried = 0  # answers tried in a row with nothing to render
        while not self.stopped:
            gone, u = self._next()
            for g in gone:
                g.close()
            did = False
            if u is not None:
                try:
                    did = u.work()
                except Exception as e:  # noqa: BLE001 - one broken answer must not stop the others
                    warn(f"an answer could not be rendered and was dropped: {type(e).__name__}: {e}")
                    self.error = e
                    u.cancel()
                finally:
                    with self.lock:
                        self.busy.discard(u.id)
            tried = 0 if did else tried + 1
            if u is None or tried > len(self.active):
                tried = 0
                self.event.wait(0.02)
                self.event.clear()

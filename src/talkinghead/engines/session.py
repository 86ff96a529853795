"""``RenderSession``: render a drive that arrives in chunks, with the engine's bounded look-ahead.

``push(chunk)`` yields the frames that can now be rendered, ``end()`` the rest.
Frame k is rendered once the drive holds frame ``k + engine.lookahead`` (the
future audio context its feature windows reach) or the drive has ended. Frames
go to the engine in batches counted from the session's first frame, so the
output does not depend on how the drive was cut: ``say`` (a whole file pushed
in one-second chunks) and a live stream (audio as it arrives) render the same
frames from the same drive. ``first_batch`` (default ``batch_size``) starts a
ramp: batches grow by half from it up to ``batch_size`` (4, 6, 8, 8, …), so the
first frame shows soon and each batch renders while the one before it plays.
Only the recent past is kept (``history`` frames before the next frame to
render), so memory stays bounded however long the stream runs. The engine's
``prepare_batch`` for the next batch runs on a worker thread while the current
batch renders.

Latency of a live stream = the audio features' own delay (``audio/stream.py``)
+ ``lookahead`` frames + one batch of render time.

A session renders through anything with an engine's three rendering members
(``BatchRenderer``): an ``Engine``, or a wrapper such as the live server's
``LockedEngine``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Protocol

import numpy as np

from .types import Drive

__all__ = ["BatchRenderer", "RenderSession", "render_drive"]


class BatchRenderer(Protocol):
    """What a session needs of an engine (see ``Engine``): its look-ahead and its two batch methods."""

    lookahead: int

    def prepare_batch(self, rows: Drive, ks: np.ndarray): ...

    def render_batch(self, rows: Drive, ks: np.ndarray, prepared, state: dict) -> list[np.ndarray]: ...


def render_drive(engine: BatchRenderer, drive: Drive, batch_size: int = 8,
                 chunk: int | None = None) -> Iterator[np.ndarray]:
    """Every frame of a whole drive, fed to a session in chunks (the path live output takes)."""
    s = RenderSession(engine, batch_size)
    for part in drive.chunks(chunk or max(batch_size, int(round(drive.fps)))):
        yield from s.push(part)
    yield from s.end()


class RenderSession:
    def __init__(self, engine: BatchRenderer, batch_size: int = 8, history: int = 16, first_batch: int | None = None):
        self.engine, self.batch_size, self.history = engine, max(1, batch_size), history
        self.first_batch = max(1, first_batch or self.batch_size)
        self.lookahead = int(engine.lookahead)
        self.parts: list[Drive] = []
        self.base = 0  # absolute frame index of the first kept row
        self.received = 0  # frames pushed so far
        self.done = 0  # frames rendered so far
        self.state: dict = {}  # the engine's per-session state (e.g. a smoothed audio code)
        self.ended = False

    def push(self, chunk: Drive) -> Iterator[np.ndarray]:
        if self.ended:
            raise RuntimeError("push after end()")
        if len(chunk):
            self.parts.append(chunk)
            self.received += len(chunk)
        yield from self._render(self.received - self.lookahead, final=False)

    def end(self) -> Iterator[np.ndarray]:
        self.ended = True
        yield from self._render(self.received, final=True)

    def _batches(self, upto: int, final: bool) -> list[np.ndarray]:
        out, k = [], self.done
        while True:
            stop = self._stop(k)
            if not (upto >= stop or (final and upto > k)):
                return out
            out.append(np.arange(k, min(upto, stop)))
            k = int(out[-1][-1]) + 1

    def _stop(self, k: int) -> int:
        """End of the batch holding frame k: boundaries from frame 0 at the ramp first_batch, x1.5 each,
        up to batch_size, then every batch_size frames (fixed by the frame count alone)."""
        stop, size = 0, self.first_batch
        while stop <= k and size < self.batch_size:
            stop, size = stop + size, min(self.batch_size, max(size + 1, size * 3 // 2))
        if stop > k:
            return stop
        return stop + -(-(k + 1 - stop) // self.batch_size) * self.batch_size

    def _render(self, upto: int, final: bool) -> Iterator[np.ndarray]:
        batches = self._batches(upto, final)
        if not batches:
            return
        rows = Drive.concat(self.parts)
        local = [ks - self.base for ks in batches]
        eng = self.engine
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(eng.prepare_batch, rows, local[0])
            for n, ks in enumerate(local):
                prepared = pending.result()
                if n + 1 < len(local):
                    pending = pool.submit(eng.prepare_batch, rows, local[n + 1])
                frames = eng.render_batch(rows, ks, prepared, self.state)
                self.done += len(ks)
                yield from frames
        self._trim(rows)

    def _trim(self, rows: Drive) -> None:
        """Keep ``history`` frames before the next frame to render (the windows' past context)."""
        keep_from = max(self.base, self.done - self.history)
        if keep_from > self.base:
            rows = rows.rows(keep_from - self.base, len(rows))
            self.base = keep_from
        self.parts = [rows] if len(rows) else []

"""WebRTC media tracks (aiortc) that read one ``Timeline``: video frames and 20 ms audio frames on its clock.

Both tracks pace themselves against the timeline's wall clock (slot n is due at
``t0 + n / fps``, audio sample s at ``t0 + s / 16000``), so the browser gets
them in step; RTP timestamps follow the same clock. A track that has fallen
behind (a stalled CPU) skips ahead to the present instead of sending a backlog.
"""

from __future__ import annotations

import asyncio
import fractions
import time

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

from .timeline import Timeline

AUDIO_PTIME = 0.02  # seconds per audio frame
CATCH_UP_S = 0.2  # a track this far behind skips ahead


class _Paced(MediaStreamTrack):
    def __init__(self, timeline: Timeline, rate: float):
        super().__init__()
        self.timeline, self.rate, self.n = timeline, rate, 0
        self.skipped = 0

    async def _next(self) -> int:
        if self.readyState != "live" or self.timeline.closed:
            raise MediaStreamError
        t0 = self.timeline.clock()
        late = time.time() - (t0 + self.n / self.rate)
        if late > CATCH_UP_S:
            jump = int(late * self.rate)
            self.n += jump
            self.skipped += jump
        wait = t0 + self.n / self.rate - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        n = self.n
        self.n += 1
        return n


class TimelineVideo(_Paced):
    kind = "video"

    def __init__(self, timeline: Timeline):
        super().__init__(timeline, timeline.fps)

    async def recv(self) -> VideoFrame:
        n = await self._next()
        frame = VideoFrame.from_ndarray(np.ascontiguousarray(self.timeline.image(n)), format="rgb24")
        frame.pts = int(round(n * 90000 / self.rate))
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


class TimelineAudio(_Paced):
    kind = "audio"

    def __init__(self, timeline: Timeline):
        super().__init__(timeline, 1 / AUDIO_PTIME)
        self.size = int(round(timeline.sr * AUDIO_PTIME))

    async def recv(self) -> AudioFrame:
        n = await self._next()
        pcm = self.timeline.samples(n * self.size, (n + 1) * self.size)
        s16 = np.clip(np.round(pcm * 32767), -32768, 32767).astype("<i2")[None]
        frame = AudioFrame.from_ndarray(s16, format="s16", layout="mono")
        frame.sample_rate = self.timeline.sr
        frame.pts = n * self.size
        frame.time_base = fractions.Fraction(1, self.timeline.sr)
        return frame

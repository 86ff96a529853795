"""``DriveStream``: drive rows from speech audio that arrives in chunks (a microphone, an agent's TTS).

``push(pcm)`` turns 16 kHz samples into the drive rows whose features are now
final (``audio.stream.FeatureStream``) with poses and eyes from the same
``Schedule`` a whole drive uses; feed them to ``engine.session()``::

    stream, session = DriveStream(engine), engine.session(batch_size=2)
    for pcm in chunks:
        for frame in session.push(stream.push(pcm)):
            show(frame)
    for frame in session.push(stream.end()):
        show(frame)
    for frame in session.end():
        show(frame)

Given the same speech (and phone timings), the rows equal ``build_drive``'s, so
a stream renders the frames ``say`` writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audio.stream import FeatureStream
from ..audio.windows import mel_sums, stats_from_sums
from ..engines.base import Engine
from ..engines.types import Drive
from ..errors import InputError
from .build import check_request, read_background, resolved_blink
from .schedule import Schedule


class DriveStream:
    def __init__(self, engine: Engine, phones=None, recognise: bool = True, pose="train", blink: str = "auto",
                 eye_level: float | None = None, background=None, seed: int = 0, commit_s: float = 0.2,
                 decoder=None):
        if str(pose) == "audio":
            raise InputError("--pose audio (generated head motion) is for whole files; a stream takes train, still "
                             "or a pose file")
        check_request(engine, pose, background, eye_level, blink=blink)
        self.fps = engine.subject.fps
        self.schedule = Schedule(engine.subject, pose=pose, blink=resolved_blink(engine, blink, pose),
                                 eye_level=eye_level, seed=seed)
        self.features = FeatureStream(self.fps, phones=phones, recognise=recognise, features=engine.features,
                                      commit_s=commit_s, decoder=decoder)
        self.background = read_background(background) if isinstance(background, (str, Path)) else background
        self.n = 0
        self.mel_sums = (np.zeros(80), np.zeros(80), 0)  # running sums: the utterance's log-mel statistics so far

    def _rows(self, feats: dict) -> Drive:
        k = feats["frames"]
        rows = self.schedule.rows(self.n, self.n + k)
        self.n += k
        stats = None
        if feats["mel_windows"] is not None:
            self.mel_sums = tuple(a + b for a, b in zip(self.mel_sums, mel_sums(feats["mel_windows"])))
            if self.mel_sums[2]:
                stats = stats_from_sums(*self.mel_sums)
        return Drive(fps=self.fps, visemes=feats["visemes"], mel_windows=feats["mel_windows"],
                     background=self.background, mel_stats=stats, **rows)

    def push(self, pcm: np.ndarray) -> Drive:
        return self._rows(self.features.push(pcm))

    def end(self) -> Drive:
        return self._rows(self.features.end())

    def close(self):
        """Stop live phone recognition; returns its decoder (to reuse for another stream) or None."""
        live, self.features.live = self.features.live, None
        if live is None:
            return None
        live.close()
        return live.decoder

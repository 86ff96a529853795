"""Per-video-frame audio features from 16 kHz audio that arrives in chunks (live speech).

``FeatureStream.push(pcm)`` returns the frames whose features are now final;
``end()`` the rest. The rows equal what ``compute_audio_features`` gives on the
whole recording, up to float rounding for log-mel and exactly for visemes from
known phone timings; what a stream cannot have is look-ahead, so each frame
waits for:

* log-mel: its 16-row window reaches 7 rows (70 ms) past the frame's centre row,
  and each row's 512-sample FFT frame another 256 samples (16 ms): ~90 ms;
* visemes from known phones (text through TTS): nothing, they are exact;
* visemes recognised live (``recognise=True``): pocketsphinx decodes the audio as
  it comes; a phone is kept once ``commit_s`` of audio has followed its end
  (default 0.2 s), so a frame waits until then. Live decoding cannot see the
  whole utterance (no batch normalisation), so its phones differ somewhat from
  the file path's.

The stream keeps only the audio it still needs, so memory is bounded.
"""

from __future__ import annotations

import math

import numpy as np

from .mel import log_mel, log_mel_frames
from .visemes import N_VISEMES, SILENCE, Segment, arpabet_to_viseme, segments_to_frames
from .wav import SAMPLE_RATE

HOP, N_FFT, MEL_RATE, WIDTH = 160, 512, 100, 16  # as audio/features.py


class LivePhones:
    """pocketsphinx allphone decoding of a stream: ``committed`` phones up to ``final_s`` seconds.

    After each chunk the decoder's current best segmentation is read, and the stretch between
    the last commit and ``commit_s`` before the newest audio is committed with the phones it
    holds now (a long silence is committed as it goes, not when it ends).
    """

    FRAME_RATE = 100

    def __init__(self, commit_s: float = 0.2, decoder=None):
        from .phones import NOISE_STD, _make_decoder

        # a decoder may be reused by one utterance after another (live serving): making one costs ~0.1 s
        self.decoder, self.noise = decoder or _make_decoder(), NOISE_STD
        self.decoder.start_utt()
        self.open = True
        self.rng = np.random.default_rng(1234)
        self.commit_s, self.samples = commit_s, 0
        self.committed: list[Segment] = []
        self.final_s = 0.0  # audio time up to which the phones are final

    def _pcm(self, x: np.ndarray) -> bytes:
        x = np.clip(x * 0.9 + self.noise * self.rng.standard_normal(len(x)).astype(np.float32), -1, 1)
        return np.round(x * 32767.0).astype("<i2").tobytes()

    def _take(self, upto_s: float) -> None:
        for s in self.decoder.seg() or []:  # None before the decoder has a hypothesis
            a = max(s.start_frame / self.FRAME_RATE, self.final_s)
            b = min((s.end_frame + 1) / self.FRAME_RATE, upto_s)
            if b > a:
                vis = arpabet_to_viseme(s.word)
                self.committed.append(Segment("SIL" if vis == SILENCE else s.word, round(a, 4), round(b, 4), vis))
        self.final_s = max(self.final_s, upto_s)

    def push(self, x: np.ndarray) -> None:
        self.decoder.process_raw(self._pcm(x), False, False)
        self.samples += len(x)
        upto = self.samples / SAMPLE_RATE - self.commit_s
        if upto > self.final_s:
            self._take(upto)

    def end(self) -> None:
        self.close()
        self._take(self.samples / SAMPLE_RATE)
        self.final_s = math.inf

    def close(self) -> None:
        """End the decoder's utterance (once) so the decoder can serve another."""
        if self.open:
            self.decoder.end_utt()
            self.open = False


class FeatureStream:
    """Audio chunks in, per-frame ``visemes`` (N, 15) and ``mel_windows`` (N, 16, 80) out, in order.

    ``phones``: known timed phones (exact visemes), or None to recognise them live
    (``recognise=True``) or to leave every frame silent (``recognise=False``).
    ``features`` limits the work to what the engine reads (a missing one comes out as None).
    """

    def __init__(self, fps: float, phones: list[Segment] | None = None, recognise: bool = True,
                 features=("visemes", "mel"), commit_s: float = 0.2, decoder=None):
        self.fps, self.features = fps, tuple(features)
        self.want_mel, self.want_visemes = "mel" in self.features, "visemes" in self.features
        self.live = LivePhones(commit_s, decoder) if self.want_visemes and phones is None and recognise else None
        self.phones = list(phones) if phones is not None else None
        self.audio, self.a0, self.n = np.zeros(0, np.float32), 0, 0  # kept audio from sample a0; samples seen
        self.mel, self.r0 = np.zeros((0, 80), np.float32), 0  # kept mel rows from row r0
        self.done = 0  # frames returned

    # ---- mel rows: the FFT frames log_mel cuts from the reflect-padded whole signal ------------------
    def _mel_rows(self, r0: int, r1: int, at_end: bool) -> np.ndarray:
        if r1 <= r0:
            return np.zeros((0, 80), np.float32)
        half = N_FFT // 2
        if self.a0 == 0 and self.n <= half:  # a tiny whole signal: log_mel pads it with zeros
            return log_mel(self.audio)[r0:r1]
        start = half if self.a0 == 0 else 0  # reflect at the signal's start while it is still kept
        x = np.pad(self.audio, (start, half if at_end else 0), mode="reflect")
        base = self.a0 - start
        return log_mel_frames(np.stack([x[r * HOP - half - base:r * HOP + half - base] for r in range(r0, r1)]))

    def _centre(self, i: int) -> int:
        return int(math.floor(i * (MEL_RATE / self.fps) + 0.5))

    def _ready(self) -> int:
        """Frames with final features: the frame has begun, its mel window exists, its phones are committed."""
        k, rows = self.done, self.r0 + len(self.mel)
        while (self.n > k * SAMPLE_RATE / self.fps
               and (not self.want_mel or self._centre(k) + WIDTH - WIDTH // 2 - 1 < rows)
               and (self.live is None or self.live.final_s >= (k + 1) / self.fps)):
            k += 1
        return k

    def _emit(self, k1: int) -> dict:
        k0, out = self.done, {"frames": k1 - self.done, "visemes": None, "mel_windows": None}
        if self.want_mel:
            offs = np.arange(WIDTH) - WIDTH // 2
            idx = np.array([self._centre(i) for i in range(k0, k1)], np.int64)[:, None] + offs
            idx = np.clip(idx, 0, self.r0 + len(self.mel) - 1) - self.r0  # clamps only at the real end
            out["mel_windows"] = self.mel[idx].astype(np.float16).astype(np.float32)  # stored as float16
        if self.want_visemes:
            segs = self.phones if self.phones is not None else (self.live.committed if self.live else [])
            span = [s for s in segs if s.end > k0 / self.fps and s.start < k1 / self.fps]
            out["visemes"] = segments_to_frames(span, k1, self.fps, N_VISEMES)[k0:k1]
        self.done = k1
        row0 = max(0, self._centre(k1) - WIDTH // 2)  # forget what no later frame can reach
        if row0 > self.r0:
            self.mel, self.r0 = self.mel[row0 - self.r0:], row0
        s0 = (self.r0 + len(self.mel)) * HOP - N_FFT // 2 - HOP
        if s0 > self.a0 + SAMPLE_RATE:  # in steps of a second
            self.audio, self.a0 = self.audio[s0 - self.a0:], s0
        return out

    def push(self, pcm: np.ndarray) -> dict:
        """``{"frames": k, "visemes": (k, 15) | None, "mel_windows": (k, 16, 80) | None}`` now final."""
        pcm = np.asarray(pcm, np.float32).reshape(-1)
        self.audio, self.n = np.concatenate([self.audio, pcm]), self.n + len(pcm)
        if self.live is not None:
            self.live.push(pcm)
        if self.want_mel and self.n > N_FFT // 2:
            have = self.r0 + len(self.mel)
            self.mel = np.concatenate([self.mel, self._mel_rows(have, (self.n - N_FFT // 2) // HOP + 1, False)])
        return self._emit(self._ready())

    def end(self) -> dict:
        """The remaining frames (``ceil(duration * fps)`` in all); the last mel rows reflect at the end."""
        if self.live is not None:
            self.live.end()
        if self.want_mel:
            self.mel = np.concatenate([self.mel, self._mel_rows(self.r0 + len(self.mel), 1 + self.n // HOP, True)])
        return self._emit(max(self.done, int(math.ceil(self.n / SAMPLE_RATE * self.fps))))


def stream_features(pcm: np.ndarray, fps: float, chunk: int, **kw) -> dict[str, np.ndarray]:
    """Run a whole recording through a ``FeatureStream`` in ``chunk``-sample pieces (tests, benchmarks)."""
    fs = FeatureStream(fps, **kw)
    parts = [fs.push(pcm[a:a + chunk]) for a in range(0, len(pcm), chunk)] + [fs.end()]
    return {k: (np.concatenate([p[k] for p in parts]) if parts[0][k] is not None else None)
            for k in ("visemes", "mel_windows")}


__all__ = ["FeatureStream", "LivePhones", "stream_features"]

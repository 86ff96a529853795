"""Video decoding at a constant frame rate and H.264/AAC encoding, with PyAV.

Decoding is streamed: frames are produced one at a time, never the whole
video. Variable-frame-rate input is resampled to a constant ``fps`` by taking,
for each output instant ``k / fps``, the source frame whose timestamp is
nearest. Rotation metadata (the display matrix) is applied, so a phone video
comes out upright.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from ..errors import InputError
from ..outputs import MARK
from ..utils import atomic_path


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int  # after rotation
    height: int
    fps: float  # the source's average rate
    duration: float  # seconds
    rotation: int  # degrees counter-clockwise applied on decode
    has_audio: bool
    codec: str


def _open(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{path}: not a readable video ({e.__class__.__name__})") from None


def _rotation_of(frame) -> int:
    rot = getattr(frame, "rotation", 0) or 0
    return int(round(rot / 90.0)) * 90 % 360


def probe(path: str | Path) -> VideoInfo:
    """Read stream facts, decoding only the first frame (for the rotation)."""
    with _open(path) as c:
        if not c.streams.video:
            raise InputError(f"{path}: has no video stream")
        s = c.streams.video[0]
        rate = float(s.average_rate or s.guessed_rate or 25)
        if s.duration is not None and s.time_base is not None:
            duration = float(s.duration * s.time_base)
        elif c.duration:
            duration = c.duration / 1e6
        else:
            duration = float("nan")
        rotation = 0
        try:
            for frame in c.decode(s):
                rotation = _rotation_of(frame)
                break
            else:
                raise InputError(f"{path}: video stream has no decodable frame")
        except av.FFmpegError:
            raise InputError(f"{path}: corrupt video stream") from None
        w, h = s.codec_context.width, s.codec_context.height
        if rotation in (90, 270):
            w, h = h, w
        return VideoInfo(str(path), w, h, rate, duration, rotation, bool(c.streams.audio),
                         s.codec_context.name)


def iter_frames(path: str | Path, fps: float, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Yield upright RGB uint8 frames resampled to a constant ``fps``.

    Output frame k shows the source frame nearest to time ``t0 + k / fps``;
    the stream ends at the source's last frame time plus one source frame.
    """
    with _open(path) as c:
        if not c.streams.video:
            raise InputError(f"{path}: has no video stream")
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        src_dt = 1.0 / float(s.average_rate or s.guessed_rate or fps)
        k, t0, prev, prev_t = 0, None, None, None
        try:
            for frame in c.decode(s):
                t = frame.time if frame.time is not None else (0.0 if prev_t is None else prev_t + src_dt)
                img = frame.to_ndarray(format="rgb24")
                rot = _rotation_of(frame)
                if rot:
                    img = np.ascontiguousarray(np.rot90(img, k=rot // 90))
                if t0 is None:
                    t0 = t
                if prev is not None:
                    boundary = (prev_t + t) / 2.0 - t0  # nearest-timestamp rule
                    while k / fps < boundary - 1e-9:
                        yield prev
                        k += 1
                        if max_frames is not None and k >= max_frames:
                            return
                prev, prev_t = img, t
        except av.FFmpegError as e:
            if prev is None:
                raise InputError(f"{path}: corrupt video stream ({e.__class__.__name__})") from None
            # A truncated tail: keep what decoded, as ffmpeg does.
        if prev is None:
            raise InputError(f"{path}: video stream has no decodable frame")
        end = prev_t - t0 + src_dt
        while k / fps < end - 0.5 / fps + 1e-9:
            yield prev
            k += 1
            if max_frames is not None and k >= max_frames:
                return


def count_frames(info: VideoInfo, fps: float) -> int:
    """Expected number of frames ``iter_frames`` yields (for progress bars)."""
    if not math.isfinite(info.duration):
        return 0
    return max(1, int(round(info.duration * fps)))


class VideoWriter:
    """H.264 (yuv420p) + optional AAC mono writer; the file appears only on close().

    >>> with VideoWriter("out.mp4", fps=25, size=(256, 256), audio=wav, sample_rate=16000) as w:
    ...     w.write(rgb_uint8)
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int],
                 audio: np.ndarray | None = None, sample_rate: int = 16000,
                 crf: int = 18, preset: str = "veryfast"):
        self.path = Path(path)
        self._atomic = atomic_path(self.path, suffix=self.path.suffix or ".mp4")
        self._tmp = self._atomic.__enter__()
        w, h = size
        if w % 2 or h % 2:
            raise ValueError("H.264 needs even frame sizes")
        self._c = av.open(str(self._tmp), "w", format="mp4")
        self._c.metadata["comment"] = MARK  # how --force-free reruns know the file is ours
        rate = Fraction(fps).limit_denominator(1001)
        self._v = self._c.add_stream("libx264", rate=rate)
        self._v.width, self._v.height, self._v.pix_fmt = w, h, "yuv420p"
        self._v.options = {"crf": str(crf), "preset": preset}
        self._audio = None
        if audio is not None and len(audio):
            self._a = self._c.add_stream("aac", rate=sample_rate)
            self._a.layout = "mono"
            self._audio = np.asarray(audio, dtype=np.float32)
            self._sr = sample_rate
        self.frames = 0
        self._closed = False

    def write(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24")
        for pkt in self._v.encode(frame):
            self._c.mux(pkt)
        self.frames += 1

    def _write_audio(self) -> None:
        n = 1024
        a = np.clip(self._audio, -1.0, 1.0)
        for i in range(0, len(a), n):
            chunk = a[i:i + n]
            if len(chunk) < n:
                chunk = np.pad(chunk, (0, n - len(chunk)))
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate = self._sr
            frame.pts = i
            for pkt in self._a.encode(frame):
                self._c.mux(pkt)
        for pkt in self._a.encode(None):
            self._c.mux(pkt)

    def close(self, ok: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if ok:
                for pkt in self._v.encode(None):
                    self._c.mux(pkt)
                if self._audio is not None:
                    self._write_audio()
            self._c.close()
        except BaseException as e:
            self._atomic.__exit__(type(e), e, e.__traceback__)
            raise
        if ok and self.frames > 0:
            self._atomic.__exit__(None, None, None)
        else:
            err = RuntimeError("video writer closed without frames")
            self._atomic.__exit__(RuntimeError, err, None)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(ok=exc_type is None)

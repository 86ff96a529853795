"""The kinds of video people bring, made from a synthetic speaker with PyAV (for tests and bench/robustness.py).

``write_variant`` puts the speaker's frames into a frame of another size and
aspect (portrait, 1080p, …) over a textured background, at another frame rate
(nearest frame in time), for any length (the clip loops), optionally stored
rotated with a display-rotation tag as phones do, with the soundtrack as
mono/stereo AAC at 16/44.1/48 kHz or none. ``write_audio`` writes speech as
wav, mp3, m4a or flac.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from ..audio.wav import SAMPLE_RATE, load_audio, resample
from ..io.video import iter_frames

__all__ = ["write_variant", "write_audio", "tag_rotation"]

_AUDIO_CODECS = {".wav": ("pcm_s16le", "wav"), ".mp3": ("libmp3lame", "mp3"), ".m4a": ("aac", "ipod"),
                 ".flac": ("flac", "flac"), ".mp4": ("aac", "mp4")}


def _background(w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    g = 110 + 40 * np.sin(xx / 37.0) * np.cos(yy / 53.0) + 30 * (yy / h)
    return np.stack([g, g * 0.9 + 10, g * 0.8 + 25], -1).clip(0, 255).astype(np.uint8)


def _audio_stream(c, rate: int, channels: int, ext: str):
    s = c.add_stream(_AUDIO_CODECS.get(ext, ("aac", ""))[0], rate=rate)
    s.layout = "stereo" if channels == 2 else "mono"
    return s


def _encode_audio(c, s, wav16k: np.ndarray, rate: int, channels: int) -> None:
    a = resample(wav16k, SAMPLE_RATE, rate) if rate != SAMPLE_RATE else wav16k
    a = np.clip(a, -1, 1).astype(np.float32)
    fmt = s.codec_context.format.name if s.codec_context.format else "fltp"
    step = s.codec_context.frame_size or 1024
    for i in range(0, len(a), step):
        chunk = np.repeat(a[None, i:i + step], channels, 0)
        if fmt.startswith("s16"):
            chunk = (chunk * 32767).astype(np.int16)
        elif fmt.startswith("s32"):
            chunk = (chunk.astype(np.float64) * 2147483647).astype(np.int32)
        arr = chunk if fmt.endswith("p") else chunk.T.reshape(1, -1)
        f = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=fmt, layout=s.layout.name)
        f.sample_rate, f.pts = rate, i
        for p in s.encode(f):
            c.mux(p)
    for p in s.encode(None):
        c.mux(p)


def write_variant(speaker_mp4: str | Path, out: str | Path, size: tuple[int, int] = (640, 360), fps: float = 25.0,
                  seconds: float | None = None, audio_rate: int | None = SAMPLE_RATE, channels: int = 1,
                  rotate: int = 0, face_height: float = 0.7) -> Path:
    """``speaker_mp4`` (a ``synth`` video) as a ``size`` = (width, height) video at ``fps`` lasting ``seconds``
    (default: the speaker's length; longer loops it), the speaker scaled to ``face_height`` of the frame's
    height; ``audio_rate`` None: no soundtrack; ``rotate`` 90/180/270: stored turned, tagged to play upright."""
    src = list(iter_frames(speaker_mp4, 25.0))
    wav = load_audio(speaker_mp4, SAMPLE_RATE)
    w, h = size
    side = int(round(face_height * h)) // 2 * 2
    x0, y0 = (w - side) // 2, h - side
    bg = _background(w, h)
    dur = seconds or len(src) / 25.0
    n = int(round(dur * fps))
    reps = int(np.ceil(dur * SAMPLE_RATE / len(wav)))
    out = Path(out)
    with av.open(str(out), "w", format="mp4") as c:
        v = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        v.width, v.height = (h, w) if rotate % 180 else (w, h)
        v.pix_fmt, v.options = "yuv420p", {"preset": "veryfast", "crf": "20"}
        a = _audio_stream(c, audio_rate, channels, ".mp4") if audio_rate else None  # streams before the header
        for k in range(n):
            f = bg.copy()
            f[y0:y0 + side, x0:x0 + side] = cv2.resize(src[int(k / fps * 25.0) % len(src)], (side, side),
                                                       interpolation=cv2.INTER_LINEAR)
            f = np.ascontiguousarray(np.rot90(f, rotate // 90))  # counter-clockwise: play turned clockwise
            for p in v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        if a is not None:
            _encode_audio(c, a, np.tile(wav, reps)[: int(dur * SAMPLE_RATE)], audio_rate, channels)
    if rotate % 360:
        tag_rotation(out, rotate)
    return out


def write_audio(wav16k: np.ndarray, out: str | Path, rate: int = 44100, channels: int = 2) -> Path:
    """Speech as ``out``'s kind (.wav, .mp3, .m4a, .flac)."""
    out = Path(out)
    fmt = _AUDIO_CODECS[out.suffix.lower()][1]
    with av.open(str(out), "w", format=fmt) as c:
        _encode_audio(c, _audio_stream(c, rate, channels, out.suffix.lower()), np.asarray(wav16k, np.float32), rate,
                      channels)
    return out


def tag_rotation(path: Path, clockwise_deg: int) -> None:
    """Write a display rotation into the video track's tkhd matrix, as phones do: ``clockwise_deg`` is how far
    a player must turn the stored picture clockwise to show it upright (ffmpeg's old ``rotate`` tag)."""
    data = bytearray(Path(path).read_bytes())
    c, s = {0: (1, 0), 90: (0, 1), 180: (-1, 0), 270: (0, -1)}[clockwise_deg % 360]
    matrix = struct.pack(">9i", c << 16, s << 16, 0, -s << 16, c << 16, 0, 0, 0, 1 << 30)
    pos = 0
    while (pos := data.find(b"tkhd", pos + 1)) > 0:
        version = data[pos + 4]
        off = pos + 4 + 4 + (32 if version == 1 else 20) + 8 + 8  # times/ids, reserved, layer..volume
        width = struct.unpack(">I", data[off + 36:off + 40])[0]
        if width:  # the video track (audio tracks have zero width)
            data[off:off + 36] = matrix
    Path(path).write_bytes(bytes(data))

"""PyAV decoding at a constant rate (VFR input, rotation) and atomic H.264/AAC writing."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from talkinghead.errors import InputError
from talkinghead.io.video import VideoWriter, iter_frames, probe

from videos import tag_rotation, write_frames


def numbered(i: int, w: int = 64, h: int = 48) -> np.ndarray:
    """A frame whose bright column encodes its index."""
    f = np.zeros((h, w, 3), np.uint8)
    f[:, 2 * i % w] = 255
    return f


def index_of(frame: np.ndarray) -> int:
    return int(np.argmax(frame[10, :, 0])) // 2


def test_constant_rate_resampling_picks_nearest_frames(tmp_path):
    p = tmp_path / "30.mp4"
    write_frames(p, [numbered(i) for i in range(30)], fps=30)
    out = list(iter_frames(p, 25))
    assert len(out) == 25
    # Output k at k/25 s shows the source frame nearest to it: round(k * 30 / 25).
    got = [index_of(f) for f in out]
    want = [min(29, int(np.floor(k * 30 / 25 + 0.5))) for k in range(25)]
    assert sum(g != w for g, w in zip(got, want)) <= 1, (got, want)


def test_variable_frame_rate_input(tmp_path):
    p = tmp_path / "vfr.mp4"
    c = av.open(str(p), "w")
    s = c.add_stream("libx264", rate=30)
    s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    s.codec_context.time_base = Fraction(1, 1000)
    times = np.cumsum([0] + [20, 60] * 15)[:30]  # alternating 20 ms and 60 ms gaps
    for i, t in enumerate(times):
        fr = av.VideoFrame.from_ndarray(numbered(i), format="rgb24")
        fr.pts, fr.time_base = int(t), Fraction(1, 1000)
        for pkt in s.encode(fr):
            c.mux(pkt)
    for pkt in s.encode(None):
        c.mux(pkt)
    c.close()
    out = list(iter_frames(p, 25))
    span = (times[-1] + 40) / 1000  # last frame lasts about one average gap
    assert abs(len(out) - span * 25) <= 2
    for k in (0, 5, 10, 20):
        nearest = int(np.argmin(np.abs(times / 1000 - k / 25)))
        assert abs(index_of(out[k]) - nearest) <= 1


def test_rotation_metadata_is_applied(tmp_path):
    upright = np.zeros((64, 32, 3), np.uint8)
    upright[:8] = 255  # portrait, white band at the top
    p = tmp_path / "phone.mp4"
    write_frames(p, [np.ascontiguousarray(np.rot90(upright, k=1))] * 10)  # stored on its side
    tag_rotation(p, 90)
    info = probe(p)
    assert (info.width, info.height) == (32, 64)
    f = next(iter_frames(p, 25))
    assert f.shape == (64, 32, 3) and f[:8].mean() > 200 and f[-8:].mean() < 30


def test_writer_muxes_audio_and_is_atomic(tmp_path):
    p = tmp_path / "o.mp4"
    sr = 16000
    audio = 0.3 * np.sin(2 * np.pi * 300 * np.arange(2 * sr) / sr).astype(np.float32)
    with VideoWriter(p, 25, (64, 48), audio=audio, sample_rate=sr) as w:
        for i in range(50):
            w.write(numbered(i))
        assert not p.exists(), "final name visible before close"
    info = probe(p)
    assert info.has_audio and abs(info.duration - 2.0) < 0.05
    with av.open(str(p)) as c:
        a = np.concatenate([f.to_ndarray().ravel() for f in c.decode(audio=0)])
    assert abs(len(a) / sr - 2.0) < 0.2 and a.std() > 0.1
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "x.mp4", 25, (64, 48)) as w:
            w.write(numbered(0))
            raise RuntimeError("boom")
    assert [q.name for q in tmp_path.iterdir()] == ["o.mp4"]


def test_unreadable_inputs(tmp_path):
    t = tmp_path / "a.mp4"
    t.write_bytes(b"\x00" * 1000)
    with pytest.raises(InputError, match="not a readable video"):
        probe(t)
    with pytest.raises(InputError, match="no such file"):
        probe(tmp_path / "missing.mp4")


def test_background_writer_keeps_order_and_reports_encoder_errors(tmp_path):
    from talkinghead.say.pipeline import BackgroundWriter

    class Recorder:
        def __init__(self, fail_at=None):
            self.seen, self.fail_at = [], fail_at

        def write(self, x):
            if len(self.seen) == self.fail_at:
                raise OSError("disk full")
            self.seen.append(x)

    rec = Recorder()
    with BackgroundWriter(rec, depth=2) as bw:
        for i in range(50):
            bw.write(i)
    assert rec.seen == list(range(50))

    with pytest.raises(OSError, match="disk full"):
        with BackgroundWriter(Recorder(fail_at=3), depth=2) as bw:
            for i in range(50):
                bw.write(i)

"""``talkinghead say``: a trained model + speech → an mp4 of the person saying it.

The drive comes from ``drive.build_drive`` and is rendered through the engine's
streaming session (``Engine.render``), the path live output takes too.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

from ..audio.wav import SAMPLE_RATE
from ..drive import build_drive, default_lips, default_pose
from ..engines import resolve_device
from ..engines.modeldir import load_engine
from ..io.video import VideoWriter
from ..progress import bar, info
from ..outputs import output_file
from .source import SourceFrames


def say(model_dir: str | Path, out: str | Path, audio: str | Path | None = None, text: str | None = None,
        pose: str | None = None, blink: str = "auto", device: str = "auto", subject: str | Path | None = None,
        batch_size: int = 8, eye: float | None = None, background: str | Path | None = None,
        lips: str | None = None, force: bool = False, crop: bool = False, precision: str = "auto") -> dict:
    """Render ``model_dir``'s person saying ``audio`` or ``text`` into ``out``: in the source video's own size
    (the generated part pasted back into its frames, ``say/source.py``) unless ``crop`` or the source video is
    gone, else the subject's square crop."""
    out = output_file(out, force, "say")
    engine = load_engine(Path(model_dir), resolve_device(device), subject, precision)
    pose = default_pose(engine) if pose is None else pose
    lips = default_lips(engine) if lips is None else lips
    drive = build_drive(engine, audio=audio, text=text, pose=pose, blink=blink, eye_level=eye, background=background,
                        lips=lips)
    stats = write_drive(engine, drive, out, crop=crop, batch_size=batch_size)
    info(f"{out}: {stats['frames']} frames, {stats['seconds']:.1f} s; rendered at {stats['fps']:.1f} FPS "
         f"(real-time factor {stats['rtf']:.2f})")
    return stats


def write_drive(engine, drive, out: str | Path, crop: bool = False, batch_size: int = 8, progress: bool = True) -> dict:
    """Render ``drive`` into the mp4 ``out`` (written under a temporary name, renamed when complete): the source
    video's size unless ``crop`` (or the source is gone), else the subject's square crop."""
    size = engine.subject.size
    t0 = time.perf_counter()
    source = None if crop else SourceFrames.open(engine.subject, drive.pose_index)
    b = bar(len(drive), "render", unit="f", disable=not progress)
    try:
        with VideoWriter(out, drive.fps, source.size if source else (size, size), audio=drive.audio,
                         sample_rate=SAMPLE_RATE) as w:
            with BackgroundWriter(w, source.paste if source else None) as bw:
                for frame, j in zip(engine.render(drive, batch_size=batch_size), drive.pose_index):
                    bw.write(frame, j)
                    b.update()
    finally:
        b.close()
        if source is not None:
            source.close()
    wall = time.perf_counter() - t0
    seconds = len(drive) / drive.fps
    return {"frames": len(drive), "seconds": seconds, "wall": wall, "fps": len(drive) / wall, "rtf": wall / seconds}


class BackgroundWriter:
    """Encodes frames on a worker thread (FFmpeg releases the GIL), overlapping the renderer; ``transform``
    (frame, subject frame index) → frame runs there too (pasting back into the source frame).

    ``write`` blocks when ``depth`` frames are waiting; an encoder error is re-raised in the caller
    at the next ``write`` or on exit, so a failed encode never passes silently.
    """

    _END = object()

    def __init__(self, writer, transform=None, depth: int = 16):
        self.writer, self.transform, self.error = writer, transform, None
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while (item := self.q.get()) is not self._END:
            if self.error is None:
                try:
                    frame, j = item
                    self.writer.write(frame if self.transform is None else self.transform(frame, j))
                except BaseException as e:  # noqa: BLE001 - handed to the caller
                    self.error = e

    def write(self, frame, j: int = 0) -> None:
        if self.error is not None:
            raise self.error
        self.q.put((frame, j))

    def __enter__(self) -> "BackgroundWriter":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.q.put(self._END)
        self.thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error

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


def say(model_dir: str | Path, out: str | Path, audio: str | Path | None = None, text: str | None = None,
        pose: str | None = None, blink: str = "auto", device: str = "auto", subject: str | Path | None = None,
        batch_size: int = 8, eye: float | None = None, background: str | Path | None = None,
        lips: str | None = None, force: bool = False) -> dict:
    out = output_file(out, force, "say")
    engine = load_engine(Path(model_dir), resolve_device(device), subject)
    pose = default_pose(engine) if pose is None else pose
    lips = default_lips(engine) if lips is None else lips
    drive = build_drive(engine, audio=audio, text=text, pose=pose, blink=blink, eye_level=eye, background=background,
                        lips=lips)
    size = engine.subject.size
    t0 = time.perf_counter()
    b = bar(len(drive), "render", unit="f")
    with VideoWriter(out, drive.fps, (size, size), audio=drive.audio, sample_rate=SAMPLE_RATE) as w:
        with BackgroundWriter(w) as bw:
            for frame in engine.render(drive, batch_size=batch_size):
                bw.write(frame)
                b.update()
    b.close()
    wall = time.perf_counter() - t0
    seconds = len(drive) / drive.fps
    stats = {"frames": len(drive), "seconds": seconds, "wall": wall, "fps": len(drive) / wall,
             "rtf": wall / seconds}
    info(f"{out}: {len(drive)} frames, {seconds:.1f} s; rendered at {stats['fps']:.1f} FPS "
         f"(real-time factor {stats['rtf']:.2f})")
    return stats


class BackgroundWriter:
    """Encodes frames on a worker thread (FFmpeg releases the GIL), overlapping the renderer.

    ``write`` blocks when ``depth`` frames are waiting; an encoder error is re-raised in the caller
    at the next ``write`` or on exit, so a failed encode never passes silently.
    """

    _END = object()

    def __init__(self, writer, depth: int = 16):
        self.writer, self.error = writer, None
        self.q: queue.Queue = queue.Queue(maxsize=depth)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while (item := self.q.get()) is not self._END:
            if self.error is None:
                try:
                    self.writer.write(item)
                except BaseException as e:  # noqa: BLE001 - handed to the caller
                    self.error = e

    def write(self, frame) -> None:
        if self.error is not None:
            raise self.error
        self.q.put(frame)

    def __enter__(self) -> "BackgroundWriter":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.q.put(self._END)
        self.thread.join()
        if self.error is not None and exc[0] is None:
            raise self.error

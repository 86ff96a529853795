"""The subject's source video frames, for output in the source's own size (``compose/fullframe.py``).

``prepare`` keeps the crop box and the source video's path, not its frames (no
second copy of a long video on disk). ``say`` decodes the source once, at the
subject's frame rate, and keeps only the frames the drive replays, as JPEG
files in a temporary directory removed at the end.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from ..compose.fullframe import changed_mask, paste_back
from ..io.video import iter_frames, probe
from ..progress import bar, warn
from ..subject import Subject

__all__ = ["SourceFrames"]


class SourceFrames:
    """Paste rendered crops back into the source frames they replay: ``paste(render, j)``."""

    def __init__(self, subject: Subject, video: Path, frames: np.ndarray):
        self.subject = subject
        c = subject.meta["crop"]
        self.box = (c["x0"], c["y0"], c["side"])
        self._tmp = tempfile.TemporaryDirectory(prefix="talkinghead_source_")
        self.dir = Path(self._tmp.name)
        need = np.zeros(int(frames.max()) + 1, bool)
        need[frames] = True
        b = bar(len(need), "source frames", unit="f")
        try:
            n = 0
            for i, rgb in enumerate(iter_frames(video, subject.fps, max_frames=len(need))):
                if need[i]:
                    cv2.imwrite(str(self.dir / f"{i:06d}.jpg"), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
                b.update()
                n = i + 1
        finally:
            b.close()
        if n < len(need):
            self.close()
            raise RuntimeError(f"{video} has {n} frames at {subject.fps:g} fps; the subject has {subject.n_frames}")
        h, w = rgb.shape[:2]
        self.size = (w - w % 2, h - h % 2)  # H.264 wants even sides

    @classmethod
    def open(cls, subject: Subject, frames: np.ndarray) -> "SourceFrames | None":
        """The source frames ``frames`` (subject indices) need, or None (with a warning) when the crop is what
        there is: the source video is missing or changed, or the crop is the whole frame."""
        src = subject.meta.get("source", {})
        video = Path(src.get("video", ""))
        crop = subject.meta["crop"]
        if (crop["x0"], crop["y0"], crop["side"]) == (0.0, 0.0, float(subject.size)) and \
                (src.get("width"), src.get("height")) == (subject.size, subject.size):
            return None  # the crop is the source frame
        if not video.is_file():
            warn(f"the subject's source video {video} is missing; writing the {subject.size}² crop")
            return None
        info = probe(video)
        if (info.width, info.height) != (src.get("width"), src.get("height")):
            warn(f"{video} is not the video {subject.path} was prepared from ({info.width}x{info.height}); "
                 f"writing the {subject.size}² crop")
            return None
        return cls(subject, video, np.asarray(frames))

    def paste(self, render: np.ndarray, j: int) -> np.ndarray:
        """The source frame ``j`` with what ``render`` changed in the recorded crop ``j`` blended in."""
        # (cvtColor: copying a channel-reversed view instead cost 6 ms a frame at 844²)
        source = cv2.cvtColor(cv2.imread(str(self.dir / f"{int(j):06d}.jpg")), cv2.COLOR_BGR2RGB)
        out = paste_back(source, render, changed_mask(render, self.subject.frame(int(j))), self.box)
        w, h = self.size
        return out[:h, :w]

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> "SourceFrames":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

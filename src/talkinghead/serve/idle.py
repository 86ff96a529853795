"""The idle loop every live session shares: the person listening, rendered once when the server starts.

The engine is driven by silence while recorded frames play forwards and backwards
(``seconds`` a round): those nearest the motion learner's listening head motion
when the model has one, else the calmest stretch of the training video; the
recorded eyes, with natural blinks added where those never blink (engines that
draw the eyes). Kept as JPEG (a few MB), shared by all sessions, so idling costs
no rendering. An answer's head continues the loop's frames from where the loop
was, so the head does not jump when the person starts or stops talking.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..audio.wav import SAMPLE_RATE
from ..drive import build_drive
from ..drive.schedule import has_blink, nearest_pose_frames, pingpong
from ..drive.speech import speech_features
from ..progress import bar


def silence(n: int, seed: int = 0) -> np.ndarray:
    """``n`` samples of near-silence (a faint noise floor: exact zeros have no log-mel statistics)."""
    return (np.random.default_rng(seed).standard_normal(n) * 1e-4).astype(np.float32)


def calm_window(subject, width: int) -> int:
    """First frame of the ``width`` training frames with the least head motion (the person listening)."""
    lo, hi = subject.meta["split"]["train"]
    width = min(width, hi - lo)
    rot = subject.tracks["rotation"][lo:hi].reshape(hi - lo, -1).astype(np.float64)
    step = np.r_[0.0, np.linalg.norm(np.diff(rot, axis=0), axis=1)]
    c = np.cumsum(np.r_[0.0, step])
    motion = c[width:] - c[:-width] if hi - lo > width else np.zeros(1)
    return lo + int(np.argmin(motion))


def idle_frames(engine, width: int, seed: int = 0) -> np.ndarray:
    """The recorded frames (``width`` of them, in order) an idle loop replays forwards and backwards.

    With a motion learner (``motion.pt``): its head motion for silence (the person listening), replayed
    along a path of single steps through the recorded frames nearest it (``nearest_pose_frames`` without
    jumps: the loop has none, also where it turns). Without: the calmest ``width`` training frames.
    """
    from ..motion import MotionModel

    subject = engine.subject
    lo, hi = subject.meta["split"]["train"]
    motion = MotionModel.load(engine.model_dir, subject.meta["key"])
    if motion is None or hi - lo < 2:
        start = calm_window(subject, width)
        return np.arange(start, start + min(width, hi - start))
    # silence as visemes alone (no log-mel: near-silence mapped to the training audio's level would read as
    # speech); the learners were trained to read visemes alone too (mel dropout)
    speech = speech_features(silence(int(round(width * SAMPLE_RATE / subject.fps))), [], subject.fps, ("visemes",))
    poses = motion.head_motion(speech.visemes[:width], None, seed)
    return nearest_pose_frames(subject, poses, lo, hi, jump=np.inf)


class IdleLoop:
    def __init__(self, engine, seconds: float = 6.0, quality: int = 90, batch_size: int = 4):
        subject = engine.subject
        self.fps = float(subject.fps)
        self.order = idle_frames(engine, max(2, int(round(seconds * self.fps / 2))))
        self.period = max(1, 2 * (len(self.order) - 1))
        self.size = subject.size
        # a loop whose recorded frames never blink gets natural blinks (engines that draw the eyes), answers too
        self.blink = "natural" if engine.eye_control and not has_blink(subject, self.order) else "auto"
        speech = speech_features(silence(int(round(self.period * SAMPLE_RATE / self.fps))), [], self.fps,
                                 engine.features)
        drive = build_drive(engine, speech=speech, pose=self.poses(0, len(speech)), blink=self.blink)
        self.jpegs: list[bytes] = []
        b = bar(len(drive), "idle loop", unit="f")
        try:
            for f in engine.render(drive, batch_size=batch_size):  # each frame kept as JPEG as it comes
                self.jpegs.append(cv2.imencode(".jpg", f[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())
                b.update()
        finally:
            b.close()

    def poses(self, start: int, n: int) -> np.ndarray:
        """Recorded frames replayed at loop positions start..start+n-1 (a continuing speech uses the same)."""
        return self.order[pingpong(n, 0, len(self.order), start=start)]

    def frame(self, pos: int) -> np.ndarray:
        return cv2.imdecode(np.frombuffer(self.jpegs[pos % self.period], np.uint8), cv2.IMREAD_COLOR)[..., ::-1]

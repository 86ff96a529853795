"""The pieces of ``prepare``'s stages: which stages a run finished (``Stages``), phone recognition in a second
process (``PhonesProcess``), and the workers of the track, pose and frames stages (``pipeline.py`` runs them)."""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from ..audio.phones import recognize_phones
from ..audio.wav import SAMPLE_RATE as SR
from ..audio.wav import load_audio
from ..compose.labels import BACKGROUND
from ..geometry import face as mesh
from ..geometry.smooth import savgol
from ..io.video import count_frames, iter_frames
from ..progress import bar, warn
from ..utils import save_npz, write_json
from .background import BackgroundAccumulator
from .crop import CropBox
from .pose import estimate_poses
from .segment import PersonSegmenter, label_map
from .track import FaceTracker

__all__ = ["Stages", "PhonesProcess", "track_faces", "fit_poses", "write_frames"]


class Stages:
    """Completed-stage bookkeeping in ``work/.stages.json``, keyed by the run's parameters."""

    def __init__(self, work: Path, key: str):
        self.file = work / ".stages.json"
        self.key = key
        state = json.loads(self.file.read_text()) if self.file.exists() else {}
        if state.get("key") != key:
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            state = {"key": key, "done": []}
        self.state = state

    def done(self, name: str) -> bool:
        return name in self.state["done"]

    def mark(self, name: str) -> None:
        self.state["done"].append(name)
        write_json(self.file, self.state)


def _phones_job(wav_path: str, conn) -> None:
    import signal
    import threading

    from tqdm import tqdm

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops this process
    tqdm.set_lock(threading.RLock())  # not tqdm's default multiprocessing lock, which a stopped process leaks
    try:
        conn.send((True, recognize_phones(load_audio(wav_path, SR), SR)))
    except Exception as e:  # noqa: BLE001 - re-raised in the parent
        conn.send((False, e))


class PhonesProcess:
    """Phone recognition in a second process (two cores, two jobs) while the video is tracked; ``stop`` ends
    it at once after an error or Ctrl-C instead of waiting for it."""

    def __init__(self, wav_path: Path):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_phones_job, args=(str(wav_path), child), daemon=True)
        self.proc.start()
        child.close()

    def result(self):
        try:
            ok, value = self.conn.recv()
        except EOFError:
            raise RuntimeError("the phone recognition process ended without a result") from None
        self.proc.join()
        if not ok:
            raise value
        return value

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.terminate()
        self.proc.join()
        self.conn.close()


def track_faces(video: Path, vinfo, cfg, work: Path) -> None:
    """The face's landmarks in every frame at ``cfg.fps`` → ``.track_raw.npz`` (missing ones interpolated)."""
    tracker = FaceTracker()
    b = bar(count_frames(vinfo, cfg.fps) or None, "track faces", unit="f")
    try:
        for rgb in iter_frames(video, cfg.fps):
            tracker.update(rgb)
            b.update()
    finally:
        b.close()
        tracker.close()
    lm, found = tracker.result(cfg.max_missing)
    if tracker.multi_face_frames:
        warn(f"more than one face in {tracker.multi_face_frames} frames; following the largest")
    if not found.all():
        warn(f"face missing in {int((~found).sum())} frames; interpolated and flagged")
    save_npz(work / ".track_raw.npz", landmarks=lm, found=found)


def fit_poses(raw: dict, crop: CropBox, cfg, work: Path) -> None:
    """Head poses and per-frame face signals in the crop → ``tracks.npz``."""
    lm = savgol(crop.points(raw["landmarks"], cfg.size), 5, 2)
    tracks = estimate_poses(lm, cfg.size)
    canon = tracks["canon_landmarks"]
    tracks.update(
        landmarks=lm.astype(np.float32), found=raw["found"],
        eye=mesh.eye_openness(canon).astype(np.float32),
        aperture=mesh.mouth_aperture(canon[..., :2]).astype(np.float32),  # depth of K_f is the model's, not measured
        lip_box=mesh.lip_box(lm).astype(np.float32), face_box=mesh.bbox(lm).astype(np.float32),
    )
    save_npz(work / "tracks.npz", **tracks)


def write_frames(video: Path, n: int, crop: CropBox, lm: np.ndarray, cfg, work: Path) -> None:
    """The ``n`` crops as JPEG, their segmentation labels as PNG, and the background plate."""
    (work / "frames").mkdir(exist_ok=True)
    (work / "masks").mkdir(exist_ok=True)
    seg = PersonSegmenter()
    bg = BackgroundAccumulator(n)
    b = bar(n, "frames+masks", unit="f")
    jpeg = [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality]

    def write(i: int, img: np.ndarray, labels: np.ndarray) -> None:
        cv2.imwrite(str(work / "frames" / f"{i:06d}.jpg"), img[..., ::-1], jpeg)
        cv2.imwrite(str(work / "masks" / f"{i:06d}.png"), labels, [cv2.IMWRITE_PNG_COMPRESSION, 1])

    pending: deque = deque()
    # Encoding and writing (which release the GIL) overlap segmentation of the next frame.
    with ThreadPoolExecutor(1) as io:
        try:
            for i, rgb in enumerate(iter_frames(video, cfg.fps, max_frames=n)):
                img = crop.apply(rgb, cfg.size)
                labels = label_map(seg(img), lm[i])
                pending.append(io.submit(write, i, img, labels))
                while len(pending) > 4:
                    pending.popleft().result()
                bg.add(i, img, labels == BACKGROUND)
                b.update()
            for f in pending:
                f.result()
        finally:
            b.close()
            seg.close()
    plate, _ = bg.plate()
    cv2.imwrite(str(work / "background.png"), plate[..., ::-1])

"""``talkinghead prepare``: a video of one speaking person → a subject directory.

Stages run in order inside ``OUT.partial/``; each records itself in
``.stages.json`` so a killed run resumes where it stopped, and the directory is
renamed to ``OUT`` only when all are complete. Phone recognition runs in a
second process while the video is tracked (two cores, two jobs).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import shutil
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from .. import __version__
from ..audio.features import compute_audio_features, save_audio_features
from ..audio.phones import recognize_phones
from ..audio.wav import SAMPLE_RATE as SR
from ..audio.wav import load_audio, write_wav
from ..compose.labels import BACKGROUND
from ..errors import InputError
from ..geometry import face as mesh
from ..geometry.smooth import savgol
from ..io.video import count_frames, iter_frames, probe
from ..progress import StageTimer, bar, info, warn
from ..subject import FORMAT_VERSION
from ..outputs import install_dir, output_dir
from ..utils import save_npz, write_json
from .background import BackgroundAccumulator
from .crop import CropBox, plan_crop
from .pose import estimate_poses
from .segment import PersonSegmenter, label_map
from .track import FaceTracker



@dataclass
class PrepareConfig:
    fps: float = 25.0
    size: int = 512
    val_fraction: float = 0.1
    crop_scale: float = 3.0  # crop side in face widths
    jpeg_quality: int = 95
    min_seconds: float = 1.0  # shorter clips are tracked too (other voices' mouths, measured); train wants more
    max_missing: float = 0.10  # error if the face is missing in more frames than this


def too_short(video, seconds: float, least: float, what: str = "") -> str:
    """One line: how long the video is (never rounded up to the limit) and the least prepare takes."""
    shown = np.floor(seconds * 100) / 100
    return f"{video}: is {shown:.2f} s long{' ' + what if what else ''}; prepare needs at least {least:g} s"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tool_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"talkinghead": __version__}
    for pkg in ("mediapipe", "pocketsphinx", "av", "numpy", "opencv-python-headless", "espeakng-loader"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


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


def prepare(video: str | Path, out: str | Path, audio: str | Path | None = None,
            config: PrepareConfig | None = None, force: bool = False) -> Path:
    cfg = config or PrepareConfig()
    video = Path(video)
    out, ours = output_dir(out, ("subject.json",), force, "prepare")
    vinfo = probe(video)
    if not vinfo.has_audio and audio is None:
        raise InputError(f"{video}: has no audio track; pass --audio WAV")
    if vinfo.duration == vinfo.duration and vinfo.duration < cfg.min_seconds:
        raise InputError(too_short(video, vinfo.duration, cfg.min_seconds))
    audio_src = Path(audio) if audio is not None else video
    key_src = {"video": file_sha256(video), "audio": file_sha256(audio_src) if audio else None,
               "config": {k: v for k, v in asdict(cfg).items() if k != "min_seconds"},  # a check, not a setting
               "format": FORMAT_VERSION}
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()[:16]
    if ours and not force:
        if _subject_key(out) == key:
            info(f"{out}: already prepared from this video with these settings (use --force to redo)")
            return out
        raise InputError(f"{out} holds a subject prepared from another video or with other settings; "
                         "choose another -o, or pass --force to replace it")
    work = partial_dir(out)
    if force:
        shutil.rmtree(work, ignore_errors=True)
    stages = Stages(work, key)
    timer = StageTimer()
    phones = None
    try:
        with timer.stage("audio"):
            wav = load_audio(audio_src, SR)
            if np.abs(wav).max(initial=0) < 1e-4:
                raise InputError(f"{audio_src}: audio is silent")
            if audio is not None and vinfo.duration == vinfo.duration and \
                    abs(len(wav) / SR - vinfo.duration) > 0.5:
                warn(f"{audio_src} lasts {len(wav) / SR:.1f} s and {video} {vinfo.duration:.1f} s; using the "
                     "overlap")
            write_wav(work / "audio_full.wav", wav, SR)
        phones = None if stages.done("features") else PhonesProcess(work / "audio_full.wav")
        with timer.stage("track") as row:
            if not stages.done("track"):
                _track(video, vinfo, cfg, work)
                stages.mark("track")
            raw = dict(np.load(work / ".track_raw.npz"))
            n = min(len(raw["landmarks"]), int(len(wav) / SR * cfg.fps + 1e-6))  # the overlap with the audio
            raw = {k: v[:n] for k, v in raw.items()}
            row[2] = f"{n} frames, face found in {raw['found'].mean():.1%}"
        if n / cfg.fps < cfg.min_seconds:
            raise InputError(too_short(video, n / cfg.fps, cfg.min_seconds, "with its face and sound"))
        crop = plan_crop(raw["landmarks"], vinfo.width, vinfo.height, cfg.crop_scale)
        with timer.stage("pose") as row:
            if not stages.done("pose"):
                _pose(raw, crop, cfg, work)
                stages.mark("pose")
            tracks = dict(np.load(work / "tracks.npz"))
            row[2] = f"median reprojection {np.median(tracks['reproj_px']):.2f} px"
        with timer.stage("frames") as row:
            if not stages.done("frames"):
                _frames(video, n, crop, tracks["landmarks"], cfg, work)
                stages.mark("frames")
            row[2] = f"{cfg.size}x{cfg.size} JPEG q{cfg.jpeg_quality}"
        with timer.stage("features") as row:
            if not stages.done("features"):
                segs = phones.result()
                clip = wav[:int(round(n / cfg.fps * SR))]  # n frames fit inside the audio (the overlap)
                write_wav(work / "audio.wav", clip, SR)
                feats = compute_audio_features(clip, SR, n, cfg.fps, phones=[
                    s for s in segs if s.start < n / cfg.fps])
                save_audio_features(work / "audio_features.npz", feats)
                stages.mark("features")
            row[2] = "log-mel 80, visemes 15"
        with timer.stage("preview"):
            from .preview import write_preview

            write_preview(work, tracks)
    finally:
        if phones is not None:
            phones.stop()
    (work / "audio_full.wav").unlink(missing_ok=True)
    (work / ".track_raw.npz").unlink(missing_ok=True)
    n_val = int(round(n * cfg.val_fraction))
    meta = {
        "format_version": FORMAT_VERSION, "key": key, "fps": cfg.fps, "size": cfg.size,
        "n_frames": n, "duration": n / cfg.fps,
        "split": {"train": [0, n - n_val], "val": [n - n_val, n]},
        "crop": crop.to_dict(), "focal": float(tracks["intrinsics"][0, 0]),
        "source": {"video": str(video.resolve()), "sha256": key_src["video"],
                   "width": vinfo.width, "height": vinfo.height, "fps": vinfo.fps,
                   "rotation": vinfo.rotation,
                   "audio": str(audio_src.resolve()), "audio_sha256": key_src["audio"]},
        "config": asdict(cfg), "versions": tool_versions(),
        "stats": {"face_found": float(tracks["found"].mean()),
                  "median_reproj_px": float(np.median(tracks["reproj_px"]))},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json(work / "subject.json", meta)
    (work / ".stages.json").unlink(missing_ok=True)
    install_dir(work, out, ours)
    info(timer.table())
    return out


def _subject_key(out: Path) -> str | None:
    try:
        return json.loads((out / "subject.json").read_text()).get("key")
    except (OSError, ValueError):
        return None


def partial_dir(out: Path) -> Path:
    """Where ``prepare`` builds ``out`` stage by stage (kept after an interruption, to resume)."""
    return out.with_name(out.name + ".partial")


def _track(video: Path, vinfo, cfg: PrepareConfig, work: Path) -> None:
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


def _pose(raw: dict, crop: CropBox, cfg: PrepareConfig, work: Path) -> None:
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


def _frames(video: Path, n: int, crop: CropBox, lm: np.ndarray, cfg: PrepareConfig, work: Path) -> None:
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

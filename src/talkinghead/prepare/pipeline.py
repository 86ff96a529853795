"""``talkinghead prepare``: a video of one speaking person → a subject directory.

Stages run in order inside ``OUT.partial/``; each records itself in
``.stages.json`` so a killed run resumes where it stopped, and the directory is
renamed to ``OUT`` only when all are complete. Phone recognition runs in a
second process while the video is tracked (two cores, two jobs).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..audio.features import compute_audio_features, save_audio_features
from ..audio.wav import SAMPLE_RATE as SR
from ..audio.wav import load_audio, write_wav
from ..errors import InputError
from ..io.video import probe
from ..progress import StageTimer, info, warn
from ..subject import FORMAT_VERSION
from ..outputs import install_dir, output_dir
from ..utils import write_json
from .crop import CropBox, plan_crop
from .stages import PhonesProcess, Stages, fit_poses, track_faces, write_frames


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
    timer = StageTimer()
    n, crop, tracks = _run_stages(video, vinfo, audio_src, audio is not None, cfg, work, Stages(work, key), timer)
    (work / "audio_full.wav").unlink(missing_ok=True)
    (work / ".track_raw.npz").unlink(missing_ok=True)
    write_json(work / "subject.json", _subject_meta(key, key_src, cfg, n, crop, tracks, video, vinfo, audio_src))
    (work / ".stages.json").unlink(missing_ok=True)
    install_dir(work, out, ours)
    info(timer.table())
    return out


def _run_stages(video: Path, vinfo, audio_src: Path, separate_audio: bool, cfg: PrepareConfig, work: Path,
                stages: Stages, timer: StageTimer) -> tuple[int, CropBox, dict]:
    """Every stage into ``work`` (one an earlier run finished is skipped): audio, track, pose, frames,
    features, preview. → (frames kept, the crop, the tracks)."""
    phones = None
    try:
        with timer.stage("audio"):
            wav = _read_audio(audio_src, video, vinfo, separate_audio)
            write_wav(work / "audio_full.wav", wav, SR)
        phones = None if stages.done("features") else PhonesProcess(work / "audio_full.wav")
        with timer.stage("track") as row:
            if not stages.done("track"):
                track_faces(video, vinfo, cfg, work)
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
                fit_poses(raw, crop, cfg, work)
                stages.mark("pose")
            tracks = dict(np.load(work / "tracks.npz"))
            row[2] = f"median reprojection {np.median(tracks['reproj_px']):.2f} px"
        with timer.stage("frames") as row:
            if not stages.done("frames"):
                write_frames(video, n, crop, tracks["landmarks"], cfg, work)
                stages.mark("frames")
            row[2] = f"{cfg.size}x{cfg.size} JPEG q{cfg.jpeg_quality}"
        with timer.stage("features") as row:
            if not stages.done("features"):
                _features(wav, phones.result(), n, cfg, work)
                stages.mark("features")
            row[2] = "log-mel 80, visemes 15"
        with timer.stage("preview"):
            from .preview import write_preview

            write_preview(work, tracks)
    finally:
        if phones is not None:
            phones.stop()
    return n, crop, tracks


def _read_audio(audio_src: Path, video: Path, vinfo, separate: bool) -> np.ndarray:
    """The speech at 16 kHz: an error when silent, a warning when a ``separate`` file's length is not the
    video's (the overlap is used)."""
    wav = load_audio(audio_src, SR)
    if np.abs(wav).max(initial=0) < 1e-4:
        raise InputError(f"{audio_src}: audio is silent")
    if separate and vinfo.duration == vinfo.duration and abs(len(wav) / SR - vinfo.duration) > 0.5:
        warn(f"{audio_src} lasts {len(wav) / SR:.1f} s and {video} {vinfo.duration:.1f} s; using the overlap")
    return wav


def _features(wav: np.ndarray, segs: list, n: int, cfg: PrepareConfig, work: Path) -> None:
    """``audio.wav`` and the per-frame features of the ``n`` frames (they fit inside the audio: the overlap)."""
    clip = wav[:int(round(n / cfg.fps * SR))]
    write_wav(work / "audio.wav", clip, SR)
    feats = compute_audio_features(clip, SR, n, cfg.fps, phones=[s for s in segs if s.start < n / cfg.fps])
    save_audio_features(work / "audio_features.npz", feats)


def _subject_meta(key: str, key_src: dict, cfg: PrepareConfig, n: int, crop: CropBox, tracks: dict, video: Path,
                  vinfo, audio_src: Path) -> dict:
    """``subject.json``: the key, the split (the last ``val_fraction`` held out), the crop, the source, stats."""
    n_val = int(round(n * cfg.val_fraction))
    return {
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


def _subject_key(out: Path) -> str | None:
    try:
        return json.loads((out / "subject.json").read_text()).get("key")
    except (OSError, ValueError):
        return None


def partial_dir(out: Path) -> Path:
    """Where ``prepare`` builds ``out`` stage by stage (kept after an interruption, to resume)."""
    return out.with_name(out.name + ".partial")

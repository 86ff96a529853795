"""``synthesize_speaker``: a talking person with exact ground truth.

Speech comes from the offline TTS (espeak-ng) with its phoneme timings; the
phonemes drive the mouth (``mouth.py``), seeded head motion and blinks come
from ``head_motion.py``, and every frame warps the base photo (``face.py``) so its
landmarks land on the moving 3-D landmarks' orthographic projection.
Outputs, all written atomically beside each other::

    OUT.mp4             H.264 video + AAC speech
    OUT.truth.npz       per-frame ground truth (see ``synthesize_speaker``)
    OUT.phonemes.json   the speech's phonemes [{label, start, end, viseme, viseme_name}]
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio.visemes import SILENCE, Segment, segments_to_frames
from ..errors import InputError
from ..geometry.face import N_LANDMARKS, eye_openness, mouth_aperture
from ..audio.wav import SAMPLE_RATE
from ..io.video import VideoWriter
from ..progress import bar
from ..outputs import output_file
from ..utils import save_npz, write_json
from .face import MOUTH_LOWER, MOUTH_UPPER, FaceConfig, Warper, load_base_face
from .head_motion import MotionConfig, blink_bases, blinks, head_motion
from .mouth import MouthConfig, MouthModel, draw_interior, mouth_params


# Built-in lines for ``seconds=...``: many p/b/m closures and open vowels.
SENTENCES = [
    "Bob bought a big map of Panama.", "My father parked the car by the barn.",
    "Put the paper back in the box, please.", "Mom made a warm apple pie for the party.",
    "The baby boy is playing with a purple ball.", "Papa popped the balloon above the bench.",
    "A bright blue boat bobbed on the calm harbor.", "Maybe the bus will come back before nine.",
    "Pam parked her bike by the market.", "Bring me a bowl of hot bean soup.",
    "The band played music far past midnight.", "Impossible problems make amazing puzzles.",
    "Bill bumped his arm on the marble lamp.", "Open the window and watch the palm trees move.",
    "I am happy about my brand new camera.", "Father wants a cup of black coffee.",
    "The big brown bear ate plump berries.", "Please pass me the bread and the butter.",
    "We climbed up the mountain path in autumn.", "My mother bakes bread every Sunday morning.",
    "Paul opened a bottle of sparkling water.", "The farmer's dog barked at the passing cart.",
    "Bubbles floated above the pond by the park.", "Maria plans to paint the barn bright bamboo green.",
    "A proper pump supplies water to the palace.", "Combine the milk and the maple syrup.",
    "Her hobby is mapping ancient Roman armies.", "Pablo laughed as the puppy jumped by the lamp.",
    "Bake a big batch of banana muffins.", "The mob marched past the bank in the dark.",
]


@dataclass(frozen=True)
class SynthConfig:
    """Everything below the public arguments; the defaults work."""

    face: FaceConfig = field(default_factory=FaceConfig)
    mouth: MouthConfig = field(default_factory=MouthConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    voice: str = "en-us"
    rate: int = 150               # words per minute
    pad_s: float = 0.4            # silence around ``text``
    lead_s: float = 0.3           # silence before the first sentence in ``seconds`` mode
    pause_s: tuple = (0.25, 0.6)  # silence between sentences in ``seconds`` mode
    crf: int = 18
    fresh_tts: bool = True        # run the TTS in a fresh process (exactly reproducible speech)


def sidecar_paths(out_mp4: str | os.PathLike) -> tuple[Path, Path]:
    """``x.mp4`` -> (``x.truth.npz``, ``x.phonemes.json``)."""
    p = Path(out_mp4)
    return p.with_name(p.stem + ".truth.npz"), p.with_name(p.stem + ".phonemes.json")


# Runs in a fresh interpreter: espeak-ng keeps state between utterances (the
# same text comes out a few samples longer or shorter depending on what was
# said before in the process), so only a fresh process reproduces a seed exactly.
_TTS_WORKER = """
import json, sys
from pathlib import Path
import numpy as np
from talkinghead.audio.tts import synthesize
from talkinghead.errors import InputError
req, out = json.loads(sys.argv[1]), Path(sys.argv[2])
meta = []
try:
    for i, text in enumerate(req["texts"]):
        r = synthesize(text, voice=req["voice"], rate=req["rate"])
        np.save(out / f"{i}.npy", r.audio)
        meta.append([r.sample_rate, [[p.label, p.start, p.end, p.viseme] for p in r.phonemes]])
except InputError as e:
    (out / "error.txt").write_text(str(e))
    sys.exit(2)
(out / "meta.json").write_text(json.dumps(meta))
"""


def _tts(texts: list[str], cfg: SynthConfig) -> list:
    """TTSResults at 16 kHz for ``texts``, spoken in order by a fresh espeak-ng."""
    from ..audio.tts import TTSResult, synthesize

    if not cfg.fresh_tts:
        return [synthesize(t, voice=cfg.voice, rate=cfg.rate).resampled(SAMPLE_RATE) for t in texts]
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    req = json.dumps({"texts": texts, "voice": cfg.voice, "rate": cfg.rate})
    with tempfile.TemporaryDirectory(prefix="talkinghead-tts-") as tmp:
        proc = subprocess.run([sys.executable, "-c", _TTS_WORKER, req, tmp], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.returncode == 2 and os.path.isfile(os.path.join(tmp, "error.txt")):
            raise InputError(Path(tmp, "error.txt").read_text())
        if proc.returncode != 0:
            raise RuntimeError(f"TTS worker failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
        meta = json.loads(Path(tmp, "meta.json").read_text())
        audio = [np.load(Path(tmp, f"{i}.npy")) for i in range(len(texts))]
    return [TTSResult(a, sr, [Segment(*p) for p in ph]).resampled(SAMPLE_RATE)
            for a, (sr, ph) in zip(audio, meta)]


class _Track:
    """Audio and phoneme segments appended end to end."""

    def __init__(self):
        self.chunks: list[np.ndarray] = []
        self.segments: list[Segment] = []
        self.n = 0

    @property
    def t(self) -> float:
        return self.n / SAMPLE_RATE

    def silence(self, seconds: float) -> None:
        k = int(round(seconds * SAMPLE_RATE))
        if k > 0:
            self.segments.append(Segment("_", self.t, self.t + k / SAMPLE_RATE, SILENCE))
            self.chunks.append(np.zeros(k, np.float32))
            self.n += k

    def speech(self, tts) -> None:
        t0 = self.t
        self.segments += [Segment(s.label, s.start + t0, s.end + t0, s.viseme) for s in tts.phonemes]
        self.chunks.append(np.asarray(tts.audio, np.float32))
        self.n += len(tts.audio)

    def fitted(self, n_samples: int) -> tuple[np.ndarray, list[Segment]]:
        """Audio trimmed (with a short fade) or padded to ``n_samples``; segments to match."""
        audio = np.concatenate(self.chunks)[:n_samples].copy()
        if len(audio) == n_samples and self.n > n_samples:
            k = min(int(0.02 * SAMPLE_RATE), n_samples)
            audio[-k:] *= np.linspace(1.0, 0.0, k, dtype=np.float32)
        audio = np.pad(audio, (0, n_samples - len(audio)))
        end = n_samples / SAMPLE_RATE
        segs = [Segment(s.label, s.start, min(s.end, end), s.viseme) for s in self.segments if s.start < end]
        if segs and segs[-1].end < end:
            segs.append(Segment("_", segs[-1].end, end, SILENCE))
        return audio, segs


def _speech(text: str | None, seconds: float | None, fps: float, seed: int,
            cfg: SynthConfig) -> tuple[np.ndarray, list[Segment], str, int]:
    """(audio, segments, spoken text, n_frames)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[0])
    track = _Track()
    if text is not None:
        if not text.strip():
            raise InputError("text to speak is empty")
        track.silence(cfg.pad_s)
        track.speech(_tts([text], cfg)[0])
        track.silence(cfg.pad_s)
        if seconds is None:
            seconds = math.ceil(track.t * fps - 1e-6) / fps
        n_frames = max(1, int(round(seconds * fps)))
        spoken = " ".join(text.split())
    else:
        n_frames = max(1, int(round(seconds * fps)))
        said, last, queue = [], -1, []
        track.silence(cfg.lead_s)
        while track.t < seconds:
            if not queue:  # draw lines for (generously) the rest, speak them in one go
                plan, chars = [], 0
                while chars * 0.03 < seconds - track.t:
                    k = int(rng.integers(len(SENTENCES) - (last >= 0)))
                    k += int(0 <= last <= k)  # never the same line twice in a row
                    plan.append((SENTENCES[k], rng.uniform(*cfg.pause_s)))
                    chars, last = chars + len(SENTENCES[k]), k
                queue = list(zip(plan, _tts([p[0] for p in plan], cfg)))
            (line, pause), tts = queue.pop(0)
            track.speech(tts)
            track.silence(pause)
            said.append(line)
        spoken = " ".join(said)
    audio, segs = track.fitted(int(round(seconds * SAMPLE_RATE)))
    return audio, segs, spoken, n_frames


def _validate(out_mp4, seconds, size, fps, motion, seed, force=False) -> Path:
    if int(seed) != seed or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if seconds is not None and not (isinstance(seconds, (int, float)) and math.isfinite(seconds)
                                    and seconds > 0):
        raise InputError(f"seconds must be a positive number, got {seconds!r}")
    if int(size) != size or size < 64 or size % 2:
        raise InputError(f"size must be an even number of pixels >= 64, got {size!r}")
    if not (fps > 0 and math.isfinite(fps)):
        raise InputError(f"fps must be positive, got {fps!r}")
    if not (motion >= 0 and math.isfinite(motion)):
        raise InputError(f"motion must be >= 0, got {motion!r}")
    return output_file(out_mp4, force, "synth")


def synthesize_speaker(out_mp4: str | os.PathLike, text: str | None = None, seconds: float | None = None,
                       seed: int = 0, size: int = 512, fps: float = 25, motion: float = 1.0,
                       config: SynthConfig | None = None, force: bool = False) -> Path:
    """Write a synthetic talking-head video with ground truth; returns the mp4 path.

    ``text`` is spoken with 0.4 s of silence before and after (then cut or
    padded to ``seconds`` if that is given too); otherwise built-in sentences
    fill ``seconds`` (default 10) exactly. Same seed, same
    output. ``motion`` scales the head motion (0 = still head; blinks remain).

    ``OUT.truth.npz`` holds, per frame: ``landmarks`` (N, 478, 2) image pixels
    (FaceMesh topology, x_norm * size convention); ``rotation`` (N, 3, 3) head
    rotation relative to the photo's pose, ``R = Rz(roll) @ Rx(pitch) @ Ry(yaw)``
    with x right, y down, z into the screen; ``euler_deg`` (N, 3) yaw, pitch,
    roll; ``translation`` (N, 2) pixels; ``scale`` (N,); ``viseme`` (N,) argmax
    id; ``viseme_weights`` (N, 15); ``aperture`` (N,); ``eye_openness`` (N, 2);
    ``blink`` (N,) bool; ``mouth_params`` (N, 4) jaw/round/stretch/closure;
    ``neutral`` (478, 3) the closed-mouth photo landmarks (x, y, z pixels) and
    ``pivot`` (3,): a landmark's rigid motion is ``scale * R @ (p - pivot) +
    pivot + (translation, 0)``; and scalars ``fps``, ``size``, ``seed``, ``text``.
    """
    cfg = config or SynthConfig()
    if text is None and seconds is None:
        seconds = 10.0
    out = _validate(out_mp4, seconds, size, fps, motion, seed, force)
    size = int(size)
    truth_path, phon_path = sidecar_paths(out)
    _, rng_head, rng_blink = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    audio, segs, spoken, n = _speech(text, seconds, fps, int(seed), cfg)

    base = load_base_face(size, cfg.face)
    mouth = MouthModel(base.points, cfg.mouth)
    params = mouth_params(segs, n, fps, cfg.mouth)
    head = head_motion(n, fps, size, rng_head, motion, params[:, 0], cfg.motion)
    blink = blinks(n, fps, rng_blink, cfg.motion)
    lid = blink_bases(mouth.neutral, cfg.motion)
    rot = head.rotation
    pivot, alpha = base.pivot, base.alpha[:, None]
    shift = np.column_stack([head.translation, np.zeros(n)])

    def frame_points(i: int) -> tuple[np.ndarray, np.ndarray]:
        local = mouth.neutral + mouth.deform(params[i:i + 1])[0] + blink[i] * lid
        world = head.scale[i] * (local - pivot) @ rot[i].T + pivot + shift[i]
        return local[:, :2] + alpha * (world[:, :2] - local[:, :2]), world[:, 2]

    landmarks = np.stack([frame_points(i)[0][:N_LANDMARKS] for i in range(n)]).astype(np.float32)
    weights = segments_to_frames(segs, n, fps)
    save_npz(truth_path, landmarks=landmarks, rotation=rot.astype(np.float32),
             euler_deg=head.euler_deg.astype(np.float32), translation=head.translation.astype(np.float32),
             scale=head.scale.astype(np.float32), viseme=weights.argmax(axis=1).astype(np.int64),
             viseme_weights=weights.astype(np.float32),
             aperture=mouth_aperture(landmarks).astype(np.float32),
             eye_openness=eye_openness(landmarks).astype(np.float32), blink=blink >= 0.5,
             mouth_params=params, neutral=mouth.neutral[:N_LANDMARKS].astype(np.float32),
             pivot=pivot.astype(np.float32), fps=np.float64(fps), size=np.int64(size),
             seed=np.int64(seed), text=np.array(spoken))
    write_json(phon_path, [s.to_dict() for s in segs])

    # The video goes last: once it exists, its sidecar files do too.
    warp = Warper(base.image, base.points[:, :2], base.triangles, base.n_outer)
    with VideoWriter(out, fps, (size, size), audio=audio, sample_rate=SAMPLE_RATE, crf=cfg.crf) as writer, \
            bar(total=n, desc="synth", unit="frame") as pbar:
        for i in range(n):
            pts, depth = frame_points(i)
            img = warp(pts, depth)
            draw_interior(img, pts[MOUTH_UPPER], pts[MOUTH_LOWER], mouth.half_width * head.scale[i],
                          cfg.mouth)
            writer.write(img)
            pbar.update()
    return out

"""Offline text-to-speech with espeak-ng (via ctypes) plus exact phoneme timings.

Only the library and voice data bundled in the ``espeakng-loader`` wheel are
used, never a system espeak. The library is initialised once per process in
``AUDIO_OUTPUT_SYNCHRONOUS`` mode with ``espeakINITIALIZE_PHONEME_EVENTS``; the
synth callback receives 16-bit samples and a list of ``espeak_EVENT`` s. An
``espeakEVENT_PHONEME`` event carries the espeak mnemonic (e.g. ``p``,
``'i:``, ``t#``) in the 8-byte ``id.string`` union member and its start time
in ms (``audio_position``, counted from the start of the whole message).

Command line use (no CLI subcommand needed)::

    python -c "from talkinghead.audio.tts import write_tts; write_tts('Hello there', 'hi.wav')"

writes ``hi.wav`` (16 kHz mono PCM) and ``hi.phonemes.json`` beside it.

Repeatability: phoneme timings agree to about 1 ms between calls, but espeak keeps
pitch-jitter state between messages inside a process (not reset by
re-initialising), so repeated calls may differ by a few samples in length.
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..outputs import output_file
from ..utils import write_json
from .visemes import SILENCE, VISEMES, Segment, espeak_to_viseme
from .wav import SAMPLE_RATE
from .wav import resample, write_wav

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_PARAM_RATE, _PARAM_PITCH = 1, 3
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_MIN_SPEECH_S = 0.05  # shorter output counts as "no speech"


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p),
                ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` from speak_lib.h (40 bytes on 64-bit: pointer-aligned union)."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


class _Espeak:
    """The process-wide espeak-ng instance; use only while holding ``_LOCK``."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_GetParameter.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        data = espeakng_loader.get_data_path().encode()
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data,
                                                 _INITIALIZE_PHONEME_EVENTS)
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak-ng failed to initialise with data at {data.decode()}")
        self.lib = lib
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple[str, float]] = []
        self._callback = _CALLBACK(self._on_synth)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.default_pitch = lib.espeak_GetParameter(_PARAM_PITCH, 0)

    def _on_synth(self, wav, n: int, events) -> int:
        if wav and n > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events and events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                name = bytes(ev.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                self.events.append((name, ev.audio_position / 1000.0))
            i += 1
        return 0

    def speak(self, text: str, voice: str, rate: int, pitch: int | None):
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise InputError(f"unknown espeak-ng voice {voice!r} (try 'en-us' or 'en')")
        self.lib.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
        self.lib.espeak_SetParameter(_PARAM_PITCH,
                                     self.default_pitch if pitch is None else int(pitch), 0)
        self.chunks, self.events = [], []
        buf = ctypes.create_string_buffer(text.encode("utf-8"))
        err = self.lib.espeak_Synth(buf, len(buf), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != 0:
            raise RuntimeError(f"espeak_Synth failed with code {err}")
        audio = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
        return audio, list(self.events)


_LOCK = threading.Lock()
_ENGINE: _Espeak | None = None


def _engine() -> _Espeak:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Espeak()
    return _ENGINE


@dataclass
class TTSResult:
    """Synthesised speech: float32 mono audio and timed espeak phonemes."""

    audio: np.ndarray
    sample_rate: int
    phonemes: list[Segment] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate

    def resampled(self, sr: int = SAMPLE_RATE) -> "TTSResult":
        """The same speech at ``sr`` Hz (phoneme times are unchanged)."""
        return TTSResult(resample(self.audio, self.sample_rate, sr), sr, list(self.phonemes))


def events_to_segments(events: list[tuple[str, float]], duration: float) -> list[Segment]:
    """Turn (mnemonic, start) phoneme events into contiguous segments covering [0, duration].

    Stress marks are dropped from labels, each phoneme ends where the next starts,
    zero-length phonemes are dropped, and leading/trailing gaps become ``_`` (sil).
    """
    segs: list[Segment] = []
    for i, (name, start) in enumerate(events):
        end = events[i + 1][1] if i + 1 < len(events) else duration
        start, end = min(start, duration), min(end, duration)
        if end > start:
            segs.append(Segment(name.lstrip("',%=") or "_", start, end, espeak_to_viseme(name)))
    if not segs:
        return [Segment("_", 0.0, duration, SILENCE)] if duration > 0 else []
    if segs[0].start > 0:
        segs.insert(0, Segment("_", 0.0, segs[0].start, SILENCE))
    if segs[-1].end < duration:
        segs.append(Segment("_", segs[-1].end, duration, SILENCE))
    return segs


def synthesize(text: str, voice: str = "en-us", rate: int = 150,
               pitch: int | None = None) -> TTSResult:
    """Speak ``text`` with espeak-ng; ``rate`` in words/minute (80-450), ``pitch`` 0-100."""
    if not text or not text.strip():
        raise InputError("text to speak is empty")
    if not 80 <= int(rate) <= 450:
        raise InputError(f"speech rate must be 80..450 words per minute, got {rate}")
    with _LOCK:
        engine = _engine()
        pcm, events = engine.speak(" ".join(text.split()), voice, rate, pitch)
        sr = engine.sample_rate
    audio = pcm.astype(np.float32) / 32768.0
    segs = events_to_segments(events, len(audio) / sr)
    speech = sum(s.end - s.start for s in segs if s.viseme != SILENCE)
    if speech < _MIN_SPEECH_S or np.max(np.abs(audio), initial=0.0) < 1e-3:
        raise InputError(f"text {text.strip()[:40]!r} produces no speech")
    return TTSResult(audio, sr, segs)


def write_tts(text: str, out_wav: str | os.PathLike, voice: str = "en-us", sr: int = SAMPLE_RATE,
              rate: int = 150, force: bool = False) -> TTSResult:
    """Synthesise ``text`` to ``out_wav`` (16-bit mono at ``sr``) and ``<stem>.phonemes.json``.

    The JSON is a list of ``{label, start, end, viseme, viseme_name}`` (seconds).
    Both files are written atomically. Returns the resampled :class:`TTSResult`.
    """
    out_wav = output_file(out_wav, force, "tts")
    result = synthesize(text, voice=voice, rate=rate).resampled(sr)
    write_wav(out_wav, result.audio, sr)
    write_json(phonemes_json_path(out_wav), [s.to_dict() for s in result.phonemes])
    return result


def phonemes_json_path(wav_path: str | os.PathLike) -> Path:
    """``dir/name.wav`` -> ``dir/name.phonemes.json``."""
    p = Path(wav_path)
    return p.with_name(p.stem + ".phonemes.json")


__all__ = ["TTSResult", "synthesize", "write_tts", "phonemes_json_path", "VISEMES"]

"""The 15-class viseme set and phone -> viseme mapping.

Classes follow the Oculus/Meta lip-sync viseme set. Both phone front-ends
(pocketsphinx ARPAbet for recorded speech, espeak-ng mnemonics for TTS) map
into it the same way, so a model trained on recognised phones can be driven
by TTS phonemes at inference time.

====  =====  ==========================  ============================================
 id   name   ARPAbet / espeak phones      mouth shape
====  =====  ==========================  ============================================
  0   sil    SIL, fillers / _ _: _! ;    closed, relaxed (rest pose)
  1   PP     P B M / p b m               lips pressed together
  2   FF     F V / f v                   lower lip tucked under upper teeth
  3   TH     TH DH / T D                 tongue tip between slightly parted teeth
  4   DD     T D / t d t# t2 ?           jaw slightly open, tongue behind teeth
  5   kk     K G HH / k g x h            jaw slightly open, tongue back, neutral lips
  6   CH     CH JH SH ZH / tS dZ S Z     lips pushed forward and rounded, teeth close
  7   SS     S Z / s z                   teeth almost closed, lips spread
  8   nn     N NG L / n N l n- @L        jaw slightly open, tongue up, lips neutral
  9   RR     R ER / r r- 3 3:            lips slightly rounded, jaw half open
 10   aa     AA AE AH AW AY / a A: V @   jaw wide open ("car", "cat", "cut")
 11   E      EH EY / E e e@ eI           mid-open, lips spread ("bed", "say")
 12   ih     IH IY Y / I i i: j          slightly open, lips spread wide ("tip", "see")
 13   oh     AO OW OY / 0 O: O@ oU OI    open and rounded ("toe", "thought")
 14   ou     UH UW W / U u: U@ w         small rounded, pouted lips ("book", "you")
====  =====  ==========================  ============================================

Schwa (ARPAbet AH, espeak ``@``) maps to ``aa`` in both front-ends because
CMU's AH covers both the strut vowel and schwa. Unknown labels never raise:
they fall back to rules on their first letter, and to ``sil`` if none apply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VISEMES: list[str] = ["sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR",
                      "aa", "E", "ih", "oh", "ou"]
N_VISEMES = len(VISEMES)
_V = {name: i for i, name in enumerate(VISEMES)}

SILENCE = _V["sil"]
BILABIAL = _V["PP"]
OPEN_VOWELS = (_V["aa"], _V["E"], _V["oh"])
VOWELS = (_V["aa"], _V["E"], _V["ih"], _V["oh"], _V["ou"])

_ARPABET = {
    "SIL": "sil",
    "P": "PP", "B": "PP", "M": "PP",
    "F": "FF", "V": "FF",
    "TH": "TH", "DH": "TH",
    "T": "DD", "D": "DD",
    "K": "kk", "G": "kk", "HH": "kk",
    "CH": "CH", "JH": "CH", "SH": "CH", "ZH": "CH",
    "S": "SS", "Z": "SS",
    "N": "nn", "NG": "nn", "L": "nn",
    "R": "RR", "ER": "RR",
    "AA": "aa", "AE": "aa", "AH": "aa", "AW": "aa", "AY": "aa",
    "EH": "E", "EY": "E",
    "IH": "ih", "IY": "ih", "Y": "ih",
    "AO": "oh", "OW": "oh", "OY": "oh",
    "UH": "ou", "UW": "ou", "W": "ou",
}

_ESPEAK = {
    "p": "PP", "b": "PP", "m": "PP",
    "f": "FF", "v": "FF",
    "T": "TH", "D": "TH",
    "t": "DD", "d": "DD", "t#": "DD", "t2": "DD", "d#": "DD", "?": "DD",
    "k": "kk", "g": "kk", "x": "kk", "h": "kk",
    "tS": "CH", "dZ": "CH", "S": "CH", "Z": "CH",
    "s": "SS", "z": "SS",
    "n": "nn", "N": "nn", "l": "nn", "n-": "nn", "l/": "nn", "@L": "nn",
    "r": "RR", "r-": "RR", "3": "RR", "3:": "RR",
    "a": "aa", "a#": "aa", "aa": "aa", "A:": "aa", "A@": "aa", "V": "aa",
    "aI": "aa", "aI@": "aa", "aI3": "aa", "aU": "aa", "@": "aa", "@2": "aa",
    "@5": "aa", "@-": "aa",
    "e": "E", "E": "E", "e@": "E", "eI": "E",
    "i": "ih", "i:": "ih", "I": "ih", "I#": "ih", "I2": "ih", "i@": "ih", "i@3": "ih",
    "j": "ih",
    "0": "oh", "O": "oh", "O:": "oh", "O2": "oh", "O@": "oh", "o@": "oh", "OI": "oh",
    "oU": "oh", "oU#": "oh",
    "u": "ou", "u:": "ou", "U": "ou", "U@": "ou", "w": "ou",
}

# Fallback by first character, for labels not listed above.
_FIRST_CHAR = {
    **dict.fromkeys("pbm", "PP"), **dict.fromkeys("fv", "FF"), **dict.fromkeys("TD", "TH"),
    **dict.fromkeys("td", "DD"), **dict.fromkeys("kgxqch", "kk"), **dict.fromkeys("SZ", "CH"),
    **dict.fromkeys("sz", "SS"), **dict.fromkeys("nNlL", "nn"), **dict.fromkeys("rR3", "RR"),
    **dict.fromkeys("aAV@&", "aa"), **dict.fromkeys("eE", "E"), **dict.fromkeys("iIjy", "ih"),
    **dict.fromkeys("oO0", "oh"), **dict.fromkeys("uUw", "ou"),
}

_OPENNESS = {"sil": 0.0, "PP": 0.0, "FF": 0.1, "TH": 0.25, "DD": 0.3, "kk": 0.35, "CH": 0.25,
             "SS": 0.15, "nn": 0.25, "RR": 0.35, "aa": 1.0, "E": 0.7, "ih": 0.45, "oh": 0.8,
             "ou": 0.4}


@dataclass
class Segment:
    """One phone with its time span (seconds) and viseme class id."""

    label: str
    start: float
    end: float
    viseme: int

    def to_dict(self) -> dict:
        return {"label": self.label, "start": round(float(self.start), 4),
                "end": round(float(self.end), 4), "viseme": int(self.viseme),
                "viseme_name": VISEMES[self.viseme]}


def arpabet_to_viseme(label: str) -> int:
    """Viseme id of a CMU/pocketsphinx phone (stress digits and fillers handled)."""
    lab = label.strip().upper()
    if not lab or lab.startswith("+") or lab.startswith("<") or lab in ("SIL", "SP"):
        return SILENCE
    lab = lab.rstrip("012")
    if lab in _ARPABET:
        return _V[_ARPABET[lab]]
    return _V[_FIRST_CHAR.get(lab[0].lower(), "sil")] if lab else SILENCE


def espeak_to_viseme(label: str) -> int:
    """Viseme id of an espeak-ng phoneme mnemonic (stress marks ' and , ignored)."""
    lab = label.strip().lstrip("',%=")
    if not lab or lab[0] in "_;|":
        return SILENCE
    if lab in _ESPEAK:
        return _V[_ESPEAK[lab]]
    if lab.startswith(("tS", "dZ")):
        return _V["CH"]
    base = lab.rstrip("#:-/;2345")
    if base in _ESPEAK:
        return _V[_ESPEAK[base]]
    return _V[_FIRST_CHAR.get(lab[0], "sil")]


def mouth_openness_prior(viseme_id: int) -> float:
    """Typical jaw/lip opening of a viseme in [0, 1] (sil and PP closed, aa fully open)."""
    return _OPENNESS[VISEMES[int(viseme_id)]]


def segments_to_frames(segments: list[Segment], n_frames: int, fps: float,
                       n_classes: int = N_VISEMES) -> np.ndarray:
    """Soft viseme vectors per video frame, shape (n_frames, n_classes), rows sum to 1.

    Entry [i, c] is the fraction of frame i's interval [i/fps, (i+1)/fps) covered
    by segments of class c; time no segment covers counts as silence.
    """
    out = np.zeros((n_frames, n_classes), np.float64)
    dt = 1.0 / fps
    for seg in segments:
        s, e = max(float(seg.start), 0.0), min(float(seg.end), n_frames * dt)
        if e <= s:
            continue
        first, last = int(np.floor(s * fps)), min(int(np.ceil(e * fps)), n_frames)
        for i in range(first, last):
            overlap = min(e, (i + 1) * dt) - max(s, i * dt)
            if overlap > 0:
                out[i, seg.viseme] += overlap / dt
    covered = out.sum(axis=1)
    over = covered > 1.0  # overlapping segments: renormalise
    out[over] /= covered[over, None]
    out[:, SILENCE] += np.clip(1.0 - out.sum(axis=1), 0.0, 1.0)
    return out.astype(np.float32)


def centered_windows(x: np.ndarray, width: int) -> np.ndarray:
    """(N, D) -> (N, width, D): rows i-width//2 .. i+width-width//2-1, edge padded."""
    n = x.shape[0]
    offsets = np.arange(width) - width // 2
    idx = np.clip(np.arange(n)[:, None] + offsets[None, :], 0, max(n - 1, 0))
    return x[idx]


def viseme_windows(v: np.ndarray, width: int = 6) -> np.ndarray:
    """(n_frames, 15) -> (n_frames, width, 15) windows centred on each frame.

    NEON convention: for width 6 the window holds offsets -3..+2 around frame i
    (row ``width // 2`` is frame i itself); edges repeat the first/last frame.
    """
    return centered_windows(np.asarray(v), width)

"""Audio front-end: decoding, log-mel, phones/visemes, offline TTS, per-frame features.

* :mod:`.wav` -- ``load_audio`` (any container via PyAV), ``write_wav``, ``resample``
* :mod:`.mel` -- ``log_mel`` (T, 80) at 100 rows/s and ``frame_windows``
* :mod:`.visemes` -- the 15 Oculus visemes, phone mappings, ``Segment``, frame vectors
* :mod:`.phones` -- ``recognize_phones`` with pocketsphinx (allphone mode)
* :mod:`.tts` -- ``synthesize`` / ``write_tts`` with the bundled espeak-ng
* :mod:`.features` -- ``compute_audio_features`` and its ``.npz`` save/load

Heavy dependencies (av, pocketsphinx, espeak-ng) are imported on first use.
"""

from .features import (AUDIO_FEATURES_VERSION, compute_audio_features, features_for_wav,
                       load_audio_features, save_audio_features)
from .mel import frame_windows, log_mel
from .phones import recognize_phones
from .tts import TTSResult, synthesize, write_tts
from .visemes import (BILABIAL, OPEN_VOWELS, SILENCE, VISEMES, Segment, arpabet_to_viseme,
                      espeak_to_viseme, mouth_openness_prior, segments_to_frames, viseme_windows)
from .wav import load_audio, resample, write_wav

__all__ = [
    "AUDIO_FEATURES_VERSION", "BILABIAL", "OPEN_VOWELS", "SILENCE", "Segment", "TTSResult",
    "VISEMES", "arpabet_to_viseme", "compute_audio_features", "espeak_to_viseme",
    "features_for_wav", "frame_windows", "load_audio", "load_audio_features", "log_mel",
    "mouth_openness_prior", "recognize_phones", "resample", "save_audio_features",
    "segments_to_frames", "synthesize", "viseme_windows", "write_tts", "write_wav",
]

"""talkinghead: person-specific, audio-driven talking-head video.

Stages (one package each): ``prepare`` (video -> subject dir), ``train``
(subject -> model dir), ``say`` (model + audio/text -> mp4), ``evaluate``.
"""

__version__ = "0.1.0"

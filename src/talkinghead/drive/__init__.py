"""Drives: speech, head pose and eyes per output frame, built for one engine.

* :mod:`.speech` -- ``Speech`` (16 kHz audio + per-frame features) from a wav, text or the subject's recording
* :mod:`.schedule` -- ``Schedule``: replayed/still/user poses and eyes with blinks, for any frame range
* :mod:`.build` -- ``build_drive``: the request checked against the engine's abilities, then the drive
* :mod:`.stream` -- ``DriveStream``: the same rows from audio arriving in chunks (live)

This floor sits above the engines (it reads their declared features and
abilities) and below the stages that render: ``say``, ``evaluate``, ``serve``.
"""

from .build import build_drive, check_request, default_lips, default_pose, motion_of, read_background
from .schedule import Blinks, Poses, Schedule, nearest_pose_frames, natural_blinks, pingpong, still_frame
from .speech import Speech, load_speech, read_speech, speech_features, subject_speech
from .stream import DriveStream

__all__ = ["Blinks", "build_drive", "check_request", "default_lips", "default_pose", "DriveStream",
           "load_speech", "motion_of", "natural_blinks", "nearest_pose_frames", "pingpong", "Poses",
           "read_background", "read_speech", "Schedule", "Speech", "speech_features", "still_frame",
           "subject_speech"]

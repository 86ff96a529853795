"""Evaluation metrics and reports for ``talkinghead evaluate``.

Pure functions on numpy arrays (``talkinghead.metrics``: images, ``temporal``: per-frame
series), ``report`` for metrics.json / report.html, ``analyze`` (track a
video once), ``cross`` (cross-driven: a video and its driving speech) and
``self_driven`` (a model's held-out split against the real frames).
"""

from ..metrics import FlickerAccumulator, cpbd, crop_box, flicker, psnr, ssim
from .report import METRIC_KEYS, write_metrics, write_report
from .temporal import (aperture_thresholds, audio_envelope, av_lag_ms, blink_f1, detect_blinks,
                       pearson, viseme_consistency)

__all__ = [
    "METRIC_KEYS", "FlickerAccumulator", "aperture_thresholds", "audio_envelope", "av_lag_ms",
    "blink_f1", "cpbd", "crop_box", "detect_blinks", "flicker", "pearson", "psnr", "ssim",
    "viseme_consistency", "write_metrics", "write_report",
]

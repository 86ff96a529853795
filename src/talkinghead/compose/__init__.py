"""Compositing: putting generated pixels into recorded frames (pure functions plus one frame cache).

* :mod:`.labels` -- the segmentation labels of ``masks/*.png`` (one definition)
* :mod:`.blend` -- premultiplied ``over``, masked ``blend``, ``paste`` of a square crop into a frame, ``place``
  of a crop as it is
* :mod:`.masks` -- feathered masks: any polygon, the lower face, what speech changes (below the nose), the eyes;
  ``mask_bbox``, the box a mask covers
* :mod:`.fill` -- ``push_pull_fill``: unknown pixels from known ones across scales
* :mod:`.frames` -- ``RecordedFrames``: a subject frame with its labels and paste mask, cached;
  ``SpeechFrames``: masks of what speech changes
"""

from .blend import blend, over, paste, place
from .fill import push_pull_fill
from .frames import RecordedFrames, SpeechFrames
from .labels import BACKGROUND, FACE, HEAD, HEAD_LABELS, TORSO
from .masks import eye_mask, feathered_polygon, lower_face_mask, mask_bbox, speech_face_mask

__all__ = ["BACKGROUND", "FACE", "HEAD", "HEAD_LABELS", "TORSO", "RecordedFrames", "SpeechFrames", "blend",
           "eye_mask", "feathered_polygon", "lower_face_mask", "mask_bbox", "over", "paste", "place", "push_pull_fill", "speech_face_mask"]

"""``talkinghead synth``: a synthetic talking person with exact ground truth.

A real photo (``skimage.data.astronaut``) is warped frame by frame so that
its FaceMesh landmarks follow viseme-driven mouth shapes, blinks and seeded
head motion, with TTS speech as the soundtrack. Tests and the demo use it
because every landmark, pose, viseme and blink is known exactly.

>>> from talkinghead.synth import synthesize_speaker
>>> synthesize_speaker("x.mp4", seconds=5, size=256, seed=1)  # x.mp4, x.truth.npz, x.phonemes.json
"""

from .speaker import SENTENCES, SynthConfig, sidecar_paths, synthesize_speaker

__all__ = ["synthesize_speaker", "SynthConfig", "SENTENCES", "sidecar_paths"]

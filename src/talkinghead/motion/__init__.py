"""Motion learners: audio → mouth shape (``expression``) and audio → head motion (``head``),
kept together per subject as ``MotionModel`` (``motion.pt`` in a model directory).

This floor sits above ``audio``, ``geometry`` and ``subject`` and below every
package that builds a drive; engines may use its learners.
"""

from .data import MotionData
from .expression import LOOKAHEAD, MOUTH_POINTS, ExpressionConfig, ExpressionModel, MouthPCA
from .lower_face import LowerFace
from .head import HeadConfig, HeadMotionModel, pose_matrices, pose_vectors, speech_energy
from .model import MOTION_FILE, MotionConfig, MotionModel

__all__ = ["LOOKAHEAD", "MOUTH_POINTS", "ExpressionConfig", "ExpressionModel", "MouthPCA", "MotionData",
           "HeadConfig", "LowerFace", "HeadMotionModel", "pose_matrices", "pose_vectors", "speech_energy", "MOTION_FILE",
           "MotionConfig", "MotionModel"]

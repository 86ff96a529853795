"""Motion learners: audio → mouth shape (``expression``), later audio → head motion.

This floor sits above ``audio``, ``geometry`` and ``subject`` and below every
package that builds a drive; engines may use its learners.
"""

from .expression import LOOKAHEAD, MOUTH_POINTS, ExpressionConfig, ExpressionModel, MouthPCA

__all__ = ["LOOKAHEAD", "MOUTH_POINTS", "ExpressionConfig", "ExpressionModel", "MouthPCA"]

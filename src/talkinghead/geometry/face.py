"""FaceMesh topology facts and per-frame face signals as pure functions.

Index lists follow mediapipe FaceMesh's 478-point topology (468 mesh points +
10 iris points with ``refine_landmarks=True``). "Left"/"right" are the
subject's own. All signal functions take landmarks shaped ``(..., 478, 2|3)``
and broadcast over leading axes.
"""

from __future__ import annotations

import numpy as np

N_LANDMARKS = 478

# Closed contours, in order.
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
LIPS_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146]
LIPS_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95]
RIGHT_EYE = [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]
LEFT_EYE = [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249]
RIGHT_IRIS = [468, 469, 470, 471, 472]  # centre first
LEFT_IRIS = [473, 474, 475, 476, 477]
RIGHT_BROW = [46, 53, 52, 65, 55, 70, 63, 105, 66, 107]
LEFT_BROW = [276, 283, 282, 295, 285, 300, 293, 334, 296, 336]
NOSE_BRIDGE = [168, 6, 197, 195, 5, 4, 1]
# Lower half of the face oval, from the right ear (234) round the chin to the left (454).
JAW = [234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288,
       361, 323, 454]

# Inner-lip vertical pairs (upper, lower) used for the mouth aperture.
INNER_LIP_PAIRS = [(82, 87), (13, 14), (312, 317)]
# Eye corners (outer right, outer left) give the face scale.
EYE_OUTER = (33, 263)
EYE_CORNERS = {"right": (33, 133), "left": (362, 263)}

# Points that barely move in speech: forehead, nose bridge, cheekbones,
# temples, inner/outer eye corners. Used for the rigid head-pose fit.
RIGID = [10, 151, 9, 8, 168, 6, 197, 195,            # forehead to nose bridge
         109, 338, 67, 297, 103, 332,                # upper forehead
         54, 284, 21, 251, 162, 389,                 # temples
         234, 454, 116, 345, 123, 352,               # cheekbones
         33, 263, 133, 362]                          # eye corners

def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1)


def face_scale(lm: np.ndarray) -> np.ndarray:
    """Distance between the outer eye corners (same units as ``lm``)."""
    return _dist(lm[..., EYE_OUTER[0], :], lm[..., EYE_OUTER[1], :])


def mouth_aperture(lm: np.ndarray) -> np.ndarray:
    """Mean inner-lip gap over three vertical pairs, divided by the face scale.

    About 0 for a closed mouth, ~0.3-0.5 for a wide-open one.
    """
    gap = np.mean([_dist(lm[..., u, :], lm[..., d, :]) for u, d in INNER_LIP_PAIRS], axis=0)
    return gap / np.maximum(face_scale(lm), 1e-9)


def polygon_area(pts: np.ndarray) -> np.ndarray:
    """Shoelace area of closed 2-D polygons shaped ``(..., K, 2)``."""
    x, y = pts[..., 0], pts[..., 1]
    return 0.5 * np.abs(np.sum(x * np.roll(y, -1, axis=-1) - np.roll(x, -1, axis=-1) * y, axis=-1))


def eye_openness(lm: np.ndarray) -> np.ndarray:
    """Eye area ratio per eye, shaped ``(..., 2)`` as (right, left).

    Area of the eyelid contour divided by the squared eye width (corner to
    corner), the scale-free "eye area" feature RAD-NeRF conditions on. Open
    eyes give ~0.25-0.35; closed eyes ~0.05.
    """
    out = []
    for contour, (a, b) in ((RIGHT_EYE, EYE_CORNERS["right"]), (LEFT_EYE, EYE_CORNERS["left"])):
        area = polygon_area(lm[..., contour, :2])
        width = _dist(lm[..., a, :2], lm[..., b, :2])
        out.append(area / np.maximum(width ** 2, 1e-9))
    return np.stack(out, axis=-1)


def lip_box(lm: np.ndarray, margin: float = 0.25) -> np.ndarray:
    """Square box ``(x0, y0, x1, y1)`` around the outer lips, grown by ``margin`` of its side."""
    pts = lm[..., LIPS_OUTER, :2]
    lo, hi = pts.min(axis=-2), pts.max(axis=-2)
    c = (lo + hi) / 2
    side = np.max(hi - lo, axis=-1, keepdims=True) * (1 + 2 * margin)
    return np.concatenate([c - side / 2, c + side / 2], axis=-1)


def bbox(lm: np.ndarray) -> np.ndarray:
    """Tight ``(x0, y0, x1, y1)`` of all landmarks."""
    pts = lm[..., :2]
    return np.concatenate([pts.min(axis=-2), pts.max(axis=-2)], axis=-1)

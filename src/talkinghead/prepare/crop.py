"""A fixed square crop around the face track, for the whole video.

The crop is one box for all frames (no per-frame jitter): large enough to hold
the head with hair and shoulders wherever the face moves, centred slightly
below the face so the torso is in view. It may extend past the frame; the
outside is filled by replicating the border.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ..errors import FaceError
from ..geometry import face as mesh

MIN_FACE_PX = 96


@dataclass(frozen=True)
class CropBox:
    x0: float
    y0: float
    side: float

    def matrix(self, size: int) -> np.ndarray:
        """2x3 affine from source pixels to crop pixels of ``size``."""
        s = size / self.side
        return np.array([[s, 0, -self.x0 * s], [0, s, -self.y0 * s]], dtype=np.float64)

    def apply(self, img: np.ndarray, size: int) -> np.ndarray:
        h, w = img.shape[:2]
        if (self.x0, self.y0, self.side) == (0.0, 0.0, float(size)) and h == w == size:
            return img  # the crop is the whole frame already
        interp = cv2.INTER_AREA if self.side > size else cv2.INTER_LINEAR
        return cv2.warpAffine(img, self.matrix(size), (size, size), flags=interp,
                              borderMode=cv2.BORDER_REPLICATE)

    def points(self, lm: np.ndarray, size: int) -> np.ndarray:
        """Source-pixel landmarks (..., 2|3) into crop pixels; z is scaled like x."""
        s = size / self.side
        out = np.array(lm, dtype=np.float32, copy=True)
        out[..., 0] = (out[..., 0] - self.x0) * s
        out[..., 1] = (out[..., 1] - self.y0) * s
        if out.shape[-1] > 2:
            out[..., 2] *= s
        return out

    def to_dict(self) -> dict:
        return {k: float(v) for k, v in asdict(self).items()}


def face_width(lm: np.ndarray) -> np.ndarray:
    """Width of the face oval, pixels, per frame."""
    xs = lm[..., mesh.FACE_OVAL, 0]
    return xs.max(axis=-1) - xs.min(axis=-1)


def plan_crop(lm: np.ndarray, width: int, height: int, scale: float = 3.0) -> CropBox:
    """One square box for the whole track ``lm`` (N, 478, 2|3), in source pixels."""
    fw = float(np.median(face_width(lm)))
    if fw < MIN_FACE_PX:
        raise FaceError(f"face is too small ({fw:.0f} px wide, need at least {MIN_FACE_PX} px); "
                        "use a closer or higher-resolution video")
    oval = lm[..., mesh.FACE_OVAL, :2]
    lo, hi = oval.min(axis=(0, 1)), oval.max(axis=(0, 1))  # extent of all face motion
    centre = np.median(oval.mean(axis=1), axis=0)
    side = max(scale * fw, float(np.max(hi - lo)) + 1.5 * fw)
    side = min(side, float(min(width, height)))  # prefer no padding
    side = max(side, float(np.max(hi - lo)) * 1.15)  # never cut the moving face
    cx, cy = centre[0], centre[1] + 0.12 * side
    x0 = float(np.clip(cx - side / 2, min(0.0, width - side), max(0.0, width - side)))
    y0 = float(np.clip(cy - side / 2, min(0.0, height - side), max(0.0, height - side)))
    return CropBox(x0, y0, float(side))

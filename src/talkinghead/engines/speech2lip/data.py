"""What the speech2lip engine trains and renders from: the canonical view, its lip region, per-frame crops.

* ``canonical_region``: the canonical frame and the box of the canonical view
  that speech changes: the lips, the chin and the jaw below the mouth corners
  (``LOWER_POINTS``) and the nose bottom, of every training frame seen at the
  canonical pose, plus a margin.
* ``LipData``: for every frame the engine learns from, a crop of the observed
  frame around where that region lands (a fixed-size box; the crop's origin is
  kept) and its appearance row.
  Crops are what both the lip model's targets (warped into the canonical view)
  and the Blend-Net's inputs come from, so the whole frames are never held.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ...geometry import face as mesh
from ...progress import bar
from ...subject import Subject
from .gamem import CanonicalDepth, Camera, frame_camera, region_box

__all__ = ["LOWER_POINTS", "canonical_region", "canonical_mask", "LipData"]

LOWER_POINTS = mesh.LIPS_OUTER + mesh.LIPS_INNER + mesh.JAW[4:-4] + [2, 98, 327]


def canonical_region(subject: Subject, idx: np.ndarray, c: int, margin: float = 0.1) -> tuple[int, int, int, int]:
    """(x0, y0, w, h) in canonical-view pixels covering the lower face of frames ``idx`` at frame c's pose."""
    tr = subject.tracks
    R, t, K = (tr[k].astype(np.float64) for k in ("rotation", "translation", "intrinsics"))
    X = tr["canon_landmarks"][np.asarray(idx)][:, LOWER_POINTS].astype(np.float64) @ R[c].T + t[c]
    uv = X @ K.T
    return region_box((uv[..., :2] / uv[..., 2:]).reshape(-1, 2), subject.size, margin)


def canonical_mask(subject: Subject, idx: np.ndarray, c: int, box: tuple[int, int, int, int],
                   feather: float = 4.0) -> np.ndarray:
    """(h, w) float mask over ``box``: where the lower face of any of frames ``idx`` lies in the canonical
    view (inside the jaw line, below the nose), grown by ``feather`` px and feathered over as many."""
    tr = subject.tracks
    R, t, K = (tr[k].astype(np.float64) for k in ("rotation", "translation", "intrinsics"))
    outline = mesh.JAW + [327, 2, 98]  # ear, round the chin, ear, then across under the nose
    x0, y0, w, h = box
    m = np.zeros((h, w), np.uint8)
    for i in np.asarray(idx)[:: max(1, len(idx) // 200)]:
        X = tr["canon_landmarks"][i][outline].astype(np.float64) @ R[c].T + t[c]
        uv = X @ K.T
        pts = uv[:, :2] / uv[:, 2:] - (x0, y0)
        cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    m = cv2.dilate(m, np.ones((2 * int(feather) + 1,) * 2, np.uint8)).astype(np.float32)
    k = 2 * int(feather) + 1
    return cv2.blur(m, (k, k))


class LipData:
    def __init__(self, subject: Subject, c: int, depth: CanonicalDepth, indices: np.ndarray, code_period: int,
                 margin: float = 0.05):
        self.subject, self.c, self.period, self.depth = subject, c, max(1, code_period), depth
        self.indices = np.asarray(indices)
        self.cam_c = frame_camera(subject, c)
        self.centres: dict[int, np.ndarray] = {}
        spans = []
        for i in self.indices:
            lo, hi = self._span(int(i), self.camera(int(i)))
            self.centres[int(i)] = (lo + hi) / 2
            spans.append(hi - lo)
        side = np.ceil(np.max(spans, axis=0) * (1 + 2 * margin) / 16) * 16  # Blend-Net: /2, then halved thrice
        self.crop_wh = (int(side[0]), int(side[1]))
        self.crops: dict[int, np.ndarray] = {}

    def _span(self, i: int, cam: Camera) -> tuple[np.ndarray, np.ndarray]:
        """Where the canonical region lands in a frame seen by ``cam``: (min, max) pixel corners."""
        with torch.no_grad():
            p = self.depth.c2o(self.depth.grid().reshape(-1, 2)[::7].to(cam.K.device), self.cam_c, cam)
        return p.min(0).values.cpu().numpy(), p.max(0).values.cpu().numpy()

    def origin_of(self, i: int, cam: Camera | None = None) -> np.ndarray:
        """Top-left (x, y) of frame i's crop (for a given camera: any head pose)."""
        if cam is not None:
            lo, hi = self._span(i, cam)
            centre = (lo + hi) / 2
        else:
            if i not in self.centres:
                lo, hi = self._span(i, self.camera(i))
                self.centres[i] = (lo + hi) / 2
            centre = self.centres[i]
        return np.round(centre - np.array(self.crop_wh) / 2).astype(int)

    def camera(self, i: int) -> Camera:
        return frame_camera(self.subject, i)

    def appearance(self, i: int) -> int:
        return int(i) // self.period

    def cut(self, frame: np.ndarray, origin: np.ndarray) -> np.ndarray:
        """A (h, w, 3) crop of ``frame`` at ``origin`` (x, y), the border replicated outside the frame."""
        w, h = self.crop_wh
        M = np.array([[1.0, 0, -origin[0]], [0, 1.0, -origin[1]]])
        return cv2.warpAffine(frame, M, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)

    def load(self, desc: str = "lip crops") -> None:
        b = bar(len(self.indices), desc, unit="f")
        for i in self.indices:
            i = int(i)
            if i not in self.crops:
                self.crops[i] = self.cut(self.subject.frame(i), self.origin_of(i))
            b.update()
        b.close()

    def crop_tensor(self, i: int, device: str = "cpu") -> torch.Tensor:
        """(1, 3, h, w) float in [0, 1] (a frame not loaded yet is cut now)."""
        if int(i) not in self.crops:
            self.crops[int(i)] = self.cut(self.subject.frame(int(i)), self.origin_of(int(i)))
        return torch.from_numpy(self.crops[int(i)]).to(device).permute(2, 0, 1)[None].float() / 255

    def sample(self, crop: torch.Tensor, origin: np.ndarray, p: torch.Tensor) -> torch.Tensor:
        """Bilinear colours (N, 3) of a (1, 3, h, w) crop at frame pixels ``p`` (N, 2)."""
        w, h = self.crop_wh
        g = torch.stack([2 * (p[:, 0] - float(origin[0])) / w - 1, 2 * (p[:, 1] - float(origin[1])) / h - 1], -1)
        return torch.nn.functional.grid_sample(crop, g[None, None].to(crop), mode="bilinear",
                                               padding_mode="border", align_corners=False)[0, :, 0].T

    def targets(self, i: int, q: torch.Tensor, depth: CanonicalDepth, device: str = "cpu") -> torch.Tensor:
        """Frame i's colours at canonical pixels ``q`` (N, 2): its pixels warped by C2O (O2C supervision)."""
        return self.sample(self.crop_tensor(i, device), self.origin_of(int(i)), depth.c2o(q, self.cam_c, self.camera(i)))

"""The canonical view the speech2lip lips live in, and the way between it and any frame (GAMEM, Sec. 3.2).

``CanonicalView`` holds the geometry: the canonical frame ``c``, the box of the
region speech changes and its soft mask, the learnable ``CanonicalDepth`` over
it, the crops of the frames the engine learns from (``LipData``), and the
operations on them: canonical pixels to box coordinates (``uv``), random
training rectangles (``patch``), the map of a frame's crop into the canonical
view (``crop_map``), a frame's real crop (``real_crop``) and its colours at
canonical pixels (``targets``). The networks that draw in it are ``model.py``'s.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...geometry import face as mesh
from ...geometry.pose import project
from ...lru import Lru
from ...subject import Subject
from .data import LipData, canonical_mask, canonical_region
from .gamem import Camera, CanonicalDepth, frame_camera

__all__ = ["CanonicalView", "texture_with_margin"]


def texture_with_margin(frame: np.ndarray, box: tuple[int, int, int, int], reach: float) -> tuple[np.ndarray, tuple]:
    """``frame``'s pixels of ``box`` = (x0, y0, w, h) grown on each side by ``reach`` of its size plus 2 px (the
    bicubic filter's support); where that leaves the frame its edge repeats. → (pixels, (mx, my))."""
    x0, y0, w, h = box
    mx, my = int(np.ceil(reach * w)) + 2, int(np.ceil(reach * h)) + 2
    H, W = frame.shape[:2]
    ys = np.clip(np.arange(y0 - my, y0 + h + my), 0, H - 1)
    xs = np.clip(np.arange(x0 - mx, x0 + w + mx), 0, W - 1)
    return frame[ys][:, xs], (mx, my)


class CanonicalView:
    def __init__(self, subject: Subject, c: int, box: tuple[int, int, int, int], mask: np.ndarray,
                 depth_init: np.ndarray, device: str, indices: np.ndarray, code_period: int, depth_state=None):
        """The view of frame ``c`` over ``box``; crops of frames ``indices`` (cut when first asked for);
        ``depth_state``: a saved depth (else ``depth_init``)."""
        self.subject, self.device, self.c, self.box = subject, device, int(c), tuple(int(v) for v in box)
        self.cam_c = frame_camera(subject, self.c, device)
        self.depth = CanonicalDepth(self.box, depth_init).to(device)
        self.depth_init = torch.as_tensor(depth_init, device=device)
        self.mask = torch.as_tensor(mask, dtype=torch.float32, device=device)[None, None]
        if depth_state is not None:
            self.depth.load_state_dict(depth_state)
        self.data = LipData(subject, self.c, self.depth, np.asarray(indices), code_period)
        tr = subject.tracks
        lips = tr["canon_landmarks"][self.c][mesh.LIPS_OUTER].astype(np.float64)
        self.mouth_px = project(lips, tr["rotation"][self.c].astype(np.float64),
                                tr["translation"][self.c].astype(np.float64),
                                tr["intrinsics"].astype(np.float64)).mean(0)
        self._maps = Lru(64)

    @classmethod
    def fit(cls, subject: Subject, fit_idx: np.ndarray, device: str, code_period: int) -> "CanonicalView":
        """A fresh view for training on frames ``fit_idx``: the subject's neutral frame, the region their lower
        faces cover there, its depth from the frame's own face."""
        c = subject.neutral_frame()
        box = canonical_region(subject, fit_idx, c)
        init = CanonicalDepth.initial(subject, c, box)
        return cls(subject, c, box, canonical_mask(subject, fit_idx, c, box), init, device, fit_idx, code_period)

    @classmethod
    def saved(cls, subject: Subject, state: dict, device: str, code_period: int) -> "CanonicalView":
        """The view a model saved (``state``: its ``weights.pt``, the keys ``state()`` writes)."""
        c, box = int(state["c"]), tuple(int(v) for v in state["box"])
        view = cls(subject, c, box, np.asarray(state["mask"]), np.zeros((box[3], box[2]), np.float32), device,
                   np.asarray([c]), code_period, depth_state=state["depth"])
        view.data.crop_wh = tuple(state["crop_wh"])
        return view

    def state(self) -> dict:
        return {"c": self.c, "box": list(self.box), "mask": self.mask[0, 0].cpu().numpy(),
                "crop_wh": list(self.data.crop_wh), "depth": self.depth.state_dict()}

    # ---- canonical pixels ------------------------------------------------------------------------
    def uv(self, q: torch.Tensor) -> torch.Tensor:
        x0, y0, w, h = self.box
        return (q - torch.tensor([x0, y0], device=q.device, dtype=q.dtype)) / torch.tensor(
            [w, h], device=q.device, dtype=q.dtype)

    def patch(self, rng: np.random.Generator, size: int) -> torch.Tensor:
        """Pixel centres (size², 2) of a random rectangle of the region: around the mouth half the time."""
        x0, y0, w, h = self.box
        sx, sy = min(size, w), min(size, h)
        if rng.random() < 0.5:
            cx, cy = self.mouth_px - (x0, y0) + rng.normal(0, size / 6, 2)
            ox, oy = int(np.clip(cx - sx / 2, 0, w - sx)), int(np.clip(cy - sy / 2, 0, h - sy))
        else:
            ox, oy = int(rng.integers(0, w - sx + 1)), int(rng.integers(0, h - sy + 1))
        ys, xs = torch.meshgrid(torch.arange(sy) + oy + y0 + 0.5, torch.arange(sx) + ox + x0 + 0.5, indexing="ij")
        return torch.stack([xs, ys], -1).reshape(-1, 2).float().to(self.device)

    def targets(self, i: int, q: torch.Tensor) -> torch.Tensor:
        """Frame i's colours (N, 3) at canonical pixels ``q`` (N, 2): its pixels warped through the depth."""
        return self.data.targets(int(i), q, self.depth, self.device)

    def canonical_image(self, i: int) -> np.ndarray:
        """(h, w, 3) uint8: frame i's pixels over the whole box, pose removed (its lips as the canonical view sees them)."""
        h, w = self.box[3], self.box[2]
        with torch.no_grad():
            q = self.depth.grid().reshape(-1, 2)
            rgb = self.targets(int(i), q).reshape(h, w, 3)
        return (rgb.clamp(0, 1) * 255 + 0.5).byte().cpu().numpy()

    def sample_canonical(self, image: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Colours (N, 3) of a (1, 3, h, w) canonical-view image at canonical pixels ``q`` (N, 2), bilinear."""
        g = (self.uv(q) * 2 - 1)[None, None].to(image)
        return F.grid_sample(image, g, mode="bilinear", padding_mode="border", align_corners=False)[0, :, 0].T

    # ---- GAMEM into a frame's crop --------------------------------------------------------------
    def crop_map(self, j: int, cam: Camera | None = None) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        """(origin, canonical pixels (Hc*Wc, 2) of the crop's pixel centres, region mask (1, 1, Hc, Wc))."""
        key = (j, self.depth.depth._version) if cam is None else None
        hit = self._maps.get(key) if key is not None else None
        if hit is not None:
            return hit
        origin = self.data.origin_of(j, cam)
        cam = cam or frame_camera(self.subject, j, self.device)
        w, h = self.data.crop_wh
        s = 4  # the map is smooth: invert on every 4th pixel, interpolate the rest
        ys, xs = torch.meshgrid(torch.arange(0, h + s, s, device=self.device) + 0.5,
                                torch.arange(0, w + s, s, device=self.device) + 0.5, indexing="ij")
        p = torch.stack([xs + float(origin[0]), ys + float(origin[1])], -1)
        coarse = self.depth.invert(p.reshape(-1, 2), self.cam_c, cam).reshape(1, *p.shape[:2], 2).permute(0, 3, 1, 2)
        fine = torch.stack(torch.meshgrid(torch.arange(h, device=self.device) / (p.shape[0] - 1) / s * 2 - 1,
                                          torch.arange(w, device=self.device) / (p.shape[1] - 1) / s * 2 - 1,
                                          indexing="ij")[::-1], -1)[None]
        q = F.grid_sample(coarse, fine, mode="bilinear", align_corners=True)[0].permute(1, 2, 0).reshape(-1, 2)
        g = (self.uv(q) * 2 - 1).reshape(1, h, w, 2)
        mask = F.grid_sample(self.mask, g, mode="bilinear", padding_mode="zeros", align_corners=False)
        out = (origin, q, mask)
        return self._maps.put(key, out) if key is not None else out

    def real_crop(self, j: int, origin: np.ndarray, frame: np.ndarray | None = None) -> torch.Tensor:
        """(1, 3, Hc, Wc) in [0, 1]: frame j's crop at ``origin`` (kept for training frames), or ``frame``'s."""
        if frame is None and j in self.data.crops:
            return self.data.crop_tensor(j, self.device)
        crop = self.data.cut(self.subject.frame(j) if frame is None else frame, origin)
        return torch.from_numpy(crop).to(self.device).permute(2, 0, 1)[None].float() / 255

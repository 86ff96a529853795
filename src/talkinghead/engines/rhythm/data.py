"""The rhythm engine's frames at model resolution: the head crop of every frame, its landmark drawing, its
mesh in crop pixels, and its projected image ỹ_t from the reference (``mesh.py``), held in memory.

The crop is one square of subject pixels that holds the head in every frame (``compose.drawing.model_box``),
resized to the model's ``size``. Target meshes come from pose-free landmarks at a head pose, so a frame's own
(tracking) and a drive's (the learner's mouth on a replayed face, at a learned pose) are built the same way.
A drive's mouth moves the whole lower face with it (``motion.LowerFace``): the chin, cheeks and the skin around the
lips follow the asked-for lips and jaw as they did in the training frames, so a face held still opens its
mouth as a whole, and the replayed frame's own lower face (its own mouth, on held-out frames) never shows
through.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ...compose import drawing as D
from ...geometry.face import lip_box
from ...motion import LowerFace
from ...progress import bar
from ...subject import Subject
from .mesh import crop_mesh, project_image, projection_map, textured

__all__ = ["RhythmData"]


class RhythmData:
    """Frames of ``subject`` at ``size``² around the head, with ``reference`` the frame that textures the mesh."""

    def __init__(self, subject: Subject, size: int, reference: int):
        self.subject, self.size, self.reference = subject, int(size), int(reference)
        tr = subject.tracks
        self.canon, self.rot, self.trans, self.K = tr["canon_landmarks"], tr["rotation"], tr["translation"], tr["intrinsics"]
        self.box = D.model_box(tr["landmarks"], subject.size)
        self.crops: dict[int, np.ndarray] = {}
        self.lower = LowerFace(self.canon[subject.split("train")])
        ref_uv, _ = self.mesh(self.reference)
        self.ref_uv, self.ref_usable = ref_uv, textured(ref_uv)
        self.ref_crop = self.crop(self.reference)

    # ---- one frame ------------------------------------------------------------------------------
    def crop(self, i: int) -> np.ndarray:
        """(size, size, 3) uint8 head crop of frame i (kept once loaded)."""
        if i not in self.crops:
            s = self.size / self.box[2]
            M = np.array([[s, 0, -self.box[0] * s], [0, s, -self.box[1] * s]])
            return cv2.warpAffine(self.subject.frame(i), M, (self.size, self.size), flags=cv2.INTER_AREA)
        return self.crops[i]

    def landmarks(self, j: int, mouth: np.ndarray | None = None) -> np.ndarray:
        """(478, 3) pose-free landmarks of frame j; with ``mouth`` (len(MOUTH_POINTS), 2) its lower face is the one
        that goes with that mouth (``motion.LowerFace``), the mouth and jaw exactly it."""
        canon = self.canon[j].astype(np.float64)
        return canon if mouth is None else self.lower.apply(canon, mouth)

    def mesh(self, j: int, mouth: np.ndarray | None = None, R=None, t=None) -> tuple[np.ndarray, np.ndarray]:
        """Crop pixels (478, 2) and depths of frame j's face (its mouth ``mouth``) at pose (R, t) (default j's)."""
        R = self.rot[j] if R is None else R
        t = self.trans[j] if t is None else t
        return crop_mesh(self.landmarks(j, mouth), R, t, self.K, self.box, self.size)

    def drawing(self, uv: np.ndarray) -> np.ndarray:
        """(size, size) uint8 full landmark drawing (lips and jaw included) of a mesh at crop pixels ``uv``."""
        return D.draw(uv, np.array([0.0, 0.0, self.size]), self.size, full=True)

    def projected(self, uv: np.ndarray, z: np.ndarray) -> np.ndarray:
        """(size, size, 4) uint8: the reference's texture on the mesh at (uv, z), and its mask."""
        where, covered = projection_map(self.ref_uv, self.ref_usable, uv, z, self.size)
        ref = torch.from_numpy(self.ref_crop).permute(2, 0, 1).float()
        img, m = project_image(ref, where, covered)
        return np.concatenate([img.permute(1, 2, 0).round().clamp(0, 255).byte().numpy(),
                               (m[0, ..., None] * 255).byte().numpy()], 2)

    def inputs(self, uv: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(drawing (S, S) uint8, projected image + mask (S, S, 4) uint8) of a target mesh."""
        return self.drawing(uv), self.projected(uv, z)

    # ---- all training frames --------------------------------------------------------------------
    def load(self, indices) -> None:
        """Crops, drawings, projected images and mouth boxes of ``indices`` (their tracked meshes), kept."""
        idx = np.asarray(indices)
        n, S = self.subject.n_frames, self.size
        self.drawings = np.zeros((n, S, S), np.uint8)
        self.projections = np.zeros((n, S, S, 4), np.uint8)
        self.boxes = np.zeros((n, 4), np.float32)
        b = bar(len(idx), "load frames", unit="f")
        for i in idx:
            i = int(i)
            self.crops[i] = self.crop(i)
            uv, z = self.mesh(i)
            self.drawings[i], self.projections[i] = self.inputs(uv, z)
            self.boxes[i] = lip_box(uv)  # the mouth box in crop pixels
            b.update()
        b.close()

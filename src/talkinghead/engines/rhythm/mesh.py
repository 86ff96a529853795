"""The 3-D-aware module (§4.1): a reference frame's real texture on the tracked face mesh, seen at another
head pose and expression.

The reference's texture coordinates are its own tracked landmarks (the mesh as it saw them); the target
mesh is the same 478 vertices at the target's pose and expression. Every target pixel the posed mesh covers
takes the reference pixel at the same barycentric place in the same triangle (``geometry.raster``), where
that triangle faced the reference camera (a triangle turned away there has no texture of its own) and is
not inside the lips (an open mouth's inside is not on any mesh: the decoder draws it). Pure functions on
arrays; ``project_image`` samples a tensor.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ...geometry import face as face_topology
from ...geometry.pose import project
from ...geometry.raster import face_triangles, front_facing, interpolate, triangle_ids

__all__ = ["crop_mesh", "textured", "projection_map", "project_image", "frontal_score"]


def crop_mesh(canon: np.ndarray, R: np.ndarray, t: np.ndarray, K: np.ndarray, box: np.ndarray,
              size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pose-free landmarks ``canon`` (V, 3) cm at pose (R, t) under intrinsics K: their pixels (V, 2) in the
    square crop ``box`` (x0, y0, side) of subject pixels resized to ``size``, and their camera depths (V,)."""
    canon, R, t = (np.asarray(a, np.float64) for a in (canon, R, t))
    uv = project(canon, R, t, np.asarray(K, np.float64))
    return (uv - box[:2]) * (size / box[2]), (canon @ R.T + t)[:, 2]


@lru_cache(maxsize=1)
def _inside_lips() -> np.ndarray:
    """(T,) bool: triangles whose three corners are all inner-lip points (they span the mouth opening)."""
    inner = np.zeros(face_topology.N_LANDMARKS, bool)
    inner[face_topology.LIPS_INNER] = True
    return inner[face_triangles()].all(1)


def textured(ref_uv: np.ndarray) -> np.ndarray:
    """(T,) bool: the triangles a reference seen at ``ref_uv`` (V, 2) gives texture to: facing its camera,
    not spanning the mouth opening."""
    return front_facing(ref_uv, face_triangles()) & ~_inside_lips()


def projection_map(ref_uv: np.ndarray, usable: np.ndarray, uv: np.ndarray, z: np.ndarray,
                   size: int) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel of a ``size``² target crop whose mesh sits at ``uv`` (V, 2) with depths ``z``: the
    reference crop position (size, size, 2) its surface point had there, and whether it has one (size, size)
    (covered by a triangle that is ``usable`` (T,) in the reference)."""
    tris = face_triangles()
    ids = triangle_ids(uv, z, tris, (size, size))
    where, covered = interpolate(ids, uv, ref_uv, tris)
    covered &= usable[np.maximum(ids, 0)]
    return where.astype(np.float32), covered


def project_image(ref: torch.Tensor, where: np.ndarray, covered: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The projected image ỹ_t: reference crop ``ref`` (3, S, S) sampled at ``where`` (S, S, 2) crop pixels,
    and its mask (1, S, S); black outside the mask."""
    S = ref.shape[-1]
    g = torch.from_numpy(where).to(ref.device) / S * 2 - 1
    img = F.grid_sample(ref[None], g[None], mode="bilinear", padding_mode="border", align_corners=False)[0]
    m = torch.from_numpy(covered).to(ref.device, ref.dtype)[None]
    return img * m, m


def frontal_score(euler_deg: np.ndarray) -> np.ndarray:
    """(N,) how far each head pose (yaw, pitch, roll degrees) turns from facing the camera (lower: frontal)."""
    e = np.asarray(euler_deg, np.float64)
    return np.hypot(e[..., 0], e[..., 1])

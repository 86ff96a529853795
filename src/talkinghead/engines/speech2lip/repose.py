"""Pose-controllable synthesis (Speech2Lip Sec. 3.4): the still frame's head moved to any head pose.

The still frame (the canonical view) carries a depth for every pixel: its
rasterised face depth, filled smoothly over the hair, neck and beyond
(``push_pull_fill``) and blurred (``smooth`` px at 512²) so that the steep
face edges do not fold, a ``CanonicalDepth`` over the whole frame. Every
output pixel is traced back to the still frame's pixel whose surface point
lands on it under the requested pose (the same Gauss-Newton inversion GAMEM's
C2O uses, on a 4-px lattice, interpolated between), and takes that pixel's
colour where it belongs to the head and the trace lands within ``tolerance``
px of the pixel. Elsewhere the output is the still frame with its head
removed and filled from what surrounds it (neck, collar, background), so a
turned head leaves no background-coloured gap at the jaw. The paper splats
the canonical image forward and lets the Blend-Net fill what splatting
leaves; tracing backwards leaves no cracks (our Blend-Net still blends only
the lip region).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ...compose import HEAD_LABELS, push_pull_fill
from ...nn import to_uint8
from ...subject import Subject
from .gamem import Camera, CanonicalDepth, face_depth, frame_camera

__all__ = ["HeadRepose", "trace_back"]


@torch.no_grad()
def trace_back(depth: CanonicalDepth, src: Camera, dst: Camera, size: tuple[int, int], stride: int = 4,
               iters: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """For every pixel of a (H, W) ``dst`` image: the ``src`` pixel (H, W, 2) whose point (at ``depth``)
    projects onto it, and how far (px, (H, W)) that point lands from the pixel (0 where the inversion holds)."""
    h, w = size
    dev = depth.depth.device
    ys, xs = torch.meshgrid(torch.arange(0, h + stride, stride, device=dev) + 0.5,
                            torch.arange(0, w + stride, stride, device=dev) + 0.5, indexing="ij")
    p = torch.stack([xs, ys], -1)
    q = depth.invert(p.reshape(-1, 2), src, dst, iters=iters)
    err = (depth.c2o(q, src, dst) - p.reshape(-1, 2)).norm(dim=-1)
    coarse = torch.cat([q, err[:, None]], 1).reshape(1, *p.shape[:2], 3).permute(0, 3, 1, 2)
    gy = torch.arange(h, device=dev) / stride / (p.shape[0] - 1) * 2 - 1
    gx = torch.arange(w, device=dev) / stride / (p.shape[1] - 1) * 2 - 1
    g = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1)[None]
    fine = F.grid_sample(coarse, g, mode="bilinear", align_corners=True)[0].permute(1, 2, 0)
    return fine[..., :2], fine[..., 2]


class HeadRepose:
    """The still frame ``s`` of a subject, re-rendered at any head pose (``render(camera)``)."""

    def __init__(self, subject: Subject, s: int, device: str = "cpu", tolerance: float = 4.0, smooth: float = 8.0):
        self.subject, self.s, self.device, self.tolerance = subject, int(s), device, tolerance
        S = subject.size
        d, covered = face_depth(subject, self.s)
        full = push_pull_fill(d[..., None], covered)[..., 0] if covered.any() else np.full((S, S), 30.0, np.float32)
        if smooth > 0:
            full = cv2.GaussianBlur(full, (0, 0), smooth * S / 512)
        self.depth = CanonicalDepth((0, 0, S, S), full).to(device)
        self.cam = frame_camera(subject, self.s, device)
        frame, labels = subject.frame(self.s), subject.mask(self.s)
        head = np.isin(labels, HEAD_LABELS)
        self.head = torch.as_tensor(head, dtype=torch.float32, device=device)[None, None]
        # the still frame with its head removed, filled from what surrounds it (neck, collar, background)
        plate = np.clip(push_pull_fill(frame.astype(np.float32), ~head), 0, 255)
        self.frame_t = torch.from_numpy(frame).to(device).permute(2, 0, 1)[None].float() / 255
        self.plate_t = torch.from_numpy(plate).to(device).permute(2, 0, 1)[None].float() / 255

    @torch.no_grad()
    def render(self, cam: Camera) -> np.ndarray:
        """(S, S, 3) uint8: the still frame with its head at camera pose ``cam``."""
        S = self.subject.size
        q, err = trace_back(self.depth, self.cam, cam, (S, S))
        g = (q / S * 2 - 1)[None]
        colour = F.grid_sample(self.frame_t, g, mode="bilinear", padding_mode="border", align_corners=False)
        head = F.grid_sample(self.head, g, mode="bilinear", padding_mode="zeros", align_corners=False)
        head = head * (err < self.tolerance).float()[None, None]
        out = colour * head + self.plate_t * (1 - head)
        return to_uint8(out)[0]

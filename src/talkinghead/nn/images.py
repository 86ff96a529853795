"""Network images back to pictures: the one conversion every engine's output and preview goes through."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["to_uint8"]


def to_uint8(x: torch.Tensor, lo: float = 0.0) -> np.ndarray:
    """(B, C, H, W) images in [``lo``, 1] (``lo`` 0 or -1) → (B, H, W, 3) uint8, clamped and rounded; a single
    channel is repeated to three."""
    img = ((x.detach().clamp(lo, 1) - lo) * (255 / (1 - lo))).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img

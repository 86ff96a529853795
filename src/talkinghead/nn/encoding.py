"""Input encodings for coordinate networks: NeRF's positional encoding (the hash grid is ``hashgrid.py``)."""

from __future__ import annotations

import math

import torch

__all__ = ["posenc", "posenc_dim"]


def posenc(p: torch.Tensor, n_freqs: int) -> torch.Tensor:
    """NeRF positional encoding ``[p, sin(2^k pi p), cos(2^k pi p)]_{k<n_freqs}``."""
    freqs = (2.0 ** torch.arange(n_freqs, dtype=p.dtype, device=p.device)) * math.pi
    ang = (p[..., None, :] * freqs[:, None]).flatten(-2)
    return torch.cat([p, ang.sin(), ang.cos()], dim=-1)


def posenc_dim(dims: int, n_freqs: int) -> int:
    """Width of ``posenc`` for ``dims``-d input."""
    return dims * (1 + 2 * n_freqs)

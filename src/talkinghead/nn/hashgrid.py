"""Multi-resolution hash-grid encoding (Mueller et al. 2022, "Instant-NGP"), pure PyTorch.

RAD-NeRF (Tang et al. 2022) builds every field on such grids: a 3D spatial grid
``E^3`` for the head, a low-dimensional grid ``E^D`` over the learned
audio-coordinate space, and a 2D grid for the torso.  Paper settings (App. A.2):

* spatial grid: 16 levels x 2 features, hash table 2^19 entries, finest
  resolution 2048 from a base of 16 (the official code scales the finest
  resolution by the scene bound);
* audio grid (2D): 16 levels x 2 features (the reference code uses 1), a 2D
  table never needs 2^19 entries -- 2^14 suffices, resolution 16 -> 2048 or less;
* torso grid (2D): as the audio grid.

Conventions here: an input ``x`` in ``[0, 1]^D`` (values outside are clamped)
of shape ``(..., D)`` maps to ``(..., n_levels * n_features)``, level-major.
Level ``l`` has resolution ``N_l = floor(base * b^l)`` with
``b = (desired / base)^(1 / (L - 1))`` unless ``per_level_scale`` gives ``b``.
Its lattice has ``N_l + 1`` vertices per axis at ``x * N_l`` (no half-cell
shift, no align-corners switch).  When ``(N_l + 1)^D`` vertices fit into
``2^log2_hashmap_size`` entries the level is stored densely (row-major with
axis 0 fastest); otherwise vertices are hashed with
``XOR_d(c_d * pi_d) mod 2^32 mod T``, ``pi = (1, 2654435761, 805459861)``.
All levels share one parameter table with per-level offsets, so one gather
serves every level and corner; features are D-linearly interpolated, which is
differentiable in ``x`` (needed: the audio coordinates are learned).
Entries start uniform in ``[-1e-4, 1e-4]`` as in Instant-NGP.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

__all__ = ["HashGrid", "naive_hash_encode", "level_resolutions", "PRIMES"]

PRIMES = (1, 2654435761, 805459861)
_MASK32 = 0xFFFFFFFF


def level_resolutions(n_levels: int, base_resolution: int, desired_resolution: int | None = None,
                      per_level_scale: float | None = None) -> list[int]:
    """``N_l = floor(base * b^l)``; ``b`` from ``per_level_scale`` or so that the last level hits ``desired``."""
    if per_level_scale is None:
        if desired_resolution is None:
            raise ValueError("give desired_resolution or per_level_scale")
        per_level_scale = math.exp(math.log(desired_resolution / base_resolution) / max(n_levels - 1, 1))
    return [int(math.floor(base_resolution * per_level_scale ** lvl + 1e-6)) for lvl in range(n_levels)]


class HashGrid(nn.Module):
    """Hash-grid encoder ``[0,1]^D -> R^(n_levels * n_features)`` for ``D`` in {1, 2, 3}."""

    def __init__(self, dim: int, n_levels: int = 16, n_features: int = 2, log2_hashmap_size: int = 19,
                 base_resolution: int = 16, desired_resolution: int | None = 2048,
                 per_level_scale: float | None = None, init_scale: float = 1e-4) -> None:
        super().__init__()
        if dim not in (1, 2, 3):
            raise ValueError(f"HashGrid supports dim 1, 2 or 3, got {dim}")
        self.dim, self.n_levels, self.n_features = dim, n_levels, n_features
        self.out_dim = n_levels * n_features
        if not 1 <= log2_hashmap_size <= 32:
            raise ValueError(f"log2_hashmap_size must be in 1..32, got {log2_hashmap_size}")
        self.hash_size = cap = 2 ** log2_hashmap_size
        self.resolutions = level_resolutions(n_levels, base_resolution, desired_resolution, per_level_scale)
        if any(b < a for a, b in zip(self.resolutions, self.resolutions[1:])) or self.resolutions[0] < 1:
            raise ValueError(f"level resolutions must be >= 1 and non-decreasing: {self.resolutions}")
        self.dense = [(n + 1) ** dim <= cap for n in self.resolutions]
        self.table_sizes = [(n + 1) ** dim if d else cap for n, d in zip(self.resolutions, self.dense)]
        self.offsets = [0, *itertools.accumulate(self.table_sizes)][:-1]
        self.embeddings = nn.Parameter(torch.empty(sum(self.table_sizes), n_features).uniform_(-init_scale, init_scale))

        self.n_dense = sum(self.dense)  # levels grow, so the dense ones are a prefix
        res = torch.tensor(self.resolutions, dtype=torch.long)
        self.register_buffer("_res", res, persistent=False)
        self.register_buffer("_strides", torch.stack([(res + 1) ** d for d in range(dim)], -1), persistent=False)
        self.register_buffer("_primes", torch.tensor(PRIMES[:dim], dtype=torch.long), persistent=False)
        self.register_buffer("_offsets", torch.tensor(self.offsets, dtype=torch.long), persistent=False)
        self.register_buffer("_bits", torch.tensor([0, 1], dtype=torch.long), persistent=False)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, levels={self.n_levels}x{self.n_features}, resolutions={self.resolutions[0]}.."
                f"{self.resolutions[-1]}, dense_levels={self.n_dense}, entries={self.embeddings.shape[0]}")

    def _corner_indices(self, base: torch.Tensor) -> torch.Tensor:
        """Integer cell origins ``(B,L,D)`` -> table rows ``(B,L,2^D)`` of the cell's corners."""
        vert = base[..., None] + self._bits                                        # (B, L, D, 2)
        k = self.n_dense
        dense = vert[:, :k] * self._strides[:k, :, None]                           # per-axis terms
        hashed = vert[:, k:] * self._primes[:, None]
        d_idx, h_idx = dense[:, :, 0], hashed[:, :, 0]                             # (B, L', 2)
        for d in range(1, self.dim):                                               # outer-combine axes,
            d_idx = (d_idx[..., :, None] + dense[:, :, d, None, :]).flatten(-2)    # axis 0 slowest
            h_idx = torch.bitwise_xor(h_idx[..., :, None], hashed[:, :, d, None, :]).flatten(-2)
        h_idx = torch.bitwise_and(h_idx, self.hash_size - 1)                        # = mod 2^32 mod T
        return torch.cat([d_idx, h_idx], dim=1) + self._offsets[None, :, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        x = x.reshape(-1, self.dim).clamp(0.0, 1.0).to(self.embeddings.dtype)
        pos = x[:, None, :] * self._res[None, :, None].to(x.dtype)                   # (B, L, D)
        base = torch.minimum(pos.detach().floor().long(), (self._res - 1)[None, :, None])
        frac = pos - base.to(pos.dtype)                                             # differentiable in x
        idx = self._corner_indices(base)                                           # (B, L, C)
        w = torch.stack([1 - frac[..., 0], frac[..., 0]], -1)                      # (B, L, 2)
        for d in range(1, self.dim):
            w = (w[..., :, None] * torch.stack([1 - frac[..., d], frac[..., d]], -1)[..., None, :]).flatten(-2)
        # index_select: ~3x faster than fancy indexing forward+backward on CPU (its backward is index_add)
        feats = self.embeddings.index_select(0, idx.reshape(-1)).view(*idx.shape, self.embeddings.shape[1])  # (B, L, C, F)
        out = (w[..., None, :] @ feats).squeeze(-2)                                 # (B, L, F)
        return out.reshape(*lead, self.out_dim)


def naive_hash_encode(grid: HashGrid, x: torch.Tensor) -> torch.Tensor:
    """Slow reference encoding: Python loops over levels, corners and axes (test oracle)."""
    pts = x.reshape(-1, grid.dim).clamp(0.0, 1.0).to(grid.embeddings.dtype)
    levels = []
    for lvl, n in enumerate(grid.resolutions):
        size, offset = grid.table_sizes[lvl], grid.offsets[lvl]
        pos = pts * n
        cell = pos.floor().long().clamp(max=n - 1)
        frac = pos - cell.to(pos.dtype)
        acc = torch.zeros(pts.shape[0], grid.n_features, dtype=pts.dtype, device=pts.device)
        for bits in itertools.product((0, 1), repeat=grid.dim):
            weight = torch.ones(pts.shape[0], dtype=pts.dtype, device=pts.device)
            index = torch.zeros(pts.shape[0], dtype=torch.long, device=pts.device)
            for d, bit in enumerate(bits):
                coord = cell[:, d] + bit
                weight = weight * (frac[:, d] if bit else 1 - frac[:, d])
                if (n + 1) ** grid.dim <= size:
                    index = index + coord * (n + 1) ** d
                else:
                    index = index ^ ((coord * PRIMES[d]) & _MASK32)
            if (n + 1) ** grid.dim > size:
                index = index % size
            acc = acc + weight[:, None] * grid.embeddings[offset + index]
        levels.append(acc)
    return torch.cat(levels, dim=-1).reshape(*x.shape[:-1], grid.out_dim)

"""RAD-NeRF fields (Tang et al. 2022, Sec. 3.1-3.3, App. A): the audio-spatial face field and the torso.

Face field (audio-spatial decomposition).  A point ``x`` in the head box is
normalised to ``[0,1]^3`` and encoded by the spatial grid, ``f = E^3(x)``.
Rather than concatenating audio to ``f`` (which would need a 3+64-D grid), an
MLP maps ``[a, f]`` to a low-dimensional *audio coordinate*
``x_a in [-1,1]^D`` (tanh; ``D = 2`` by default, 1-3 allowed) that is encoded
by its own small grid, ``g = E^D((x_a + 1) / 2)``.  The density MLP reads
``[f, g, e, i]`` -- ``e`` the eye (blink) feature, ``i`` a learned per-frame
appearance code (an ``nn.Embedding`` owned by the field) -- and gives
``sigma = exp(raw)`` (``trunc_exp``) and a geometric feature ``h``; the colour
MLP reads ``[h, i]`` and ends in a sigmoid.  ``x_a`` is returned so the trainer
can put the paper's L1 penalty on it outside the face region.  MLPs are small
as in the paper: 64 wide; 3 layers for coordinates and density, 2 for colour.

Torso field (pseudo-3D deformable).  The torso is a 2D image-space field: a
pixel coordinate ``p in [0,1]^2`` and the head pose drive a deformation MLP
``[posenc(p), pose, code]`` whose tanh output, scaled by ``max_offset``, moves
``p``; a 2D grid at ``p + offset`` and an MLP ``[features, pose, code]`` give
RGB and alpha (sigmoids).  The pose vector is, by default, the first two
columns of the head rotation plus the scaled translation (``pose_features``).

``FieldConfig()`` / ``TorsoConfig()`` defaults are small CPU grids; ``.paper()``
gives the full-size settings (16 levels, 2^19 tables, 2048 finest resolution).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from ...nn import HashGrid, posenc
from .rendering import trunc_exp

__all__ = ["FieldConfig", "TorsoConfig", "FaceField", "TorsoField", "mlp", "pose_features"]


@dataclass
class FieldConfig:
    """Face-field hyper-parameters (CPU defaults; ``paper()`` for App. A sizes)."""

    aabb: tuple[float, ...] = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)
    grid_levels: int = 8
    grid_features: int = 2
    grid_log2_size: int = 14
    grid_base: int = 16
    grid_max_res: int = 256
    audio_dim: int = 64
    audio_dim_coords: int = 2
    audio_grid_levels: int = 8
    audio_grid_features: int = 2
    audio_grid_log2_size: int = 14
    audio_grid_max_res: int = 256
    coord_hidden: int = 64
    coord_layers: int = 3
    eye_dim: int = 1
    n_codes: int = 1
    code_dim: int = 4
    hidden: int = 64
    sigma_layers: int = 3
    geo_feat_dim: int = 32
    color_hidden: int = 64
    color_layers: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.audio_dim_coords <= 3:
            raise ValueError(f"audio_dim_coords must be 1, 2 or 3, got {self.audio_dim_coords}")
        if len(self.aabb) != 6:
            raise ValueError("aabb must be (xmin, ymin, zmin, xmax, ymax, zmax)")

    @classmethod
    def paper(cls, **overrides: object) -> "FieldConfig":
        """Full-size setting: 16x2 grids, 2^19 spatial table (2^14 for 2D), 2048 x box-extent finest res."""
        base = cls(**overrides)  # type: ignore[arg-type]
        extent = max(b - a for a, b in zip(base.aabb[:3], base.aabb[3:]))
        full = dict(grid_levels=16, grid_log2_size=19, grid_max_res=int(2048 * extent / 2),
                    audio_grid_levels=16, audio_grid_log2_size=14, audio_grid_max_res=2048, geo_feat_dim=64)
        full.update(overrides)
        return replace(base, **full)  # type: ignore[arg-type]


@dataclass
class TorsoConfig:
    """Torso-field hyper-parameters (CPU defaults; ``paper()`` for full size)."""

    pose_dim: int = 9
    n_freqs: int = 4
    deform_hidden: int = 64
    deform_layers: int = 3
    max_offset: float = 0.1
    grid_levels: int = 8
    grid_features: int = 2
    grid_log2_size: int = 14
    grid_base: int = 16
    grid_max_res: int = 256
    hidden: int = 32
    layers: int = 3
    n_codes: int = 1
    code_dim: int = 8

    @classmethod
    def paper(cls, **overrides: object) -> "TorsoConfig":
        full: dict[str, object] = dict(grid_levels=16, grid_log2_size=19, grid_max_res=2048, n_freqs=10)
        full.update(overrides)
        return cls(**full)  # type: ignore[arg-type]


def mlp(in_dim: int, out_dim: int, hidden: int, n_layers: int) -> nn.Sequential:
    """``n_layers`` linear layers with ReLU in between (none after the last)."""
    dims = [in_dim] + [hidden] * (n_layers - 1) + [out_dim]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < n_layers - 1:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def pose_features(R: torch.Tensor, t: torch.Tensor, t_scale: float = 1.0) -> torch.Tensor:
    """Head pose ``(...,3,3), (...,3) -> (...,9)``: first two rotation columns, then ``t / t_scale``."""
    return torch.cat([R[..., :, 0], R[..., :, 1], t / t_scale], dim=-1)


def _codes(table: nn.Embedding, idx: torch.Tensor | None, n: int, like: torch.Tensor) -> torch.Tensor:
    """Per-sample latent codes; ``idx=None`` (unseen frames) uses the mean code."""
    if idx is None:
        return table.weight.mean(0, keepdim=True).expand(n, -1).to(like)
    return table(idx.long())


class FaceField(nn.Module):
    """Audio-conditioned head field: ``x, a, eye, code -> sigma, rgb, x_a``."""

    def __init__(self, cfg: FieldConfig | None = None) -> None:
        super().__init__()
        self.cfg = c = cfg or FieldConfig()
        self.register_buffer("aabb", torch.tensor(c.aabb, dtype=torch.float32), persistent=False)
        self.spatial = HashGrid(3, c.grid_levels, c.grid_features, c.grid_log2_size, c.grid_base, c.grid_max_res)
        self.audio_grid = HashGrid(c.audio_dim_coords, c.audio_grid_levels, c.audio_grid_features,
                                   c.audio_grid_log2_size, c.grid_base, c.audio_grid_max_res)
        self.coord_net = mlp(c.audio_dim + self.spatial.out_dim, c.audio_dim_coords, c.coord_hidden, c.coord_layers)
        # He init: with PyTorch's default the audio coordinate barely moved with the audio code at
        # first (each layer shrinks the signal), so the audio grid saw one blurred condition.
        for layer in self.coord_net:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        # The per-frame code enters the colour net only (as in RAD-NeRF): in the density net it would
        # memorise each frame's mouth shape and leave the audio path with nothing to explain.
        self.sigma_net = mlp(self.spatial.out_dim + self.audio_grid.out_dim + c.eye_dim,
                             1 + c.geo_feat_dim, c.hidden, c.sigma_layers)
        self.color_net = mlp(c.geo_feat_dim + c.code_dim, 3, c.color_hidden, c.color_layers)
        self.codes = nn.Embedding(max(c.n_codes, 1), c.code_dim)
        nn.init.normal_(self.codes.weight, std=0.1)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Box coordinates -> ``[0,1]^3``."""
        lo, hi = self.aabb[:3].to(x), self.aabb[3:].to(x)
        return ((x - lo) / (hi - lo)).clamp(0.0, 1.0)

    def _geometry(self, x: torch.Tensor, a: torch.Tensor, eye: torch.Tensor | None,
                  code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.spatial(self.normalise(x))
        x_a = torch.tanh(self.coord_net(torch.cat([a.to(f), f], dim=-1)))
        g = self.audio_grid((x_a + 1.0) * 0.5)
        if eye is None:
            eye = f.new_zeros(f.shape[0], self.cfg.eye_dim)
        raw = self.sigma_net(torch.cat([f, g, eye.to(f)], dim=-1))
        return trunc_exp(raw[:, 0]), raw[:, 1:], x_a

    def forward(self, x: torch.Tensor, a: torch.Tensor, eye: torch.Tensor | None = None,
                code_idx: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``x (M,3)`` box coords, ``a (M,audio_dim)``, ``eye (M,E)``, ``code_idx (M,)`` ->
        ``sigma (M,) >= 0``, ``rgb (M,3) in [0,1]``, ``x_a (M,D) in [-1,1]``."""
        code = _codes(self.codes, code_idx, x.shape[0], x)
        sigma, h, x_a = self._geometry(x, a, eye, code)
        rgb = torch.sigmoid(self.color_net(torch.cat([h, code], dim=-1)))
        return {"sigma": sigma, "rgb": rgb, "x_a": x_a}

    def density(self, x: torch.Tensor, a: torch.Tensor, eye: torch.Tensor | None = None,
                code_idx: torch.Tensor | None = None) -> torch.Tensor:
        """``sigma (M,)`` only (no colour MLP): for the occupancy grid."""
        return self._geometry(x, a, eye, _codes(self.codes, code_idx, x.shape[0], x))[0]


class TorsoField(nn.Module):
    """Pseudo-3D deformable torso: ``p (M,2) in [0,1]^2, pose (M,P) -> rgb, alpha, offset``."""

    def __init__(self, cfg: TorsoConfig | None = None) -> None:
        super().__init__()
        self.cfg = c = cfg or TorsoConfig()
        enc_dim = 2 + 4 * c.n_freqs
        self.deform_net = mlp(enc_dim + c.pose_dim + c.code_dim, 2, c.deform_hidden, c.deform_layers)
        self.grid = HashGrid(2, c.grid_levels, c.grid_features, c.grid_log2_size, c.grid_base, c.grid_max_res)
        self.color_net = mlp(self.grid.out_dim + c.pose_dim + c.code_dim, 4, c.hidden, c.layers)
        self.codes = nn.Embedding(max(c.n_codes, 1), c.code_dim)
        nn.init.normal_(self.codes.weight, std=0.1)

    def forward(self, p: torch.Tensor, pose: torch.Tensor,
                code_idx: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        code = _codes(self.codes, code_idx, p.shape[0], p)
        pose = pose.to(p)
        offset = torch.tanh(self.deform_net(torch.cat([posenc(p, self.cfg.n_freqs), pose, code], -1)))
        offset = offset * self.cfg.max_offset
        feats = self.grid((p + offset).clamp(0.0, 1.0))
        out = self.color_net(torch.cat([feats, pose, code], dim=-1))
        return {"rgb": torch.sigmoid(out[:, :3]), "alpha": torch.sigmoid(out[:, 3]), "offset": offset}

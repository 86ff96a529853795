"""The speech-driven implicit lip model (Speech2Lip Sec. 3.1): colour = F(u, v, speech code, time) in the canonical view.

``(u, v)`` in [0, 1]² spans the canonical lip region. It is encoded by a 2-D
multi-resolution feature grid (``encoding="grid"``: Instant-NGP's levels, but
dense -- a 2-D region needs no hashing -- and read with ``grid_sample``; finest
cell one canonical pixel), a hashed one (``"hash"``, ``nn.HashGrid``) or, as in
the paper, NeRF positional encoding (``"pe"``); the speech
code is the mouth shape the expression learner predicts from audio (20 PCA
coefficients of the pose-free mouth and jaw; see the engine's deviations); the
time input is an appearance code shared by runs of ``code_period`` frames, so
slow lighting drift is absorbed but no single frame's mouth can be memorised.
An MLP maps [encoding, speech code, appearance] to RGB in [0, 1].

Deviation (``base="warp"``, the default): the MLP's output is not the colour
itself but a displacement of the canonical frame's own pixels (at most
``max_shift`` of the region) plus a colour residual, so the skin keeps the
recorded texture and only what speech moves -- lips, jaw, the mouth interior --
is synthesised. On french.mp4 after 4 CPU minutes the plain field rendered the
region's skin without its texture (held-out canonical PSNR 27.6 dB, dense grid),
the warped base kept it (26.9 dB, sharper; the remaining error is lighting the
Blend-Net corrects). ``base="none"`` is the paper's field.

Continuous sampling (the paper's): a pixel's colour is predicted as the
area-weighted mix of F at the four corners of a rectangle around the pixel
centre (half a pixel each way, jittered by a random shift), each corner
weighted by the area of the rectangle spanned by the centre and the opposite
corner. The weights sum to one, so a constant field gives its constant, and F
learns a continuous image rather than values at pixel centres only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...nn import HashGrid, posenc, posenc_dim

__all__ = ["LipFieldConfig", "LipField", "DenseGrid2D", "corner_weights", "continuous_query"]


@dataclass
class LipFieldConfig:
    encoding: str = "grid"  # or "hash", "pe" (the paper's positional encoding)
    n_freqs: int = 10  # positional encoding frequencies (pe)
    grid_levels: int = 12
    grid_log2_size: int = 15
    grid_max_res: int = 256  # finest grid resolution over the region (one cell per canonical pixel)
    hidden: int = 64
    layers: int = 3
    code_dim: int = 20
    n_app: int = 1  # appearance codes (one per code_period frames)
    app_dim: int = 4
    base: str = "warp"  # "warp": displace the canonical frame's pixels + a residual; "none": colour directly
    max_shift: float = 0.15  # largest displacement, as a fraction of the region

    def __post_init__(self) -> None:
        if self.encoding not in ("grid", "hash", "pe"):
            raise ValueError(f"encoding must be 'grid', 'hash' or 'pe', got {self.encoding!r}")
        if self.base not in ("warp", "none"):
            raise ValueError(f"base must be 'warp' or 'none', got {self.base!r}")


class DenseGrid2D(nn.Module):
    """Multi-resolution 2-D feature grids (resolutions ``base`` … ``max_res`` in geometric steps), each a dense
    (1, F, r + 1, r + 1) texture read bilinearly: ``uv`` (N, 2) in [0, 1] → (N, levels * F)."""

    def __init__(self, levels: int, features: int, base: int, max_res: int):
        super().__init__()
        b = (max_res / base) ** (1 / max(1, levels - 1))
        res = [int(round(base * b ** k)) for k in range(levels)]
        self.levels = nn.ParameterList(nn.Parameter(torch.empty(1, features, r + 1, r + 1).uniform_(-1e-4, 1e-4))
                                       for r in res)
        self.out_dim = levels * features

    def forward(self, uv: torch.Tensor) -> torch.Tensor:
        g = (uv * 2 - 1)[None, None]  # lattice vertices at the texture's corners (align_corners)
        return torch.cat([F.grid_sample(t, g.to(t), mode="bilinear", align_corners=True)[0, :, 0].T
                          for t in self.levels], -1)


class LipField(nn.Module):
    def __init__(self, cfg: LipFieldConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.encoding == "hash":
            self.grid = HashGrid(2, cfg.grid_levels, 2, cfg.grid_log2_size, 16, cfg.grid_max_res)
            enc = self.grid.out_dim + 2
        elif cfg.encoding == "grid":
            self.grid = DenseGrid2D(cfg.grid_levels, 2, 16, cfg.grid_max_res)
            enc = self.grid.out_dim + 2
        else:
            enc = posenc_dim(2, cfg.n_freqs)
        self.app = nn.Embedding(max(1, cfg.n_app), cfg.app_dim)
        nn.init.normal_(self.app.weight, std=0.01)
        dims = [enc + cfg.code_dim + cfg.app_dim] + [cfg.hidden] * cfg.layers
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        self.mlp = nn.Sequential(*layers, nn.Linear(cfg.hidden, 5 if cfg.base == "warp" else 3))
        if cfg.base == "warp":  # start as the canonical frame itself
            nn.init.zeros_(self.mlp[-1].weight)
            nn.init.zeros_(self.mlp[-1].bias)
        self.register_buffer("texture", torch.zeros(1, 3, 1, 1))  # the canonical region's pixels, [0, 1]
        self.margin = (0, 0)  # pixels of the canonical frame around the region in ``texture`` (set_texture)

    def set_texture(self, rgb, margin: tuple[int, int] = (0, 0)) -> None:
        """The canonical frame's region (h, w, 3) uint8 with ``margin`` = (mx, my) more pixels of that frame on
        each side: what ``base="warp"`` displaces. A displacement past the region's edge then reads the
        frame's real pixels there (without a margin: the edge pixel repeated, streaks at the region's sides)."""
        t = torch.as_tensor(rgb).permute(2, 0, 1)[None].float() / 255
        self.texture = t.to(self.texture.device)
        self.margin = tuple(int(v) for v in margin)

    def encode(self, uv: torch.Tensor) -> torch.Tensor:
        if self.cfg.encoding in ("hash", "grid"):
            return torch.cat([self.grid(uv.clamp(0, 1)), uv], -1)
        return posenc(uv, self.cfg.n_freqs)

    def forward(self, uv: torch.Tensor, code: torch.Tensor, app: torch.Tensor | None = None) -> torch.Tensor:
        """``uv`` (N, 2), ``code`` (N, K), ``app`` (N,) appearance rows (None: their mean) → RGB (N, 3)."""
        a = self.app.weight.mean(0).expand(len(uv), -1) if app is None else self.app(app.long())
        out = self.mlp(torch.cat([self.encode(uv), code.to(uv), a.to(uv)], -1))
        if self.cfg.base == "none":
            return torch.sigmoid(out)
        shifted = uv + torch.tanh(out[:, :2]) * self.cfg.max_shift
        (mx, my), (th, tw) = self.margin, self.texture.shape[-2:]
        size = shifted.new_tensor([tw, th])
        inner = size - 2 * shifted.new_tensor([mx, my])  # the region's own pixels
        g = (((shifted * inner + shifted.new_tensor([mx, my])) / size) * 2 - 1)[None, None].to(self.texture)
        base = F.grid_sample(self.texture, g, mode="bicubic", padding_mode="border", align_corners=False)[0, :, 0].T
        return (base + out[:, 2:]).clamp(0, 1)


def corner_weights(offsets: torch.Tensor) -> torch.Tensor:
    """(4, 2) corner offsets from the pixel centre, ordered (-,-), (-,+), (+,-), (+,+) → (4,) weights:
    each corner's weight is the area between the centre and the opposite corner, normalised."""
    area = (offsets[:, 0] * offsets[:, 1]).abs() + 1e-12
    opposite = area.flip(0)  # (-,-) <-> (+,+), (-,+) <-> (+,-)
    return opposite / opposite.sum()


def continuous_query(fn, centres: torch.Tensor, half: torch.Tensor, jitter: bool = True) -> torch.Tensor:
    """Continuous sampling of ``fn(uv (N, 2)) -> (N, C)`` at pixel ``centres`` (N, 2) in uv units.

    ``half`` (2,) is half a pixel in uv units; the rectangle is shifted by one random amount in
    [0, half / 2) per call (``jitter``) as in the paper, so corners fall between pixel centres.
    """
    shift = torch.rand((), device=centres.device) * half / 2 if jitter else torch.zeros_like(half)
    signs = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]], device=centres.device)
    offsets = signs * half + shift
    w = corner_weights(offsets)
    return sum(w[k] * fn(centres + offsets[k]) for k in range(4))

"""Volume rendering for the RAD-NeRF head (Tang et al. 2022, Sec. 3.1, 3.4): rays, samples, compositing.

Conventions.  An ``aabb`` is ``(xmin, ymin, zmin, xmax, ymax, zmax)`` in the
canonical (object / head) frame.  Cameras follow ``X_cam = R @ X_obj + t`` with
camera x right, y down, z forward and a pinhole ``K``; pixel coordinates are
continuous ``(u, v)``, so the centre of pixel ``(i, j)`` is ``(i + .5, j + .5)``.

Quadrature.  Each ray's segment ``[near, far]`` inside the box is cut into
``S`` equal bins; one sample per bin (its middle, or uniform in the bin when
``perturb``) stands for the whole bin, so ``delta`` is the bin width and the
deltas sum to the segment length exactly: a constant density ``sigma`` gives
opacity ``1 - exp(-sigma L)`` with no discretisation error.  Transmittance is
``T_i = exp(-sum_{j<i} sigma_j delta_j) = prod_{j<i} (1 - alpha_j)``.

Pruning.  Instant-NGP / RAD-NeRF skip empty space with a density bit-field;
RAD-NeRF updates it with the *maximum* density over several sampled audio
conditions, because the mouth moves with audio.  ``OccupancyGrid`` keeps a
running max (optionally decayed), thresholds it and dilates the mask by a few
cells (cell-centre probes can miss thin structure) and ``render_rays``
evaluates the field only on samples inside occupied cells.  RGB composited here
carries no background: add ``bg * (1 - alpha)`` outside.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["trunc_exp", "ray_aabb", "sample_along_rays", "composite", "OccupancyGrid", "render_rays", "FieldFn"]

FieldFn = Callable[[torch.Tensor, torch.Tensor], object]


class _TruncExp(torch.autograd.Function):
    """exp with a gradient clamped at exp(15): keeps density gradients finite early in training."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * torch.exp(x.clamp(max=15.0))


def trunc_exp(x: torch.Tensor) -> torch.Tensor:
    """``exp(x)`` forward, ``grad * exp(min(x, 15))`` backward."""
    return _TruncExp.apply(x)


def _as_aabb(aabb: torch.Tensor | Sequence[float], like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(aabb, dtype=like.dtype, device=like.device).reshape(6)


def ray_aabb(origins: torch.Tensor, dirs: torch.Tensor, aabb: torch.Tensor | Sequence[float],
             min_near: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Slab test: ``(R,3), (R,3) -> near, far (R,)``; ``near >= min_near``; misses get ``far = near``."""
    box = _as_aabb(aabb, origins)
    safe = torch.where(dirs.abs() < 1e-12, torch.full_like(dirs, 1e-12), dirs)
    t0 = (box[:3] - origins) / safe
    t1 = (box[3:] - origins) / safe
    near = torch.minimum(t0, t1).amax(-1).clamp(min=min_near)
    far = torch.maximum(t0, t1).amin(-1)
    far = torch.where(far > near, far, near)
    return near, far


def sample_along_rays(near: torch.Tensor, far: torch.Tensor, n_samples: int,
                      perturb: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Stratified samples: ``t (R,S)`` one per equal bin of ``[near, far]``; ``deltas (R,S)`` the bin widths."""
    steps = torch.arange(n_samples, dtype=near.dtype, device=near.device)
    u = torch.rand(near.shape[0], n_samples, dtype=near.dtype, device=near.device) if perturb else 0.5
    width = ((far - near) / n_samples)[:, None]
    t = near[:, None] + (steps[None] + u) * width
    return t, width.expand(-1, n_samples).contiguous()


def composite(sigma: torch.Tensor, rgb: torch.Tensor, deltas: torch.Tensor,
              t: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Alpha compositing of ``(R,S)`` densities and ``(R,S,3)`` colours.

    Returns ``rgb (R,3)``, ``alpha (R,)`` (opacity), ``depth (R,)`` (expected ``t``;
    distance from the segment start when ``t`` is not given) and ``weights (R,S)``.
    """
    tau = sigma * deltas
    alpha = 1.0 - torch.exp(-tau)
    trans = torch.exp(-(torch.cumsum(tau, dim=-1) - tau))
    weights = alpha * trans
    if t is None:
        t = torch.cumsum(deltas, dim=-1) - 0.5 * deltas
    return {"rgb": (weights[..., None] * rgb).sum(-2), "alpha": weights.sum(-1),
            "depth": (weights * t).sum(-1), "weights": weights}


class OccupancyGrid(nn.Module):
    """Dense ``res^3`` max-density grid over ``aabb`` for empty-space skipping (indexed ``[ix, iy, iz]``)."""

    def __init__(self, resolution: int = 64, aabb: Sequence[float] = (-1, -1, -1, 1, 1, 1),
                 threshold: float = 0.01, dilate: int = 1, relative: bool = False) -> None:
        super().__init__()
        self.resolution, self.threshold, self.dilate = resolution, threshold, dilate
        self.relative = relative  # RAD-NeRF's rule: threshold = min(mean grid density, threshold)
        self.register_buffer("aabb", torch.as_tensor(aabb, dtype=torch.float32).reshape(6))
        self.register_buffer("density", torch.zeros(resolution, resolution, resolution))
        self.register_buffer("initialised", torch.tensor(False))

    def cell_centres(self, jitter: bool = False) -> torch.Tensor:
        """``(res^3, 3)`` cell centres (or uniform points inside each cell), ``ij`` order."""
        r = self.resolution
        idx = torch.arange(r, device=self.aabb.device, dtype=self.aabb.dtype)
        cells = torch.stack(torch.meshgrid(idx, idx, idx, indexing="ij"), dim=-1).reshape(-1, 3)
        frac = torch.rand_like(cells) if jitter else torch.full_like(cells, 0.5)
        lo, hi = self.aabb[:3], self.aabb[3:]
        return lo + (cells + frac) / r * (hi - lo)

    @torch.no_grad()
    def update(self, density_fn: Callable[[torch.Tensor], torch.Tensor], decay: float = 1.0,
               jitter: bool = False, chunk: int = 1 << 16) -> None:
        """``grid <- max(decay * grid, density_fn(cell points))``: call once per audio condition."""
        pts = self.cell_centres(jitter)
        dens = torch.cat([density_fn(p).reshape(-1).to(self.density) for p in pts.split(chunk)])
        dens = dens.reshape(self.density.shape).nan_to_num(0.0)
        self.density.copy_(torch.maximum(self.density * decay, dens) if self.initialised else dens)
        self.initialised.fill_(True)

    def occupied(self, threshold: float | None = None) -> torch.Tensor:
        """Bool ``(res,res,res)`` mask of cells above ``threshold``, dilated by ``dilate`` cells."""
        if not bool(self.initialised):
            return torch.ones_like(self.density, dtype=torch.bool)
        th = self.threshold if threshold is None else threshold
        if self.relative:
            th = min(th, float(self.density.mean()))
        occ = (self.density > th).float()
        if self.dilate > 0:
            k = 2 * self.dilate + 1
            occ = F.max_pool3d(occ[None, None], k, stride=1, padding=self.dilate)[0, 0]
        return occ > 0

    def mask_samples(self, points: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
        """Bool keep-mask for ``(..., 3)`` points: inside the box and in an occupied cell."""
        lo, hi = self.aabb[:3].to(points), self.aabb[3:].to(points)
        u = (points - lo) / (hi - lo)
        inside = ((u >= 0) & (u <= 1)).all(-1)
        ijk = (u * self.resolution).floor().long().clamp(0, self.resolution - 1)
        occ = self.occupied(threshold)
        return inside & occ[ijk[..., 0], ijk[..., 1], ijk[..., 2]]


def _field_outputs(out: object) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    if isinstance(out, Mapping):
        extras = {k: v for k, v in out.items() if k not in ("sigma", "rgb")}
        return out["sigma"], out["rgb"], extras
    sigma, rgb, *rest = out  # type: ignore[misc]
    return sigma, rgb, dict(rest[0]) if rest else {}


def render_rays(field_fn: FieldFn, origins: torch.Tensor, dirs: torch.Tensor,
                aabb: torch.Tensor | Sequence[float], n_samples: int, occupancy: OccupancyGrid | None = None,
                perturb: bool = False, min_near: float = 0.0) -> dict[str, object]:
    """Sample ``(R,3)`` rays in ``aabb``, evaluate ``field_fn(points (M,3), ray_ids (M,))`` on kept samples.

    ``field_fn`` returns ``{"sigma": (M,), "rgb": (M,3), ...}`` or ``(sigma, rgb[, extras])``;
    pruned samples count as empty.  Returns the ``composite`` outputs plus ``t``,
    ``n_evaluated`` (int), ``ray_ids``, ``keep`` (R,S) and ``samples`` (the extra per-sample outputs, flat).
    """
    near, far = ray_aabb(origins, dirs, aabb, min_near)
    t, deltas = sample_along_rays(near, far, n_samples, perturb)
    points = origins[:, None, :] + t[..., None] * dirs[:, None, :]
    keep = (deltas > 0) if occupancy is None else (deltas > 0) & occupancy.mask_samples(points)
    ray_ids = keep.nonzero()[:, 0]
    sigma, rgb, extras = _field_outputs(field_fn(points[keep], ray_ids))
    sigma_full = sigma.new_zeros(keep.shape).masked_scatter(keep, sigma.reshape(-1))
    rgb_full = rgb.new_zeros(*keep.shape, 3).masked_scatter(keep[..., None], rgb.reshape(-1, 3))
    out: dict[str, object] = dict(composite(sigma_full, rgb_full, deltas, t))
    out.update(t=t, n_evaluated=int(ray_ids.numel()), ray_ids=ray_ids, keep=keep, samples=extras)
    return out

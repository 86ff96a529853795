"""``Standardise``: per-channel ``(x - shift) / scale`` whose statistics travel with the weights."""

from __future__ import annotations

import torch
from torch import nn


class Standardise(nn.Module):
    """``(x - shift) / scale`` over the last dim, with the statistics kept as buffers (identity until set)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("shift", torch.zeros(channels))
        self.register_buffer("scale", torch.ones(channels))

    def set(self, shift, scale) -> None:
        self.shift.copy_(torch.as_tensor(shift, dtype=torch.float32))
        self.scale.copy_(torch.as_tensor(scale, dtype=torch.float32))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("shift", "scale"):  # weights saved before the statistics existed: keep the identity
            state_dict.setdefault(prefix + name, getattr(self, name).clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale

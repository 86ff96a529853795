"""Audio condition network of RAD-NeRF (Tang et al. 2022, Sec. 3.2; AD-NeRF's audio pipeline).

Input: ``(B, W, T, C)`` -- ``W = 8`` consecutive windows around the frame, each
of ``T = 16`` feature frames of ``C`` dims (the paper used 29-d DeepSpeech
logits; here 15 soft visemes, 80 log-mel bands or both). The input is
standardised per channel with stored statistics (``norm``).

1. Per window, strided 1D convolutions over time (kernel 3, stride 2,
   LeakyReLU 0.02) halve ``T`` until one step is left (16 -> 8 -> 4 -> 2 -> 1),
   widening ``C -> 32 -> 32 -> 64 -> 64``; two linear layers then give a 64-d code.
2. Temporal smoothing as AD-NeRF's attention net: 1D convs over the ``W`` codes
   (channels 64 -> 16 -> 8 -> 4 -> 2 -> 1, kernel 3) give one score per window, a
   linear layer over the ``W`` scores and a softmax turn them into weights, and
   the output is the weighted sum of the window codes, ``(B, 64)``.

At test time the paper further smooths the per-frame codes with momentum,
``a_hat_i = beta * a_hat_{i-1} + (1 - beta) * a_i`` (``momentum_smooth``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...nn import Standardise

__all__ = ["AudioNet", "AudioAttention", "WindowEncoder", "momentum_smooth"]

_SLOPE = 0.02


class WindowEncoder(nn.Module):
    """``(N, T, C) -> (N, out_dim)``: strided time convs down to one step, then two linear layers."""

    def __init__(self, in_dim: int, win: int = 16, out_dim: int = 64, widths: tuple[int, ...] = (32, 32, 64, 64)) -> None:
        super().__init__()
        n_conv = int(round(math.log2(win)))
        if 2 ** n_conv != win:
            raise ValueError(f"window length must be a power of two, got {win}")
        chans = [in_dim] + [widths[min(i, len(widths) - 1)] for i in range(n_conv)]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv1d(cin, cout, 3, stride=2, padding=1), nn.LeakyReLU(_SLOPE)]
        self.convs = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(chans[-1], 64), nn.LeakyReLU(_SLOPE), nn.Linear(64, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x.transpose(1, 2))          # (N, C, T) -> (N, C', 1)
        return self.head(h.squeeze(-1))


class AudioAttention(nn.Module):
    """Softmax weights ``(B, W)`` over ``W`` window codes ``(B, W, D)``."""

    def __init__(self, dim: int = 64, n_windows: int = 8, widths: tuple[int, ...] = (16, 8, 4, 2, 1)) -> None:
        super().__init__()
        chans = [dim, *widths]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv1d(cin, cout, 3, padding=1), nn.LeakyReLU(_SLOPE)]
        self.convs = nn.Sequential(*layers)
        self.mix = nn.Linear(n_windows, n_windows)
        self.centre = n_windows // 2  # windows are frames i-4 .. i+3: index 4 is frame i

    def start_at_centre(self, logit: float = 3.0) -> None:
        """Start as (mostly) the frame's own window instead of a uniform 8-frame average, which
        blurs 320 ms of speech into one code and leaves the field nothing to follow at first
        (AD-NeRF likewise uses the current frame only until late in training)."""
        with torch.no_grad():
            self.mix.weight.zero_()
            self.mix.bias.zero_()
            self.mix.bias[self.centre] = logit

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        scores = self.convs(codes.transpose(1, 2)).squeeze(1)   # (B, W)
        return torch.softmax(self.mix(scores), dim=-1)


class AudioNet(nn.Module):
    """``(B, n_windows, win, C)`` audio-feature windows -> ``(B, out_dim)`` audio code."""

    def __init__(self, in_dim: int, win: int = 16, n_windows: int = 8, out_dim: int = 64) -> None:
        super().__init__()
        self.in_dim, self.win, self.n_windows, self.out_dim = in_dim, win, n_windows, out_dim
        self.encoder = WindowEncoder(in_dim, win, out_dim)
        self.attention = AudioAttention(out_dim, n_windows)
        # He init with zero biases: PyTorch's default init shrinks the signal ~1.7x per layer, so after
        # six layers every input gave nearly the same code and the audio path never started to learn.
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, a=_SLOPE, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        self.attention.start_at_centre()
        self.norm = Standardise(in_dim)  # set from the training audio (``input_stats``), saved with the model

    def encode_windows(self, windows: torch.Tensor) -> torch.Tensor:
        """``(B, W, T, C) -> (B, W, out_dim)`` per-window codes."""
        b, w, t, c = windows.shape
        return self.encoder(windows.reshape(b * w, t, c)).reshape(b, w, self.out_dim)

    def forward(self, windows: torch.Tensor, return_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        codes = self.encode_windows(self.norm(windows))
        weights = self.attention(codes)
        out = (weights[..., None] * codes).sum(1)
        return (out, weights) if return_weights else out


def momentum_smooth(a: torch.Tensor, beta: float, prev: torch.Tensor | None = None) -> torch.Tensor:
    """``a_hat_i = beta * a_hat_{i-1} + (1 - beta) * a_i`` along dim 0, from ``a_hat_{-1} = prev``;
    without ``prev`` the sequence starts at ``a_hat_0 = a_0``. Pass the last output as ``prev`` to
    continue a stream: chunk by chunk gives the same values as the whole sequence at once."""
    out = []
    for i in range(a.shape[0]):
        prev = a[i] if prev is None else beta * prev + (1.0 - beta) * a[i]
        out.append(prev)
    return torch.stack(out) if out else a.clone()

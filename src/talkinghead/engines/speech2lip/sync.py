"""Contrastive sync (Speech2Lip Sec. 3.3, Eq. 6): audio and lip-image encoders trained on the subject itself.

SyncNet-style, but nothing is downloaded: over windows of ``window`` frames, an
audio encoder (the frames' audio windows) and a lip encoder (the frames'
canonical lip images, grey, at low resolution) map to unit vectors; a batch of
windows from different times of the same video gives, for every audio window,
one synced lip window and the rest unsynced. InfoNCE (cross-entropy over
cosine similarities / temperature, both directions) pulls synced pairs together
and pushes unsynced ones apart. Once trained, the encoders are frozen and the
same loss, on lip windows rendered by the lip model, is the sync loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...nn import Standardise

__all__ = ["SyncNet", "info_nce"]


class SyncNet(nn.Module):
    def __init__(self, audio_channels: int, window: int = 5, lip_hw: tuple[int, int] = (32, 48), dim: int = 64):
        super().__init__()
        self.window, self.lip_hw = window, lip_hw
        self.norm = Standardise(audio_channels)
        a = 0.2
        self.audio = nn.Sequential(  # (B, C, window * 16) -> (B, dim)
            nn.Conv1d(audio_channels, 64, 5, 2, 2), nn.LeakyReLU(a), nn.Conv1d(64, 96, 5, 2, 2), nn.LeakyReLU(a),
            nn.Conv1d(96, 128, 5, 2, 2), nn.LeakyReLU(a), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(128, dim))
        self.lips = nn.Sequential(  # (B, window, h, w) -> (B, dim)
            nn.Conv2d(window, 32, 3, 2, 1), nn.LeakyReLU(a), nn.Conv2d(32, 64, 3, 2, 1), nn.LeakyReLU(a),
            nn.Conv2d(64, 96, 3, 2, 1), nn.LeakyReLU(a), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, dim))
        self.log_temp = nn.Parameter(torch.tensor(-2.3))  # temperature ~0.1, learned

    def embed_audio(self, windows: torch.Tensor) -> torch.Tensor:
        """(B, window, 16, C) audio windows of consecutive frames → (B, dim) unit vectors."""
        b = windows.shape[0]
        x = self.norm(windows).reshape(b, -1, windows.shape[-1]).transpose(1, 2)
        return F.normalize(self.audio(x), dim=-1)

    def embed_lips(self, grey: torch.Tensor) -> torch.Tensor:
        """(B, window, h, w) grey canonical lips in [0, 1] → (B, dim) unit vectors."""
        return F.normalize(self.lips(grey - 0.5), dim=-1)

    def loss(self, windows: torch.Tensor, grey: torch.Tensor) -> torch.Tensor:
        return info_nce(self.embed_audio(windows), self.embed_lips(grey), self.log_temp.exp())


def info_nce(a: torch.Tensor, v: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of matching rows of ``a`` and ``v`` (B, D) against every other row."""
    logits = a @ v.T / temperature
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))

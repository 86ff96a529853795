"""The rhythm engine's networks (§4.2-4.3): the hybrid embedding over K references, the flow that warps the
matched frame, and the non-linear composition decoder of SPADE layers.

* ``HybridEmbedding``: an image encoder over each reference crop and a landmark encoder over its drawing,
  information-exchange blocks between the two streams at every scale (each adds a convolution of both to
  its own), and an activation encoder (1x1) that turns the exchanged pair into the features the decoder
  reads. Attention: the target's drawing, through the same landmark encoder, is compared with each
  reference's (cosine of the whole bottom feature map, a learned temperature); a softmax over the K
  references (those offered) weights their activations per target, no average.
* ``FlowNet``: (matched frame, its drawing, the target's drawing) → a dense flow that warps the matched
  frame toward the target (background, torso, hair: what the mesh does not cover).
* ``CompositionDecoder``: N layers from the bottom scale up to the crop, each with three parallel SPADE
  blocks conditioned on (target drawing + attended reference activations), (projected image ỹ_t + its
  mask) and (warped matched frame); their sum goes through a non-linearity and a convolution: the three
  sources are composed by learned functions, not alpha-matted.

Where the paper is silent or the CPU budget decides: the embedding's attended activations condition the
landmark SPADE of each layer instead of generating that SPADE's weights (few-shot vid2vid's hypernetwork,
which the paper follows, costs a convolution per reference per layer); widths double per halving of
resolution from ``base // 2`` at the crop, capped at ``4 * base``; SPADE's normalisation is a
parameter-free instance norm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RhythmNetConfig", "SPADE", "HybridEmbedding", "FlowNet", "CompositionDecoder", "RhythmGenerator",
           "warp"]


@dataclass
class RhythmNetConfig:
    size: int = 128  # generated crop side
    base: int = 32
    bottom: int = 16  # the decoder's first (smallest) scale
    spade_hidden: int = 32

    def __post_init__(self):
        if self.size & (self.size - 1) or self.bottom & (self.bottom - 1) or not 4 <= self.bottom < self.size:
            raise ValueError(f"size and bottom must be powers of two, 4 <= bottom < size: {self}")

    @property
    def scales(self) -> list[int]:
        """Decoder scales, bottom first, up to ``size``."""
        return [self.bottom * 2 ** i for i in range(int(math.log2(self.size // self.bottom)) + 1)]

    def ch(self, res: int) -> int:
        return max(8, min(self.base * (self.size // res) // 2, 4 * self.base))


def conv(cin: int, cout: int, stride: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2), nn.LeakyReLU(0.2, inplace=True))


def resize(x: torch.Tensor, res: int) -> torch.Tensor:
    return x if x.shape[-1] == res else F.interpolate(x, size=(res, res), mode="bilinear", align_corners=False,
                                                      antialias=x.shape[-1] > res)


def warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``img`` (B, C, S, S) sampled at each pixel plus ``flow`` (B, 2, S, S) pixels (x, y)."""
    B, _, S, _ = img.shape
    ys, xs = torch.meshgrid(torch.arange(S, device=img.device), torch.arange(S, device=img.device), indexing="ij")
    base = torch.stack([xs, ys]).to(img) + 0.5
    g = ((base[None] + flow) / S * 2 - 1).permute(0, 2, 3, 1)
    return F.grid_sample(img, g, mode="bilinear", padding_mode="border", align_corners=False)


class SPADE(nn.Module):
    """Parameter-free instance norm of ``h``, scaled and shifted per pixel by convolutions of ``cond``."""

    def __init__(self, ch: int, cond_ch: int, hidden: int):
        super().__init__()
        self.shared = conv(cond_ch, hidden)
        self.gamma = nn.Conv2d(hidden, ch, 3, 1, 1)
        self.beta = nn.Conv2d(hidden, ch, 3, 1, 1)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        a = self.shared(resize(cond, h.shape[-1]))
        return F.group_norm(h, h.shape[1], eps=1e-5) * (1 + self.gamma(a)) + self.beta(a)


class Encoder(nn.Module):
    """(B, cin, S, S) → features at S/2, S/4, ... down to ``bottom`` (a dict by side)."""

    def __init__(self, cin: int, cfg: RhythmNetConfig, narrow: int = 1):
        super().__init__()
        self.sides = [cfg.size // 2 ** i for i in range(1, int(math.log2(cfg.size // cfg.bottom)) + 1)]
        chs = [max(8, cfg.ch(s) // narrow) for s in self.sides]
        self.blocks = nn.ModuleList(conv(c0, c1, 2) for c0, c1 in zip([cin] + chs[:-1], chs))

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        out = {}
        for side, blk in zip(self.sides, self.blocks):
            x = out[side] = blk(x)
        return out


class HybridEmbedding(nn.Module):
    def __init__(self, cfg: RhythmNetConfig):
        super().__init__()
        self.image = Encoder(3, cfg)
        self.landmark = Encoder(1, cfg, narrow=2)
        sides = self.image.sides
        ci = {s: cfg.ch(s) for s in sides}
        cl = {s: max(8, cfg.ch(s) // 2) for s in sides}
        self.to_image = nn.ModuleDict({str(s): nn.Conv2d(ci[s] + cl[s], ci[s], 3, 1, 1) for s in sides})
        self.to_landmark = nn.ModuleDict({str(s): nn.Conv2d(ci[s] + cl[s], cl[s], 3, 1, 1) for s in sides})
        self.activation = nn.ModuleDict({str(s): conv(ci[s] + cl[s], ci[s], k=1) for s in sides})
        self.log_temp = nn.Parameter(torch.tensor(math.log(0.1)))

    def keys(self, drawings: torch.Tensor) -> torch.Tensor:
        """(B, D) unit vectors of drawings' bottom landmark features: what attention compares."""
        f = self.landmark(drawings)[min(self.landmark.sides)]
        return F.normalize(f.flatten(1), dim=1)

    def references(self, images: torch.Tensor, drawings: torch.Tensor) -> dict:
        """The K references' activations by side (K, C, s, s) and attention keys (K, D)."""
        fi, fl = self.image(images), self.landmark(drawings)
        acts = {}
        for s in self.image.sides:
            both = torch.cat([fi[s], fl[s]], 1)
            i2 = fi[s] + self.to_image[str(s)](both)  # information exchange, both ways
            l2 = fl[s] + self.to_landmark[str(s)](both)
            acts[s] = self.activation[str(s)](torch.cat([i2, l2], 1))
        return {"acts": acts, "keys": F.normalize(fl[min(fl)].flatten(1), dim=1)}

    def attention(self, refs: dict, target_drawings: torch.Tensor, offered: torch.Tensor | None = None) -> torch.Tensor:
        """(B, K) weights of the references for each target drawing; zero where not ``offered`` (B, K)."""
        score = self.keys(target_drawings) @ refs["keys"].T / self.log_temp.exp()
        if offered is not None:
            score = score.masked_fill(~offered, float("-inf"))
        return torch.softmax(score, dim=1)

    @staticmethod
    def attend(refs: dict, weights: torch.Tensor) -> dict[int, torch.Tensor]:
        return {s: torch.einsum("bk,kchw->bchw", weights, a) for s, a in refs["acts"].items()}


class FlowNet(nn.Module):
    """(matched crop (3), its drawing (1), target drawing (1)) → flow (B, 2, S, S) in pixels, at S/4 upsampled."""

    def __init__(self, cfg: RhythmNetConfig):
        super().__init__()
        c = max(8, cfg.base // 2)
        self.net = nn.Sequential(conv(5, c, 2), conv(c, 2 * c, 2), conv(2 * c, 2 * c), conv(2 * c, 2 * c))
        self.out = nn.Conv2d(2 * c, 2, 3, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, matched: torch.Tensor, matched_drawing: torch.Tensor, drawing: torch.Tensor) -> torch.Tensor:
        S = matched.shape[-1]
        f = self.out(self.net(torch.cat([matched, matched_drawing, drawing], 1))) * (S / 16)
        return F.interpolate(f, size=(S, S), mode="bilinear", align_corners=False)


class CompositionLayer(nn.Module):
    """Three parallel SPADE blocks over ``h``, each with its condition; their sum → LeakyReLU → conv, plus a
    skip."""

    def __init__(self, cin: int, cout: int, cond_chs: tuple[int, int, int], hidden: int):
        super().__init__()
        self.spades = nn.ModuleList(SPADE(cin, c, hidden) for c in cond_chs)
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, h: torch.Tensor, conds: list[torch.Tensor]) -> torch.Tensor:
        m = sum(sp(h, c) for sp, c in zip(self.spades, conds))
        return self.skip(h) + self.conv(F.leaky_relu(m, 0.2))


class CompositionDecoder(nn.Module):
    def __init__(self, cfg: RhythmNetConfig):
        super().__init__()
        self.cfg = cfg
        b = cfg.bottom
        self.start = conv(cfg.ch(b) + max(8, cfg.ch(b) // 2), cfg.ch(b))
        layers = []
        for s in cfg.scales:
            emb = cfg.ch(s) if s < cfg.size else 0  # attended reference activations at this side
            cout = cfg.ch(min(2 * s, cfg.size)) if s < cfg.size else cfg.ch(s)
            layers.append(CompositionLayer(cfg.ch(s), cout, (1 + emb, 4, 3), min(cfg.spade_hidden, 2 * cfg.ch(s))))
        self.layers = nn.ModuleList(layers)
        self.rgb = nn.Conv2d(cfg.ch(cfg.size), 3, 3, 1, 1)

    def forward(self, target_bottom: torch.Tensor, attended: dict, drawing: torch.Tensor, projected: torch.Tensor,
                warped: torch.Tensor) -> torch.Tensor:
        s0 = self.cfg.bottom
        h = self.start(torch.cat([attended[s0], target_bottom], 1))
        for s, layer in zip(self.cfg.scales, self.layers):
            lm = torch.cat([resize(drawing, s), attended[s]], 1) if s in attended else resize(drawing, s)
            h = layer(h, [lm, resize(projected, s), resize(warped, s)])
            if s < self.cfg.size:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        return torch.tanh(self.rgb(F.leaky_relu(h, 0.2)))


class RhythmGenerator(nn.Module):
    """Everything the renderer learns. Images in [-1, 1], drawings in [0, 1]."""

    def __init__(self, cfg: RhythmNetConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = HybridEmbedding(cfg)
        self.flow = FlowNet(cfg)
        self.decoder = CompositionDecoder(cfg)

    def forward(self, refs: dict, drawing: torch.Tensor, projected: torch.Tensor, matched: torch.Tensor,
                matched_drawing: torch.Tensor, offered: torch.Tensor | None = None) -> dict:
        """``refs`` from ``embed.references``; per target (B): its drawing (1), projected image + mask (4), the
        matched reference crop (3) and drawing (1). Returns the image, the attention and the warped frame."""
        w = self.embed.attention(refs, drawing, offered)
        warped = warp(matched, self.flow(matched, matched_drawing, drawing))
        bottom = self.embed.landmark(drawing)[self.cfg.bottom]
        img = self.decoder(bottom, self.embed.attend(refs, w), drawing, projected, warped)
        return {"image": img, "attention": w, "warped": warped}

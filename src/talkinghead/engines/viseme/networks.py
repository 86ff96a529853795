"""Renderer network of the ``viseme`` engine, after NEON (Ravichandran et al.,
"Photorealistic Virtual Humans through Cross-modal Disentanglement", Sec. 3, App. F).

Inputs: a one-channel drawing of the upper-face keypoints and head contour (no
mouth keypoints: the mouth must come from audio) and a window of audio
features.  A conv keypoint encoder and an MLP audio encoder each map their
input to a ``latent_hw``-square grid; both are fused into the latent ``z``.  A
face decoder and a high-resolution mouth decoder read ``z``; the mouth
decoder's penultimate features are resized and *pasted* into the face
decoder's penultimate features at the mouth box (feature pasting, not pixel
blending), so the face's final layer renders the mouth with that detail.

Choices where the paper is silent (or where 25 FPS on two CPU cores forces them):
widths double per halving of resolution from ``base // 2`` at full size, capped
at ``4 * base``; the keypoint encoder is half as wide (a line drawing carries
no texture) and the mouth decoder half as wide as the face decoder; the fused
latent has 64 channels as in the paper.  Face-decoder residual blocks stop at
``size / 4`` (``res_max_face``): full-resolution ones cost more than the whole
budget.  The face decoder's penultimate map ``F`` is at ``size / 2`` and its
final layer is a sub-pixel conv (3x3 conv to 12 channels + PixelShuffle(2),
Shi et al. 2016), so no full-resolution feature map is ever materialised.
Upsampling is nearest x2 + 3x3 conv (no checkerboard).  The audio Conv1d has 64
channels, kernel 3 over time.  The paste mask is feathered over ``feather``
feature pixels (default 1), mouth features are sampled bilinearly with border
padding.  Blocks (conv block, residual block, instance norm) come from
``talkinghead.nn``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...nn import ResBlock, Standardise, conv_block

__all__ = ["VisemeNetConfig", "VisemeGenerator", "KeypointEncoder", "AudioEncoder", "Decoder",
           "crop_mouth", "paste_features", "box_grid", "count_params"]


@dataclass
class VisemeNetConfig:
    """Renderer (and oracle) hyper-parameters: face-crop side ``size`` (512 in the
    paper / on GPU, 256 on CPU), mouth-crop side, channel multiplier ``base``,
    audio window ``audio_window x audio_dim`` (visemes 6x15; log-mel 16x80; both 16x95),
    fused-latent side ``latent_hw`` and ``n_res`` residual blocks per stage."""

    size: int = 256
    mouth_size: int = 128
    base: int = 32
    audio_dim: int = 15
    audio_window: int = 6
    latent_hw: int = 32
    n_res: int = 1
    latent_ch: int = 64
    audio_hidden: int = 1024
    feather: float = 1.0
    res_max_face: int = 0  # largest face-decoder resolution with res blocks; 0 -> size // 4

    def __post_init__(self) -> None:
        sides = (self.size, self.mouth_size, self.latent_hw)
        if any(v < 4 or v & (v - 1) for v in sides) or self.base < 2:
            raise ValueError(f"size/mouth_size/latent_hw must be powers of two >= 4, base >= 2: {self}")
        if not self.latent_hw <= self.mouth_size <= self.size or self.latent_hw * 2 > self.size:
            raise ValueError("need latent_hw <= mouth_size <= size and latent_hw <= size / 2")

    def ch(self, res: int) -> int:
        """Decoder width at resolution ``res``: base/2 at ``size``, x2 per halving, capped."""
        level = int(round(math.log2(self.size / res)))
        return max(4, min(self.base * 2 ** level // 2, 4 * self.base))


class KeypointEncoder(nn.Module):
    """Upper-face drawing (B,1,size,size) -> (B,latent_ch,latent_hw,latent_hw): a stem
    conv, then ``log2(size/latent_hw)`` strided 3x3 blocks (4 for 512 -> 32 as in
    the paper, 3 for 256), each followed by ``n_res`` residual blocks."""

    def __init__(self, cfg: VisemeNetConfig) -> None:
        super().__init__()
        n_down = int(math.log2(cfg.size // cfg.latent_hw))
        ch = max(4, cfg.ch(cfg.size) // 2)
        layers: list[nn.Module] = [conv_block(1, ch)]
        res = cfg.size
        for i in range(n_down):
            res //= 2
            out = cfg.latent_ch if i == n_down - 1 else max(4, cfg.ch(res) // 2)
            layers.append(conv_block(ch, out, 3, stride=2))
            layers += [ResBlock(out) for _ in range(cfg.n_res)]
            ch = out
        self.net = nn.Sequential(*layers)

    def forward(self, drawing: torch.Tensor) -> torch.Tensor:
        return self.net(drawing)


class AudioEncoder(nn.Module):
    """Audio (B,audio_window,audio_dim) -> (B,1,latent_hw,latent_hw): per-channel standardisation
    (stored statistics), Conv1d over time (features as channels) -> flatten -> 2-layer MLP
    (hidden ``audio_hidden``)."""

    def __init__(self, cfg: VisemeNetConfig, conv_ch: int = 64) -> None:
        super().__init__()
        self.hw = cfg.latent_hw
        self.conv = nn.Conv1d(cfg.audio_dim, conv_ch, 3, padding=1)
        self.mlp = nn.Sequential(nn.Linear(conv_ch * cfg.audio_window, cfg.audio_hidden),
                                 nn.LeakyReLU(0.2, inplace=True),
                                 nn.Linear(cfg.audio_hidden, cfg.latent_hw * cfg.latent_hw))
        self.norm = Standardise(cfg.audio_dim)  # set from the training audio, saved with the model

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv(self.norm(audio).transpose(1, 2)), 0.2)
        return self.mlp(h.flatten(1)).view(-1, 1, self.hw, self.hw)


class Decoder(nn.Module):
    """Latent -> penultimate features at ``out_res`` via (upsample x2, conv block, res blocks)."""

    def __init__(self, cfg: VisemeNetConfig, out_res: int, width: float = 1.0, res_max: int = 10**9) -> None:
        super().__init__()
        wide = lambda r: max(4, int(cfg.ch(r) * width))  # noqa: E731
        res, ch = cfg.latent_hw, cfg.latent_ch
        layers: list[nn.Module] = [ResBlock(ch) for _ in range(cfg.n_res)]
        while res < out_res:
            res *= 2
            layers += [nn.Upsample(scale_factor=2.0, mode="nearest"), conv_block(ch, wide(res))]
            ch = wide(res)
            if res <= res_max:
                layers += [ResBlock(ch) for _ in range(cfg.n_res)]
        self.net = nn.Sequential(*layers)
        self.out_ch = ch

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def box_grid(box: torch.Tensor, out_hw: tuple[int, int], ref_size: float, feather: float = 0.0,
             map_hw: tuple[int, int] | None = None, origin: tuple[int, int] = (0, 0),
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampling grid and mask for pasting a square source into a box.

    The target is a ``map_hw`` (default ``out_hw``) pixel map covering a
    ``ref_size``-pixel face crop; this returns the ``out_hw`` window of it whose
    top-left pixel is ``origin`` (row, col).  ``grid`` (B,h,w,2) maps each
    pixel centre to normalised source coordinates of ``box`` (B,4; x0,y0,x1,y1
    in face-crop pixels; ``align_corners=False``).  ``mask`` (B,1,h,w) is 1 for
    pixel centres inside the box and 0 outside, with a linear ramp ``feather``
    pixels wide centred on the box edge (``feather=0``: hard mask).
    """
    h, w = out_hw
    mh, mw = map_hw or out_hw
    b = box.to(torch.float32)
    sx, sy = ref_size / mw, ref_size / mh
    xs = (torch.arange(w, device=box.device, dtype=torch.float32) + origin[1] + 0.5) * sx
    ys = (torch.arange(h, device=box.device, dtype=torch.float32) + origin[0] + 0.5) * sy
    x0, y0, x1, y1 = (b[:, i, None] for i in range(4))
    bw, bh = (x1 - x0).clamp_min(1e-6), (y1 - y0).clamp_min(1e-6)
    gx = 2.0 * (xs[None] - x0) / bw - 1.0  # (B,w)
    gy = 2.0 * (ys[None] - y0) / bh - 1.0  # (B,h)
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    dx = torch.minimum(xs[None] - x0, x1 - xs[None]) / sx  # signed distance to edge, map px
    dy = torch.minimum(ys[None] - y0, y1 - ys[None]) / sy
    if feather > 0:
        mx, my = (dx / feather + 0.5).clamp(0, 1), (dy / feather + 0.5).clamp(0, 1)
    else:
        mx, my = (dx >= 0).float(), (dy >= 0).float()
    return grid, (my[:, :, None] * mx[:, None, :])[:, None]


def paste_features(face_feat: torch.Tensor, mouth_feat: torch.Tensor, mouth_box: torch.Tensor,
                   ref_size: float, feather: float = 0.0, inplace: bool = False,
                   proj: nn.Module | None = None) -> torch.Tensor:
    """Paste ``mouth_feat`` (B,C,m,m) into ``face_feat`` (B,C,H,W) at ``mouth_box``.

    Inside the box the face features are *replaced* by the bilinearly resized
    mouth features (``grid_sample``, border padding), outside they are left
    untouched; differentiable w.r.t. both maps.  ``ref_size``: face-crop side
    the box refers to (``face_feat`` may be coarser).  Only the window covering
    the union of the boxes is resampled (cheap); ``inplace=True`` (inference)
    writes into ``face_feat``.  ``proj`` (a 1x1 conv mouth->face channels) is
    applied after resampling: it commutes with bilinear sampling, so this
    equals projecting first but costs only the box's pixels.
    """
    hh, ww = face_feat.shape[-2:]
    b = mouth_box.detach().to(torch.float32)
    pad = feather / 2 + 1
    c0 = max(0, math.floor(b[:, 0].min().item() * ww / ref_size - pad))
    c1 = min(ww, math.ceil(b[:, 2].max().item() * ww / ref_size + pad))
    r0 = max(0, math.floor(b[:, 1].min().item() * hh / ref_size - pad))
    r1 = min(hh, math.ceil(b[:, 3].max().item() * hh / ref_size + pad))
    out = face_feat if inplace else face_feat.clone()
    if c1 <= c0 or r1 <= r0:
        return out
    grid, mask = box_grid(mouth_box, (r1 - r0, c1 - c0), ref_size, feather, (hh, ww), (r0, c0))
    pasted = F.grid_sample(mouth_feat, grid.to(mouth_feat.dtype), mode="bilinear",
                           padding_mode="border", align_corners=False)
    if proj is not None:
        pasted = proj(pasted)
    region = face_feat[..., r0:r1, c0:c1]
    out[..., r0:r1, c0:c1] = torch.lerp(region, pasted, mask.to(face_feat.dtype))
    return out


def crop_mouth(images: torch.Tensor, mouth_box: torch.Tensor, mouth_size: int,
               ref_size: float | None = None) -> torch.Tensor:
    """Bilinearly crop ``mouth_box`` from images (B,C,H,W) to (B,C,mouth_size,mouth_size).

    Box coordinates are in pixels of a ``ref_size`` square crop (default: the
    image width).  Output pixel centres are spread uniformly over the box, so a
    linear ramp image yields the analytical ramp restricted to the box.
    """
    ref = float(images.shape[-1] if ref_size is None else ref_size)
    box = mouth_box.to(torch.float32)
    t = (torch.arange(mouth_size, device=images.device, dtype=torch.float32) + 0.5) / mouth_size
    gx = 2.0 * (box[:, 0, None] + t[None] * (box[:, 2] - box[:, 0])[:, None]) / ref - 1.0  # (B,m)
    gy = 2.0 * (box[:, 1, None] + t[None] * (box[:, 3] - box[:, 1])[:, None]) / ref - 1.0
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    return F.grid_sample(images, grid.to(images.dtype), mode="bilinear",
                         padding_mode="border", align_corners=False)


class VisemeGenerator(nn.Module):
    """NEON renderer: (drawing, audio, mouth_box) -> (face_rgb, mouth_rgb) in [-1, 1].

    ``drawing`` (B,1,size,size), ``audio`` (B,audio_window,audio_dim),
    ``mouth_box`` (B,4) float x0,y0,x1,y1 in face-crop pixels.  The mouth
    decoder always runs (its features are pasted into the face); its RGB head
    is skipped when ``return_mouth=False`` (then ``mouth_rgb`` is ``None``).
    """

    def __init__(self, cfg: VisemeNetConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or VisemeNetConfig()
        self.kp_enc = KeypointEncoder(cfg)
        self.audio_enc = AudioEncoder(cfg)
        self.fuse = conv_block(cfg.latent_ch + 1, cfg.latent_ch)
        half = cfg.size // 2
        self.face_dec = Decoder(cfg, half, res_max=cfg.res_max_face or cfg.size // 4)
        self.mouth_dec = Decoder(cfg, cfg.mouth_size, width=0.5)
        cf, cm = self.face_dec.out_ch, self.mouth_dec.out_ch
        self.mouth_proj = nn.Conv2d(cm, cf, 1) if cm != cf else nn.Identity()
        self.face_rgb = nn.Sequential(nn.Conv2d(cf, 12, 3, padding=1), nn.PixelShuffle(2), nn.Tanh())
        self.mouth_rgb = nn.Sequential(nn.Conv2d(cm, 3, 3, padding=1), nn.Tanh())

    def encode(self, drawing: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Fused latent z (B, latent_ch, latent_hw, latent_hw)."""
        return self.fuse(torch.cat([self.kp_enc(drawing), self.audio_enc(audio)], dim=1))

    def forward(self, drawing: torch.Tensor, audio: torch.Tensor, mouth_box: torch.Tensor,
                return_mouth: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.from_keypoints(self.kp_enc(drawing), audio, mouth_box, return_mouth)

    def from_keypoints(self, kp: torch.Tensor, audio: torch.Tensor, mouth_box: torch.Tensor,
                       return_mouth: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``forward`` from the keypoint encoder's output ``kp`` (a drawing's features depend on the
        drawing alone: inference keeps them for frames it replays again)."""
        z = self.fuse(torch.cat([kp, self.audio_enc(audio)], dim=1))
        feat_f = self.face_dec(z)
        feat_m = self.mouth_dec(z)
        pasted = paste_features(feat_f, feat_m, mouth_box, float(self.cfg.size), self.cfg.feather,
                                inplace=not torch.is_grad_enabled(), proj=self.mouth_proj)
        face = self.face_rgb(pasted)
        mouth = self.mouth_rgb(feat_m) if return_mouth else None
        return face, mouth

    def for_inference(self) -> "VisemeGenerator":
        """``eval()`` + channels-last weights (~1.4x faster on CPU); run under
        ``torch.inference_mode()`` (lets the paste write in place)."""
        return self.eval().to(memory_format=torch.channels_last)


def count_params(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)

"""Image metrics on numpy arrays: PSNR, SSIM, CPBD sharpness, background flicker, validation frames.

All functions are pure: they take arrays (uint8 or float, values in [0, 255]
unless stated) and return plain Python floats, so results go straight into JSON.
This module sits on a low floor so that engines' validation, the trainer and
``evaluate`` all measure with the same code; SSIM is ``talkinghead.nn.ssim``
run in float64.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import zip_longest

import numpy as np
from scipy import ndimage

from .errors import InputError

_SENTINEL = object()


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise InputError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise InputError("empty image")
    return a, b


def crop_box(img: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Return ``img[y0:y1, x0:x1]`` for ``box = (x0, y0, x1, y1)``, clipped to the image.

    Float coordinates are widened outwards (floor/ceil). Raises ``InputError``
    when nothing of the box lies inside the image.
    """
    h, w = img.shape[:2]
    x0, y0, x1, y1 = box
    x0, y0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    x1, y1 = min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1)))
    if x1 <= x0 or y1 <= y0:
        raise InputError(f"crop box {tuple(box)} lies outside the {w}x{h} image")
    return img[y0:y1, x0:x1]


def psnr(a: np.ndarray, b: np.ndarray, max_val: float = 255.0, cap: float = 100.0) -> float:
    """Peak signal-to-noise ratio ``10 * log10(max_val**2 / MSE)`` in dB.

    PSNR is capped at 100 dB so identical images give 100, not inf, keeping JSON valid.
    """
    a, b = _pair(a, b)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return float(cap)
    return float(min(cap, 10.0 * np.log10(max_val**2 / mse)))


def ssim(a: np.ndarray, b: np.ndarray, max_val: float = 255, sigma: float = 1.5, win: int = 11,
         K1: float = 0.01, K2: float = 0.03) -> float:
    """Structural similarity, Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 13(4), 2004.

    For every ``win x win`` window with Gaussian weights w (sigma 1.5, sum 1)::

        SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))

    with ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2``, ``L = max_val``; the result is the mean
    over windows fully inside the image ('valid' filtering, as in the authors'
    ``ssim_index.m``; no automatic downsampling). RGB (H, W, C) images: mean of
    the per-channel SSIMs. Images must be at least ``win`` pixels on each side.
    Computed by ``talkinghead.nn.ssim`` (the training loss) in float64.
    """
    import torch

    from .nn.losses import ssim as ssim_t

    a, b = _pair(a, b)
    if a.ndim not in (2, 3) or min(a.shape[:2]) < win:
        raise InputError(f"SSIM needs 2-D or (H, W, C) images of at least {win}x{win}, got {a.shape}")
    to_t = lambda x: torch.from_numpy(x if x.ndim == 3 else x[..., None]).permute(2, 0, 1)[None]  # noqa: E731
    return float(ssim_t(to_t(a), to_t(b), data_range=max_val, win=win, sigma=sigma, k1=K1, k2=K2)[0])


def _to_gray(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 3 and img.shape[2] in (3, 4):
        img = img[..., :3] @ np.array([0.299, 0.587, 0.114])  # BT.601 luma of RGB
    if img.ndim != 2:
        raise InputError(f"expected a grayscale or RGB image, got shape {img.shape}")
    return img


def edge_widths(gray: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Width of each edge pixel's intensity ramp, measured along the gradient direction.

    Following Marziliano et al. (ICIP 2002) as used by CPBD: from each edge pixel
    walk along the dominant gradient axis (horizontal if ``|gx| >= |gy|``) both
    ways while the intensity keeps rising (resp. falling); the distance between
    the two local extrema is the axial width, projected onto the true gradient
    direction by multiplying with ``cos`` of the angle between gradient and axis.
    Returns ``(rows, cols, widths)``; widths are 0 where the ramp is flat.
    """
    gray = np.asarray(gray, dtype=np.float64)
    gy = ndimage.sobel(gray, axis=0)
    gx = ndimage.sobel(gray, axis=1)
    rows, cols = np.nonzero(edges)
    ex, ey = gx[rows, cols], gy[rows, cols]
    horiz = np.abs(ex) >= np.abs(ey)
    g_axis = np.where(horiz, ex, ey)
    mag = np.hypot(ex, ey)
    cos = np.divide(np.abs(g_axis), mag, out=np.ones_like(mag), where=mag > 0)
    s = np.where(g_axis < 0, -1.0, 1.0)  # s * intensity rises along +axis
    dr, dc = (~horiz).astype(np.intp), horiz.astype(np.intp)
    h, w = gray.shape
    total = np.zeros(len(rows), dtype=np.float64)
    for direction in (1, -1):
        idx = np.arange(len(rows))  # edges whose ramp is still being followed
        prev = s * gray[rows, cols]
        k = 1
        while idx.size:
            r, c = rows[idx] + direction * k * dr[idx], cols[idx] + direction * k * dc[idx]
            inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            v = s[idx] * gray[np.clip(r, 0, h - 1), np.clip(c, 0, w - 1)]
            keep = inside & (direction * (v - prev) > 0)
            idx, prev = idx[keep], v[keep]
            total[idx] += 1
            k += 1
    return rows, cols, total * cos


def cpbd(gray: np.ndarray, block: int = 64, edge_ratio: float = 0.002, beta: float = 3.6,
         p_jnb: float = 0.63, canny_sigma: float = 1.0) -> float:
    """Cumulative Probability of Blur Detection, Narvekar & Karam, IEEE TIP 20(9), 2011.

    No-reference sharpness in [0, 1], higher = sharper. Edges: Canny (skimage,
    sigma 1, hysteresis thresholds 0.1 / 0.2 on the [0, 1]-scaled image, i.e.
    absolute, so flat noise does not count as edges). Each edge width w comes from
    :func:`edge_widths`. The image is cut into ``block x block`` tiles; a tile is an
    edge block when its edge-pixel ratio exceeds 0.002. In an edge block the
    just-noticeable-blur width is ``w_JNB = 5`` if the tile contrast (max - min,
    0..255) is <= 50, else 3, and each edge's probability of blur detection is
    ``P = 1 - exp(-|w / w_JNB| ** 3.6)``. CPBD is the fraction of those edges with
    ``P <= 0.63`` (i.e. blur not detected). An image with no measurable edge
    block returns 0.0 (nothing sharp to see).
    """
    from skimage.feature import canny

    g = _to_gray(gray)
    edges = canny(g / 255.0, sigma=canny_sigma, low_threshold=0.1, high_threshold=0.2)
    rows, cols, widths = edge_widths(g, edges)
    h, w = g.shape
    n_sharp = n_all = 0
    for y0 in range(0, h, block):
        for x0 in range(0, w, block):
            tile = g[y0 : y0 + block, x0 : x0 + block]
            inb = (rows >= y0) & (rows < y0 + block) & (cols >= x0) & (cols < x0 + block)
            if inb.sum() <= edge_ratio * tile.size:
                continue
            wd = widths[inb]
            wd = wd[wd > 0]
            w_jnb = 5.0 if float(tile.max() - tile.min()) <= 50 else 3.0
            p = 1.0 - np.exp(-np.abs(wd / w_jnb) ** beta)
            n_sharp += int(np.count_nonzero(p <= p_jnb))
            n_all += len(wd)
    return float(n_sharp / n_all) if n_all else 0.0


class FlickerAccumulator:
    """Running mean, over frame pairs, of the mean squared temporal difference.

    ``update(prev, cur, mask)`` adds ``mean((cur - prev)^2)`` over the pixels
    (and channels) where ``mask`` is False; ``mask`` (H, W), True = excluded
    (e.g. the mouth), may be None. Frames are float/uint8 in [0, 255].
    ``value`` is the mean over pairs, or None before any usable pair.
    """

    def __init__(self) -> None:
        self.total = 0.0
        self.pairs = 0

    def update(self, prev: np.ndarray, cur: np.ndarray, mask: np.ndarray | None = None) -> None:
        prev, cur = _pair(prev, cur)
        d2 = (cur - prev) ** 2
        if mask is not None:
            mask = np.asarray(mask).astype(bool)
            if mask.shape != d2.shape[:2]:
                raise InputError(f"flicker mask shape {mask.shape} does not match frames {d2.shape[:2]}")
            d2 = d2[~mask]
            if d2.size == 0:
                return
        self.total += float(np.mean(d2))
        self.pairs += 1

    @property
    def value(self) -> float | None:
        return self.total / self.pairs if self.pairs else None


def blend_border(mask: np.ndarray, width: int = 3) -> np.ndarray:
    """(H, W) bool: the pixels within ``width`` of the border of ``mask > 0.5`` (a soft composite mask), on
    both sides; empty when the mask covers all or none of the image."""
    inside = np.asarray(mask) > 0.5
    if inside.all() or not inside.any():
        return np.zeros(inside.shape, bool)
    grow = ndimage.binary_dilation(inside, iterations=width)
    shrink = ndimage.binary_erosion(inside, iterations=width, border_value=1)
    return grow & ~shrink


def gradient_energy(img: np.ndarray, where: np.ndarray) -> float:
    """Sum of squared luma gradients (Sobel, per pixel) over ``where`` (H, W) bool."""
    g = _to_gray(img)
    e = ndimage.sobel(g, 0) ** 2 + ndimage.sobel(g, 1) ** 2
    return float(e[where].sum())


class SeamAccumulator:
    """Seam score over frames: gradient energy on the blend border of the rendered frames over that of the
    real frames on the same pixels (1: no added edge; a visible seam raises it, a softer face lowers it)."""

    def __init__(self):
        self.rendered = self.real = 0.0

    def update(self, rendered: np.ndarray, real: np.ndarray, mask: np.ndarray, width: int = 3) -> None:
        band = blend_border(mask, width)
        if band.any():
            self.rendered += gradient_energy(rendered, band)
            self.real += gradient_energy(real, band)

    @property
    def value(self) -> float | None:
        return self.rendered / self.real if self.real > 0 else None


def _mask_iter(mask_exclude) -> Iterable:
    if mask_exclude is None:
        while True:
            yield None
    arr = mask_exclude if isinstance(mask_exclude, np.ndarray) else None
    if arr is not None and arr.ndim == 2:
        while True:
            yield arr
    yield from mask_exclude


def flicker(frames_rendered: Iterable[np.ndarray], frames_real: Iterable[np.ndarray],
            mask_exclude=None) -> float | None:
    """Excess background flicker of the rendered video over the real one.

    ``flicker = mean_t MSE_out(R_t, R_{t-1}) - mean_t MSE_out(G_t, G_{t-1})`` where
    ``MSE_out`` is the mean squared difference (frames in [0, 255]) over pixels
    outside the excluded (mouth) region. Positive = the render shimmers more than
    the real footage. ``mask_exclude``: None, one (H, W) boolean mask, or a
    per-frame sequence/iterable of masks (True = excluded); with per-frame masks
    a pair excludes the union of both frames' masks. Inputs are consumed
    pairwise (generators are fine); the shorter sequence sets the length.
    Returns None when fewer than two frames are available.
    """
    acc_r, acc_g = FlickerAccumulator(), FlickerAccumulator()
    per_frame = mask_exclude is not None and not (isinstance(mask_exclude, np.ndarray) and mask_exclude.ndim == 2)
    prev_r = prev_g = prev_m = None
    for r, g, m in zip_longest(frames_rendered, frames_real, _mask_iter(mask_exclude), fillvalue=_SENTINEL):
        if r is _SENTINEL or g is _SENTINEL:
            break
        if m is _SENTINEL:
            raise InputError("fewer flicker masks than frames")
        r, g = np.asarray(r, dtype=np.float64), np.asarray(g, dtype=np.float64)
        if prev_r is not None:
            pm = m
            if per_frame and m is not None and prev_m is not None:
                pm = np.asarray(m).astype(bool) | np.asarray(prev_m).astype(bool)
            acc_r.update(prev_r, r, pm)
            acc_g.update(prev_g, g, pm)
        prev_r, prev_g, prev_m = r, g, m
    if acc_r.value is None or acc_g.value is None:
        return None
    return float(acc_r.value - acc_g.value)


def validate_frames(pred, real, boxes) -> dict[str, float]:
    """Mean PSNR of predicted vs real frames over the whole frame and inside each frame's box.

    ``pred``, ``real``: sequences of (H, W, 3) uint8 frames; ``boxes``: (N, 4) x0, y0, x1, y1 in
    their pixels (the mouth box). Returns ``{"psnr", "psnr_mouth"}`` in dB: what the trainer logs
    at every checkpoint, for every engine.
    """
    full = [psnr(p, g) for p, g in zip(pred, real)]
    mouth = [psnr(crop_box(p, box), crop_box(g, box)) for p, g, box in zip(pred, real, boxes)]
    if not full:
        raise InputError("no validation frames")
    return {"psnr": float(np.mean(full)), "psnr_mouth": float(np.mean(mouth))}

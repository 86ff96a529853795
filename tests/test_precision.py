"""Inference precision (talkinghead.nn.precision): bfloat16 only where it is native, the same pictures either way."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkinghead.nn.precision import autocast, native_bf16, resolve_precision


def test_auto_is_bf16_only_where_native_and_bad_names_fail():
    assert resolve_precision("auto", "cpu") == ("bf16" if native_bf16("cpu") else "fp32")
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16", "cpu")


def test_autocast_runs_convolutions_in_bf16_and_fp32_leaves_them_alone():
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.rand(1, 3, 8, 8)
    with autocast("cpu", "bf16"):
        assert conv(x).dtype == torch.bfloat16
    with autocast("cpu", "fp32"):
        assert conv(x).dtype == torch.float32


def test_viseme_engine_renders_the_same_pictures_in_bf16(viseme_model):
    """bf16 (forced, so also where it is emulated) changes the rendered face by a rounding error, not a look."""
    from talkinghead.drive import build_drive
    from talkinghead.engines.modeldir import load_engine

    frames = {}
    for p in ("fp32", "bf16"):
        eng = load_engine(viseme_model, "cpu", precision=p)
        assert eng.precision == p
        drive = build_drive(eng, text="hello, how are you").rows(0, 24)
        frames[p] = np.stack(list(eng.render(drive, batch_size=4))).astype(np.float64)
        mask = eng.composite_mask(drive, 0) > 0.05
    a, b = frames["fp32"][:, mask], frames["bf16"][:, mask]
    assert np.abs(a - b).max() > 0  # the two paths really differ …
    psnr = 10 * np.log10(255 ** 2 / np.mean((a - b) ** 2))
    assert psnr > 38, psnr  # … by rounding only (a visible change is < 30 dB)

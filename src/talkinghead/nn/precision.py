"""Inference precision: run an engine's networks in bfloat16 where the processor computes it natively.

On a CPU with AVX512-BF16 or AMX (and on CUDA devices that support it) oneDNN/cuDNN run bfloat16
convolutions and matrix products at up to twice the fp32 rate; elsewhere bfloat16 is emulated and
slower, so ``auto`` keeps fp32 there. Autocast keeps weights in fp32 and runs only the ops that
gain (convolutions, linear layers) in bfloat16; norms and reductions stay fp32.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["PRECISIONS", "native_bf16", "resolve_precision", "autocast"]

PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: str) -> bool:
    """True when ``device`` computes bfloat16 convolutions and matmuls in hardware."""
    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an older or stripped build without the query
        return False


def resolve_precision(precision: str, device: str) -> str:
    """``fp32`` or ``bf16``: ``auto`` is bf16 only where :func:`native_bf16` holds."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast(device: str, precision: str):
    """A context that runs the networks called inside it at ``precision`` (already resolved)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    return torch.autocast(kind, dtype=torch.bfloat16)

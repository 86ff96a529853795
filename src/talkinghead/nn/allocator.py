"""Keep freed tensor memory in the process for the next frame, instead of handing it back to the system.

PyTorch allocates CPU tensors with the C library's ``malloc``. glibc serves a request above its mmap
threshold (128 KiB at first, rising to at most 32 MiB as such blocks are freed) with a fresh ``mmap``
and returns it to the system on ``free``; the next frame's activations then page-fault their way
back in, every page zero-filled again. A renderer asks for the same large buffers every batch (a
batch of 256² feature maps is 16–70 MB), so at render time this page-faulting is a large share of a
frame on a CPU (bench/RESULTS.md "the allocator": the viseme oracle 28 → 19 ms a frame). Raising the
thresholds keeps those blocks on the heap, where ``free`` + ``malloc`` reuse them.

``reuse_freed_memory()`` does that through ``mallopt`` where the C library is glibc (Linux); elsewhere,
or with ``TALKINGHEAD_MALLOC=system``, it changes nothing. The cost: a process keeps its peak heap
until it exits (``M_TRIM_THRESHOLD``), which a renderer reaches on its first batch anyway. Training
does not gain from it (measured: steps/s unchanged), so only rendering asks for it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["reuse_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value (its dynamic threshold's ceiling)
TRIM_THRESHOLD = 1 << 30  # free heap kept at the top before any is given back

_applied: bool | None = None


def _glibc():
    """The C library, when it is glibc (it has ``mallopt`` and ``gnu_get_libc_version``), else None."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - raises AttributeError on musl, macOS, Windows
        return libc if hasattr(libc, "mallopt") else None
    except (OSError, AttributeError):
        return None


def reuse_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds for the whole process (once); True when they are in force."""
    global _applied
    if _applied is None:
        libc = None if os.environ.get("TALKINGHEAD_MALLOC", "").lower() == "system" else _glibc()
        _applied = bool(libc and libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                        and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied

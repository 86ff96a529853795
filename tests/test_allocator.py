"""nn/allocator.py: after reuse_freed_memory(), a large block comes from the heap (reused), not a fresh mmap."""

import ctypes
import os
import subprocess
import sys

import pytest

from talkinghead.nn.allocator import _glibc

PROBE = r"""
import ctypes, os, sys
from talkinghead.nn import allocator

class Info(ctypes.Structure):  # struct mallinfo2 (glibc >= 2.33): hblks = blocks served by mmap
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
applied = allocator.reuse_freed_memory()
before = libc.mallinfo2().hblks
p = libc.malloc(20 << 20)  # a batch of feature maps: above glibc's first mmap threshold, below 32 MiB
mapped = libc.mallinfo2().hblks - before
libc.free(p)
print(int(applied), mapped)
"""


def probe(env: dict) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    applied, mapped = out.stdout.split()
    return int(applied), int(mapped)


@pytest.mark.skipif(_glibc() is None or not hasattr(ctypes.CDLL(None), "mallinfo2"),
                    reason="needs glibc >= 2.33 (mallinfo2)")
def test_large_blocks_stay_on_the_heap_and_the_system_allocator_can_be_kept():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    assert probe({**env, "TALKINGHEAD_MALLOC": "system"}) == (0, 1)  # glibc's default: a fresh mapping
    assert probe(env) == (1, 0)  # thresholds raised: served from the heap, reused after free

from __future__ import annotations

import ctypes
import platform
import sys

import pyarrow as pa
import pytest

from molehunt.ingest.memory import MMAP_BATCHES, TRIM_BATCHES, tune_allocator

glibc_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="tune_allocator only acts on Linux with glibc",
)


_MALLINFO2_FIELDS = [
    "arena",
    "ordblks",
    "smblks",
    "hblks",
    "hblkhd",
    "usmblks",
    "fsmblks",
    "uordblks",
    "fordblks",
    "keepcost",
]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO2_FIELDS]


def _mmapped_bytes(libc: ctypes.CDLL) -> int:
    info: _MallInfo2 = libc.mallinfo2()
    return int(info.hblkhd)


@glibc_only
def test_tuning_sets_thresholds_from_the_batch_size_and_puts_arrow_on_malloc() -> None:
    batch = 16 * 1024 * 1024
    tuned = tune_allocator(batch)
    assert tuned is not None
    # Another test (or the runner) may have tuned first: the first call wins.
    assert tuned.mmap_threshold % MMAP_BATCHES == 0
    assert tuned.trim_threshold == tuned.mmap_threshold * TRIM_BATCHES // MMAP_BATCHES
    assert tuned.arrow_pool == "system"
    assert pa.default_memory_pool().backend_name == "system"
    assert tune_allocator(batch) is tuned


@glibc_only
def test_a_batch_sized_block_comes_from_the_heap_not_a_fresh_mapping() -> None:
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("glibc older than 2.33 has no mallinfo2 to look with")
    libc.mallinfo2.restype = _MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    tuned = tune_allocator()
    assert tuned is not None
    size = min(tuned.mmap_threshold // 2, 64 * 1024 * 1024)
    before = _mmapped_bytes(libc)
    block = libc.malloc(size)
    try:
        assert block
        # Untuned, glibc maps any block over 32 MiB on its own and unmaps it on free.
        assert _mmapped_bytes(libc) == before
    finally:
        libc.free(block)

"""Keep freed memory in the process's heap: a search allocates and frees the same large arrays block after block.

A search scores its queries in blocks: each block allocates ``(windows, N)`` float32 score arrays (100-200 MB at
10^5 database rows, ~1 GB at 10^6), uses them and frees them; an index build embeds and sorts its rows in buffers.
glibc's ``malloc`` serves allocations above its mmap threshold (128 KB, raised on the fly up to 32 MB) with fresh
``mmap`` pages and returns them at ``free``, and threads other than the main one allocate from arenas of their own,
so every block faults its pages in again: 500 queries against 10^6 proteins spent 18-19 s of system time in
~57 s, and 4.3-4.5 s in ~47 s with this setting (docs/performance.md, "Freed memory kept").

:func:`keep_freed_memory` asks glibc (``mallopt``) to serve allocations up to :data:`MMAP_THRESHOLD` from one heap
(one arena for all threads) and to keep up to :data:`TRIM_THRESHOLD` of freed memory there, so the next block
reuses pages already mapped. It changes no result and moved the peak resident memory of the runs measured by -12% to
+9%; it keeps the memory a process freed until it exits, which is why only the short-lived ``phylocl search`` and
``phylocl index`` call it (``phylocl.cli.HEAP_COMMANDS``), not the library. Elsewhere (not glibc: macOS, musl) and
where the user set glibc's own ``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``,
``MALLOC_TOP_PAD_`` or ``GLIBC_TUNABLES``, it does nothing.
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "USER_SETTINGS", "keep_freed_memory"]

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc's <malloc.h> parameter numbers
MMAP_THRESHOLD = 1 << 30  # bytes: allocations below this come from the heap (a block of scores: 0.1-0.3 GB at
# 10^5 rows, ~1 GB at 10^6)
TRIM_THRESHOLD = (1 << 31) - 1  # bytes of free memory at the heap's top kept for reuse (mallopt takes an int)
USER_SETTINGS = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                 "GLIBC_TUNABLES")


def keep_freed_memory() -> bool:
    """Set glibc's heap to keep and reuse freed memory (module doc); ``True`` when all three settings took effect.
    Call it before the threads that allocate are started (the arena count applies to threads that allocate later)."""
    if any(name in os.environ for name in USER_SETTINGS):
        return False
    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):  # TypeError: Windows, which loads no library by None
        return False
    if not (hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt")):  # glibc only
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    done = [mallopt(M_ARENA_MAX, 1), mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD), mallopt(M_TRIM_THRESHOLD,
                                                                                        TRIM_THRESHOLD)]
    return all(r == 1 for r in done)

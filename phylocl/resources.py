"""What this machine has room for: memory available now, and sizes in words (no torch here)."""

from __future__ import annotations

import os

__all__ = ["available_memory", "human_bytes"]


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (``MemAvailable`` on Linux), or ``None`` when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def human_bytes(n: int) -> str:
    """``n`` bytes as ``"1.2 GB"`` (MB below 0.1 GB, KB below 0.1 MB, bytes below 1 KB)."""
    if n >= 1e8:
        return f"{n / 1e9:,.1f} GB"
    if n >= 1e5:
        return f"{n / 1e6:,.1f} MB"
    return f"{n / 1e3:,.1f} KB" if n >= 1e3 else f"{int(n)} bytes"

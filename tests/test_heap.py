"""phylocl/heap.py: the glibc heap keeps freed memory for reuse, only where asked and never over a user's setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from phylocl import heap

_ROOT = Path(__file__).resolve().parents[1]

# Faults of a second 256 MB block after the first is freed; each is allocated and written in a thread, as a
# search's blocks are (threads have arenas of their own unless told otherwise); malloc itself, since NumPy asks for
# huge pages on large arrays where the kernel offers them (not on every machine)
_PROBE = """
import ctypes, resource, sys, threading
from phylocl.heap import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)

def block():
    p = libc.malloc(256 << 20)
    ctypes.memset(p, 1, 256 << 20)  # every page
    libc.free(p)

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = threading.Thread(target=block)
    t.start()
    t.join()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults()
print(applied, faults())
"""


def _glibc() -> bool:
    import ctypes

    try:
        return hasattr(ctypes.CDLL(None), "gnu_get_libc_version")
    except OSError:
        return False


def _probe(mode: str, **env_extra: str) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k not in heap.USER_SETTINGS}
    env.update(env_extra, PYTHONPATH=str(_ROOT))
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], env=env, capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied, int(faults)


@pytest.mark.skipif(not _glibc(), reason="mallopt is glibc's")
def test_a_freed_block_is_reused_without_faulting_its_pages_in_again():
    applied, kept = _probe("keep")
    _, plain = _probe("plain")
    assert applied == "True"
    pages = (256 << 20) // os.sysconf("SC_PAGE_SIZE")
    assert plain > pages // 2  # without it, glibc maps the block afresh
    assert kept < pages // 50 and kept < plain // 10


@pytest.mark.skipif(not _glibc(), reason="mallopt is glibc's")
def test_a_user_setting_of_glibc_malloc_wins():
    applied, faults = _probe("keep", MALLOC_ARENA_MAX="4")
    assert applied == "False"


def test_only_search_and_index_set_the_heap(monkeypatch, tmp_path):
    from phylocl import cli

    calls = []
    monkeypatch.setattr(heap, "keep_freed_memory", lambda: calls.append(1) or True)
    fasta = tmp_path / "q.fasta"
    fasta.write_text(">a\nMKVLAAGIVLLL\n>b\nMKVLAAGIVLLF\n")
    assert cli.main(["models"]) == 0 and calls == []
    assert cli.main(["search", "--query", str(fasta), "--db", str(fasta), "--model", "kmer:3", "--no-align",
                     "-k", "1", "-o", str(tmp_path / "hits.tsv"), "--quiet"]) == 0
    assert calls == [1] and (tmp_path / "hits.tsv").exists()
    assert cli.main(["index", "--fasta", str(fasta), "--model", "kmer:3", "-o", str(tmp_path / "db.index"),
                     "--quiet"]) == 0
    assert calls == [1, 1] and (tmp_path / "db.index" / "meta.json").exists()
    assert cli.main(["embed", "--fasta", str(fasta), "--model", "kmer:3", "-o", str(tmp_path / "e.npz"),
                     "--quiet"]) == 0
    assert calls == [1, 1] and (tmp_path / "e.npz").exists()


def test_nothing_is_set_where_the_c_library_is_not_glibc(monkeypatch):
    import ctypes

    class Musl:  # a C library without gnu_get_libc_version
        def __getattr__(self, name):
            if name == "gnu_get_libc_version":
                raise AttributeError(name)
            raise AssertionError(f"{name} called on a C library that is not glibc")

    for name in heap.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(ctypes, "CDLL", lambda name: Musl())
    assert heap.keep_freed_memory() is False

    def no_library(name):
        raise TypeError("expected str, bytes or os.PathLike object, not NoneType")  # what Windows says

    monkeypatch.setattr(ctypes, "CDLL", no_library)
    assert heap.keep_freed_memory() is False

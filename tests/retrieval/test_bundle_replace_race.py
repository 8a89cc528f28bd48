"""A bundle rebuilt in place while it is read: readers get the old version or the new one, whole, never a mix and
never a "damaged" refusal (``phylocl index ... -o IDX`` during a ``phylocl search --index IDX``); a bundle that is
truly damaged is still refused at its first read, in one line naming it.

The writer's replace (:func:`phylocl.atomic.atomic_dir`) renames the old folder aside, the new one onto the path,
then deletes the old one; the tests put such a replace between two member reads of a load (deterministic), wait
for a live writer between its two renames, and run a real rebuild loop in another process beside repeated loads.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import phylocl.atomic as atomic
import phylocl.retrieval.index_io as index_io
from phylocl.atomic import atomic_dir, temp_prefix
from phylocl.errors import InputError
from phylocl.retrieval.index import build_index
from phylocl.retrieval.index_io import load_index, load_index_with, save_index, verify_bundle
from phylocl.workflows.search import _open_bundle_store
from phylocl.workflows.sparse_index_command import build_sparse_index_file

AA = "ACDEFGHIKLMNPQRSTVWY"


def _store_of(bundle):
    """A reader of the bundle's stored sequences for load_index_with, as phylocl.workflows.search opens them."""
    return lambda root, ridx: _open_bundle_store(root, ridx, name=bundle)


def _fasta(path: Path, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    path.write_text("".join(f">s{seed}_{i}\n{''.join(rng.choice(list(AA), int(rng.integers(40, 120))))}\n"
                            for i in range(n)))
    return path


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """Two different sparse bundles (windowed, default model, sequences stored) of 30 and 20 proteins."""
    tmp = tmp_path_factory.mktemp("versions")
    out = {}
    for name, n, seed in (("a", 30, 1), ("b", 20, 2)):
        fasta = _fasta(tmp / f"{name}.fasta", n, seed)
        build_sparse_index_file(fasta=fasta, out=tmp / f"{name}.index", progress=False, threads=1)
        out[name] = (fasta, tmp / f"{name}.index")
    return out


def _faiss_versions(tmp: Path) -> dict:
    rng = np.random.default_rng(0)
    out = {}
    for name, n in (("a", 60), ("b", 40)):
        x = rng.standard_normal((n, 8)).astype(np.float32)
        out[name] = (None, save_index(build_index(x, ids=[f"{name}{i}" for i in range(n)]), tmp / f"{name}.index"))
    return out


def _replace_with(path: Path, source: Path) -> None:
    """What a rebuild in place does: atomic_dir (two renames, then the old folder deleted) with ``source``'s files."""
    with atomic_dir(path) as tmp:
        for f in source.iterdir():
            shutil.copy2(f, tmp / f.name)


def _ids(index) -> list[str]:
    return list(index.ids)


def _swap_during(monkeypatch, target: str, path: Path, source: Path, times: int = 1) -> list[int]:
    """Replace ``path`` by ``source`` the first ``times`` calls of index_io's ``target`` (a member read in the middle
    of a load: meta.json was read, the arrays are not yet); returns the list counting the calls."""
    original, calls = getattr(index_io, target), []

    def swapping(*args, **kwargs):
        calls.append(1)
        if len(calls) <= times:
            _replace_with(path, source)
        return original(*args, **kwargs)

    monkeypatch.setattr(index_io, target, swapping)
    return calls


@pytest.fixture(params=["fd", "path"])
def opened(request, monkeypatch):
    """Members opened through the folder's descriptor (``/proc/self/fd``, Linux), or by path (other systems: the
    end-of-load check alone)."""
    if request.param == "path":
        monkeypatch.setattr(atomic, "_PROC_FD", "/nonexistent/fd")
    return request.param


@pytest.mark.parametrize("kind", ["sparse", "faiss"])
def test_a_replace_between_two_member_reads_gives_the_new_version_whole(tmp_path, monkeypatch, versions, kind,
                                                                       opened):
    versions = versions if kind == "sparse" else _faiss_versions(tmp_path)
    a, b = versions["a"][1], versions["b"][1]
    want_b = _ids(load_index(b))
    path = tmp_path / "db.index"
    shutil.copytree(a, path)
    calls = _swap_during(monkeypatch, "_read_rows", path, b)  # after meta.json (of a), before the arrays
    index, store = load_index_with(path, _store_of(path) if kind == "sparse" else None, mmap=None)
    assert _ids(index) == want_b and len(calls) == 2  # the first read raced the replace: read again, whole
    if kind == "sparse":
        assert len(store) == index.ntotal and store.residues == load_index_with(b, _store_of(b))[1].residues
        assert index.source == str(path) and index.index.source == str(path)  # not a /proc path
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # the old one is deleted


def test_a_swap_without_deletion_is_seen_at_the_end_of_the_load(tmp_path, monkeypatch, versions, opened):
    """The old folder renamed aside but not yet deleted: its members are all readable, yet the load is made again
    from the folder now at the path (what is returned is what the path holds once the load is done)."""
    a, b = versions["a"][1], versions["b"][1]
    want_b = _ids(load_index(b))
    path, aside = tmp_path / "db.index", tmp_path / "aside"
    shutil.copytree(a, path)
    original, calls = index_io._read_rows, []

    def swap(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            os.replace(path, aside)
            shutil.copytree(b, path)
        return original(*args, **kwargs)

    monkeypatch.setattr(index_io, "_read_rows", swap)
    assert _ids(load_index(path)) == want_b and len(calls) == 2


def test_verify_during_a_replace_checks_one_version(tmp_path, monkeypatch, versions):
    a, b = versions["a"][1], versions["b"][1]
    path = tmp_path / "db.index"
    shutil.copytree(a, path)
    _swap_during(monkeypatch, "_read_rows", path, b)
    line = verify_bundle(path)
    assert line.startswith(f"{path}: ok (sparse-windows, 20 sequences") and "/proc" not in line


def test_a_live_writer_between_its_two_renames_is_waited_for(tmp_path, versions):
    """The path missing while a live writer's ``.old`` holds the old folder: the load waits for the new one."""
    a, b = versions["a"][1], versions["b"][1]
    path = tmp_path / "db.index"
    old = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".old", dir=tmp_path))  # this (live) process's
    shutil.copytree(a, old / "x")
    new = tmp_path / "new"
    shutil.copytree(b, new)
    timer = threading.Timer(0.2, os.replace, (new, path))
    timer.start()
    try:
        assert _ids(load_index(path)) == _ids(load_index(b))
    finally:
        timer.join()
    assert (old / "x").is_dir()  # a live writer's folder is left to it


def test_damage_is_reported_once_naming_the_bundle(tmp_path, monkeypatch, versions):
    path = tmp_path / "db.index"
    shutil.copytree(versions["a"][1], path)
    with open(path / "dense.npy", "r+b") as f:  # a changed size: refused by the checksums, at every load
        f.truncate(os.path.getsize(path / "dense.npy") - 8)
    original, calls = index_io._load_at, []

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(index_io, "_load_at", counted)
    with pytest.raises(InputError, match="dense.npy holds") as err:
        load_index(path)
    assert len(calls) == 1 and err.value.path == str(path) and "/proc" not in str(err.value)
    (path / "rows.npz").unlink()
    with pytest.raises(InputError, match="rows.npz is missing") as err:
        load_index(path)
    assert err.value.path == str(path)


def test_a_bundle_replaced_at_every_read_is_refused_after_a_few(tmp_path, monkeypatch, versions):
    a, b = versions["a"][1], versions["b"][1]
    path = tmp_path / "db.index"
    shutil.copytree(a, path)
    original, calls = index_io._read_rows, []

    def swap(*args, **kwargs):
        calls.append(1)
        _replace_with(path, b if len(calls) % 2 else a)
        return original(*args, **kwargs)

    monkeypatch.setattr(index_io, "_read_rows", swap)
    with pytest.raises(InputError, match="replaced 8 times while being read"):
        load_index(path)
    assert len(calls) == atomic.READ_ATTEMPTS


_WRITER = """
import itertools, sys
from phylocl.workflows.sparse_index_command import build_sparse_index_file
fastas, out, count = sys.argv[1:3], sys.argv[3], sys.argv[4]
for n, fasta in enumerate(itertools.cycle(fastas), start=1):
    build_sparse_index_file(fasta=fasta, out=out, progress=False, threads=1)
    with open(count, "w") as f:
        f.write(str(n))
"""


def test_searches_beside_a_rebuild_loop_see_one_version_or_the_other(tmp_path, versions):
    """Another process rebuilds the bundle in place again and again (two databases in turn) while this one opens
    it for searching (index and stored sequences: a :class:`Searcher`) and searches: every search succeeds and
    gives the hits of one database or of the other (before the fix, about a third of them failed as "damaged")."""
    from phylocl.workflows.searcher import Searcher

    (fa, a), (fb, b) = versions["a"], versions["b"]
    path, count = tmp_path / "db.index", tmp_path / "count"
    shutil.copytree(a, path)
    queries = [(f"q{i}", s) for i, s in enumerate(Path(fa).read_text().split()[1::2][:3] +
                                                  Path(fb).read_text().split()[1::2][:3])]
    want = {tuple(map(str, Searcher(index=p, k=3, threads=1).search(queries))) for p in (a, b)}
    assert len(want) == 2
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(fb), str(fa), str(path), str(count)])
    got, errors = [], []
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _rebuilds(count) < 12:
            try:
                got.append(tuple(map(str, Searcher(index=path, k=3, threads=1).search(queries))))
            except InputError as err:
                errors.append(str(err))
    finally:
        writer.kill()
        writer.wait()
    assert errors == []
    assert all(g in want for g in got)
    assert _rebuilds(count) >= 3 and len(got) >= 10  # the loads did run beside rebuilds


def _rebuilds(count: Path) -> int:
    try:
        return int(count.read_text() or 0)
    except (OSError, ValueError):
        return 0

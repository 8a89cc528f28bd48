"""Sparse rows embedded in forked worker processes: the same rows, the same bundle, errors raised in the caller."""

from __future__ import annotations

import os

import numpy as np
import pytest

import phylocl.workflows.embed_buffers as embed_buffers
from phylocl.align import workers as workers_mod
from phylocl.align.workers import OrderedPool
from phylocl.cli import main
from phylocl.workflows.embed_buffers import sparse_buffers
from phylocl.workflows.model_spec import resolve_model
from phylocl.workflows.windows import check_windows, window_buffers

LETTERS = list("ACDEFGHIKLMNPQRSTVWY")


def _items(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [(f"s{i}", "".join(rng.choice(LETTERS, int(m))), None) for i, m in enumerate(rng.integers(5, 500, n))]


def _rows_equal(a, b) -> None:
    for name in ("indptr", "indices", "values", "coeffs"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("model", ["default-protein", "kmer:3"])
def test_workers_give_the_same_rows_buffer_by_buffer(monkeypatch, model):
    monkeypatch.setattr(embed_buffers, "MIN_PARALLEL_RESIDUES", 0)
    embedder = resolve_model(model, alphabet="protein", sparse_only=True)
    items = _items(130)
    one = list(sparse_buffers(items, embedder, buffer_size=50, workers=1))
    for workers in (2, 3):
        many = list(sparse_buffers(items, embedder, buffer_size=50, workers=workers))
        assert [b[1] for b in many] == [b[1] for b in one] and len(many) == 3
        for (a, _, _), (b, _, _) in zip(one, many):
            _rows_equal(a, b)
    cut = check_windows(200, embedder)
    one = list(window_buffers(items, embedder, cut, buffer_size=40, workers=1))
    many = list(window_buffers(items, embedder, cut, buffer_size=40, workers=2))
    for (a, ids_a, _), (b, ids_b, _) in zip(one, many, strict=True):
        assert ids_a == ids_b and a.n == b.n
        np.testing.assert_array_equal(a.owners, b.owners)
        _rows_equal(a.rows, b.rows)


def test_index_with_two_processes_is_the_same_bundle_byte_for_byte(tmp_path, monkeypatch):
    monkeypatch.setattr(embed_buffers, "MIN_PARALLEL_RESIDUES", 0)
    fasta = tmp_path / "db.fasta"
    fasta.write_text("".join(f">{i}\n{s}\n" for i, s, _ in _items(300, seed=1)))
    for threads in (1, 2):
        assert main(["index", "--fasta", str(fasta), "-o", str(tmp_path / f"ix{threads}"), "--quiet",
                     "--threads", str(threads)]) == 0
    names = sorted(os.listdir(tmp_path / "ix1"))
    assert names == sorted(os.listdir(tmp_path / "ix2")) and "dense.npy" in names
    for name in names:
        assert (tmp_path / "ix1" / name).read_bytes() == (tmp_path / "ix2" / name).read_bytes(), name


def _square_or_fail(x: int) -> int:
    if x == 3:
        raise ValueError("three is refused")
    return x * x


def test_ordered_pool_keeps_order_raises_worker_errors_and_cleans_up():
    with OrderedPool(_square_or_fail, workers=2) as pool:
        handles = [pool.submit(x) for x in (5, 1, 4)]
        assert [h.get() for h in handles] == [25, 1, 16]
    with pytest.raises(ValueError, match="three is refused"):
        with OrderedPool(_square_or_fail, workers=2) as pool:
            pool.submit(3).get()
    with OrderedPool(_square_or_fail, workers=1) as pool:  # no workers: at once, in this process
        assert pool.submit(6).get() == 36
    assert not workers_mod._TASKS


def test_no_more_worker_processes_than_usable_cores(monkeypatch):
    """``--threads 200`` on 2 cores forked 200 workers (5x the time of 2); the pool now stops at the cores this
    process may use, with the same results in the same order."""
    monkeypatch.setattr(workers_mod, "usable_cpus", lambda: 2)
    with OrderedPool(lambda x: x * x, workers=50) as pool:
        assert pool.workers == 2 and (pool._pool is None or pool._pool._processes == 2)
        handles = [pool.submit(i) for i in range(20)]
        assert [h.get() for h in handles] == [i * i for i in range(20)]
    monkeypatch.setattr(workers_mod, "usable_cpus", lambda: 1)
    with OrderedPool(lambda x: x * x, workers=50) as pool:  # one core: in this process, no fork
        assert pool.workers == 1 and pool._pool is None and pool.submit(3).get() == 9

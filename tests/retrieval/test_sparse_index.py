"""The sparse (inverted) index: exact against brute force, built in bounded blocks, saved and loaded."""

from __future__ import annotations

import numpy as np
import pytest

import phylocl.retrieval.sparse_build as sparse_build
import phylocl.retrieval.sparse_index as sparse_index
from phylocl.errors import InputError
from phylocl.retrieval.index_io import load_index
from phylocl.models.kmer import KmerEmbedder
from phylocl.retrieval.sparse_build import write_sparse_index
from phylocl.sparse_rows import SparseRows, concat_rows, matmul_rows

LETTERS = list("ACDEFGHIKLMNPQRSTVWY")


def _sequences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(LETTERS, rng.integers(1, 50))) for _ in range(n)]


def _blocks(rows: SparseRows, ids, size: int, labels=None):
    return [(rows.slice(lo, min(lo + size, len(rows))), ids[lo:lo + size],
             None if labels is None else labels[lo:lo + size]) for lo in range(0, len(rows), size)]


def _low_rank(rows: SparseRows, rank: int, seed: int = 1) -> SparseRows:
    rng = np.random.default_rng(seed)
    return SparseRows(indptr=rows.indptr, indices=rows.indices, values=rows.values,
                      coeffs=(0.05 * rng.standard_normal((len(rows), rank))).astype(np.float32),
                      basis=rng.standard_normal((rank, rows.dim)).astype(np.float32), dim=rows.dim)


@pytest.mark.parametrize("rank,row_block", [(0, 1 << 18), (3, 1 << 18), (3, 17)])
def test_scores_and_hits_equal_brute_force_on_the_dense_rows(tmp_path, monkeypatch, rank, row_block):
    monkeypatch.setattr(sparse_build, "READ_VALUES", 300)  # many transposition steps
    monkeypatch.setattr(sparse_index, "ROW_BLOCK", row_block)  # 17: the scores written in 15 blocks of rows
    emb = KmerEmbedder(k=2)
    seqs = _sequences(240)
    rows = emb.embed_sparse(seqs)
    rows = _low_rank(rows, rank) if rank else rows
    ids = [f"s{i}" for i in range(len(seqs))]
    meta = write_sparse_index(tmp_path / "ix", _blocks(rows, ids, 37), model={"name": "m", "dim": rows.dim})
    assert (meta["kind"], meta["ntotal"], meta["rank"], meta["nnz"]) == ("sparse", 240, rank, len(rows.indices))
    index = load_index(tmp_path / "ix")
    x = rows.to_dense().astype(np.float64)  # (N, D)
    q = rows.slice(5, 25)
    np.testing.assert_allclose(index.scores(q), x[5:25] @ x.T, atol=2e-5)
    scores, hits = index.search(q, 7, block=3)
    expected = np.sort(x[5:25] @ x.T, axis=1)[:, ::-1][:, :7]
    np.testing.assert_allclose(scores, expected, atol=2e-5)
    np.testing.assert_allclose(np.take_along_axis(x[5:25] @ x.T, hits, axis=1), scores, atol=2e-5)


def test_posting_lists_hold_each_column_rows_in_increasing_order(tmp_path, monkeypatch):
    monkeypatch.setattr(sparse_build, "READ_VALUES", 50)
    rows = KmerEmbedder(k=1).embed_sparse(_sequences(60, seed=2))
    write_sparse_index(tmp_path / "ix", _blocks(rows, [str(i) for i in range(60)], 7), model={})
    ptr, post = np.load(tmp_path / "ix" / "ptr.npy"), np.load(tmp_path / "ix" / "rows.npy")
    dense = rows.to_dense()
    for col in range(rows.dim):
        listed = post[ptr[col]:ptr[col + 1]]
        np.testing.assert_array_equal(listed, np.flatnonzero(dense[:, col]))  # slow, obvious reference
    assert ptr.dtype == post.dtype == np.int32


def test_self_hits_are_dropped_and_short_databases_pad_with_minus_one(tmp_path):
    rows = KmerEmbedder(k=2).embed_sparse(_sequences(6, seed=3))
    ids = list("abcdef")
    write_sparse_index(tmp_path / "ix", [(rows, ids, list("xxxyyy"))], model={})
    index = load_index(tmp_path / "ix")
    assert index.labels == list("xxxyyy")
    scores, hits = index.search(rows.slice(0, 2), 10, exclude_ids=["a", "b"])
    assert scores.shape == hits.shape == (2, 10)
    assert 0 not in hits[0] and 1 not in hits[1]
    assert (hits[:, :5] >= 0).all() and (hits[:, 5:] == -1).all() and np.isinf(scores[:, 5:]).all()


def test_bad_rows_are_refused_and_nothing_is_written(tmp_path):
    rows = KmerEmbedder(k=2).embed_sparse(_sequences(4))
    with pytest.raises(ValueError, match="unique"):
        write_sparse_index(tmp_path / "ix", [(rows, ["a", "b", "a", "c"], None)], model={})
    with pytest.raises(ValueError, match="some rows only"):
        write_sparse_index(tmp_path / "ix", _blocks(rows, list("abcd"), 2, labels=None)[:1]
                           + [(rows.slice(2, 4), ["c", "d"], ["x", "y"])], model={})
    assert not (tmp_path / "ix").exists()


def test_kmer_sparse_rows_equal_the_dense_profile(monkeypatch):
    import phylocl.models.kmer as kmer

    monkeypatch.setattr(kmer, "MIN_SPARSE_BATCH", 1)  # batches of 5: the concatenation of batches is tested
    emb = KmerEmbedder(k=3)
    seqs = ["MKVLAAGIVLLA", "MK", "XXXXMKVW", "MKVLAAGIVLLAMKV"] * 3  # one without a single 3-mer
    rows = emb.embed_sparse(seqs, batch_size=5)
    np.testing.assert_allclose(rows.to_dense(), emb.embed(seqs), atol=1e-7)
    assert all(np.all(np.diff(rows.indices[a:b]) > 0) for a, b in zip(rows.indptr[:-1], rows.indptr[1:]))
    with pytest.raises(ValueError, match="sketch"):
        KmerEmbedder(k=3, dim=64).embed_sparse(seqs)


def test_concat_and_slice_round_trip():
    rows = _low_rank(KmerEmbedder(k=2).embed_sparse(_sequences(9)), 2)
    again = concat_rows([rows.slice(0, 4), rows.slice(4, 9)])
    np.testing.assert_array_equal(again.to_dense(), rows.to_dense())


def test_damaged_bundle_is_an_input_error(tmp_path):
    rows = KmerEmbedder(k=2).embed_sparse(_sequences(5))
    write_sparse_index(tmp_path / "ix", [(rows, list("abcde"), None)], model={})
    (tmp_path / "ix" / "values.npy").unlink()
    with pytest.raises(InputError, match="values.npy is missing"):
        load_index(tmp_path / "ix")


@pytest.mark.parametrize("rank", [0, 3])
def test_thread_count_does_not_change_scores_or_hits(tmp_path, rank):
    """The thread count sets the blocks of queries (one per thread); a query's scores do not depend on its block."""
    rows = KmerEmbedder(k=2).embed_sparse(_sequences(200, seed=4))
    rows = _low_rank(rows, rank) if rank else rows
    ids = [f"s{i}" for i in range(len(rows))]
    write_sparse_index(tmp_path / "ix", _blocks(rows, ids, 50), model={})
    q = rows.slice(0, 10)
    runs = []
    for threads in (1, 2, 3, 8, 10):  # blocks of 10, 5, 4, 2 and 1 queries
        index = load_index(tmp_path / "ix")
        index.threads = threads
        runs.append(index.search(q, 9, exclude_ids=ids[:10]))
    for scores, hits in runs[1:]:
        np.testing.assert_array_equal(scores, runs[0][0])
        np.testing.assert_array_equal(hits, runs[0][1])
    x = rows.to_dense().astype(np.float64)
    for i in range(10):
        assert i not in runs[0][1][i]
        np.testing.assert_allclose(runs[0][0][i], (x[runs[0][1][i]] @ x[i]), atol=2e-5)


@pytest.mark.parametrize("rank", [0, 3])
def test_row_blocks_shared_by_threads_give_the_same_bits(tmp_path, monkeypatch, rank):
    """A search whose queries make fewer blocks than it has threads (one query) lets threads share its sums: whole
    query rows per thread, or, for fewer rows than threads, each row's lists by consecutive blocks of database rows.
    Every sum runs over the same lists in the same order, so scores, budgeted scores and hits are the same bits
    whatever the split (15 blocks of 17 rows here)."""
    monkeypatch.setattr(sparse_index, "ROW_BLOCK", 17)
    rows = KmerEmbedder(k=2).embed_sparse(_sequences(240, seed=6))
    rows = _low_rank(rows, rank) if rank else rows
    ids = [f"s{i}" for i in range(len(rows))]
    write_sparse_index(tmp_path / "ix", _blocks(rows, ids, 50), model={})
    index = load_index(tmp_path / "ix")
    q = rows.slice(3, 9)
    calls = []
    real = sparse_index.scatter_lists
    monkeypatch.setattr(sparse_index, "scatter_lists", lambda *a, **kw: calls.append(a[4].shape[1] - 1) or real(*a, **kw))
    plain = index._sparse_scores(q, None)
    assert calls == [15] * 6  # one call per query row over all 15 blocks
    for threads in (2, 3, 6, 15, 40):
        calls.clear()
        np.testing.assert_array_equal(index._sparse_scores(q, None, threads), plain)
        if threads <= 6:  # the 6 query rows go to the threads whole
            assert calls == [15] * 6
        else:  # each row's 15 blocks are cut between the threads
            cut = np.diff(np.linspace(0, 15, min(threads, 15) + 1).round().astype(int)).tolist()
            assert sorted(calls) == sorted(cut * 6)
        calls.clear()
        np.testing.assert_array_equal(index._sparse_scores(q.slice(2, 3), None, threads), plain[2:3])
        assert sorted(calls) == sorted(np.diff(np.linspace(0, 15, min(threads, 15) + 1).round().astype(int)).tolist())
        np.testing.assert_array_equal(index._sparse_scores(q, 0.3, threads), index._sparse_scores(q, 0.3))
        np.testing.assert_array_equal(index.scores(q, row_threads=threads), index.scores(q))
    one = q.slice(0, 1)
    runs = []
    for threads in (1, 2, 4):
        index.threads = threads
        runs.append(index.search(one, 9, exclude_ids=ids[3:4]) + index.search(one, 9, budget=0.4))
    for got in runs[1:]:
        for a, b in zip(got, runs[0]):
            np.testing.assert_array_equal(a, b)


def test_basis_gram_equals_the_full_product():
    """The structured gram (dense rows by a product, one-entry rows read off) equals ``basis @ basis.T`` exactly,
    for one-entry rows sharing columns with each other and with the dense rows, empty rows and both dtypes."""
    from phylocl.sparse_rows import basis_gram

    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        dense = rng.normal(size=(4, 50))
        dense[1, 10:] = 0  # a sparse but multi-entry row
        unit = np.zeros((7, 50))
        unit[np.arange(7), [3, 3, 49, 0, 20, 21, 22]] = rng.normal(size=7)
        for basis in (np.concatenate([dense, unit, np.zeros((1, 50))]), unit, dense, np.zeros((0, 50))):
            b = basis.astype(dtype)
            got = basis_gram(b)
            assert got.dtype == dtype and got.shape == (len(b), len(b))
            assert np.array_equal(got, b @ b.T) or np.allclose(got, b @ b.T, rtol=1e-6, atol=1e-6)
            if len(b) and not (np.count_nonzero(b, axis=1) > 1).any():
                assert np.array_equal(got, b @ b.T)  # one-entry rows only: exact


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("seed", range(6))
def test_scatter_lists_equals_the_sum_over_the_query_lists(index_dtype, seed):
    """The in-place product (one compiled call over alternating list starts and ends) adds exactly the query's own
    lists: nothing from the lists between them (large values there would show), empty lists, the first and last
    column, repeated and unsorted columns; float64 reference, float32 result."""
    import scipy.sparse as sp

    from phylocl.retrieval.sparse_index import scatter_lists

    rng = np.random.default_rng(seed)
    n, dim = 50, 40
    dense = np.where(rng.random((dim, n)) < 0.3, rng.random((dim, n)) * 100, 0).astype(np.float32)  # (D, N)
    dense[rng.integers(dim)] = 0  # an empty list
    postings = sp.csr_matrix(dense)
    postings.indptr, postings.indices = postings.indptr.astype(index_dtype), postings.indices.astype(index_dtype)
    cols = rng.choice(dim, size=rng.integers(1, 12), replace=True)
    cols = np.concatenate([cols, [0, dim - 1]]) if seed % 2 else np.sort(np.unique(cols))
    weights = rng.random(len(cols)).astype(np.float32)
    out = np.full(n, 0.5, np.float32)  # added to, not overwritten
    scatter_lists(postings, cols, weights, out)
    want = 0.5 + sum(w * dense[c].astype(np.float64) for c, w in zip(cols, weights))
    np.testing.assert_allclose(out, want, rtol=1e-5)
    # in blocks of rows (where each list enters each block, as SparseIndex.block_bounds gives them): the same sums
    # in the same order, so the same float32 numbers
    edges = np.array([0, 7, 8, 30, n])
    ptr, ids = postings.indptr.astype(np.int64), postings.indices
    bounds = np.array([ptr[c] + np.searchsorted(ids[ptr[c]:ptr[c + 1]], edges) for c in cols])  # (len(cols), 5)
    bounds[:, -1] = ptr[np.asarray(cols) + 1]
    blocked = np.full(n, 0.5, np.float32)
    scatter_lists(postings, cols, weights, blocked, bounds)
    np.testing.assert_array_equal(blocked, out)
    empty = np.zeros(n, np.float32)
    scatter_lists(postings, cols[:0], weights[:0], empty)
    assert not empty.any()


@pytest.mark.parametrize("k, n", [(240, 3000), (120, 120)])  # BLAS's matrix-matrix path; a gram: einsum
def test_a_products_rows_do_not_depend_on_the_other_rows_bit_for_bit(k, n):
    """One row alone (BLAS's matrix-vector routine) and small or large row counts (OpenBLAS's small-matrix kernels)
    give each row the same value as in a larger product."""
    rng = np.random.default_rng(4)
    for dtype in (np.float32, np.float64):
        a = rng.standard_normal((60, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        full = matmul_rows(a, b)
        for i in range(9):
            np.testing.assert_array_equal(matmul_rows(a[i:i + 1], b), full[i:i + 1])
        np.testing.assert_array_equal(matmul_rows(a[2:7], b), full[2:7])
        for m in (2, 5, 17, 18, 19, 33):
            np.testing.assert_array_equal(matmul_rows(a[:m], b), full[:m])


def test_a_query_scored_alone_gets_the_scores_it_gets_in_a_batch(tmp_path):
    emb = KmerEmbedder(k=2)
    rows = _low_rank(emb.embed_sparse(_sequences(200, seed=5)), 4)
    ids = [f"s{i}" for i in range(len(rows))]
    write_sparse_index(tmp_path / "ix", _blocks(rows, ids, 50), model={"name": "m", "dim": rows.dim})
    index = load_index(tmp_path / "ix")
    q = rows.slice(10, 16)
    batch = index.scores(q)  # (6, N)
    for i in range(len(q)):
        np.testing.assert_array_equal(index.scores(q.slice(i, i + 1)), batch[i:i + 1])
    s_all, h_all = index.search(q, 9, block=6)
    for i in range(len(q)):
        s1, h1 = index.search(q.slice(i, i + 1), 9)
        np.testing.assert_array_equal(s1, s_all[i:i + 1])
        np.testing.assert_array_equal(h1, h_all[i:i + 1])


def test_bundles_store_every_lists_block_bounds(tmp_path, monkeypatch):
    """A bundle of several row blocks stores where each posting list enters each block (``blocks.npy``, found by
    binary searches in the lists at build time), so a search reads them instead of searching lists it has never
    read; they equal the bounds found as lists are read, and the hits are the same bits. One block: no file."""
    monkeypatch.setattr(sparse_index, "ROW_BLOCK", 17)
    rows = _low_rank(KmerEmbedder(k=2).embed_sparse(_sequences(240, seed=7)), 3)
    ids = [f"s{i}" for i in range(240)]
    meta = write_sparse_index(tmp_path / "ix", _blocks(rows, ids, 50), model={})
    stored = np.load(tmp_path / "ix" / "blocks.npy")
    assert meta["row_block"] == 17 and stored.shape == (rows.dim, 16)
    index = load_index(tmp_path / "ix")
    ptr, post = np.load(tmp_path / "ix" / "ptr.npy"), np.load(tmp_path / "ix" / "rows.npy")
    edges = sparse_index.row_block_edges(240)
    for c in range(rows.dim):  # slow, obvious reference: the first entry of the list at or past each block's first row
        listed = post[ptr[c]:ptr[c + 1]]
        want = [ptr[c] + int(np.sum(listed < e)) for e in edges]
        want[-1] = ptr[c + 1]
        np.testing.assert_array_equal(stored[c], want)
    np.testing.assert_array_equal(index._bounds, stored)
    searched = []
    monkeypatch.setattr(sparse_index, "list_bounds", lambda *a: searched.append(a) or np.zeros(0))
    q = rows.slice(10, 16)
    got = index.search(q, 9, exclude_ids=ids[10:16])
    assert not searched  # no list searched for its bounds
    monkeypatch.undo()
    monkeypatch.setattr(sparse_index, "ROW_BLOCK", 17)
    fresh = sparse_build.sparse_index_in_memory(rows, ids=ids)  # bounds found as read
    for a, b in zip(got, fresh.search(q, 9, exclude_ids=ids[10:16])):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setattr(sparse_index, "ROW_BLOCK", 1000)
    meta = write_sparse_index(tmp_path / "one", _blocks(rows, ids, 50), model={})
    assert "row_block" not in meta and not (tmp_path / "one" / "blocks.npy").exists()


def test_stored_block_bounds_are_checked(tmp_path, monkeypatch, capsys):
    """blocks.npy that does not bound the lists (not from each list's start to its end, not non-decreasing) is
    refused at load in one line; wrong interior bounds are found by ``--verify``; a bundle written for another block
    size keeps its file unused (bounds found as read)."""
    import json

    import phylocl.retrieval.index_checks as checks
    from phylocl.cli import main

    monkeypatch.setattr(sparse_index, "ROW_BLOCK", 17)
    rows = KmerEmbedder(k=2).embed_sparse(_sequences(240, seed=8))
    write_sparse_index(tmp_path / "ix", _blocks(rows, [f"s{i}" for i in range(240)], 50), model={})
    path, good = tmp_path / "ix", np.load(tmp_path / "ix" / "blocks.npy")
    c = int(np.flatnonzero(good[:, 1] < good[:, -1])[0])  # a list with entries past its first block
    bad = good.copy()
    bad[c, 1] = good[c, -1] + 1  # past the list's end: not non-decreasing
    np.save(path / "blocks.npy", bad)
    checks.write_checksums(path)
    with pytest.raises(InputError, match="blocks.npy .* does not bound the"):
        load_index(path)
    wrong = good.copy()
    wrong[c, 1:-1] = good[c, -1]  # every entry in the first block: a partition still, not the lists' own
    np.save(path / "blocks.npy", wrong)
    checks.write_checksums(path)
    load_index(path)  # the sums stay right (each entry in one block); only --verify can tell
    assert main(["index", "--verify", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "blocks.npy does not match the posting lists" in err
    meta = json.loads((path / "meta.json").read_text())
    (path / "meta.json").write_text(json.dumps({**meta, "row_block": 99}))
    checks.write_checksums(path)
    index = load_index(path)
    assert (index._bounds < 0).all()  # another block size: not used
    assert main(["index", "--verify", str(path)]) == 0


def test_top_depth_equals_a_full_sort_and_blocks_cover_every_query_once():
    rng = np.random.default_rng(11)
    s = rng.standard_normal((7, 300)).astype(np.float32)
    for depth in (1, 5, 300):
        i, sc = sparse_index.top_depth(s, depth)
        want = -np.sort(-s, axis=1)[:, :depth]  # the depth largest values of each row, best first
        assert i.shape == sc.shape == (7, depth) and np.array_equal(sc, want)
        assert np.array_equal(np.take_along_axis(s, i, axis=1), sc) and all(len(set(r)) == depth for r in i)
    for n, threads, low_rank, ntotal, block in [(10, 2, True, 10**6, None), (500, 2, True, 2 * 10**6, None),
                                                (500, 2, False, 10**5, None), (3, 8, False, 10, None),
                                                (9, 2, True, 100, 4), (0, 2, True, 100, None)]:
        b, starts, row_threads = sparse_index.block_plan(n, threads, low_rank, ntotal, block)
        covered = [q for lo in starts for q in range(lo, min(lo + b, n))]
        assert covered == list(range(n)) and b >= 1 and (block is None or b == block)
        assert b * ntotal <= max(sparse_index.BLOCK_VALUES, ntotal) and b <= sparse_index.MAX_BLOCK
        assert row_threads == max(1, threads // max(1, len(starts)))
    one = lambda lo: (np.full((2, 3), lo, np.float32), np.full((2, 3), lo, np.int64))  # noqa: E731
    sc, ix = sparse_index.run_blocks(one, range(0, 6, 2), 2, 3)
    assert sc.shape == (6, 3) and ix[:, 0].tolist() == [0, 0, 2, 2, 4, 4]  # blocks back in query order
    sc, ix = sparse_index.run_blocks(one, range(0), 2, 3)
    assert sc.shape == (0, 3) and ix.dtype == np.int64


def test_a_low_rank_column_nonzero_only_in_an_early_block_is_kept(tmp_path):
    """The bundle keeps every low-rank column that is non-zero in *some* block of rows, not only in the last one:
    its ``dense.npy`` equals the rows' own ``[B s, c]`` in the kept columns and its scores equal the in-memory
    index's."""
    rows = _low_rank(KmerEmbedder(k=2).embed_sparse(_sequences(90, seed=3)), rank=3)
    coeffs = rows.coeffs.copy()
    coeffs[30:, 1] = 0.0  # coefficient 1: non-zero in the first block of 30 rows only
    rows = SparseRows(indptr=rows.indptr, indices=rows.indices, values=rows.values, coeffs=coeffs, basis=rows.basis,
                      dim=rows.dim)
    ids = [f"s{i}" for i in range(len(rows))]
    meta = write_sparse_index(tmp_path / "ix", _blocks(rows, ids, 30), model={})
    full = sparse_build._dense_part(rows)  # (N, 2r)
    assert meta["dense_columns"] == np.flatnonzero((full != 0).any(axis=0)).tolist()
    assert 3 + 1 in meta["dense_columns"]  # [B s (3), c (3)]: c's column 1
    np.testing.assert_array_equal(np.load(tmp_path / "ix" / "dense.npy"), full[:, meta["dense_columns"]])
    q = rows.slice(0, 5)
    ref = sparse_build.sparse_index_in_memory(rows, ids=ids)
    np.testing.assert_allclose(load_index(tmp_path / "ix").scores(q), ref.scores(q), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("end", [0, -1])
def test_block_bounds_not_starting_or_ending_at_their_lists_ends_are_refused(tmp_path, monkeypatch, end):
    """A ``blocks.npy`` row whose first bound is not its list's start (or last bound not its end) is refused at
    load, even when the rest stays non-decreasing."""
    import phylocl.retrieval.index_checks as checks

    monkeypatch.setattr(sparse_index, "ROW_BLOCK", 17)
    rows = KmerEmbedder(k=2).embed_sparse(_sequences(240, seed=8))
    write_sparse_index(tmp_path / "ix", _blocks(rows, [f"s{i}" for i in range(240)], 50), model={})
    path, good = tmp_path / "ix", np.load(tmp_path / "ix" / "blocks.npy")
    # a list with entries in its first block (end 0) or its last (end -1): moving that bound keeps the row sorted
    c = int(np.flatnonzero(good[:, 1] > good[:, 0] if end == 0 else good[:, -1] > good[:, -2])[0])
    bad = good.copy()
    if end == 0:
        bad[c, 0] += 1  # starts one entry late: still <= the next bound
    else:
        bad[c, -1] -= 1  # ends one entry early
    np.save(path / "blocks.npy", bad)
    checks.write_checksums(path)
    with pytest.raises(InputError, match="blocks.npy .* does not bound the"):
        load_index(path)

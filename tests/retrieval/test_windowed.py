"""Late interaction over windows (phylocl/retrieval/windowed.py) against a slow reference on dense window rows:
scores, hit lists (unique sequences, thread count irrelevant), the sparse-windows bundle on disk, evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from phylocl.errors import InputError
from phylocl.retrieval.evaluation import evaluate_embeddings, evaluate_windows
from phylocl.retrieval.index_checks import write_checksums
from phylocl.retrieval.index_io import load_index, verify_bundle
from phylocl.retrieval.kmer import KmerEmbedder
from phylocl.retrieval.sparse_build import write_sparse_index
from phylocl.retrieval.windowed import (WindowedIndex, WindowRows, best_of_runs, concat_windows, window_pieces,
                                       window_stride)
from phylocl.sparse_rows import SparseRows

AA = "ACDEFGHIKLMNPQRSTVWY"


def _seqs(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(AA), int(rng.integers(5, 90)))) for _ in range(n)]


def _low_rank(rows: SparseRows, rank: int, seed: int = 1) -> SparseRows:
    """``rows`` plus a random low-rank term (as a k-mer profile encoder's composition term)."""
    basis = (np.random.default_rng(seed).standard_normal((rank, rows.dim)) / np.sqrt(rows.dim)).astype(np.float32)
    coeffs = 0.3 * np.random.default_rng([seed, len(rows)]).standard_normal((len(rows), rank))
    return SparseRows(indptr=rows.indptr, indices=rows.indices, values=rows.values,
                      coeffs=coeffs.astype(np.float32), basis=basis, dim=rows.dim)


def _windows(seqs: list[str], width: int, rank: int = 0, stride: int | None = None) -> WindowRows:
    pieces, owners = window_pieces(seqs, width, stride)
    rows = KmerEmbedder(k=3, alphabet="protein").embed_sparse(pieces)
    return WindowRows(rows=_low_rank(rows, rank) if rank else rows, owners=owners, n=len(seqs))


def _reference(q: WindowRows, d: WindowRows) -> np.ndarray:
    """``(Q, N)``: max over every window pair of the dense rows' inner product (explicit loops)."""
    xq, xd = q.rows.to_dense().astype(np.float64), d.rows.to_dense().astype(np.float64)
    want = np.full((q.n, d.n), -np.inf)
    for i, qi in enumerate(q.owners):
        for j, dj in enumerate(d.owners):
            want[qi, dj] = max(want[qi, dj], float(xq[i] @ xd[j]))
    return want


def test_window_pieces_cover_each_sequence_with_half_overlapping_windows():
    pieces, owners = window_pieces(["A" * 10, "C" * 25, "", "D" * 20], 10)
    assert owners.tolist() == [0, 1, 1, 1, 1, 2, 3, 3, 3]
    assert [len(p) for p in pieces] == [10, 10, 10, 10, 10, 0, 10, 10, 10]
    seq = "".join(AA[i % 20] for i in range(23))
    pieces, _ = window_pieces([seq], 8)  # starts 0, 4, 8, 12, and 15 flush with the end
    assert pieces == [seq[a:a + 8] for a in (0, 4, 8, 12, 15)]
    with pytest.raises(ValueError, match="width"):
        window_pieces(["MKV"], 1)
    pieces, owners = window_pieces(["A" * 10, "C" * 25, "D" * 21], 10, stride=10)  # no overlap but the last window's
    assert owners.tolist() == [0, 1, 1, 1, 2, 2, 2]
    assert pieces[1:4] == ["C" * 10] * 3 and len(pieces[-1]) == 10
    pieces, _ = window_pieces([seq], 8, stride=window_stride(8, 3))  # tiles for 3-letter words: stride 6
    assert pieces == [seq[a:a + 8] for a in (0, 6, 12, 15)]
    with pytest.raises(ValueError, match="stride"):
        window_pieces(["MKV"], 8, stride=9)


def test_window_stride_tiles_share_one_word_less_one_letter():
    assert window_stride(200) == 100 and window_stride(201) == 100  # half a window (bundles before tiles)
    assert window_stride(200, 4) == 197 and window_stride(40, 3) == 38 and window_stride(8, 1) == 8
    with pytest.raises(ValueError, match="span"):
        window_stride(8, 8)


@pytest.mark.parametrize("span, width", [(3, 6), (3, 20), (4, 8), (4, 33), (5, 200)])
def test_tiles_hold_every_word_of_the_sequence_whole_and_no_residue_beyond_one_word_twice(span, width):
    rng = np.random.default_rng(span * 1000 + width)
    stride = window_stride(width, span)
    for length in [*range(0, 3 * width), 5 * width + 7]:
        seq = "".join(rng.choice(list(AA), length))
        pieces, _ = window_pieces([seq], width, stride)
        words = {seq[i:i + span] for i in range(len(seq) - span + 1)}
        held = {p[i:i + span] for p in pieces for i in range(len(p) - span + 1)}
        assert held == words  # every word (and nothing else) lies whole in some window
        if length > width:  # consecutive windows share span - 1 residues, except the last, flush one
            assert len(pieces) == 1 + -(-(length - width) // stride)
            assert all(len(p) == width for p in pieces)


def test_window_rows_slice_and_concat_keep_each_sequence_whole():
    w = _windows(_seqs(7, 3), 12)
    part = w.slice(2, 5)
    assert part.n == 3 and part.owners[0] == 0 and part.owners[-1] == 2
    np.testing.assert_array_equal(part.rows.to_dense(), w.rows.to_dense()[w.starts[2]:w.starts[5]])
    back = concat_windows([w.slice(0, 2), part, w.slice(5, 7)])
    np.testing.assert_array_equal(back.owners, w.owners)
    np.testing.assert_array_equal(back.rows.to_dense(), w.rows.to_dense())
    with pytest.raises(ValueError, match="owners"):
        WindowRows(rows=w.rows, owners=w.owners[::-1], n=7)


def test_best_of_runs_equals_a_reduction_per_sequence_bit_for_bit():
    rng = np.random.default_rng(5)
    for _ in range(100):
        n = int(rng.integers(1, 30))
        counts = rng.integers(1, 5, n)
        counts[rng.integers(0, n)] = int(rng.integers(1, 25))  # one long sequence: many window positions
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        s = rng.standard_normal((3, int(counts.sum()))).astype(np.float32)  # (c, W)
        s[s > 1.5] = -np.inf
        want = np.array([[s[r, a:a + m].max() for a, m in zip(starts, counts)] for r in range(3)], np.float32)
        got = best_of_runs(s, starts, counts)
        assert got.dtype == s.dtype and np.array_equal(got, want)
        assert np.array_equal(got, np.maximum.reduceat(s, starts, axis=1))
        assert np.array_equal(best_of_runs(s[1], starts, counts), want[1])  # one row: the last axis as well
        assert np.array_equal(best_of_runs(s.T.copy(), starts, counts, axis=0), want.T)  # runs along the first axis
    empty = np.zeros(0, np.int64)
    assert best_of_runs(np.zeros((2, 0), np.float32), empty, empty).shape == (2, 0)


@pytest.mark.parametrize("width, rank, stride", [(12, 0, None), (30, 3, None), (200, 0, None),  # 200: one window each
                                                 (12, 0, 10), (30, 3, 28), (9, 2, 9)])  # tiles of 3-letter words
def test_best_window_pair_scores_and_hits_equal_the_slow_reference(width, rank, stride, monkeypatch):
    import phylocl.retrieval.windowed as windowed

    monkeypatch.setattr(windowed, "BLOCK_VALUES", 200)  # query windows scored a few at a time
    db, queries = _seqs(15, 0), _seqs(6, 1)
    queries[2] = db[4][10:60]  # a piece of a database sequence: its best window pair is high
    d, q = _windows(db, width, rank, stride), _windows(queries, width, rank, stride)
    index = WindowedIndex(rows=d.rows, owners=d.owners, ids=[f"t{i}" for i in range(15)])
    want = _reference(q, d)
    np.testing.assert_allclose(index.scores(q), want, atol=1e-5)
    s, idx = index.search(q, k=4)
    assert idx[2, 0] == 4
    np.testing.assert_allclose(s, np.sort(want, axis=1)[:, ::-1][:, :4], atol=1e-5)
    for row, ref in zip(idx, want):  # hits are distinct sequences, the best ones
        assert len(set(row.tolist())) == 4
        assert set(row.tolist()) == set(np.argsort(-ref, kind="stable")[:4].tolist()) or \
            np.allclose(np.sort(ref[row]), np.sort(ref)[-4:], atol=1e-5)


def test_row_blocks_shared_by_threads_do_not_change_windowed_hits(monkeypatch):
    """One query against a windowed index of many row blocks: its window rows' sums are shared by the threads by
    blocks of database rows; exact and budgeted hits and scores are the same bits as with one thread."""
    import phylocl.retrieval.sparse_index as sparse_index

    monkeypatch.setattr(sparse_index, "ROW_BLOCK", 13)
    db = _seqs(40, 2)
    w = _windows(db, 16, 3)
    ids = [f"s{i}" for i in range(40)]
    q = _windows(_seqs(1, 9), 16, 3)
    runs = [[WindowedIndex(rows=w.rows, owners=w.owners, ids=ids, threads=t).search(q, k=12, budget=b)
             for b in (None, 0.4)] for t in (1, 2, 3)]
    assert len(WindowedIndex(rows=w.rows, owners=w.owners, ids=ids).index._edges) > 3
    for got in runs[1:]:
        for (s1, i1), (s0, i0) in zip(got, runs[0]):
            np.testing.assert_array_equal(i1, i0)
            np.testing.assert_array_equal(s1, s0)


def test_self_exclusion_k_past_the_end_and_threads_do_not_change_hits():
    db = _seqs(40, 2)
    w = _windows(db, 16)
    ids = [f"s{i}" for i in range(40)]
    one = WindowedIndex(rows=w.rows, owners=w.owners, ids=ids, threads=1).search(w, k=45, exclude_ids=ids)
    many = WindowedIndex(rows=w.rows, owners=w.owners, ids=ids, threads=3).search(w, k=45, exclude_ids=ids)
    np.testing.assert_array_equal(one[1], many[1])
    np.testing.assert_array_equal(one[0], many[0])
    s, idx = one
    assert idx.shape == (40, 45)
    assert all(i not in row[row >= 0] for i, row in enumerate(idx))
    assert (idx[:, 39:] == -1).all() and np.isneginf(s[:, 39:]).all()  # 39 others only
    assert all(len(set(row[row >= 0].tolist())) == 39 for row in idx)


@pytest.mark.parametrize("rank", [0, 2])
def test_bundle_round_trip_with_checksums_and_verify(tmp_path, rank):
    db = _seqs(23, 4)
    w = _windows(db, 20, rank)
    ids, labels = [f"s{i}" for i in range(23)], [f"f{i % 4}" for i in range(23)]
    blocks = [(w.slice(lo, min(lo + 5, 23)), ids[lo:lo + 5], labels[lo:lo + 5]) for lo in range(0, 23, 5)]
    meta = write_sparse_index(tmp_path / "ix", blocks, model={"name": "kmer:3", "dim": w.rows.dim},
                              window={"window": 20, "stride": 10})
    assert (meta["kind"], meta["ntotal"], meta["rows"], meta["params"]) == ("sparse-windows", 23, len(w.rows),
                                                                            {"window": 20, "stride": 10})
    assert "owners.npy" in json.loads((tmp_path / "ix" / "checksums.json").read_text())["files"]
    loaded = load_index(tmp_path / "ix")
    assert isinstance(loaded, WindowedIndex) and loaded.ids == ids and loaded.labels == labels
    assert type(loaded.ids).__name__ == "IdArray"  # mapped in place, not copied (test_index_checks)
    q = _windows(_seqs(5, 5), 20, rank)
    np.testing.assert_allclose(loaded.scores(q), _reference(q, w), atol=1e-5)
    assert "23 sequences as" in verify_bundle(tmp_path / "ix") and "files match their checksums" in verify_bundle(
        tmp_path / "ix")
    owners = np.load(tmp_path / "ix" / "owners.npy")
    owners[3] = owners[-1]  # windows of one sequence no longer consecutive: structure check at load
    np.save(tmp_path / "ix" / "owners.npy", owners)
    with pytest.raises(InputError, match="checksum"):
        verify_bundle(tmp_path / "ix")
    write_checksums(tmp_path / "ix")  # even with matching checksums the structure is refused
    with pytest.raises(InputError, match="owners.npy"):
        load_index(tmp_path / "ix")


def test_evaluation_over_windows_equals_whole_rows_when_each_sequence_is_one_window_and_the_reference():
    rng = np.random.default_rng(6)
    seqs, fams = _seqs(30, 6), [f"f{i % 6}" for i in range(30)]
    for i in range(6, 30):  # family members: mutated copies of the first six
        s = np.array(list(seqs[i % 6]))
        hit = rng.random(len(s)) < 0.3
        s[hit] = rng.choice(list(AA), int(hit.sum()))
        seqs[i] = "".join(s)
    decoys = _seqs(12, 7)
    whole = evaluate_embeddings(KmerEmbedder(k=3).embed(seqs), fams, decoy_embeddings=KmerEmbedder(k=3).embed(decoys),
                                ks=(1, 5, 10))
    wide = evaluate_windows(_windows(seqs, 200), fams, decoys=_windows(decoys, 200), ks=(1, 5, 10))
    for key in ("top1", "recall@5", "recall@10", "map_r", "auc1"):
        assert wide[key] == pytest.approx(whole[key], abs=1e-9), key
    narrow = evaluate_windows(_windows(seqs, 16), fams, decoys=_windows(decoys, 16), ks=(1, 5), return_hits=True)
    want = _reference(_windows(seqs, 16), concat_windows([_windows(seqs, 16), _windows(decoys, 16)]))
    np.fill_diagonal(want[:, :30], -np.inf)
    recall5 = []
    for i in range(30):  # recall@5 by hand: relatives among the 5 best, ties broken pessimistically
        rel = np.array([j < 30 and j != i and fams[j] == fams[i] for j in range(42)])
        order = np.lexsort((rel, -want[i].astype(np.float32)))  # equal k-mer cosines are common: non-relevant first
        recall5.append(rel[order[:5]].sum() / rel.sum())
        got = narrow["hits"].query(i)[1][:5]
        np.testing.assert_allclose(got, np.sort(want[i])[::-1][:5], atol=1e-6)  # best first
    assert narrow["recall@5"] == pytest.approx(np.mean(recall5))
    assert narrow["index_kind"] == "sparse-windows" and narrow["n_decoys"] == 12


def test_low_rank_terms_computed_once_for_all_blocks_give_the_same_bits(monkeypatch):
    """An exact search of several blocks computes its query windows' low-rank terms in one product when they fit
    (``LOW_RANK_ONCE``), else block by block: the same scores and hits, bit for bit, at one thread or three."""
    import phylocl.retrieval.windowed as windowed

    db = _seqs(40, 2)
    w = _windows(db, 16, 3)
    ids = [f"s{i}" for i in range(40)]
    q = _windows(_seqs(7, 9), 16, 3)
    calls = []
    real = windowed.SparseIndex.low_rank_term
    monkeypatch.setattr(windowed.SparseIndex, "low_rank_term", lambda self, rows: calls.append(len(rows))
                        or real(self, rows))
    runs = {}
    for once in (0, 10**9):
        monkeypatch.setattr(windowed, "LOW_RANK_ONCE", once)
        for t in (1, 3):
            calls.clear()
            runs[once, t] = WindowedIndex(rows=w.rows, owners=w.owners, ids=ids, threads=t).search(q, k=12)
            if t == 3:  # several blocks: one product for all windows, or one per block
                assert calls == ([len(q.rows)] if once else calls) and (once or len(calls) > 1)
    for key, (s, i) in runs.items():
        np.testing.assert_array_equal(i, runs[0, 1][1])
        np.testing.assert_array_equal(s, runs[0, 1][0])


@pytest.mark.parametrize("rank", [0, 3])
def test_budgeted_windowed_search_fills_k_and_breaks_ties_by_the_lower_sequence(rank):
    """Mutation audit: a budgeted search returns ``k`` sequences when the database holds that many (the pool of
    best owners is not one short) and equal scores (a database of duplicated sequences) in ascending row order."""
    seqs = _seqs(10, 21)
    ids = [str(i) for i in range(20)]
    one = _windows(seqs, 12, rank)
    db = concat_windows([one, one])  # sequence j and j + 10 are the same rows
    q = _windows(_seqs(4, 22) + seqs[:2], 12, rank)
    index = WindowedIndex(rows=db.rows, owners=db.owners, ids=ids)
    for budget in (0.3, 0.7):
        sc, rows = index.search(q, k=8, budget=budget)
        assert (rows >= 0).all() and np.isfinite(sc).all()
        for s, r in zip(sc, rows):
            assert (np.diff(s) <= 0).all()
            same = s[1:] == s[:-1]
            assert same.sum() >= 3 and (r[1:][same] > r[:-1][same]).all()

"""Word budgets of the sparse index (a non-exact candidate stage): which words are read, what the scores are,
exactness at budget 1, and recall that only grows with the budget."""

from __future__ import annotations

import numpy as np
import pytest

import phylocl.retrieval.sparse_index as sparse_index
from phylocl.models.kmer import KmerEmbedder
from phylocl.retrieval.sparse_build import sparse_index_in_memory
from phylocl.retrieval.sparse_index import budget_words, check_budget, top_rows
from phylocl.sparse_rows import SparseRows

LETTERS = np.array(list("ACDEFGHIKLMNPQRSTVWY"))


def _families(n_fam: int, members: int, length: int, rate: float, seed: int) -> tuple[list[str], list[int]]:
    """Random ancestors, each with ``members`` copies whose letters are substituted with probability ``rate``."""
    rng = np.random.default_rng(seed)
    seqs, fam = [], []
    for f in range(n_fam):
        base = rng.choice(LETTERS, length)
        for _ in range(members):
            s = np.where(rng.random(length) < rate, rng.choice(LETTERS, length), base)
            seqs.append("".join(s))
            fam.append(f)
    return seqs, fam


def _low_rank(rows: SparseRows, rank: int, seed: int = 1) -> SparseRows:
    rng = np.random.default_rng(seed)
    return SparseRows(indptr=rows.indptr, indices=rows.indices, values=rows.values,
                      coeffs=(0.05 * rng.standard_normal((len(rows), rank))).astype(np.float32),
                      basis=rng.standard_normal((rank, rows.dim)).astype(np.float32), dim=rows.dim)


def _slow_words(weights, lengths, budget) -> list[int]:
    """The obvious loop: most weight per posting first (earlier word on ties) until the volume reaches the budget."""
    order = sorted(range(len(weights)), key=lambda j: (-float(weights[j]) / max(int(lengths[j]), 1), j))
    total, taken, volume = int(np.sum(lengths)), [], 0
    for j in order:
        if budget is not None and budget < 1 and volume >= budget * total:
            break
        taken.append(j)
        volume += int(lengths[j])
    return sorted(taken)


@pytest.mark.parametrize("budget", [None, 1.0, 0.999, 0.5, 0.2, 0.01, 1e-9])
def test_budget_words_equal_the_obvious_loop(budget):
    rng = np.random.default_rng(7)
    for _ in range(50):
        n = int(rng.integers(1, 40))
        weights = rng.choice([0.1, 0.2, 0.3], n) if rng.random() < 0.5 else rng.random(n)  # ties, or none
        lengths = rng.integers(0, 100, n)
        got = budget_words(weights, lengths, budget)
        assert got.tolist() == _slow_words(weights, lengths, budget)
        assert len(got) >= 1  # the word that crosses the budget is read: never an empty query
    assert budget_words(np.zeros(0), np.zeros(0, np.int64), 0.5).tolist() == []


def test_a_larger_budget_reads_a_superset_of_the_words():
    rng = np.random.default_rng(8)
    weights, lengths = rng.random(300), rng.integers(1, 1000, 300)
    previous: set = set()
    for budget in (0.01, 0.05, 0.1, 0.3, 0.6, 0.9, 1.0):
        words = set(budget_words(weights, lengths, budget).tolist())
        assert previous <= words
        volume = lengths[list(words)].sum() / lengths.sum()
        assert volume >= budget and len(words) > len(previous)
        previous = words
    assert previous == set(range(300))


@pytest.mark.parametrize("rank", [0, 3])
def test_budget_scores_equal_brute_force_over_the_words_read(monkeypatch, rank):
    seqs, _ = _families(6, 5, 60, 0.3, seed=1)
    rows = KmerEmbedder(k=2).embed_sparse(seqs)
    rows = _low_rank(rows, rank) if rank else rows
    index = sparse_index_in_memory(rows, ids=[str(i) for i in range(len(seqs))])
    x = rows.to_dense().astype(np.float64)  # (N, D), low-rank term included
    q = rows.slice(0, 8)
    sparse_part = np.zeros((len(seqs), rows.dim))
    for r in range(len(seqs)):  # the rows' sparse values alone
        sparse_part[r, rows.indices[rows.indptr[r]:rows.indptr[r + 1]]] = rows.values[rows.indptr[r]:rows.indptr[r + 1]]
    got = index.scores(q, budget=0.3)
    for i in range(8):
        cols, vals = q.indices[q.indptr[i]:q.indptr[i + 1]], q.values[q.indptr[i]:q.indptr[i + 1]]
        read = cols[budget_words(vals, index.lengths[cols], 0.3)]
        expected = sparse_part[i, read] @ sparse_part[:, read].T + (x[i] @ x.T - sparse_part[i] @ sparse_part.T)
        np.testing.assert_allclose(got[i], expected, atol=2e-5)
        assert len(read) < len(cols)  # the budget left words out


def test_budget_one_is_the_exact_search_bit_for_bit():
    seqs, _ = _families(8, 6, 80, 0.3, seed=2)
    rows = _low_rank(KmerEmbedder(k=2).embed_sparse(seqs), 2)
    ids = [f"s{i}" for i in range(len(seqs))]
    index = sparse_index_in_memory(rows, ids=ids)
    exact = index.search(rows, 9, exclude_ids=ids)
    for budget in (1, 1.0):
        got = index.search(rows, 9, exclude_ids=ids, budget=budget)
        assert np.array_equal(got[0], exact[0]) and np.array_equal(got[1], exact[1])
    assert np.array_equal(index.scores(rows, budget=1.0), index.scores(rows))


def test_budget_scores_of_non_negative_rows_are_lower_bounds_that_grow_with_the_budget():
    seqs, _ = _families(10, 5, 100, 0.3, seed=3)
    rows = KmerEmbedder(k=3).embed_sparse(seqs)  # non-negative profiles, rank 0
    index = sparse_index_in_memory(rows, ids=[str(i) for i in range(len(seqs))])
    q = rows.slice(0, 10)
    exact = index.scores(q)
    previous = np.zeros_like(exact)
    for budget in (0.05, 0.2, 0.5, 0.8, 1.0):
        s = index.scores(q, budget=budget)
        assert (s >= previous - 1e-6).all() and (s <= exact + 1e-6).all()
        previous = s
    np.testing.assert_array_equal(previous, exact)


def test_recall_grows_with_the_budget_on_a_fixed_seed():
    """Recall of the exact top 20 and of the true relatives (a query's family) both grow with the budget."""
    seqs, fam = _families(40, 8, 150, 0.45, seed=4)
    rows = KmerEmbedder(k=3).embed_sparse(seqs)
    ids = [str(i) for i in range(len(seqs))]
    index = sparse_index_in_memory(rows, ids=ids)
    queries = list(range(0, len(seqs), 8))  # one member of each family
    q = _take(rows, queries)
    k, exclude = 20, [ids[i] for i in queries]
    _, exact = index.search(q, k, exclude_ids=exclude)
    recall, relatives = [], []
    for budget in (0.02, 0.05, 0.1, 0.2, 0.4, 1.0):
        _, hits = index.search(q, k, exclude_ids=exclude, budget=budget)
        recall.append(np.mean([len(set(h) & set(e)) / k for h, e in zip(hits.tolist(), exact.tolist())]))
        relatives.append(np.mean([sum(fam[t] == fam[qi] for t in h) / 7 for h, qi in zip(hits.tolist(), queries)]))
    assert recall == sorted(recall) and relatives == sorted(relatives)
    assert recall[0] < 0.8 and recall[-1] == 1.0 and relatives[0] < relatives[-1]


def _take(rows: SparseRows, which: list[int]) -> SparseRows:
    from phylocl.sparse_rows import concat_rows

    return concat_rows([rows.slice(i, i + 1) for i in which])


@pytest.mark.parametrize("bad", [0, 0.0, -0.5, 1.5, float("nan"), float("inf"), True, "0.5"])
def test_bad_budgets_are_refused(bad):
    with pytest.raises(ValueError, match="word budget must be in"):
        check_budget(bad)
    rows = KmerEmbedder(k=1).embed_sparse(["ACDE", "CDEF"])
    index = sparse_index_in_memory(rows, ids=["a", "b"])
    with pytest.raises(ValueError, match="word budget"):
        index.search(rows, 1, budget=bad)


@pytest.mark.parametrize("n, m", [(1, 1), (10, 3), (10, 10), (10, 20), (9000, 50), (60000, 500), (60000, 7000)])
def test_top_rows_equal_a_full_sort_with_ties_on_the_lower_row(n, m):
    rng = np.random.default_rng(n + m)
    for values in (rng.random(n), np.round(rng.random(n), 2), np.where(rng.random(n) < 0.99, 0, rng.random(n)),
                   np.zeros(n), np.sort(rng.random(n))):
        s = values.astype(np.float32)
        expected = np.lexsort((np.arange(n), -s))[:m]  # the obvious reference: sort everything
        np.testing.assert_array_equal(top_rows(s, m), expected)


@pytest.mark.parametrize("rank", [0, 3])
def test_budget_search_ranks_the_best_sparse_sums_with_their_low_rank_terms(rank):
    seqs, _ = _families(12, 5, 60, 0.3, seed=5)
    rows = KmerEmbedder(k=2).embed_sparse(seqs)
    rows = _low_rank(rows, rank) if rank else rows
    ids = [str(i) for i in range(len(seqs))]
    index = sparse_index_in_memory(rows, ids=ids)
    q = rows.slice(0, 6)
    scores, hits = index.search(q, 7, budget=0.25, exclude_ids=ids[:6])
    sparse = index._sparse_scores(q, 0.25).astype(np.float64)  # (6, N) sums over the words read
    full = index.scores(q, budget=0.25).astype(np.float64)  # plus every row's low-rank term
    pool = 8 * (sparse_index.POOL if rank else 1)  # k + 1 rows (the query's own may be among them) per pool
    for i in range(6):
        n = np.arange(len(seqs))
        in_pool = np.lexsort((n, -sparse[i]))[:pool]  # rows of the largest sparse sums
        s = np.full(len(seqs), -np.inf)
        s[in_pool] = full[i, in_pool]  # their low-rank terms added
        s[i] = -np.inf  # the query's own row left out
        best = np.lexsort((n, -s))[:7]
        assert set(hits[i].tolist()) == set(best.tolist())
        np.testing.assert_allclose(scores[i], full[i, hits[i]], atol=2e-6)
        assert (np.diff(scores[i]) <= 0).all()


@pytest.mark.parametrize("rank", [0, 3])
def test_budget_search_breaks_ties_by_the_lower_row(rank):
    """Identical database rows tie exactly (sparse sums and low-rank terms): the hits list them by row, as the
    exact search does."""
    from phylocl.sparse_rows import concat_rows

    seqs, _ = _families(6, 3, 50, 0.3, seed=8)
    one = KmerEmbedder(k=2).embed_sparse(seqs)
    one = _low_rank(one, rank) if rank else one  # (18,) rows, row 0 the sequence that is copied
    copies = [7, 9, 12, 20, 21, 25, 30, 33, 34, 38, 41, 44, 45, 49, 52, 53, 57, 60, 61, 64]
    pick = [0 if i == 0 or i in copies else 1 + i % 17 for i in range(70)]
    rows = concat_rows([one.slice(j, j + 1) for j in pick])  # 21 equal rows: 0 and the copies
    index = sparse_index_in_memory(rows, ids=[str(i) for i in range(70)])
    scores, hits = index.search(rows.slice(0, 1), 30, budget=0.3)
    tied = hits[0][np.isin(hits[0], [0] + copies)]
    assert tied.tolist() == [0] + copies  # all 21 kept, in row order
    assert len(set(scores[0][np.isin(hits[0], tied)].tolist())) == 1  # (they do tie)
    assert (hits[0] == hits[0][np.lexsort((hits[0], -scores[0]))]).all()  # every tie by the lower row


def test_budget_search_of_a_short_database_pads_with_minus_one_and_drops_self_hits():
    seqs, _ = _families(2, 3, 40, 0.3, seed=6)
    rows = KmerEmbedder(k=2).embed_sparse(seqs)
    ids = list("abcdef")
    index = sparse_index_in_memory(rows, ids=ids)
    scores, hits = index.search(rows.slice(0, 2), 10, exclude_ids=["a", "b"], budget=0.3)
    assert scores.shape == hits.shape == (2, 10)
    assert 0 not in hits[0] and 1 not in hits[1]
    assert (hits[:, :5] >= 0).all() and (hits[:, 5:] == -1).all() and np.isinf(scores[:, 5:]).all()
    assert sorted(hits[0, :5].tolist()) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("rank", [0, 3])
def test_windowed_budget_search_equals_a_slow_reference(monkeypatch, rank):
    """Windows: each query window reads its budgeted words; the POOL x depth sequences of largest budgeted sums
    (best window pair) get the low-rank term of every window pair; the depth best are kept (ties: lower sequence)."""
    import phylocl.retrieval.windowed as windowed
    from phylocl.retrieval.windowed import WindowedIndex, WindowRows, window_pieces

    monkeypatch.setattr(windowed, "POOL", 2)  # a pool smaller than the database
    seqs, _ = _families(12, 4, 70, 0.35, seed=4)
    seqs = [s[: 30 + 7 * (i % 9)] for i, s in enumerate(seqs)]  # 1-3 windows each
    emb = KmerEmbedder(k=2)
    pieces, owners = window_pieces(seqs, 24)
    rows = emb.embed_sparse(pieces)
    rows = _low_rank(rows, rank) if rank else rows
    index = WindowedIndex(owners=owners, rows=rows)
    depth, budget = 5, 0.4
    x = rows.to_dense().astype(np.float64)  # (W, D)
    sparse_part = np.zeros_like(x)
    for r in range(len(rows)):
        sparse_part[r, rows.indices[rows.indptr[r]:rows.indptr[r + 1]]] = rows.values[rows.indptr[r]:rows.indptr[r + 1]]
    low = x @ x.T - sparse_part @ sparse_part.T  # (W, W) the low-rank part of every window pair
    queries = WindowRows(rows=rows, owners=owners, n=len(seqs))
    scores, hits = index.search(queries, depth, budget=budget)
    n = len(seqs)
    for qi in range(n):
        mine = np.flatnonzero(owners == qi)
        approx = np.full((len(mine), len(rows)), -np.inf)
        for a, w in enumerate(mine):  # the words each query window reads
            cols, vals = rows.indices[rows.indptr[w]:rows.indptr[w + 1]], rows.values[rows.indptr[w]:rows.indptr[w + 1]]
            read = cols[budget_words(vals, index.index.lengths[cols], budget)]
            approx[a] = sparse_part[w, read] @ sparse_part[:, read].T
        best_sparse = np.array([approx[:, owners == t].max() for t in range(n)])
        pool = min(n, depth * (2 if rank else 1))
        pooled = sorted(range(n), key=lambda t: (-best_sparse[t], t))[:pool]
        full = {t: (approx[:, owners == t] + low[np.ix_(mine, np.flatnonzero(owners == t))]).max() for t in pooled}
        want = sorted(pooled, key=lambda t: (-full[t], t))[:depth]
        assert hits[qi].tolist() == want
        np.testing.assert_allclose(scores[qi], [full[t] for t in want], atol=2e-5)
    exact = index.search(queries, depth)
    one = index.search(queries, depth, budget=1)
    assert np.array_equal(one[0], exact[0]) and np.array_equal(one[1], exact[1])

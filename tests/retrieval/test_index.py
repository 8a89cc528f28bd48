"""FAISS indexes: exact search against numpy, approximate kinds against exact, defaults, fallbacks, self hits."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from phylocl.retrieval.index import build_index, default_params, drop_self_hits, normalize_rows, set_num_threads


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _clustered(n, d=16, centres=50, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d))
    return (c[rng.integers(0, centres, n)] + 0.3 * rng.standard_normal((n, d))).astype(np.float32)


def test_flat_matches_numpy_brute_force():
    rng = np.random.default_rng(0)
    db, q = rng.standard_normal((200, 8)) * 3, rng.standard_normal((13, 8))
    scores, idx = build_index(db).search(q, 5, batch_size=4)
    sims = _unit(q) @ _unit(db).T  # (13, 200)
    want = np.argsort(-sims, axis=1)[:, :5]
    assert scores.dtype == np.float32 and idx.dtype == np.int64 and idx.shape == (13, 5)
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_allclose(scores, np.take_along_axis(sims, want, axis=1), atol=1e-5)


def test_scale_invariance_and_zero_vectors():
    rng = np.random.default_rng(1)
    db = rng.standard_normal((50, 4)).astype(np.float32)
    db[7] = 0
    a = build_index(db).search(db[:5], 3)
    b = build_index(db * 10).search(db[:5] * 0.01, 3)
    np.testing.assert_array_equal(a[1], b[1])
    s, i = build_index(db).search(np.zeros((1, 4)), 2)
    assert np.all(s == 0)  # a zero query scores 0 against everything
    assert normalize_rows(np.zeros((2, 3))).tolist() == [[0, 0, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="NaN"):
        normalize_rows(np.array([[np.nan, 1.0]]))


def test_k_larger_than_database_pads():
    s, i = build_index(np.eye(3)).search(np.eye(3)[:1], 5)
    assert i[0, 0] == 0 and sorted(i[0, 1:3].tolist()) == [1, 2] and s[0, 0] == pytest.approx(1.0)
    assert i[0, 3:].tolist() == [-1, -1] and np.all(np.isneginf(s[0, 3:]))


def test_batch_size_does_not_change_results():
    x = _clustered(300)
    index = build_index(x, kind="hnsw")
    a, b = index.search(x[:40], 7, batch_size=3), index.search(x[:40], 7, batch_size=1000)
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("kind, n", [("ivf", 3000), ("hnsw", 3000), ("ivfpq", 10000)])
def test_approximate_kinds_recall_against_flat(kind, n):
    set_num_threads(1)
    x = _clustered(n, centres=n // 20)
    q = x[:200] + 0.05
    _, exact = build_index(x).search(q, 10)
    index = build_index(x, kind=kind)
    assert index.kind == kind and index.ntotal == n
    _, approx = index.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx, exact)])
    assert recall >= 0.95


def test_ivfpq_without_refinement_stores_codes_only():
    x = _clustered(10000)
    index = build_index(x, kind="ivfpq", k_factor=0)
    assert type(index.index).__name__ == "IndexIVFPQ"
    s, i = index.search(x[:3], 4)
    assert i.shape == (3, 4) and np.all(i >= 0)


def test_defaults_scale_with_size():
    kind, p = default_params("ivf", 100_000, 128)
    assert kind == "ivf" and p == {"nlist": 1265, "nprobe": 422}  # 4 sqrt(N), nlist / 3
    kind, p = default_params("ivfpq", 1_000_000, 128)
    assert p["nlist"] == 4000 and p["pq_m"] == 32 and p["pq_nbits"] == 8 and p["k_factor"] == 4
    assert default_params("ivfpq", 20_000, 8000)[1]["pq_m"] == 64
    assert default_params("ivfpq", 20_000, 100)[1]["pq_m"] == 25  # largest divisor of 100 <= 100 / 4
    assert default_params("ivfpq", 20_000, 90)[1]["pq_m"] == 18  # largest divisor of 90 <= 22
    assert default_params("ivf", 1000, 16)[1]["nlist"] == 25  # N / 39 caps 4 sqrt(N) = 126
    assert default_params("hnsw", 10, 4) == ("hnsw", {"hnsw_m": 32, "ef_construction": 80, "ef_search": 256})
    assert default_params("ivf", 5000, 16, nprobe=10_000)[1]["nprobe"] == 128  # clamped to nlist
    assert default_params("flat", 5, 3) == ("flat", {})


@pytest.mark.parametrize("args, match", [
    (("lsh", 100, 8), "unknown index kind"),
    (("flat", 100, 8, {"nprobe": 3}), "does not take"),
    (("ivfpq", 20_000, 10, {"pq_m": 3}), "must divide"),
    (("hnsw", 100, 8, {"hnsw_m": 0}), ">= 1"),
])
def test_default_params_rejects(args, match):
    kind, n, d, *over = args
    with pytest.raises(ValueError, match=match):
        default_params(kind, n, d, **(over[0] if over else {}))


def test_small_n_fallbacks_warn():
    x = _clustered(1000)
    with pytest.warns(UserWarning, match="flat index instead"):
        assert build_index(x[:60], kind="ivf").kind == "flat"
    with pytest.warns(UserWarning, match=r"16-word codebooks \(pq_nbits=4\) instead"):  # 1,000 >= 39 x 2^4
        small = build_index(x, kind="ivfpq")  # was an ivf index holding the vectors whole, over a memory budget
    assert small.kind == "ivfpq" and small.params["pq_nbits"] == 4
    with pytest.warns(UserWarning, match="ivf index instead, which holds the vectors whole, not as codes$"):
        assert build_index(x[:500], kind="ivfpq").kind == "ivf"  # < 39 x 2^4: no codebook trains
    # (it went on '(over a memory budget that asked for codes)', where --kind ivfpq had asked and no budget had)
    with pytest.warns(UserWarning, match="ivf index instead"):
        assert build_index(x, kind="ivfpq", pq_nbits=8).kind == "ivf"  # asked for 8 bits: not changed
    with pytest.warns(UserWarning, match="clamped to 25"):
        assert build_index(x, kind="ivf", nlist=500).params["nlist"] == 25
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_index(x, kind="ivf")  # defaults never warn


def test_drop_self_hits_by_hand():
    scores = np.array([[0.9, 0.8, 0.7], [0.9, 0.8, 0.7], [1.0, 0.5, 0.4]], dtype=np.float32)
    idx = np.array([[4, 2, 7], [3, 1, 0], [5, 6, -1]])
    s, i = drop_self_hits(scores, idx, [2, 9, -1], 2)
    assert i.tolist() == [[4, 7], [3, 1], [5, 6]]
    np.testing.assert_allclose(s, [[0.9, 0.7], [0.9, 0.8], [1.0, 0.5]])


def test_search_excluding_own_id_keeps_k_hits():
    x = _clustered(100)
    ids = [f"seq{i}" for i in range(100)]
    index = build_index(x, ids=ids)
    s, i = index.search(x[:20], 5, exclude_ids=ids[:20])
    assert i.shape == (20, 5) and not np.any(i == np.arange(20)[:, None])
    _, with_self = index.search(x[:20], 6)
    for q, (row, full) in enumerate(zip(i, with_self)):
        assert q in full and row.tolist() == [t for t in full if t != q][:5]
    # a query id that is not in the index removes nothing
    _, j = index.search(x[:1], 5, exclude_ids=["elsewhere"])
    np.testing.assert_array_equal(j, with_self[:1, :5])


def test_search_params_and_errors():
    x = _clustered(2000)
    index = build_index(x, kind="ivf", nprobe=1)
    assert index.index.nprobe == 1
    index.set_search_params(nprobe=8)
    assert index.index.nprobe == 8 and index.params["nprobe"] == 8
    with pytest.raises(ValueError, match="no search parameter"):
        index.set_search_params(ef_search=10)
    with pytest.raises(ValueError, match="dimension 3"):
        index.search(np.zeros((1, 3)), 2)
    with pytest.raises(ValueError, match="exclude_ids"):
        index.search(x[:2], 2, exclude_ids=["a"])
    with pytest.raises(ValueError, match="unique"):
        build_index(x[:2], ids=["a", "a"])
    with pytest.raises(ValueError, match="zero vectors"):
        build_index(np.zeros((0, 4)))
    assert index.positions(["5", "nope"]).tolist() == [5, -1]


def test_flat_search_uses_the_matrix_product_path_and_finds_the_same_hits():
    import faiss

    from phylocl.retrieval.index import BLAS_THRESHOLD, use_blas_search

    assert faiss.cvar.distance_compute_blas_threshold == BLAS_THRESHOLD  # set on import
    rng = np.random.default_rng(3)
    db, q = normalize_rows(rng.standard_normal((2000, 48))), normalize_rows(rng.standard_normal((30, 48)))
    index = build_index(db, kind="flat")
    expected = np.argsort(-(q @ db.T), axis=1, kind="stable")[:, :5]  # brute force
    try:
        use_blas_search(10**9)  # FAISS's one-scan-per-query path
        _, seq = index.search(q, 5)
    finally:
        use_blas_search()
    _, blas = index.search(q, 5)
    np.testing.assert_array_equal(seq, expected)
    np.testing.assert_array_equal(blas, expected)


@pytest.mark.parametrize("k", [True, 2.5, 0])
def test_search_k_must_be_a_whole_number(k):
    """``k=True`` searched one hit and ``k=2.5`` was a TypeError from FAISS; both are named now."""
    x = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match=f"k must be an int >= 1, got {k!r}"):
        build_index(x, kind="flat").search(x, k)

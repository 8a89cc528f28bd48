"""Late interaction over windows (phylocl/retrieval/windowed.py) against a slow reference on dense window rows."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.retrieval.kmer import KmerEmbedder
from phylocl.retrieval.windowed import WindowedIndex, window_pieces

AA = "ACDEFGHIKLMNPQRSTVWY"


def _seqs(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(AA), int(rng.integers(5, 90)))) for _ in range(n)]


def test_window_pieces_cover_each_sequence_with_half_overlapping_windows():
    pieces, owners = window_pieces(["A" * 10, "C" * 25, "", "D" * 20], 10)
    assert owners.tolist() == [0, 1, 1, 1, 1, 2, 3, 3, 3]
    assert [len(p) for p in pieces] == [10, 10, 10, 10, 10, 0, 10, 10, 10]
    seq = "".join(AA[i % 20] for i in range(23))
    pieces, _ = window_pieces([seq], 8)  # starts 0, 4, 8, 12, and 15 flush with the end
    assert pieces == [seq[a:a + 8] for a in (0, 4, 8, 12, 15)]
    with pytest.raises(ValueError, match="width"):
        window_pieces(["MKV"], 1)


@pytest.mark.parametrize("width", [12, 30, 200])
def test_best_window_pair_scores_equal_the_slow_reference(width):
    emb = KmerEmbedder(k=3, alphabet="protein")
    db, queries = _seqs(15, 0), _seqs(6, 1)
    queries[2] = db[4][10:60]  # a piece of a database sequence: its best window pair is high
    d_pieces, d_own = window_pieces(db, width)
    q_pieces, q_own = window_pieces(queries, width)
    index = WindowedIndex(rows=emb.embed_sparse(d_pieces), owners=d_own)
    got = index.scores(emb.embed_sparse(q_pieces), q_own, len(queries))  # (6, 15)
    xd, xq = emb.embed(d_pieces), emb.embed(q_pieces)  # dense unit rows
    want = np.full((len(queries), len(db)), -np.inf)
    for i, qi in enumerate(q_own):
        for j, dj in enumerate(d_own):
            want[qi, dj] = max(want[qi, dj], float(xq[i] @ xd[j]))
    np.testing.assert_allclose(got, want, atol=1e-5)
    s, idx = index.search(emb.embed_sparse(q_pieces), q_own, len(queries), k=3)
    assert idx[2, 0] == 4
    np.testing.assert_allclose(s, np.sort(want, axis=1)[:, ::-1][:, :3], atol=1e-5)


def test_all_against_all_search_leaves_each_sequence_out_of_its_own_list():
    emb = KmerEmbedder(k=3, alphabet="protein")
    db = _seqs(8, 2)
    pieces, own = window_pieces(db, 20)
    rows = emb.embed_sparse(pieces)
    index = WindowedIndex(rows=rows, owners=own)
    s, idx = index.search(rows, own, len(db), k=10, exclude_self=True)
    assert idx.shape == (8, 10)
    assert all(i not in row[row >= 0] for i, row in enumerate(idx))
    assert (idx[:, 7:] == -1).all() and np.isneginf(s[:, 7:]).all()  # 7 others only
    with pytest.raises(ValueError, match="owners"):
        WindowedIndex(rows=rows, owners=own[::-1])

"""Late interaction over windows: each sequence is several rows (its windows), a pair scores its best window pair.

A whole-protein k-mer profile is swamped, in a large database, by long unrelated proteins that share many words by
chance; a window of a few hundred residues is not. Here every sequence is cut into windows of ``width`` residues
(stride ``width // 2``, the last window ending at the sequence's end; a sequence no longer than ``width`` is one
window), each window is embedded as a sequence of its own (sparse rows of a k-mer profile model), and the score
of query ``q`` against database sequence ``t`` is ``max_{i in q, j in t} x_i . y_j`` (cosine of unit rows), as in
ColBERT / ProtoCol's late interaction. The database is one :class:`~phylocl.retrieval.sparse_index.SparseIndex`
over all window rows plus the owner of each row, so its size is the windows' nonzeros (about 1.8x the
whole-protein rows' for ``width`` 200: every residue sits in two windows). docs/models.md (issue 24) has the dev
figures.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from phylocl.retrieval.sparse_build import sparse_index_in_memory
from phylocl.sparse_rows import SparseRows

__all__ = ["window_pieces", "WindowedIndex"]


def window_pieces(sequences: Sequence[str], width: int) -> tuple[list[str], np.ndarray]:
    """Cut each sequence into windows of ``width`` letters, stride ``width // 2`` (the last one flush with the end).

    Returns ``(pieces, owners)``: ``owners (W,)`` int64 is the input position of each piece, non-decreasing (a
    sequence's windows are consecutive). An empty sequence still gets one (empty) piece.
    """
    if width < 2:
        raise ValueError(f"width must be >= 2, got {width}")
    stride = width // 2
    pieces, owners = [], []
    for i, s in enumerate(sequences):
        if len(s) <= width:
            starts = [0]
        else:
            starts = list(range(0, len(s) - width + 1, stride))
            if starts[-1] + width < len(s):
                starts.append(len(s) - width)
        pieces += [s[a:a + width] for a in starts]
        owners += [i] * len(starts)
    return pieces, np.asarray(owners, dtype=np.int64)


class WindowedIndex:
    """Best-window-pair search over the window rows of ``n`` database sequences.

    Args:
        rows: ``W`` unit window rows (:class:`~phylocl.sparse_rows.SparseRows`, e.g. ``embedder.embed_sparse`` of
            :func:`window_pieces`' pieces).
        owners: ``(W,)`` database sequence of each row, non-decreasing, covering ``0..n-1``.
        threads: scoring threads of the underlying sparse index.
    """

    def __init__(self, *, rows: SparseRows, owners: np.ndarray, threads: int = 1) -> None:
        owners = np.asarray(owners, dtype=np.int64)
        if len(owners) != len(rows):
            raise ValueError(f"{len(owners)} owners for {len(rows)} rows")
        if len(owners) and (owners[0] != 0 or not np.all(np.isin(np.diff(owners), (0, 1)))):
            raise ValueError("owners must be 0, 1, 2, ... with each sequence's windows consecutive")
        self.owners = owners
        self.n = int(owners[-1]) + 1 if len(owners) else 0
        self._starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]]) if len(owners) else owners
        self.index = sparse_index_in_memory(rows, ids=[str(i) for i in range(len(rows))])
        self.index.threads = threads

    @property
    def nnz(self) -> int:
        """Stored sparse values (all windows)."""
        return self.index.nnz

    def scores(self, rows: SparseRows, owners: np.ndarray, n_queries: int) -> np.ndarray:
        """``(n_queries, n)`` float32: best window-pair cosine of each query sequence with each database sequence.

        ``rows``/``owners``: the query windows and their query sequence (non-decreasing, ``0..n_queries-1``).
        """
        owners = np.asarray(owners, dtype=np.int64)
        out = np.full((n_queries, self.n), -np.inf, dtype=np.float32)
        for lo in range(0, len(rows), 256):
            hi = min(lo + 256, len(rows))
            s = self.index.scores(rows.slice(lo, hi))  # (b, W)
            per_seq = np.maximum.reduceat(s, self._starts, axis=1)  # (b, n)
            np.maximum.at(out, owners[lo:hi], per_seq)
        return out

    def search(self, rows: SparseRows, owners: np.ndarray, n_queries: int, k: int, *,
               exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best database sequences per query: ``scores``, ``indices`` ``(n_queries, k)``, best first
        (``-1`` / ``-inf`` past the database's end). ``exclude_self``: query ``i`` is database sequence ``i``
        (all against all) and is left out of its own list."""
        s = self.scores(rows, owners, n_queries)
        if exclude_self:
            s[np.arange(n_queries), np.arange(n_queries)] = -np.inf
        depth = min(k, self.n - (1 if exclude_self else 0))
        idx = np.full((n_queries, k), -1, dtype=np.int64)
        val = np.full((n_queries, k), -np.inf, dtype=np.float32)
        if depth > 0:
            top = np.argpartition(-s, depth - 1, axis=1)[:, :depth]
            order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable")
            idx[:, :depth] = np.take_along_axis(top, order, axis=1)
            val[:, :depth] = np.take_along_axis(s, idx[:, :depth], axis=1)
        return val, idx

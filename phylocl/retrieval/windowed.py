"""Late interaction over windows: each sequence is several rows (its windows), a pair scores its best window pair.

A whole-protein k-mer profile is swamped, in a large database, by long unrelated proteins that share many words by
chance; a window of a few hundred residues is not. Here every sequence is cut into windows of ``width`` residues
(stride ``width // 2``, the last window ending at the sequence's end; a sequence no longer than ``width`` is one
window), each window is embedded as a sequence of its own (sparse rows of a k-mer profile model), and the score
of query ``q`` against database sequence ``t`` is ``max_{i in q, j in t} x_i . y_j`` (cosine of unit rows), as in
ColBERT / ProtoCol's late interaction. The database is one :class:`~phylocl.retrieval.sparse_index.SparseIndex`
over all window rows plus the owner of each row, so its size is the windows' nonzeros (about 1.9x the
whole-protein rows' for ``width`` 200: every residue sits in two windows). Hits are database *sequences*, each
once. docs/retrieval.md ("Windows: several vectors per sequence") has the costs, docs/models.md the dev figures.

On disk (``phylocl index --fasta --windows W``) the bundle is a sparse bundle over the window rows with kind
``sparse-windows``, ``owners.npy`` ``(W,)`` (window row -> sequence), ``rows.npz`` holding one id (and label) per
*sequence*, and ``meta.json`` recording ``ntotal`` (sequences), ``rows`` (windows) and ``params`` ``{"window",
"stride"}`` (:mod:`phylocl.retrieval.sparse_build`, :mod:`phylocl.retrieval.index_io`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from phylocl.retrieval.hits import drop_self_hits, own_rows
from phylocl.retrieval.index_checks import check_low_rank
from phylocl.retrieval.sparse_build import WINDOWS_KIND as KIND
from phylocl.retrieval.sparse_build import sparse_index_in_memory
from phylocl.retrieval.row_ids import RowNumbers, row_ids, str_list
from phylocl.retrieval.sparse_index import (BLOCK_VALUES, POOL, SparseIndex, block_plan, check_budget, default_threads,
                                             run_blocks, top_depth, top_rows)
from phylocl.sparse_rows import SparseRows, concat_rows

__all__ = ["window_pieces", "window_stride", "check_owners", "WindowRows", "concat_windows", "WindowedIndex", "KIND",
           "best_of_runs"]


LOW_RANK_ONCE = 2 * BLOCK_VALUES  # an exact search of several blocks whose query windows' low-rank terms fit in this
# many values (256 MB) computes them in one product before the blocks: every product reads all window rows'
# coefficients (1.1 GB at 10^6 windows of proteins), and two blocks' products at once took 0.32-0.36 s against
# 0.20-0.24 s for one of both (ten queries at 10^6)


def window_stride(width: int, span: int | None = None) -> int:
    """The stride of windows of ``width`` residues for words of ``span`` residues: ``width - span + 1`` (tiles:
    consecutive windows share the ``span - 1`` residues that put every word whole in one window, and no more);
    ``span=None``: half a window, ``width // 2`` (the cut of ``--windows`` bundles written before tiles)."""
    if span is None:
        return max(1, width // 2)
    if not 1 <= span < width:
        raise ValueError(f"need 1 <= span < width, got span={span}, width={width}")
    return width - span + 1


def window_pieces(sequences: Sequence[str], width: int, stride: int | None = None) -> tuple[list[str], np.ndarray]:
    """Cut each sequence into windows of ``width`` letters at ``stride`` (default ``width // 2``), the last one flush
    with the end (a sequence of at most ``width`` letters is one window; the starts of
    :func:`phylocl.models.windows.window_starts`, which retrieval does not import).

    Returns ``(pieces, owners)``: ``owners (W,)`` int64 is the input position of each piece, non-decreasing (a
    sequence's windows are consecutive). An empty sequence still gets one (empty) piece.
    """
    if width < 2:
        raise ValueError(f"width must be >= 2, got {width}")
    stride = window_stride(width) if stride is None else stride
    if not 1 <= stride <= width:
        raise ValueError(f"need 1 <= stride <= width, got stride={stride}, width={width}")
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


def check_owners(owners: np.ndarray, n: int) -> np.ndarray:
    """``owners`` as int64 after checking it is ``0, .., n - 1`` with each sequence's windows consecutive and every
    sequence holding one at least; raises ``ValueError`` otherwise."""
    owners = np.asarray(owners)
    if owners.ndim != 1 or (len(owners) and owners.dtype.kind not in "iu"):
        raise ValueError(f"owners must be a 1-d integer array, got {owners.dtype} {owners.shape}")
    owners = owners.astype(np.int64, copy=False)  # steps of 0 or 1 below: a negative step reads as a huge uint64
    if n == 0 and not len(owners):
        return owners
    if not len(owners) or owners[0] != 0 or owners[-1] != n - 1 or (np.diff(owners).view(np.uint64) > 1).any():
        raise ValueError(f"owners must be 0, 1, .., {n - 1} with each sequence's windows consecutive")
    return owners


def _starts(owners: np.ndarray) -> np.ndarray:
    """``(n,)`` first row of each owner (owners checked by :func:`check_owners`)."""
    return np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]]) if len(owners) else owners


def best_of_runs(x: np.ndarray, first: np.ndarray, counts: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """The largest of ``x[..., first[i]:first[i] + counts[i]]`` for each run ``i`` along ``axis`` (``counts >= 1``;
    the result has ``len(first)`` along ``axis``), what ``np.maximum.reduceat(x, first, axis=axis)`` gives for
    consecutive runs, by one gather per position in the runs instead of one reduction per run (``reduceat`` pays per
    run: 3x slower for 69 query windows against the 10^5 windowed index, two windows per sequence; along the first
    axis, 50 queries' 100 windows' best per database sequence, 0.10 s against 0.01 s)."""
    best = np.take(x, first, axis=axis)  # every run's first value
    for j in range(1, int(counts.max()) if len(counts) else 0):
        more = np.flatnonzero(counts > j)  # the runs with a j-th value
        if len(more) == len(first):
            np.maximum(best, np.take(x, first + j, axis=axis), out=best)
        else:
            at = (slice(None),) * (axis % x.ndim) + (more,)  # the runs with a j-th value, along axis
            best[at] = np.maximum(np.take(best, more, axis=axis), np.take(x, first[more] + j, axis=axis))
    return best


@dataclass(frozen=True)
class WindowRows:
    """The window rows of ``n`` sequences: ``rows`` (``W`` :class:`~phylocl.sparse_rows.SparseRows`) and
    ``owners`` ``(W,)`` (sequence ``0..n-1`` of each row, consecutive). ``len()`` counts sequences."""

    rows: SparseRows
    owners: np.ndarray
    n: int

    def __post_init__(self) -> None:
        if len(self.owners) != len(self.rows):
            raise ValueError(f"{len(self.owners)} owners for {len(self.rows)} rows")
        object.__setattr__(self, "owners", check_owners(self.owners, self.n))

    def __len__(self) -> int:
        return self.n

    @property
    def starts(self) -> np.ndarray:
        """``(n + 1,)`` first window row of each sequence, then ``W``."""
        return np.r_[_starts(self.owners), len(self.owners)]

    def slice(self, lo: int, hi: int) -> "WindowRows":
        """Sequences ``lo:hi`` (their windows; owners rebased to ``0``)."""
        s = self.starts
        a, b = int(s[lo]), int(s[hi])
        return WindowRows(rows=self.rows.slice(a, b), owners=self.owners[a:b] - lo, n=hi - lo)


def concat_windows(parts: list[WindowRows]) -> WindowRows:
    """The sequences of ``parts`` one after the other."""
    offsets = np.cumsum([0] + [p.n for p in parts[:-1]])
    return WindowRows(rows=concat_rows([p.rows for p in parts]),
                      owners=np.concatenate([p.owners + o for p, o in zip(parts, offsets)]),
                      n=int(sum(p.n for p in parts)))


class WindowedIndex:
    """Best-window-pair search over the window rows of ``n`` database sequences.

    Args:
        owners: ``(W,)`` database sequence of each window row (:func:`check_owners`).
        rows: ``W`` unit window rows, indexed in memory; or ``index``: a :class:`SparseIndex` over them (a loaded
            bundle). Exactly one of the two.
        ids: ``n`` sequence ids (default ``"0"``, ``"1"``, ...); labels: ``n`` labels or ``None``; model: the
            embedder's record; window: ``{"window": W, "stride": S}`` (``params`` of the bundle).
        threads: scoring threads (default: ``OMP_NUM_THREADS`` or the CPUs); the output does not depend on it.

    Attributes as a :class:`SparseIndex` where search needs them (``ids``, ``labels``, ``model``, ``ntotal`` =
    sequences, ``dim``, ``nnz``, ``kind``, ``params``) plus ``index`` (the window rows' index) and ``n_rows``.
    """

    kind = KIND

    def __init__(self, *, owners: np.ndarray, rows: SparseRows | None = None, index: SparseIndex | None = None,
                 ids: Sequence[str] | None = None, labels: Sequence[str] | None = None, model: dict | None = None,
                 window: dict | None = None, threads: int | None = None) -> None:
        if (rows is None) == (index is None):
            raise ValueError("give exactly one of rows and index")
        n_rows = len(rows) if rows is not None else index.ntotal
        if len(owners) != n_rows:
            raise ValueError(f"{len(owners)} owners for {n_rows} rows")
        n = int(np.asarray(owners)[-1]) + 1 if len(owners) else 0
        self.owners = check_owners(owners, n)
        self.ids = [str(i) for i in range(n)] if ids is None else row_ids(ids)
        if len(self.ids) != n:
            raise ValueError(f"{len(self.ids)} ids for {n} sequences")
        if labels is not None and len(labels) != n:
            raise ValueError(f"{len(labels)} labels for {n} sequences")
        self.labels = None if labels is None else str_list(labels)
        self.model = dict(model or {})
        self.params = dict(window or {})
        if index is None:
            index = sparse_index_in_memory(rows, ids=RowNumbers(n_rows))
        self.index = index
        self.threads = threads or default_threads()
        self._starts = _starts(self.owners)  # (n,)
        self._counts = np.diff(np.r_[self._starts, n_rows])  # (n,) each sequence's windows
        self.source: str | None = None

    @property
    def ntotal(self) -> int:
        """Database sequences."""
        return len(self.ids)

    @property
    def n_rows(self) -> int:
        """Window rows."""
        return self.index.ntotal

    @property
    def dim(self) -> int:
        return self.index.dim

    @property
    def nnz(self) -> int:
        """Stored sparse values (all windows)."""
        return self.index.nnz

    def scores(self, queries: WindowRows, *, row_threads: int = 1, low: np.ndarray | None = None) -> np.ndarray:
        """``(Q, n)`` float32: best window-pair cosine of each query sequence with each database sequence.

        Window rows are scored ``max(1, BLOCK_VALUES // W)`` at a time, so memory is one such block plus the output;
        ``row_threads``: as :meth:`SparseIndex.scores`; ``low``: the query windows' low-rank term
        (:meth:`SparseIndex.low_rank_term`, ``(windows, W)``), if already computed.
        """
        out = np.full((len(queries), self.ntotal), -np.inf, dtype=np.float32)  # (Q, n)
        if not self.ntotal:
            return out
        owners, step = queries.owners, max(1, BLOCK_VALUES // max(self.n_rows, 1))
        for lo in range(0, len(queries.rows), step):
            hi = min(lo + step, len(queries.rows))
            s = self.index.scores(queries.rows.slice(lo, hi), row_threads=row_threads,
                                  low=None if low is None else low[lo:hi])  # (c, W)
            local = _starts(owners[lo:hi])  # the queries of this chunk, consecutive
            s = best_of_runs(s, local, np.diff(np.r_[local, hi - lo]), axis=0)  # (g, W): best query window per
            # query first (fewer rows for the next step; a maximum in either order is the same number)
            best = best_of_runs(s, self._starts, self._counts)  # (g, n): best database window per sequence
            q = owners[lo:hi][local]
            out[q] = np.maximum(out[q], best)
        return out

    def _best_owners(self, x: np.ndarray, m: int) -> np.ndarray:
        """The ``m`` sequences whose best window has the largest value in ``x`` ``(W,)``, best first (ties: the lower
        sequence): the owners of the best windows, each at its first (best) window, from as few of the best windows as
        hold ``m`` owners (what ranking each sequence's best window gives, without a pass per sequence over all W)."""
        k = min(len(x), 2 * m)
        while True:
            own = self.owners[top_rows(x, k)]  # (k,) owners of the k best windows, best first; ties: lower window
            _, first = np.unique(own, return_index=True)
            if len(first) >= m or k >= len(x):
                return own[np.sort(first)][:m]
            k = min(len(x), 2 * k)

    def _budget_hits(self, queries: WindowRows, depth: int, budget: float,
                     row_threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``scores``, ``sequences`` ``(b, depth)`` of a budgeted search, best first: the word budget of
        :meth:`SparseIndex.search` for windows. Each query window reads its budgeted words; per query the
        :data:`~phylocl.retrieval.sparse_index.POOL` ``x depth`` sequences of largest budgeted sums (best window
        pair) get the low-rank term of every pair of their windows with the query's windows, and the ``depth`` best
        best-window-pair scores are kept (ties: the lower sequence)."""
        s = self.index._sparse_scores(queries.rows, budget, row_threads)  # (c, W) budgeted sparse sums
        u = self.index._low_rank_query(queries.rows) if queries.rows.rank else None  # (c, m)
        starts = queries.starts  # (b + 1,) each query's first window
        dense = np.asarray(self.index.dense)  # (W, m) a plain view of the memory map: cheaper row gathers
        pool = min(self.ntotal, depth * (POOL if u is not None else 1))
        scores = np.full((len(queries), depth), -np.inf, np.float32)
        seqs = np.full((len(queries), depth), -1, np.int64)
        for i in range(len(queries)):
            a, b = int(starts[i]), int(starts[i + 1])
            top = self._best_owners(s[a] if b - a == 1 else s[a:b].max(axis=0), pool)  # (p,) best first
            counts = self._counts[top]  # (p,) their windows
            first = np.r_[0, np.cumsum(counts)[:-1]]  # (p,) where each one's windows begin below
            rows = np.repeat(self._starts[top] - first, counts) + np.arange(int(counts.sum()))  # (w,) their windows
            sc = s[a:b, rows]  # (m, w) the query's windows against them
            if u is not None:
                low = np.einsum("ij,kj->ik", u[a:b], dense[rows])  # (m, w); a BLAS product this small
                # costs 6x more (OpenBLAS threads contend: 7 ms against 1.1 ms per query of 4,000 rows)
                check_low_rank(self.index, low)
                sc = sc + low
            best = best_of_runs(sc.max(axis=0), first, counts)  # (p,) best window pair per sequence
            order = np.lexsort((top, -best))[:depth]  # best first; ties: the lower sequence
            scores[i, :len(order)], seqs[i, :len(order)] = best[order], top[order]
        return scores, seqs

    def search(self, queries: WindowRows, k: int, *, exclude_ids: Sequence[str] | None = None,
               budget: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best database sequences per query, best first: ``scores``, ``indices`` ``(Q, k)`` (``-1`` /
        ``-inf`` past the database's end), as :meth:`SparseIndex.search`. ``exclude_ids``: each query's own id,
        left out of its list (a set searched against itself); ``budget``: a word budget (:meth:`_budget_hits`;
        ``None`` or 1: exact). A query's scores do not depend on its block, so the results do not depend on the
        thread count (which sets the blocks)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        check_budget(budget)
        budgeted = budget is not None and budget < 1
        if exclude_ids is not None and len(exclude_ids) != len(queries):
            raise ValueError(f"{len(exclude_ids)} exclude_ids for {len(queries)} queries")
        block, starts, row_threads = block_plan(len(queries), self.threads, bool(self.index.basis.shape[0]),
                                                self.ntotal)
        wanted = k + (exclude_ids is not None)
        depth = min(wanted, self.ntotal)
        low, first = None, queries.starts  # (b + 1,) each query's first window
        if (not budgeted and depth and len(starts) > 1 and queries.rows.rank
                and len(queries.rows) * self.n_rows <= LOW_RANK_ONCE):
            low = self.index.low_rank_term(queries.rows)  # (windows, W): one product for all blocks

        def one(lo: int) -> tuple[np.ndarray, np.ndarray]:
            hi = min(lo + block, len(queries))
            i = np.full((hi - lo, wanted), -1, dtype=np.int64)
            sc = np.full((hi - lo, wanted), -np.inf, dtype=np.float32)
            if depth and budgeted:
                sc[:, :depth], i[:, :depth] = self._budget_hits(queries.slice(lo, hi), depth, budget, row_threads)
                i[:, :depth][~np.isfinite(sc[:, :depth])] = -1  # fewer sequences than depth
            elif depth:
                s = self.scores(queries.slice(lo, hi), row_threads=row_threads,
                                low=None if low is None else low[first[lo]:first[hi]])  # (b, n)
                i[:, :depth], sc[:, :depth] = top_depth(s, depth)  # best first
            if exclude_ids is None:
                return sc, i
            return drop_self_hits(sc, i, own_rows(self.ids, i, exclude_ids[lo:hi]), k)

        return run_blocks(one, starts, self.threads, k)

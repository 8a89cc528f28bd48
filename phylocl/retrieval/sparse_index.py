"""SparseIndex: exact cosine search over k-mer profile rows through an inverted index (posting lists).

A k-mer profile row holds a few percent of its columns (a 300-residue protein: ~290 of 8,000 3-mers), so the
database is stored column by column: for each column ``j`` (a k-mer) the rows that contain it and their values,
``rows[ptr[j]:ptr[j + 1]]`` / ``values[...]`` (rows increasing). A query only reads the lists of its own columns:
its sparse part scores all ``N`` rows with about ``nnz(query) x N x density`` multiply-adds (10^7 for a protein
3-mer profile against 10^6 proteins) instead of the ``N x D`` of a dense scan, and the index holds 8 bytes per
stored value (10^6 proteins, ``kmer:3``: 2.3 GB) instead of ``4 D`` per row (32 GB).

Rows may carry a low-rank dense term (:class:`~phylocl.sparse_rows.SparseRows`: ``x = s + c @ B``, the learned
profile encoder's composition term), scored exactly as well::

    x . y = s_x . s_y + [a_x, c_x] . [c_y, a_y + c_y G]      with a = B s (r,), G = B B^T (r, r)

so each row also keeps ``dense = [a, c]`` and the index keeps ``B``. Scores are inner products of unit rows, i.e.
cosine similarities, the same numbers a flat FAISS index over the dense rows gives. ``dense`` keeps only the
``dense_columns`` of ``[a, c]`` that are not zero in every row (``(N, m)``, ``m <= 2r``): the profile encoder's
``a`` is zero by construction in its similar-word block's columns (their basis rows lie in columns the sparse part
never uses) and ``c`` in the tokens no sequence holds, 101 of 240 columns of ``default-protein``, so the product
with every row reads 42% fewer bytes; a dropped column adds exactly 0 to every score, and BLAS's matrix product
gives the same bits without it (tested; the einsum of small products and budget pools may move the last bit).
Building (bounded memory, rows streamed) is :mod:`phylocl.retrieval.sparse_build`; the bundle format is below.

A **word budget** (``budget=F``, ``0 < F < 1``; ``phylocl search --word-budget``) makes the search a non-exact
candidate stage: each query reads only the words of most query weight per posting (the query's value of the word
over the length of its list: a rare word is cheap and tells most), in that order, until ``F`` of the postings its
exact scoring would read (the word that crosses ``F`` included, so at least one word). :meth:`SparseIndex.scores`
is then the sum over those words plus the whole low-rank term; :meth:`SparseIndex.search` takes the
:data:`POOL` ``x k`` rows of largest sums over those words (ties: the lower row), adds the low-rank term of those rows
only and keeps the ``k`` best (a product with every row's low-rank part costs more than the budgeted words at 10^6
rows; the term spans about +-0.001 of a score, but ranks near the ``k``-th score are that close: ranked on the sums
alone, 1-3% fewer relatives were kept at 10^5). With non-negative rows (every k-mer profile) each approximate score without the
low-rank term is at most the exact one and grows with ``F``, and a larger ``F`` reads a superset of the words;
``F >= 1`` (or ``None``) is the exact search, bit for bit. Recall against exact search and of true relatives is measured in
docs/retrieval.md ("Word budget").

Bundle (a folder, like the FAISS bundles of :mod:`phylocl.retrieval.index_io`)::

    meta.json   {"format": "phylocl-index/2", "kind": "sparse", "dim", "ntotal", "nnz", "rank", "dense_columns",
                 "params", "model"}
    rows.npz    ids (N,) and, when known, labels (N,)
    ptr.npy (D + 1,), rows.npy (nnz,), values.npy (nnz,) float32, dense.npy (N, m) float32, basis.npy (r, D)

``dense_columns``: the ``m`` columns of ``[a, c]`` (increasing, in ``0..2r-1``) that ``dense.npy`` holds. Bundles of
format ``phylocl-index/1`` (phylocl before 2026-12-07) have no such field and hold all ``2r``; they are read as
before.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from phylocl.retrieval.hits import drop_self_hits, own_rows
from phylocl.retrieval.index_checks import check_low_rank, check_scored, fresh_lists
from phylocl.retrieval.row_ids import RowNumbers, row_ids, str_list
from phylocl.sparse_ops import csr_dense, sparsetools
from phylocl.sparse_rows import SparseRows, basis_gram, matmul_rows

__all__ = ["SparseIndex", "KIND", "BLOCK_VALUES", "block_plan", "budget_words", "check_budget", "check_dense_columns",
           "list_bounds", "nonzero_columns", "row_block_edges", "run_blocks", "scatter_lists", "top_depth", "top_rows"]

KIND = "sparse"
BLOCK_VALUES = 1 << 25  # scores per block of queries: 128 MB of float32 (32 queries at 10^6 rows; every block reads
# all rows' low-rank coefficients once: 8 queries per block made the windowed 10^6 search 1.3x slower)
MAX_BLOCK = 256  # queries per block at most (small databases)
SPLIT = 8  # blocks of queries of an index without a low-rank term: up to 8 in all (each block's scores and selection
# hold block x N values; 500 kmer:3 queries at 10^5 rows in 2 blocks of 250 cost 1-1.7 s of system time zeroing pages)
SPLIT_LOW_RANK = 1  # with a low-rank term, one block per thread: every block reads all rows' coefficients once (10
# queries, 2 threads, 10^5 windowed default-protein: 2 blocks of 5 cost 0.34 s of CPU against 0.51 s for 5 blocks of 2)
LOW_RANK_BLOCK = 64  # but at most this many queries per block: 500 windowed default-protein queries at 10^5 in blocks
# of 250 spent 3-4 s of system time zeroing fresh pages, in blocks of 64 1.3-1.8 s (5.6-6.1 s wall against 6.4-7.3)
POOL = 4  # a budgeted search adds the low-rank term to this many times k rows of largest sparse sums
ROW_BLOCK = 1 << 18  # rows whose scores one pass of scatter_lists writes: 1 MB of float32, within a core's cache


def check_budget(budget: float | None) -> None:
    """Raise ``ValueError`` unless ``budget`` is ``None`` or a number in ``(0, 1]`` (see the module docstring)."""
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget <= 1):
        raise ValueError(f"the word budget must be in (0, 1] (1: exact search), got {budget!r}")


def check_dense_columns(columns, width: int) -> np.ndarray:
    """``columns`` as ``(m,)`` int64, checked to increase strictly within ``0..width-1``; ``None``: all ``width``.
    Raises ``ValueError`` otherwise."""
    if columns is None:
        return np.arange(width, dtype=np.int64)
    c = np.asarray(columns)
    if c.ndim != 1 or (len(c) and c.dtype.kind not in "iu"):
        raise ValueError(f"dense columns must be a list of integers, got {c.dtype} of shape {c.shape}")
    c = c.astype(np.int64)
    if len(c) and (c[0] < 0 or c[-1] >= width or (np.diff(c) <= 0).any()):
        raise ValueError(f"dense columns must increase strictly within 0..{width - 1}")
    return c


def nonzero_columns(dense: np.ndarray) -> np.ndarray:
    """``(m,)`` int64: the columns of ``dense`` ``(N, w)`` that are not zero in every row (what a bundle keeps)."""
    return np.flatnonzero((np.asarray(dense) != 0).any(axis=0)).astype(np.int64)


def row_block_edges(n: int) -> np.ndarray:
    """``(B + 1,)`` int64: the first row of each of the ``B`` blocks of about :data:`ROW_BLOCK` of ``n`` database
    rows, then ``n``; one block when ``n`` fits in one."""
    return np.linspace(0, n, -(-n // ROW_BLOCK) + 1).round().astype(np.int64)


def list_bounds(ptr: np.ndarray, rows: np.ndarray, cols, edges: np.ndarray) -> np.ndarray:
    """``(len(cols), B + 1)`` int64: where posting list ``c`` (``rows[ptr[c]:ptr[c + 1]]``, increasing) enters each
    block of ``edges`` (its first entry at or past the block's first row), from the list's start to its end; made
    non-decreasing within the list in any case, so every entry lies in exactly one block. One binary search per
    list: random reads of a memory-mapped list (~60 us per list at 10^6 rows, mostly page faults), which is why a
    bundle stores them (``blocks.npy``)."""
    out = np.empty((len(cols), len(edges)), np.int64)
    for i, c in enumerate(np.asarray(cols).tolist()):
        a, b = int(ptr[c]), int(ptr[c + 1])
        at = a + np.searchsorted(rows[a:b], edges)  # (B + 1,)
        at[0], at[-1] = a, b
        out[i] = np.clip(np.maximum.accumulate(at), a, b)
    return out


def budget_words(weights: np.ndarray, lengths: np.ndarray, budget: float | None) -> np.ndarray:
    """Positions of the words one query reads under ``budget``, increasing: ``(m,)`` int64.

    ``weights`` ``(n,)``: the query's values; ``lengths`` ``(n,)``: its words' posting-list lengths. The words are
    taken by decreasing weight per posting, ``weight / max(length, 1)`` (ties: the earlier word first), until their
    lists hold ``budget`` of the total volume, the word that crosses it included; ``None`` or ``>= 1``: every word.
    A larger budget takes a superset. (Measured at 10^5 proteins, 10-30% of the postings: by weight alone,
    ``kmer:3`` kept 0.40-0.59 of the relatives in the top 500, by weight per posting 0.68-0.77;
    ``default-protein`` the same within 0.01.)
    """
    n = len(weights)
    if budget is None or budget >= 1 or n == 0:
        return np.arange(n, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    gain = np.asarray(weights, dtype=np.float64) / np.maximum(lengths, 1)  # (n,) weight per posting read
    order = np.argsort(-gain, kind="stable")  # (n,) most per posting first
    volume = np.cumsum(lengths[order])  # (n,)
    m = int(np.searchsorted(volume, budget * volume[-1], side="left")) + 1  # through the word that reaches it
    return np.sort(order[:min(m, n)])


def top_rows(s: np.ndarray, m: int) -> np.ndarray:
    """Rows of the ``m`` largest values of ``s`` ``(N,)``, best first, ties broken by the lower row: ``(m,)`` int64.

    The same rows as a full sort, found in about one comparison per row: a threshold from a strided sample of
    ``s`` keeps a few times ``m`` rows, which are then sorted (a full ``argpartition`` of 10^6 values costs more
    than a budgeted query's words).
    """
    n = len(s)
    if m >= n:
        cand = np.arange(n)
    else:
        step = max(1, n // 8192)
        sample = np.sort(s[::step])  # (n / step,) ascending
        above = min(len(sample) - 1, 4 * m // step + 8)  # sample values above the threshold: ~4m rows expected
        cand = np.flatnonzero(s >= sample[len(sample) - 1 - above])
        if len(cand) < m:  # a poor sample: every row
            cand = np.arange(n)
    vals = s[cand]
    if len(cand) > m:  # the m-th largest value; rows above it, then the lowest rows equal to it
        v = np.partition(vals, len(vals) - m)[len(vals) - m]
        above = vals > v
        cand = np.concatenate([cand[above], cand[vals == v][: m - int(above.sum())]])
        vals = s[cand]
    return cand[np.lexsort((cand, -vals))].astype(np.int64)  # best first, ties: the lower row


def scatter_lists(postings, cols: np.ndarray, weights: np.ndarray, out: np.ndarray,
                  bounds: np.ndarray | None = None) -> None:
    """``out[r] += weights[j] * value`` for every entry ``(r, value)`` of posting list ``cols[j]``: one query's
    sparse scores, added to ``out`` ``(N,)`` float32 (``postings``: the ``(D, N)`` CSR matrix of the lists, ids
    already checked to be in range).

    One call of scipy's compiled CSC product on the lists where they lie, with no copy: the product reads column
    ``j`` from ``Ap[j]`` up to ``Ap[j + 1]``, so the lists are passed, last column first, as the even columns of a
    ``2n``-column matrix whose ``Ap`` alternates each list's start and end; the odd columns, from one list's end
    back to an earlier list's start, run backwards and hold nothing. 3x faster than slicing the lists out and
    multiplying (``default-protein``, 10^5 rows). The sum runs over the lists in decreasing column order, in
    float32 (:mod:`phylocl.sparse_ops` loads the routine without importing ``scipy.sparse``).

    ``bounds`` ``(n, B + 1)`` (:meth:`SparseIndex.block_bounds`): where each list enters each of ``B`` blocks of
    rows; the product then runs once per block over the lists' parts in it, so that its scattered writes stay in
    one block of ``out`` (1.6x faster at 10^6 rows, where ``out`` is 4 MB), with the same sums in the same order.
    """
    if not len(cols):
        return
    ptr = postings.indptr
    if postings.data.dtype != out.dtype:
        raise ValueError(f"posting values {postings.data.dtype} for scores {out.dtype}")
    matvec = sparsetools().csc_matvec
    c = np.asarray(cols, dtype=np.int64)
    if bounds is None:
        bounds = np.stack([ptr[c], ptr[c + 1]], axis=1)  # (n, 2): one block, the whole lists
    if len(c) > 1 and not (c[:-1] <= c[1:]).all():  # query rows keep their columns sorted; others are sorted here
        order = np.argsort(c, kind="stable")
        c, weights, bounds = c[order], np.asarray(weights)[order], bounds[order]
    bounds = bounds[::-1]  # (n, B + 1) decreasing columns: a gap, from one list's part back to the next one's, is empty
    ap = np.empty(2 * len(c) + 1, dtype=ptr.dtype)  # (2n + 1,)
    x = np.zeros(2 * len(c), dtype=out.dtype)  # (2n,) the odd columns weigh nothing
    x[0::2] = weights[::-1]
    for b in range(bounds.shape[1] - 1):
        ap[0:-1:2], ap[1::2] = bounds[:, b], bounds[:, b + 1]
        ap[-1] = ap[-2]  # the last odd column is empty too
        matvec(out.shape[0], 2 * len(c), ap, postings.indices, postings.data, x, out)


@dataclass(frozen=True)
class Postings:
    """The posting lists as the rows of a ``(D, N)`` CSR matrix: list ``j`` is ``indices[indptr[j]:indptr[j + 1]]``
    (row ids, increasing) with ``data[...]`` (values); the arrays are the bundle's memory maps, used in place."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple[int, int]

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1]) if len(self.indptr) else 0


def query_share(n_queries: int, threads: int, low_rank: bool) -> int:
    """Queries per block: ``n_queries`` cut into :data:`SPLIT` blocks, or, with a low-rank term, into
    :data:`SPLIT_LOW_RANK` blocks per thread (``threads``) of at most :data:`LOW_RANK_BLOCK`."""
    if low_rank:
        return max(1, min(LOW_RANK_BLOCK, -(-n_queries // (max(1, threads) * SPLIT_LOW_RANK))))
    return max(1, -(-n_queries // SPLIT))


def block_plan(n_queries: int, threads: int, low_rank: bool, ntotal: int,
               block: int | None = None) -> tuple[int, range, int]:
    """How a search of ``n_queries`` against ``ntotal`` rows on ``threads`` threads is cut: ``(block, starts,
    row_threads)``, queries per block (``block`` if given, else as many as keep :data:`BLOCK_VALUES` scores, at most
    :data:`MAX_BLOCK` and :func:`query_share`), each block's first query, and the threads the blocks leave to each
    one's sums."""
    share = query_share(n_queries, threads, low_rank)
    block = block or max(1, min(MAX_BLOCK, BLOCK_VALUES // max(ntotal, 1), share))
    starts = range(0, n_queries, max(1, block))
    return block, starts, max(1, threads // max(1, len(starts)))


def top_depth(s: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, scores)`` ``(b, depth)`` of the ``depth`` largest values of each row of ``s`` ``(b, n)``, best
    first (``1 <= depth <= n``; equal values in the order ``np.argpartition`` leaves them)."""
    top = np.argpartition(-s, depth - 1, axis=1)[:, :depth]  # (b, depth), unordered
    order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable")
    i = np.take_along_axis(top, order, axis=1)  # (b, depth) best first
    return i, np.take_along_axis(s, i, axis=1)


def run_blocks(one, starts: range, threads: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``one(lo)`` (``(scores, indices)`` of the block of queries from ``lo``) for every block of ``starts`` on
    ``threads`` threads, concatenated in query order: ``(Q, k)`` each."""
    with ThreadPoolExecutor(max(1, min(threads, len(starts)))) as pool:
        parts = list(pool.map(one, starts))
    if not parts:
        return np.zeros((0, k), dtype=np.float32), np.zeros((0, k), dtype=np.int64)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def default_threads() -> int:
    """``OMP_NUM_THREADS`` when set, else the CPUs this process may use."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else len(os.sched_getaffinity(0))


class SparseIndex:
    """Posting lists of ``N`` rows of width ``dim`` (see the module docstring).

    Args:
        ptr: ``(dim + 1,)`` start of each column's list; rows: ``(nnz,)`` row of each stored value; both int32 (or
            both int64 past 2^31 values); values: ``(nnz,)`` float32. Memory maps are used in place.
        dense: ``(N, 2r)`` float32 ``[B s, c]`` of each row; basis: ``(r, dim)`` float32 (``r = 0``: none).
        ids, labels, model: as for :class:`~phylocl.retrieval.index.RetrievalIndex` (``ids=None``: the row numbers,
            :class:`~phylocl.retrieval.row_ids.RowNumbers`).
        dense_columns: the columns of ``[B s, c]`` that ``dense`` holds (default: all).
        bounds: ``(dim, B + 1)`` int64, every list's :func:`list_bounds` for the :func:`row_block_edges` of ``N``
            rows (a bundle's ``blocks.npy``); ``None``: computed as the lists are first read.
    """

    kind = KIND

    def __init__(self, *, ptr: np.ndarray, rows: np.ndarray, values: np.ndarray, dense: np.ndarray,
                 basis: np.ndarray, ids: Sequence[str] | None, labels: Sequence[str] | None = None,
                 model: dict | None = None, threads: int | None = None,
                 dense_columns: np.ndarray | None = None, bounds: np.ndarray | None = None) -> None:
        ids = RowNumbers(len(dense)) if ids is None else ids
        dim, n = len(ptr) - 1, len(ids)
        if ptr.dtype != rows.dtype or ptr.dtype not in (np.int32, np.int64) or len(rows) != len(values):
            raise ValueError("ptr and rows must share an int32/int64 dtype, rows and values one length")
        if basis.ndim != 2 or basis.shape[1] != dim:
            raise ValueError(f"basis {basis.shape} does not fit rows of width {dim}")
        self.dense_columns = check_dense_columns(dense_columns, 2 * basis.shape[0])  # (m,) int64
        if dense.shape != (n, len(self.dense_columns)):
            raise ValueError(f"dense {dense.shape} does not fit {n} rows of {len(self.dense_columns)} low-rank "
                             f"columns (basis {basis.shape})")
        if labels is not None and len(labels) != n:
            raise ValueError(f"{len(labels)} labels for {n} rows")
        self.postings = Postings(indptr=ptr, indices=rows, data=values, shape=(dim, n))  # (D, N)
        self.dense, self.basis = dense, np.asarray(basis, dtype=np.float32)
        self.gram = basis_gram(self.basis)  # (r, r)
        self._basis_t = np.ascontiguousarray(self.basis.T)  # (D, r) for the queries' products
        self.ids = row_ids(ids)
        self.labels = None if labels is None else str_list(labels)
        self.model = dict(model or {})
        self.params: dict = {}
        self.threads = threads or default_threads()
        self.source: str | None = None  # the bundle it was read from (index_io.load_index), named by damage reports
        self._checked_cols = np.zeros(dim, dtype=bool)  # posting lists already checked (index_checks.fresh_lists)
        self._lengths: np.ndarray | None = None  # (D,) posting-list lengths, for word budgets
        self._edges = row_block_edges(n)  # (B + 1,) row blocks
        self._bounds = np.full((dim, len(self._edges)), -1, dtype=np.int64)  # (D, B + 1), filled as lists are read
        if bounds is not None:  # a bundle's blocks.npy: every list's, computed when it was built
            if bounds.shape != self._bounds.shape:
                raise ValueError(f"block bounds {bounds.shape} for {dim} lists and {len(self._edges) - 1} blocks")
            self._bounds[:] = bounds

    @property
    def ntotal(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.postings.shape[0])

    @property
    def nnz(self) -> int:
        return int(self.postings.nnz)

    @property
    def lengths(self) -> np.ndarray:
        """``(D,)`` int64 length of every posting list."""
        if self._lengths is None:
            self._lengths = np.diff(self.postings.indptr).astype(np.int64)
        return self._lengths

    def scores(self, q: SparseRows, *, budget: float | None = None, row_threads: int = 1,
               low: np.ndarray | None = None) -> np.ndarray:
        """Cosine of every query row with every database row: ``(b, N)`` float32; with a word ``budget`` in
        ``(0, 1)``, the approximate scores of the module docstring; ``row_threads``: threads that share the query
        rows' sparse sums (:meth:`_sparse_scores`); ``low``: the rows' :meth:`low_rank_term`, if already computed."""
        out = self._sparse_scores(q, budget, row_threads)  # (b, N)
        if q.rank:
            out += self.low_rank_term(q) if low is None else low
        return out

    def low_rank_term(self, q: SparseRows) -> np.ndarray:
        """``(b, N)`` float32: the low-rank part of every score of the query rows (checked finite); each row the same
        bits whatever rows ``q`` holds beside it (:func:`~phylocl.sparse_rows.matmul_rows`)."""
        low = matmul_rows(self._low_rank_query(q), self.dense.T)  # (b, N)
        check_low_rank(self, low)
        return low

    def _low_rank_query(self, q: SparseRows) -> np.ndarray:
        """``u = [c_q, a_q + c_q G]`` at :attr:`dense_columns`, ``(b, m)`` float32: the low-rank term of a score
        is ``u . dense[row]``."""
        a_q = csr_dense(q.indptr, q.indices, q.values, self._basis_t)  # (b, r)
        u = np.hstack([q.coeffs, a_q + matmul_rows(q.coeffs, self.gram)]).astype(np.float32)  # (b, 2r)
        return u if len(self.dense_columns) == u.shape[1] else np.ascontiguousarray(u[:, self.dense_columns])

    def block_bounds(self, cols: np.ndarray) -> np.ndarray | None:
        """``(n, B + 1)`` int64: where posting list ``cols[j]`` enters each of the ``B`` blocks of
        :data:`ROW_BLOCK` rows (its first entry at or past the block's first row), from the list's start to its end;
        ``None`` when the index is one block. Computed once per list (the rows of a list increase; the bounds are
        made non-decreasing within the list in any case, so every entry lies in exactly one block)."""
        if len(self._edges) <= 2:
            return None
        fresh = cols[self._bounds[cols, 0] < 0]
        if len(fresh):
            self._bounds[fresh] = list_bounds(self.postings.indptr, np.asarray(self.postings.indices), fresh,
                                              self._edges)
        return self._bounds[cols]

    def _sparse_scores(self, q: SparseRows, budget: float | None, row_threads: int = 1) -> np.ndarray:
        """The sparse part of every score, ``(b, N)`` float32, over the words ``budget`` lets each query read.

        ``row_threads`` > 1 (a search whose queries make fewer blocks than it has threads, e.g. one query): that many
        threads share the work, each query row's sums written by one thread as without them: the rows (a windowed
        query's windows) go to the threads, or, for fewer rows than threads, each row's lists are scattered by the
        threads at once, each over its own consecutive :data:`ROW_BLOCK` blocks of database rows (indexes of two
        blocks at least: 10^6 window rows). Every sum runs over the same lists in the same order, so the scores are
        the same bits (0.10 -> 0.05 s per query window at 10^6 rows with two threads)."""
        if q.dim != self.dim or q.rank != self.basis.shape[0]:
            raise ValueError(f"queries of width {q.dim} / rank {q.rank} for an index of {self.dim} / "
                             f"{self.basis.shape[0]}")
        check_budget(budget)
        out = np.zeros((len(q), self.ntotal), dtype=np.float32)  # (b, N)
        threads = max(1, int(row_threads))
        by_rows = min(threads, len(q)) if len(q) >= threads else 1  # threads taking whole query rows
        by_blocks = min(threads, len(self._edges) - 1) if by_rows == 1 else 1  # threads sharing a row's blocks
        pool = ThreadPoolExecutor(max(by_rows, by_blocks)) if max(by_rows, by_blocks) > 1 else None

        def row(i: int) -> None:  # the query row's own lists, read in place
            cols_i, vals_i = q.indices[q.indptr[i]:q.indptr[i + 1]], q.values[q.indptr[i]:q.indptr[i + 1]]
            if budget is not None and budget < 1:
                keep = budget_words(vals_i, self.lengths[cols_i], budget)  # (m,) increasing: same order as exact
                cols_i, vals_i = cols_i[keep], vals_i[keep]
            fresh = fresh_lists(self, cols_i)  # lists this index has not read before, their row ids checked
            bounds = self.block_bounds(cols_i)  # (m, B + 1) or None: one block
            if by_blocks == 1 or bounds is None:
                scatter_lists(self.postings, cols_i, vals_i, out[i], bounds)
            else:
                cuts = np.linspace(0, bounds.shape[1] - 1, by_blocks + 1).round().astype(int)  # (groups + 1,)
                list(pool.map(lambda g: scatter_lists(self.postings, cols_i, vals_i, out[i],
                                                      bounds[:, cuts[g]:cuts[g + 1] + 1]), range(by_blocks)))
            check_scored(self, fresh, out[i])  # and their values

        try:
            if by_rows > 1:
                list(pool.map(row, range(len(q))))
            else:
                for i in range(len(q)):
                    row(i)
        finally:
            if pool is not None:
                pool.shutdown()
        return out

    def _budget_hits(self, q: SparseRows, depth: int, budget: float,
                     row_threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``scores``, ``rows`` ``(b, depth)`` of a budgeted search (module docstring), best first; ``row_threads``:
        as :meth:`_sparse_scores`."""
        s = self._sparse_scores(q, budget, row_threads)  # (b, N)
        u = self._low_rank_query(q) if q.rank else None  # (b, m)
        scores = np.empty((len(q), depth), np.float32)
        rows = np.empty((len(q), depth), np.int64)
        pool = min(self.ntotal, depth * (POOL if u is not None else 1))
        for i in range(len(q)):
            top = top_rows(s[i], pool)  # (pool,) largest sparse sums, best first
            sc = s[i, top]  # (pool,)
            if u is not None:
                low = np.einsum("ij,j->i", self.dense[top], u[i])  # (pool,) BLAS's matrix-vector product on
                # 2,000-4,000 rows took 20x longer here, its threads contending
                check_low_rank(self, low)
                sc = sc + low
            order = np.lexsort((top, -sc))[:depth]  # best first; ties: the lower row
            scores[i], rows[i] = sc[order], top[order]
        return scores, rows

    def search(self, queries: SparseRows, k: int, *, exclude_ids: Sequence[str] | None = None,
               block: int | None = None, budget: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best rows per query, as :meth:`RetrievalIndex.search`: ``scores``, ``indices`` ``(Q, k)``;
        ``budget``: a word budget (module docstring; ``None``: exact).

        Blocks of ``block`` queries (default: as many as keep :data:`BLOCK_VALUES` scores, at most
        :data:`MAX_BLOCK` and :func:`query_share`) are scored on :attr:`threads` threads (scipy's compiled product
        releases the GIL). A query's scores do not depend on the queries in its
        block (:func:`~phylocl.sparse_rows.matmul_rows`), so neither the scores nor the hits depend on the blocks or
        the thread count.
        """
        block, starts, row_threads = block_plan(len(queries), self.threads, bool(self.basis.shape[0]), self.ntotal,
                                                block)
        if k < 1 or block < 1:
            raise ValueError(f"k and block must be >= 1, got k={k}, block={block}")
        if exclude_ids is not None and len(exclude_ids) != len(queries):
            raise ValueError(f"{len(exclude_ids)} exclude_ids for {len(queries)} queries")
        check_budget(budget)
        wanted = k + (exclude_ids is not None)  # one more: the query's own row may be among the hits
        depth = min(wanted, self.ntotal)

        def one(lo: int) -> tuple[np.ndarray, np.ndarray]:
            hi = min(lo + block, len(queries))
            if budget is not None and budget < 1:
                sc, i = self._budget_hits(queries.slice(lo, hi), depth, budget, row_threads)  # (b, depth) each
                if depth < wanted:  # -1 past the database's end
                    sc = np.hstack([sc, np.full((hi - lo, wanted - depth), -np.inf, np.float32)])
                    i = np.hstack([i, np.full((hi - lo, wanted - depth), -1, np.int64)])
            else:
                s = self.scores(queries.slice(lo, hi), row_threads=row_threads)  # (b, N)
                i = np.full((hi - lo, wanted), -1, dtype=np.int64)  # -1 / -inf past the database's end
                sc = np.full((hi - lo, wanted), -np.inf, dtype=np.float32)
                i[:, :depth], sc[:, :depth] = top_depth(s, depth)  # best first
            if exclude_ids is None:
                return sc, i
            return drop_self_hits(sc, i, own_rows(self.ids, i, exclude_ids[lo:hi]), k)

        return run_blocks(one, starts, self.threads, k)

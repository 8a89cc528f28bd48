"""Ranked hit lists: what any search tool returns, in one form the metrics read.

:class:`HitLists` holds, for ``Q`` queries, each query's hits (database rows and scores, higher = better) in
CSR form: query ``i``'s hits are ``targets[offsets[i]:offsets[i + 1]]``. They come from a FAISS search
(:func:`hits_from_search`) or from another tool's tabular output (:func:`read_hits_tsv`: MMseqs2
``easy-search``, DIAMOND ``--outfmt 6``, BLAST ``-outfmt 6``, or any ``query target score`` table).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from phylocl.atomic import atomic_path
from phylocl.errors import InputError

__all__ = ["HitLists", "hits_from_search", "read_hits_tsv", "write_hits_tsv", "BLAST_TAB", "drop_self_hits", "own_rows"]

# Column layout of BLAST-style tabular output (MMseqs2 default, DIAMOND --outfmt 6): score = bit score.
BLAST_TAB = {"query_col": 0, "target_col": 1, "score_col": 11}


@dataclass(frozen=True)
class HitLists:
    """Hits of ``Q`` queries, CSR layout.

    Attributes:
        offsets: ``(Q + 1,)`` int64, non-decreasing, ``offsets[0] == 0``.
        targets: ``(H,)`` int64 database rows (``>= 0``).
        scores: ``(H,)`` float64, higher is better, finite.
    """

    offsets: np.ndarray
    targets: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        off = np.asarray(self.offsets, dtype=np.int64)
        t = np.asarray(self.targets, dtype=np.int64).ravel()
        s = np.asarray(self.scores, dtype=np.float64).ravel()
        if off.ndim != 1 or len(off) < 1 or off[0] != 0 or off[-1] != len(t) or np.any(np.diff(off) < 0):
            raise ValueError("offsets must start at 0, not decrease, and end at the number of hits")
        if len(s) != len(t):
            raise ValueError(f"{len(t)} targets but {len(s)} scores")
        if np.any(t < 0) or not np.isfinite(s).all():
            raise ValueError("targets must be >= 0 and scores finite")
        object.__setattr__(self, "offsets", off)
        object.__setattr__(self, "targets", t)
        object.__setattr__(self, "scores", s)

    @property
    def n_queries(self) -> int:
        return len(self.offsets) - 1

    def query(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(targets, scores)`` of query ``i``."""
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.targets[a:b], self.scores[a:b]

    @classmethod
    def from_lists(cls, lists: Sequence[tuple[Sequence[int], Sequence[float]]]) -> "HitLists":
        """From one ``(targets, scores)`` pair per query."""
        sizes = [len(t) for t, _ in lists]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        targets = np.concatenate([np.asarray(t, dtype=np.int64) for t, _ in lists]) if lists else []
        scores = np.concatenate([np.asarray(s, dtype=np.float64) for _, s in lists]) if lists else []
        return cls(offsets=offsets, targets=np.asarray(targets), scores=np.asarray(scores))


def hits_from_search(scores: np.ndarray, indices: np.ndarray) -> HitLists:
    """FAISS output ``scores, indices`` ``(Q, k)`` -> :class:`HitLists`; ``-1`` (no hit) entries are dropped."""
    scores, indices = np.asarray(scores), np.asarray(indices)
    if scores.shape != indices.shape or scores.ndim != 2:
        raise ValueError(f"scores {scores.shape} and indices {indices.shape} must be the same (Q, k) shape")
    keep = indices >= 0  # (Q, k)
    offsets = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
    return HitLists(offsets=offsets, targets=indices[keep], scores=scores[keep])


def write_hits_tsv(path: str | Path, query_ids: Sequence[str], db_ids: Sequence[str], scores: np.ndarray,
                   indices: np.ndarray, *, db_labels: Sequence[str] | None = None) -> Path:
    """Write search results atomically as ``query  target  score  rank`` (+ ``target_label``) with a header.

    Args:
        query_ids: ``Q`` query ids; db_ids: the index's row ids; db_labels: its row labels (adds a column).
        scores, indices: ``(Q, k)`` from :meth:`RetrievalIndex.search`; ``-1`` entries (no hit) are skipped.

    Ranks are 1-based within each query. :func:`read_hits_tsv` reads the file back with its defaults.
    """
    scores, indices = np.asarray(scores), np.asarray(indices)
    if scores.shape != indices.shape or scores.ndim != 2 or len(query_ids) != len(indices):
        raise ValueError(f"need (Q, k) scores and indices for {len(query_ids)} queries, got {scores.shape}")
    header = "query\ttarget\tscore\trank" + ("\ttarget_label" if db_labels is not None else "") + "\n"
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(header)
        for qid, row_s, row_i in zip(query_ids, np.clip(scores, -1.0, 1.0), indices):  # cosines: a float32 sum
            for rank, (s, i) in enumerate(zip(row_s.tolist(), row_i.tolist()), start=1):  # can pass 1 by an ulp
                if i < 0:
                    continue
                label = f"\t{db_labels[i]}" if db_labels is not None else ""
                f.write(f"{qid}\t{db_ids[i]}\t{s:.9g}\t{rank}{label}\n")  # .9g: float32 exact
    return Path(path)


def _is_hit_row(fields: list[str], need: int, score_col: int) -> bool:
    if len(fields) < need:
        return False
    try:
        float(fields[score_col])
    except ValueError:
        return False
    return True


def read_hits_tsv(path: str | Path, *, query_ids: Sequence[str], db_ids: Sequence[str], query_col: int = 0,
                  target_col: int = 1, score_col: int = 2, higher_is_better: bool = True,
                  unknown: str = "error") -> HitLists:
    """Read a tab-separated hit table into :class:`HitLists` ordered like ``query_ids``.

    Blank lines and comment lines (starting with ``#`` and not a hit row with a numeric score, so ids that start
    with ``#`` are kept) are skipped; a first line whose score column is not a number is
    taken as a header. For MMseqs2 / DIAMOND / BLAST tabular output pass ``**BLAST_TAB`` (bit score), or
    ``score_col=10, higher_is_better=False`` to rank by E-value (scores are then negated).
    Queries absent from the table get no hits (their family members count as not found).

    Args:
        query_ids: the evaluated queries, in the order of the result.
        db_ids: database ids; hit targets are resolved to rows of this list.
        unknown: ``"error"`` (default) raises on a query or target id not in the lists, ``"ignore"`` skips it.

    Raises :class:`~phylocl.errors.InputError` with the line number on malformed lines or unknown ids.
    """
    if unknown not in ("error", "ignore"):
        raise ValueError(f"unknown must be 'error' or 'ignore', got {unknown!r}")
    path = Path(path)
    qrow = {str(q): i for i, q in enumerate(query_ids)}
    trow = {str(t): i for i, t in enumerate(db_ids)}
    if len(qrow) != len(query_ids) or len(trow) != len(db_ids):
        raise ValueError("query_ids and db_ids must each be unique")
    need = max(query_col, target_col, score_col) + 1
    q_idx, t_idx, vals = [], [], []
    try:
        handle = open(path, encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot read hit table: {err.strerror or err}", path=path) from None
    with handle:
        for lineno, fields, value in _scored_rows(handle, path, need, score_col):
            q, t = qrow.get(fields[query_col]), trow.get(fields[target_col])
            if q is None or t is None:
                if unknown == "ignore":
                    continue
                which = "query" if q is None else "target"
                raise InputError(f"{which} id {fields[query_col if q is None else target_col]!r} is not among "
                                 f"the {which} sequences (pass unknown='ignore' to skip)", path=path, line=lineno)
            if not np.isfinite(value):
                raise InputError(f"score {fields[score_col]!r} is not finite", path=path, line=lineno)
            q_idx.append(q)
            t_idx.append(t)
            vals.append(value if higher_is_better else -value)
    return _group_by_query(q_idx, t_idx, vals, len(qrow))


def _scored_rows(handle, path: Path, need: int, score_col: int):
    """Yield ``(lineno, fields, score)`` of each hit row, skipping blanks, comments and a header line.

    Raises :class:`~phylocl.errors.InputError` on a short row or a non-numeric score after the first row.
    """
    first = True
    for lineno, line in enumerate(handle, start=1):
        fields = line.rstrip("\r\n").split("\t")
        if not line.strip() or (line.startswith("#") and not _is_hit_row(fields, need, score_col)):
            continue  # a comment; a hit row whose query id starts with '#' is kept
        if len(fields) < need:
            raise InputError(f"expected at least {need} tab-separated columns, got {len(fields)}",
                             path=path, line=lineno)
        try:
            value = float(fields[score_col])
        except ValueError:
            if first:
                first = False
                continue  # header
            raise InputError(f"score {fields[score_col]!r} is not a number", path=path, line=lineno) from None
        first = False
        yield lineno, fields, value


def _group_by_query(q_idx: list[int], t_idx: list[int], vals: list[float], n_queries: int) -> HitLists:
    """:class:`HitLists` from parallel per-hit lists, grouped by query; file order is kept inside a query."""
    q_arr = np.array(q_idx, dtype=np.int64)
    order = np.argsort(q_arr, kind="stable")  # group by query, file order kept inside a query
    offsets = np.concatenate([[0], np.cumsum(np.bincount(q_arr, minlength=n_queries))])
    return HitLists(offsets=offsets, targets=np.array(t_idx, dtype=np.int64)[order],
                    scores=np.array(vals, dtype=np.float64)[order])


def drop_self_hits(scores: np.ndarray, indices: np.ndarray, self_positions, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each query's own database row from its hits and keep the first ``k``.

    Args:
        scores, indices: ``(Q, K)`` search results with ``K >= k`` (search ``k + 1`` to lose nothing).
        self_positions: ``(Q,)`` database row of each query, ``-1`` where the query is not in the database.

    Returns ``(scores, indices)`` of shape ``(Q, k)``, rank order kept.
    """
    self_positions = np.asarray(self_positions, dtype=np.int64)[:, None]  # (Q, 1)
    is_self = (indices == self_positions) & (self_positions >= 0)  # (Q, K)
    order = np.argsort(is_self, axis=1, kind="stable")[:, :k]  # non-self hits first, rank order kept
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(indices, order, axis=1)


def own_rows(ids: Sequence[str], hits: np.ndarray, query_ids: Sequence[str]) -> np.ndarray:
    """``(b,)`` row among ``hits`` ``(b, K)`` whose id (``ids[row]``) is the query's own, ``-1`` where none is.

    Found among the hits, so no id -> row map of the whole database is built (1.5 s at 10^6 rows).
    """
    return np.array([next((r for r in row if r >= 0 and ids[r] == str(qid)), -1)
                     for row, qid in zip(hits.tolist(), query_ids)], dtype=np.int64)

"""All-against-all family retrieval on a labelled embedding set: index, search (self excluded), score.

This is what ``phylocl evaluate`` and the training validation callback call.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from phylocl.retrieval.hits import HitLists
from phylocl.retrieval.index import build_index, drop_self_hits
from phylocl.retrieval.metrics import check_ks, score_hits

__all__ = ["evaluate_embeddings", "evaluate_windows", "tied_lists", "MAX_DEPTH"]

MAX_DEPTH = 2048  # default cap on the hits searched per query


def _search_with_ties(index, x: np.ndarray, self_rows: np.ndarray, depth: int, n_db: int, batch_size: int,
                      progress=None) -> HitLists:
    """Each query's ``depth`` best hits (itself excluded) plus every further hit tied with the last of them;
    ``progress(n)`` (if given) is called with the number of queries of each batch once it is searched.

    FAISS breaks score ties by row order, so a decoy tied with the last kept hit could fall just outside the list
    and escape the metrics' pessimistic tie rule; such lists are widened (all tied queries of a batch searched
    together, ``k`` doubling) until the next score is strictly lower.
    """
    k = min(depth + 2, n_db)  # self + depth + one look-ahead
    lists: list = [None] * len(x)
    for start in range(0, len(x), batch_size):
        rows = np.arange(start, min(len(x), start + batch_size))
        s, i = index.search(x[rows], k, batch_size=batch_size)
        s, i = drop_self_hits(s, i, self_rows[rows], k - 1)  # (b, <= depth + 1)
        keep = min(depth, s.shape[1])
        if keep == 0:  # a database of the queries' own rows alone (one sequence): nothing to find
            lists[start:start + len(rows)] = [(np.zeros(0, np.int64), np.zeros(0, np.float32))] * len(rows)
            if progress is not None:
                progress(len(rows))
            continue
        tied = (s.shape[1] > depth) & (i[:, -1] >= 0) & (s[:, -1] == s[:, keep - 1])
        for q in np.flatnonzero(~tied):
            ok = i[q, :keep] >= 0
            lists[rows[q]] = (i[q, :keep][ok], s[q, :keep][ok])
        _widen(index, x, self_rows, rows[tied], s[tied, keep - 1], k, n_db, lists)
        if progress is not None:
            progress(len(rows))
    return HitLists.from_lists(lists)


def _widen(index, x, self_rows, rows: np.ndarray, cutoffs: np.ndarray, k: int, n_db: int, lists: list) -> None:
    """Fill ``lists[row]`` with all non-self hits scoring >= the row's cutoff, searching ever deeper."""
    while len(rows):
        k = min(2 * k, n_db)
        s, i = index.search(x[rows], k)  # (t, k)
        done = (k >= n_db) | (s[:, -1] < cutoffs) | (i[:, -1] < 0)
        for q in np.flatnonzero(done):
            ok = (s[q] >= cutoffs[q]) & (i[q] >= 0) & (i[q] != self_rows[rows[q]])
            lists[rows[q]] = (i[q][ok], s[q][ok])
        rows, cutoffs = rows[~done], cutoffs[~done]


def _check_inputs(x: np.ndarray, labels: list[str], group_labels, ks: Sequence[int]) -> tuple[int, ...]:
    """Validate shapes and options of :func:`evaluate_embeddings`; returns the checked ``ks``."""
    if x.ndim != 2 or len(labels) != len(x):
        raise ValueError(f"need (N, D) embeddings with N labels, got {x.shape} and {len(labels)} labels")
    if group_labels is not None and len(group_labels) != len(x):
        raise ValueError(f"{len(group_labels)} group labels for {len(x)} embeddings")
    return check_ks(ks)


def _check_ids(ids: Sequence[str] | None, n: int) -> list[str]:
    """``n`` unique string ids (default ``"0"``, ``"1"``, ...)."""
    ids = [str(i) for i in range(n)] if ids is None else [str(i) for i in ids]
    if len(ids) != n or len(set(ids)) != len(ids):
        raise ValueError(f"ids must be {n} unique strings")
    return ids


def _with_decoys(x: np.ndarray, decoy_embeddings) -> np.ndarray:
    """The database: ``(N, D)`` labelled rows followed by ``(M, D)`` decoys -> ``(N + M, D)``."""
    if decoy_embeddings is None:
        return x
    decoys = np.asarray(decoy_embeddings, dtype=np.float32)
    if decoys.ndim != 2 or decoys.shape[1] != x.shape[1]:
        raise ValueError(f"decoys must be (M, {x.shape[1]}), got {decoys.shape}")
    return np.concatenate([x, decoys])


def _search_depth(rel_labels: list[str], ks: tuple[int, ...], max_depth: int, n_db: int) -> int:
    """Hits per list: ``max(max(ks), largest R)`` capped by ``max_depth`` and ``n_db - 1`` (warns on the cap)."""
    largest_r = int(np.unique(rel_labels, return_counts=True)[1].max()) - 1 if rel_labels else 0
    wanted = max(ks[-1], largest_r)
    depth = max(1, min(wanted, max_depth, n_db - 1))
    if wanted > depth and depth == max_depth:
        warnings.warn(f"hit lists capped at max_depth={max_depth} (the largest group has {largest_r} other "
                      "members); map_r and recall of the largest groups are lower bounds", stacklevel=3)
    return depth


def evaluate_embeddings(embeddings, labels: Sequence[str], *, ids: Sequence[str] | None = None,
                        decoy_embeddings=None, ks: Sequence[int] = (1, 10, 50),
                        group_labels: Sequence[str] | None = None, index_kind: str = "flat",
                        max_depth: int = MAX_DEPTH, batch_size: int = 4096, per_query: bool = False,
                        return_hits: bool = False, progress=None) -> dict:
    """Every labelled sequence queries the labelled set plus decoys; hits are scored by :func:`score_hits`.

    Args:
        embeddings: ``(N, D)`` float array (numpy, or a CPU tensor), one row per labelled sequence.
        labels: ``N`` family labels.
        ids: ``N`` unique sequence ids, echoed in ``per_query`` rows (default ``"0"``, ``"1"``, ...).
        decoy_embeddings: ``(M, D)`` unlabelled rows added to the database; a hit on one is a false positive.
        ks: cut-offs for ``recall@k``.
        group_labels: ``N`` coarser labels (superfamily, fold, ...): a hit is relevant when its group equals the
            query's group; ``per_family`` rows are still one per family and carry their group.
        index_kind: ``flat`` (exact, the default) or an approximate kind for very large sets.
        max_depth: most hits searched per query; lists are ``max(max(ks), largest R)`` deep up to this cap
            (a warning says when the cap truncates, which lowers ``map_r`` / recall for the largest families).
        per_query: add ``per_query``, one row per labelled sequence: ``{"id", "family", "r", metrics...}``.
        return_hits: add ``hits``, the ranked :class:`~phylocl.retrieval.hits.HitLists` (rows of the labelled set
            then the decoys, self excluded), e.g. as the candidates of an alignment stage.
        progress: a callable given the number of queries searched, batch by batch (e.g. a tqdm bar's ``update``);
            the scoring after the last batch is not counted.

    Returns:
        :func:`~phylocl.retrieval.metrics.score_hits`'s dict plus ``n_decoys``, ``depth`` and ``index_kind``.

    Example::

        m = evaluate_embeddings(x, families, ks=(1, 10))
        m["top1"], m["recall@10"], m["map_r"], m["auc1"]
    """
    x = np.asarray(embeddings, dtype=np.float32)
    labels = [str(s) for s in labels]
    ks = _check_inputs(x, labels, group_labels, ks)
    ids = _check_ids(ids, len(x))
    if max_depth < 1:
        raise ValueError(f"max_depth must be >= 1, got {max_depth}")
    n = len(x)
    db = _with_decoys(x, decoy_embeddings)
    n_decoys = len(db) - n
    rel_labels = labels if group_labels is None else [str(g) for g in group_labels]
    depth = _search_depth(rel_labels, ks, max_depth, len(db))

    index = build_index(db, kind=index_kind)
    hits = _search_with_ties(index, x, np.arange(n), depth, len(db), batch_size, progress)
    return _score(hits, labels, rel_labels, ids, n_decoys=n_decoys, ks=ks, per_query=per_query,
                  grouped=group_labels is not None, depth=depth, index_kind=index.kind, return_hits=return_hits)


def _score(hits: HitLists, labels: list[str], rel_labels: list[str], ids: list[str], *, n_decoys: int,
           ks: tuple[int, ...], per_query: bool, grouped: bool, depth: int, index_kind: str,
           return_hits: bool) -> dict:
    """:func:`score_hits` of the ``n`` labelled queries (database rows ``0..n-1``, then ``n_decoys`` decoys), with
    ``per_query`` rows named by id, ``per_family`` rows carrying their group, the search's ``n_decoys``, ``depth``
    and ``index_kind``, and ``hits`` when ``return_hits``."""
    n = len(labels)
    out = score_hits(hits, rel_labels, list(rel_labels) + [None] * n_decoys, ks=ks, query_rows=np.arange(n),
                     per_query=per_query, report_labels=labels if grouped else None)
    if per_query:
        for row in out["per_query"]:
            row["id"] = ids[row.pop("query")]
    if grouped:
        group_of = dict(zip(labels, rel_labels))
        for row in out["per_family"]:
            row["group"] = group_of[row["family"]]
    out.update(n_decoys=n_decoys, depth=depth, index_kind=index_kind)
    if return_hits:
        out["hits"] = hits
    return out


def tied_lists(s: np.ndarray, first: int, depth: int) -> list:
    """Hit lists of score rows ``s`` ``(b, N)`` whose queries are database rows ``first..first+b-1``: the ``depth``
    best other rows plus every row tied with the last kept one (the metrics' pessimistic tie rule sees them all),
    best first."""
    lists = []
    for j in range(len(s)):
        row = s[j].astype(np.float64)
        row[first + j] = -np.inf  # the query's own row
        top = np.argpartition(-row, depth - 1)[:depth]
        keep = np.flatnonzero((row >= row[top].min()) & np.isfinite(row))
        keep = keep[np.argsort(-row[keep], kind="stable")]
        lists.append((keep, row[keep]))
    return lists


def evaluate_windows(windows, labels: Sequence[str], *, ids: Sequence[str] | None = None, decoys=None,
                     ks: Sequence[int] = (1, 10, 50), group_labels: Sequence[str] | None = None,
                     max_depth: int = MAX_DEPTH, per_query: bool = False, return_hits: bool = False,
                     progress=None) -> dict:
    """:func:`evaluate_embeddings` with late interaction over windows: a pair of sequences scores its best window
    pair (:class:`~phylocl.retrieval.windowed.WindowedIndex`, exact).

    Args:
        windows: :class:`~phylocl.retrieval.windowed.WindowRows` of the ``N`` labelled sequences.
        decoys: ``WindowRows`` of ``M`` unlabelled sequences added to the database, or ``None``.
        labels, ids, ks, group_labels, max_depth, per_query, return_hits, progress: as for
            :func:`evaluate_embeddings`.

    Returns what :func:`evaluate_embeddings` returns (``index_kind`` ``sparse-windows``).
    """
    from phylocl.retrieval.windowed import WindowedIndex, concat_windows

    labels = [str(s) for s in labels]
    n = len(windows)
    if len(labels) != n or (group_labels is not None and len(group_labels) != n):
        raise ValueError(f"{len(labels)} labels / {len(group_labels or labels)} group labels for {n} sequences")
    ks = check_ks(ks)
    ids = _check_ids(ids, n)
    if max_depth < 1:
        raise ValueError(f"max_depth must be >= 1, got {max_depth}")
    db = windows if decoys is None else concat_windows([windows, decoys])
    n_decoys = len(db) - n
    rel_labels = labels if group_labels is None else [str(g) for g in group_labels]
    depth = _search_depth(rel_labels, ks, max_depth, len(db))
    index = WindowedIndex(rows=db.rows, owners=db.owners)
    lists: list = []
    for lo in range(0, n, 256):
        hi = min(lo + 256, n)
        lists += tied_lists(index.scores(windows.slice(lo, hi)), lo, depth)  # (b, N + M) scores
        if progress is not None:
            progress(hi - lo)
    hits = HitLists.from_lists(lists)
    return _score(hits, labels, rel_labels, ids, n_decoys=n_decoys, ks=ks, per_query=per_query,
                  grouped=group_labels is not None, depth=depth, index_kind=index.kind, return_hits=return_hits)

"""Family-retrieval metrics over ranked hit lists (arrays in, numbers out).

For a query ``q`` with label ``y_q``, a hit on database row ``j`` is *relevant* (a true positive, TP) when
``label_j == y_q``; rows without a label (decoys, ``None``) are never relevant. ``R_q`` is the number of database
rows with label ``y_q`` other than the query's own row. Before scoring, each hit list is cleaned and ranked:

1. hits on the query's own row are dropped (needs ``query_ids`` and ``db_ids``); repeated targets keep their
   best score;
2. hits are ranked by score, highest first; **ties are broken pessimistically**: within a group of equal
   scores, non-relevant hits rank before relevant ones (the order the tool printed them in is ignored). Scores
   within :data:`TIE_TOLERANCE` ``x max(1, |score|)`` of the next one are equal: mathematically equal scores
   computed in different float orders (a windowed or sharded search, another BLAS) differ in the last bits, which
   would otherwise rank them by rounding noise (float32 cosines: 8 units in the last place at 1);
3. relevant rows missing from the list count as not found (lists are truncated at the search depth).

Per query, with ``rel(i)`` = 1 if the hit at rank ``i`` (1-based) is relevant and ``P(i)`` the precision of
the first ``i`` hits:

``top1``       ``rel(1)`` (0 for an empty list)
``recall@k``   ``(sum_{i<=k} rel(i)) / R_q``  (below 1 whenever ``k < R_q``)
``map_r``      ``(1/R_q) sum_{i<=R_q} P(i) rel(i)``   (MAP@R, Musgrave et al. 2020)
``auc1``       (number of TPs ranked before the first non-relevant hit) ``/ R_q``  (SCOP-style sensitivity up to
               the first false positive; a list without any false positive counts all its TPs)

Overall figures are means over queries with ``R_q >= 1``; queries whose label has no other member are excluded
and counted in ``n_singleton_queries``. With no scored query the figures are NaN.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from phylocl.retrieval.hits import HitLists

__all__ = ["score_hits", "rank_hits", "check_ks", "TIE_TOLERANCE"]

TIE_TOLERANCE = 2.0 ** -20  # relative (absolute below 1): scores this close rank as ties (module docstring, 2.)


def check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """Sorted unique cut-offs, each ``>= 1``."""
    out = tuple(sorted({int(k) for k in ks}))
    if not out or out[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    return out


def _encode(query_labels, db_labels) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Integer codes of labels: shared vocabulary; ``None`` in ``db_labels`` -> -1 (never relevant)."""
    if any(lab is None for lab in query_labels):
        raise ValueError("every query needs a label")
    vocab = sorted({str(lab) for lab in query_labels} | {str(lab) for lab in db_labels if lab is not None})
    code = {lab: i for i, lab in enumerate(vocab)}
    q = np.array([code[str(lab)] for lab in query_labels], dtype=np.int64)
    d = np.array([-1 if lab is None else code[str(lab)] for lab in db_labels], dtype=np.int64)
    return q, d, vocab


def rank_hits(hits: HitLists, relevant_fn, self_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clean and rank hits (steps 1-2 of the module docstring).

    Args:
        relevant_fn: ``(query_index (H,), target (H,)) -> bool (H,)``.
        self_rows: ``(Q,)`` database row of each query or ``-1``.

    Returns ``(query (H',), position (H',) 0-based rank, rel (H',) bool)`` sorted by query then rank.
    """
    q = np.repeat(np.arange(hits.n_queries), np.diff(hits.offsets))  # (H,)
    t, s = hits.targets, hits.scores
    keep = t != self_rows[q]
    q, t, s = q[keep], t[keep], s[keep]
    rel = relevant_fn(q, t)
    order = np.lexsort((-s, q))  # by query, then score descending
    q, t, s, rel = q[order], t[order], np.asarray(s[order], dtype=np.float64), rel[order]
    # tie groups: a new group where the query changes or the score drops by more than the tolerance
    step = (q[1:] != q[:-1]) | ~(s[:-1] - s[1:] <= TIE_TOLERANCE * np.maximum(1.0, np.abs(s[:-1])))  # (H - 1,); NaN: a step
    group = np.concatenate([[0], np.cumsum(step)]) if len(q) else np.zeros(0, np.int64)  # (H,) in ranked order
    order = np.lexsort((rel, group))  # within a group of equal scores, non-relevant first
    q, t, rel = q[order], t[order], rel[order]
    if len(q):
        _, first = np.unique(q * (int(t.max()) + 1) + t, return_index=True)  # best-ranked copy of each pair
        first.sort()
        q, rel = q[first], rel[first]
    starts = np.searchsorted(q, np.arange(hits.n_queries))  # (Q,) first hit of each query
    pos = np.arange(len(q)) - starts[q]
    return q, pos, rel


def _self_rows(nq: int, m: int, query_rows, query_ids, db_ids) -> np.ndarray:
    """``(Q,)`` database row of each query (``-1``: not in the database), from ``query_rows`` or matching ids."""
    if query_rows is not None:
        self_rows = np.asarray(query_rows, dtype=np.int64).reshape(nq)
        if np.any(self_rows >= m):
            raise ValueError(f"query_rows must be < {m} (the database size) or -1")
        return self_rows
    if query_ids is not None and db_ids is not None:
        row = {str(i): r for r, i in enumerate(db_ids)}
        return np.array([row.get(str(i), -1) for i in query_ids], dtype=np.int64)
    return np.full(nq, -1, dtype=np.int64)


def _per_query_values(hits: HitLists, qcode: np.ndarray, dcode: np.ndarray, self_rows: np.ndarray,
                      r: np.ndarray, ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Each metric of the module docstring per query: ``{"top1", "recall@k"..., "map_r", "auc1"}``, each ``(Q,)``.

    ``r`` is ``(Q,)`` R_q; values of queries with ``R_q == 0`` are meaningless (divided by 1).
    """
    nq = hits.n_queries
    qi, pos, rel = rank_hits(hits, lambda q, t: dcode[t] == qcode[q], self_rows)
    relf = rel.astype(np.float64)
    values = {"top1": np.bincount(qi, weights=relf * (pos == 0), minlength=nq)}
    rr = np.maximum(r, 1).astype(np.float64)
    for k in ks:
        values[f"recall@{k}"] = np.bincount(qi, weights=relf * (pos < k), minlength=nq) / rr
    cum = np.cumsum(relf)
    starts = np.searchsorted(qi, np.arange(nq))
    before = np.concatenate([[0.0], cum])[starts]  # (Q,) relevant hits before each query's list
    precision = (cum - before[qi]) / (pos + 1)  # (H,) P(i) at each hit
    values["map_r"] = np.bincount(qi, weights=relf * precision * (pos < r[qi]), minlength=nq) / rr
    first_fp = np.bincount(qi, minlength=nq).astype(np.int64)  # no FP -> every hit (all TPs) counts
    np.minimum.at(first_fp, qi[~rel], pos[~rel])
    values["auc1"] = first_fp / rr
    return values


def _per_family(values: dict[str, np.ndarray], report: np.ndarray, scored: np.ndarray) -> list[dict]:
    """Means of each metric over the scored queries of each report label, sorted by label."""
    families, fam_idx = np.unique(report[scored], return_inverse=True)
    sizes = np.bincount(fam_idx, minlength=len(families))
    rows = [{"family": str(f), "n_queries": int(n)} for f, n in zip(families, sizes)]
    for name, v in values.items():
        means = np.bincount(fam_idx, weights=v[scored], minlength=len(families)) / np.maximum(sizes, 1)
        for row, mean in zip(rows, means):
            row[name] = float(mean)
    return rows


def score_hits(hits: HitLists, query_labels: Sequence[str], db_labels: Sequence[str | None], *,
               ks: Sequence[int] = (1, 10, 50), query_ids: Sequence[str] | None = None,
               db_ids: Sequence[str] | None = None, query_rows: Sequence[int] | None = None,
               report_labels: Sequence[str] | None = None, per_query: bool = False) -> dict:
    """Score ranked hit lists against labels.

    Args:
        hits: ``Q`` hit lists whose targets are rows of the database.
        query_labels: ``Q`` labels deciding relevance (family, or a coarser group).
        db_labels: ``M`` database labels; ``None`` marks a decoy (unlabelled row, only ever a false positive).
        ks: cut-offs for ``recall@k``.
        query_ids, db_ids: when both are given, a query's own row (same id) is removed from its hits and from
            ``R_q``; without them queries are taken not to be in the database.
        query_rows: ``Q`` database rows of the queries (``-1``: not in the database), instead of ids.
        report_labels: ``Q`` labels for the per-family breakdown (default ``query_labels``).
        per_query: also return ``per_query``: one dict per query, in query order, ``{"query": index,
            "family", "r": R_q, metrics...}`` (metrics ``None`` for singleton queries).

    Returns:
        ``{"n_queries", "n_singleton_queries", "top1", "recall@k" for each k, "map_r", "auc1", "per_family"}``;
        ``per_family`` is a list of ``{"family", "n_queries", "top1", "recall@k"..., "map_r", "auc1"}`` over
        labels with at least one scored query, sorted by family.
    """
    ks = check_ks(ks)
    nq, m = hits.n_queries, len(db_labels)
    if len(query_labels) != nq:
        raise ValueError(f"{len(query_labels)} query labels for {nq} hit lists")
    if len(hits.targets) and hits.targets.max() >= m:
        raise ValueError(f"a hit targets row {hits.targets.max()} of a database of {m} rows")
    qcode, dcode, _ = _encode(query_labels, db_labels)
    self_rows = _self_rows(nq, m, query_rows, query_ids, db_ids)
    counts = np.bincount(dcode[dcode >= 0], minlength=qcode.max(initial=-1) + 1)
    own = (self_rows >= 0) & (dcode[np.maximum(self_rows, 0)] == qcode)
    r = counts[qcode] - own  # (Q,) other relevant rows per query
    per_query_values = _per_query_values(hits, qcode, dcode, self_rows, r, ks)

    scored = r > 0
    out = {"n_queries": int(scored.sum()), "n_singleton_queries": int((~scored).sum())}
    for name, values in per_query_values.items():
        out[name] = float(values[scored].mean()) if scored.any() else float("nan")
    report = np.asarray([str(x) for x in (query_labels if report_labels is None else report_labels)])
    if len(report) != nq:
        raise ValueError(f"{len(report)} report labels for {nq} queries")
    out["per_family"] = _per_family(per_query_values, report, scored)
    if per_query:
        out["per_query"] = [
            {"query": i, "family": str(report[i]), "r": int(r[i]),
             **{name: (float(v[i]) if scored[i] else None) for name, v in per_query_values.items()}}
            for i in range(nq)
        ]
    return out

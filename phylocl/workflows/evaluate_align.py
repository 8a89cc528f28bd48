"""``phylocl evaluate --align``: the figures of the aligned ranking that ``phylocl search`` produces.

Each labelled sequence's ``candidates`` best embedding hits (self excluded; the same all-against-all search that
gives the embedding figures) are aligned (:func:`phylocl.align.align_candidates`, E-values against the whole
database, hits above ``evalue`` dropped) and ranked by bit score; the ranked lists are scored by the same
:func:`~phylocl.retrieval.metrics.score_hits` as the embedding's. Relevant members outside the candidates count as
not found, so the aligned figures are bounded by the prefilter's ``recall@candidates``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from phylocl.retrieval.hits import HitLists
from phylocl.retrieval.metrics import score_hits

__all__ = ["aligned_figures"]


def aligned_figures(hits: HitLists, sequences: Sequence[str], rel_labels: Sequence[str], db_labels: Sequence,
                    *, ks: Sequence[int], candidates: int, alphabet: str, evalue: float = 10.0,
                    matrix: str | None = None, gap_open: int | None = None, gap_extend: int | None = None,
                    threads: int | None = None, filter_pvalue: float | None = None) -> dict:
    """Score the aligned ranking of the first ``candidates`` hits of each of ``hits``' queries.

    Args:
        hits: embedding hit lists of the ``Q`` labelled sequences (queries = database rows ``0..Q-1``).
        sequences: all database sequences (labelled rows, then decoys).
        rel_labels: ``Q`` relevance labels; db_labels: one per database row (``None`` for decoys).

        filter_pvalue: the ungapped (MSV) filter's threshold (``None``: search's default, protein 0.02, DNA off;
            ``>= 1``: none).

    Returns ``score_hits``'s overall figures plus ``candidates``, ``scoring`` (its record), ``aligned_fraction`` (of
    the candidate pairs, those the filter passed to Smith-Waterman), ``filter_pvalue`` and ``align_seconds``.
    """
    from phylocl.align import align_candidates, scoring_system
    from phylocl.align.msv import default_filter_pvalue

    scoring = scoring_system(alphabet, matrix=matrix, gap_open=gap_open, gap_extend=gap_extend)
    filter_pvalue = default_filter_pvalue(alphabet) if filter_pvalue is None else float(filter_pvalue)
    start = time.perf_counter()
    cands = [hits.query(i)[0][:candidates] for i in range(hits.n_queries)]
    q = len(rel_labels)
    aligned = align_candidates(list(sequences[:q]), list(sequences), cands, scoring=scoring, evalue=evalue,
                               threads=threads, query_rows=range(q),  # queries are rows 0..q-1: pairs aligned once
                               filter_pvalue=filter_pvalue)
    lists = HitLists(offsets=aligned.offsets, targets=aligned.targets, scores=aligned.bits)
    m = score_hits(lists, list(rel_labels), list(db_labels), ks=ks, query_rows=np.arange(q))
    keep = ("top1", *(f"recall@{k}" for k in ks), "map_r", "auc1", "n_queries")
    out = {k: m[k] for k in keep}
    out.update(candidates=candidates, scoring=scoring.record(),
               aligned_fraction=round(aligned.n_aligned / max(aligned.n_candidates, 1), 4),
               filter_pvalue=filter_pvalue,
               align_seconds=round(time.perf_counter() - start, 3))
    return out

"""``phylocl evaluate --align``: the figures of the aligned ranking that ``phylocl search`` produces.

Each labelled sequence's ``candidates`` best embedding hits (self excluded; the same all-against-all search that
gives the embedding figures) are aligned (:func:`phylocl.align.align_candidates`, E-values against the whole
database, hits above ``evalue`` dropped) and ranked by bit score; the ranked lists are scored by the same
:func:`~phylocl.retrieval.metrics.score_hits` as the embedding's. Relevant members outside the candidates count as
not found, so the aligned figures are bounded by the prefilter's ``recall@candidates``.

DNA with ``strand="both"`` (search's default when aligning): the reverse complement of each labelled sequence is
embedded and searched as well (:func:`minus_hits`; with windows :func:`minus_window_hits`), the two candidate lists
merged as ``phylocl search`` merges them
(:func:`~phylocl.workflows.search_strands.merge_candidates`) and both strands aligned
(:func:`~phylocl.align.strands.align_strands`). The embedding figures (and ``prefilter_recall``) stay the plus
strand's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from phylocl.retrieval.hits import HitLists
from phylocl.retrieval.metrics import score_hits

__all__ = ["aligned_figures", "minus_hits", "minus_window_hits"]


def aligned_figures(hits: HitLists, sequences: Sequence[str], rel_labels: Sequence[str], db_labels: Sequence,
                    *, ks: Sequence[int], candidates: int, alphabet: str, evalue: float = 10.0,
                    matrix: str | None = None, gap_open: int | None = None, gap_extend: int | None = None,
                    threads: int | None = None, filter_pvalue: float | None = None, strand: str = "plus",
                    minus: HitLists | None = None, progress: bool = False, stream=None) -> dict:
    """Score the aligned ranking of the first ``candidates`` hits of each of ``hits``' queries.

    Args:
        hits: embedding hit lists of the ``Q`` labelled sequences (queries = database rows ``0..Q-1``).
        sequences: all database sequences (labelled rows, then decoys).
        rel_labels: ``Q`` relevance labels; db_labels: one per database row (``None`` for decoys).

        filter_pvalue: the ungapped (MSV) filter's threshold (``None``: search's default, protein 0.02, DNA off;
            ``>= 1``: none).
        strand: ``plus`` or (DNA) ``both``; minus: with ``both``, the reverse complements' embedding hits
            (:func:`minus_hits`; ``None``: the plus strand's candidates only, both strands aligned).
        progress, stream: a bar per phase of the alignment (filter, Smith-Waterman; per strand) on ``stream``.

    Returns ``score_hits``'s overall figures plus ``candidates``, ``scoring`` (its record), ``aligned_fraction`` (of
    the candidate pairs, those the filter passed to Smith-Waterman), ``filter_pvalue`` and ``align_seconds``.
    """
    from phylocl.align import align_strands, scoring_system
    from phylocl.align.msv import default_filter_pvalue

    scoring = scoring_system(alphabet, matrix=matrix, gap_open=gap_open, gap_extend=gap_extend)
    filter_pvalue = default_filter_pvalue(alphabet) if filter_pvalue is None else float(filter_pvalue)
    start = time.perf_counter()
    cands = [hits.query(i)[0][:candidates] for i in range(hits.n_queries)]
    if minus is not None:
        cands = _merged(hits, minus, candidates)
    q = len(rel_labels)
    with PhaseBars(enabled=progress, stream=stream) as bars:
        aligned = align_strands(list(sequences[:q]), list(sequences), cands, scoring=scoring, strand=strand,
                                evalue=evalue, threads=threads, query_rows=range(q),  # rows 0..q-1: pairs once
                                filter_pvalue=filter_pvalue, progress=bars if progress else None)
    lists = HitLists(offsets=aligned.offsets, targets=aligned.targets, scores=aligned.bits)
    m = score_hits(lists, list(rel_labels), list(db_labels), ks=ks, query_rows=np.arange(q))
    keep = ("top1", *(f"recall@{k}" for k in ks), "map_r", "auc1", "n_queries")
    out = {k: m[k] for k in keep}
    out.update(candidates=candidates, scoring=scoring.record(),
               aligned_fraction=round(aligned.n_aligned / max(aligned.n_candidates, 1), 4),
               filter_pvalue=filter_pvalue, strand=strand,
               align_seconds=round(time.perf_counter() - start, 3))
    return out


class PhaseBars:
    """``progress(phase, done, total)`` of :func:`phylocl.align.align_candidates` as one progress bar per phase
    (a new phase closes the bar of the one before); a context manager, closing the last bar."""

    def __init__(self, *, enabled: bool, stream=None) -> None:
        self.enabled, self.stream = enabled, stream
        self.phase, self.bar = None, None

    def __call__(self, phase: str, done: int, total: int) -> None:
        from phylocl.workflows import progress_bar

        if phase != self.phase:
            self.close()
            unit = "queries" if phase.startswith("filtering") else "pairs"
            self.phase = phase
            self.bar = progress_bar(phase, total=total, unit=unit, enabled=self.enabled, stream=self.stream)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.phase, self.bar = None, None

    def __enter__(self) -> "PhaseBars":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _merged(plus: HitLists, minus: HitLists, candidates: int) -> list[np.ndarray]:
    """Per query, the ``candidates`` best of the two strands' hit lists (:func:`merge_candidates`)."""
    from phylocl.workflows.search_strands import merge_candidates

    out = []
    for i in range(plus.n_queries):
        (pr, ps), (mr, ms) = plus.query(i), minus.query(i)
        pad = lambda a, fill: np.concatenate([a[:candidates], np.full(max(candidates - len(a), 0), fill)])  # noqa: E731
        _, rows = merge_candidates(pad(ps, -np.inf)[None], pad(pr, -1)[None], pad(ms, -np.inf)[None],
                                   pad(mr, -1)[None], candidates)
        out.append(rows[0][rows[0] >= 0])
    return out


def minus_hits(embedder, sequences: Sequence[str], db_x: np.ndarray, candidates: int, *, batch_size: int,
               buffer_size: int = 1024) -> HitLists:
    """The ``candidates`` best rows of ``db_x`` ``(N, D)`` (unit rows; the labelled set first) for the reverse
    complement of each of the ``Q`` labelled ``sequences``, itself (row ``i``) excluded; exact cosine search."""
    from phylocl.align.strands import reverse_complement
    from phylocl.workflows.embed_buffers import embed_buffers

    items = ((str(i), reverse_complement(s), None) for i, s in enumerate(sequences))
    lists, start = [], 0
    depth = min(candidates, len(db_x) - 1)
    for x, _, _ in embed_buffers(items, embedder, batch_size=batch_size, buffer_size=buffer_size):
        sims = x @ db_x.T  # (b, N)
        sims[np.arange(len(x)), np.arange(start, start + len(x))] = -np.inf  # not itself
        top = np.argpartition(-sims, depth - 1, axis=1)[:, :depth] if depth > 0 else np.zeros((len(x), 0), int)
        for r in range(len(x)):
            rows = top[r][np.argsort(-sims[r, top[r]], kind="stable")]
            lists.append((rows, sims[r, rows]))
        start += len(x)
    return HitLists.from_lists(lists)


def minus_window_hits(embedder, sequences: Sequence[str], db, cut, candidates: int, *, batch_size: int,
                      buffer_size: int = 1024) -> HitLists:
    """:func:`minus_hits` for windows: the ``candidates`` best database sequences of ``db`` (the
    :class:`~phylocl.retrieval.windowed.WindowRows` of the labelled set, then the decoys) for the reverse
    complement of each of the ``Q`` labelled ``sequences``, cut by ``cut`` and scored by best window pair, itself
    (sequence ``i``) excluded: what ``phylocl search`` asks of a windowed index for the minus strand
    (:func:`~phylocl.workflows.search_strands.minus_candidates`)."""
    from phylocl.align.strands import reverse_complement
    from phylocl.retrieval.windowed import WindowedIndex
    from phylocl.workflows.windows import embed_windows

    items = ((str(i), reverse_complement(s), None) for i, s in enumerate(sequences))
    rc, _ = embed_windows(items, embedder, cut, batch_size=batch_size, buffer_size=buffer_size)
    index = WindowedIndex(rows=db.rows, owners=db.owners)  # ids "0", "1", ...: the labelled rows come first
    scores, rows = index.search(rc, candidates, exclude_ids=[str(i) for i in range(len(sequences))])  # (Q, c)
    return HitLists.from_lists([(r[r >= 0], s[r >= 0]) for s, r in zip(scores, rows)])

"""Score each query against its own candidates with a SIMD Smith-Waterman (pyopal), then rank by bit score.

:func:`align_candidates` is the Python API of the alignment stage of ``phylocl search``::

    from phylocl.align import align_candidates, scoring_system
    hits = align_candidates(["MKV..."], ["MKL...", "MSS..."], [[0, 1]], scoring=scoring_system("protein"))
    hits.query(0)  # (targets, raw scores, bit scores, E-values), best bit score first

Three steps: the MSV filter per query (:mod:`phylocl.align.msv`), then the choice of the pairs to score (a pair
of two queries that both align it is scored once, by the query listed first), then one pyopal call per query for
its pairs (local alignment, scores only). The two per-query steps run in ``threads`` workers: forked processes
when there is enough work (:mod:`phylocl.align.workers`: the Python between the C calls would serialise
threads), else a thread pool; each query's work is independent of the others', so the result does not depend on
the number or kind of workers. Hits with an E-value above ``evalue`` are dropped; the rest are sorted by bit
score, highest first, ties by candidate order. The traceback (:mod:`phylocl.align.traceback`) is computed later, only for the
hits that are written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from phylocl.align.scoring import ScoringSystem
from phylocl.align.sequences import clean_sequence
from phylocl.align.statistics import bit_scores, evalues
from phylocl.align.traceback import canonical_first, score_pairs
from phylocl.align.workers import PAIR_WEIGHT, map_blocks, use_processes

__all__ = ["AlignedHits", "align_candidates", "default_threads", "stack_hits"]


PROCESS_BLOCKS = 16  # blocks of queries per worker process (the last blocks balance the workers' loads)


def default_threads() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class AlignedHits:
    """Scored hits of ``Q`` queries in CSR form: query ``i``'s hits are ``[offsets[i]:offsets[i + 1]]``.

    Attributes:
        offsets: ``(Q + 1,)`` int64.
        targets: ``(H,)`` int64 target numbers (indices into the ``targets`` given to :func:`align_candidates`).
        raw: ``(H,)`` int64 Smith-Waterman scores.
        bits: ``(H,)`` float64 bit scores; evalues: ``(H,)`` float64 E-values.
        cand_rank: ``(H,)`` int64 position of the hit in its query's candidate list (0 = the prefilter's best).
        n_candidates: candidate pairs over all queries (repeats dropped); n_aligned: those the filter passed to
            Smith-Waterman (a pair of two queries scored once still counts in both directions).
        ends: ``(H, 2)`` int64 end cell of an optimal local alignment of each hit's pair, 0-based positions in the
            first and second sequence of the orientation :func:`~phylocl.align.traceback.canonical_first` chooses
            (what :func:`~phylocl.align.traceback.trace_alignments` takes to skip its score pass); ``-1``: unknown.
    """

    offsets: np.ndarray
    targets: np.ndarray
    raw: np.ndarray
    bits: np.ndarray
    evalues: np.ndarray
    cand_rank: np.ndarray
    n_candidates: int = 0
    n_aligned: int = 0
    ends: np.ndarray | None = None

    @property
    def n_queries(self) -> int:
        return len(self.offsets) - 1

    def query(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(targets, raw, bits, evalues)`` of query ``i``, best bit score first."""
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.targets[a:b], self.raw[a:b], self.bits[a:b], self.evalues[a:b]


def align_candidates(queries: Sequence[str], targets: Sequence[str] | Callable[[int], str],
                     candidates: Sequence[Sequence[int]], *, scoring: ScoringSystem, db_residues: int | None = None,
                     db_sequences: int | None = None, evalue: float = 10.0, max_hits: int | None = None,
                     threads: int | None = None, clean: bool = True,
                     query_rows: Sequence[int] | None = None, filter_pvalue: float | None = None) -> AlignedHits:
    """Align every query with its candidates and return the hits ranked by bit score.

    Args:
        queries: ``Q`` sequences (any case; letters read as in :func:`~phylocl.align.sequences.clean_sequence`).
        targets: the database sequences: a sequence of strings, or a function ``row -> str`` (an index's store).
        candidates: per query, the target numbers to align (``-1`` entries are skipped; repeats are aligned once).
        scoring: from :func:`~phylocl.align.scoring.scoring_system`.
        db_residues, db_sequences: size of the database for the E-values (default: ``targets``' own, when it is a
            sequence).
        evalue: keep hits with E-value ``<=`` this (``inf``: keep all).
        max_hits: keep at most this many hits per query (after ranking).
        threads: workers (default: all cores): threads, or forked processes for large jobs
            (:func:`~phylocl.align.workers.use_processes`).
        clean: upper-case and check the letters (pass ``False`` for sequences already in the scoring system's
            letters, e.g. from the data layer).
        query_rows: the target number of each query when the queries are database sequences (``-1``: not one), as
            in an all-against-all search: a pair of two such queries is then aligned once, its score reused for
            the other direction (the local alignment score is symmetric for a symmetric matrix). Same results.
        filter_pvalue: align only the candidates whose ungapped (MSV) P-value against the query's profile is at
            most this (:mod:`phylocl.align.msv`; ``None`` or ``>= 1``: align every candidate). Filtered candidates
            are dropped as hits with too high an E-value are.

    Raises ``ValueError`` on letters the scoring system cannot score (naming the sequence and letter), or a
    ``targets`` function without ``db_residues`` / ``db_sequences``.
    """
    if len(candidates) != len(queries):
        raise ValueError(f"{len(candidates)} candidate lists for {len(queries)} queries")
    fetch = targets.__getitem__ if not callable(targets) else targets
    if db_residues is None or db_sequences is None:
        if callable(targets):
            raise ValueError("give db_residues and db_sequences with a targets function")
        db_residues = sum(len(t) for t in targets) if db_residues is None else db_residues
        db_sequences = len(targets) if db_sequences is None else db_sequences
    threads = default_threads() if threads is None else int(threads)
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")

    msv = None
    if filter_pvalue is not None and filter_pvalue < 1:
        from phylocl.align.msv import MsvFilter

        msv = MsvFilter(scoring=scoring, pvalue=filter_pvalue)
    symmetric = query_rows is not None and scoring.symmetric
    row_of = {int(r): i for i, r in enumerate(query_rows)} if symmetric else {}
    row_of.pop(-1, None)
    n = len(queries)
    cleaned = [clean_sequence(q, scoring, what=f"query {i}") for i, q in enumerate(queries)] if clean else queries

    def target(t: int) -> str:
        return clean_sequence(fetch(t), scoring, what=f"target {t}") if clean else fetch(t)

    def screen(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Query ``i``'s candidate rows ``(c,)`` (prefilter order, repeats dropped), which of them it aligns, and
        their lengths."""
        rows = np.asarray(candidates[i], dtype=np.int64).ravel()
        rows = rows[rows >= 0]
        _, first = np.unique(rows, return_index=True)
        rows = rows[np.sort(first)]
        listed = rows.tolist()
        if msv is None:
            lengths = np.fromiter((len(fetch(t)) for t in listed), np.int64, len(listed))  # cleaning keeps lengths
            return rows, np.ones(len(rows), dtype=bool), lengths
        seqs = [target(t) for t in listed]
        return rows, msv.keep(cleaned[i], seqs, keys=listed), np.fromiter(map(len, seqs), np.int64, len(seqs))

    # 1. the filter, per query
    screened = _run_queries(screen, n, threads, sum(map(len, candidates)))
    # 2. which pairs to score: the filter decides each direction with the query's own profile, so a pair of two
    # queries may be aligned for one of them only; when both align it, the query listed first scores it and the
    # other reads its score (the local alignment score is symmetric), wherever the two are computed
    aligned_at = [dict(zip(rows[keep].tolist(), np.flatnonzero(keep).tolist())) for rows, keep, _ in screened] \
        if row_of else []
    todo, copies = [], []  # per query: positions to score; (position, partner query, partner's position)
    for i, (rows, keep, _) in enumerate(screened):
        mine, theirs = [], []
        me = int(query_rows[i]) if row_of else -1
        for j, t in zip(np.flatnonzero(keep).tolist(), rows[keep].tolist()):
            p = row_of.get(t, i) if me >= 0 else i
            k = aligned_at[p].get(me) if p < i else None
            if k is None:
                mine.append(j)
            else:
                theirs.append((j, p, k))
        todo.append(mine)
        copies.append(theirs)

    # 3. Smith-Waterman scores of the pairs to score, each with the end cell of an optimal alignment in the
    # orientation its traceback uses (canonical_first), grouped by that orientation's first sequence so that its
    # score profiles are built once for all its pairs (an all-against-all meets each sequence in hundreds of pairs)
    firsts: dict[str, list[int]] = {}  # first sequence -> numbers of its pairs
    seconds, flipped = [], []  # per pair: the other sequence; whether the query is second
    for i in range(n):
        x = cleaned[i]
        for t in screened[i][0][todo[i]].tolist():
            y = target(t)
            first = canonical_first(x, y, scoring)
            firsts.setdefault(x if first else y, []).append(len(seconds))
            seconds.append(y if first else x)
            flipped.append(not first)
    tasks = _pair_tasks(firsts)

    def score(b: int) -> np.ndarray:
        return np.concatenate([score_pairs(x, [seconds[p] for p in pairs], scoring) for x, pairs in tasks[b]]) \
            if tasks[b] else np.zeros((0, 3), np.int64)

    found = np.zeros((len(seconds), 3), dtype=np.int64)  # (pairs, 3) score, end in first, end in second
    parts_ = map_blocks(score, len(tasks), threads, processes=use_processes(threads, PAIR_WEIGHT * len(seconds)))
    if parts_:
        found[np.concatenate([p for task in tasks for _, p in task])] = np.concatenate(parts_)
    # each query's own positions, its pairs numbered in query order above
    bounds = np.cumsum([0] + [len(t) for t in todo])
    raws, ends = [], []
    for i, (rows, _, _) in enumerate(screened):
        raw = np.zeros(len(rows), dtype=np.int64)  # (c,) 0 where not aligned
        end = np.full((len(rows), 2), -1, dtype=np.int64)  # (c, 2) end cell in the traced orientation; -1: unknown
        raw[todo[i]] = found[bounds[i]:bounds[i + 1], 0]
        end[todo[i]] = found[bounds[i]:bounds[i + 1], 1:]
        raws.append(raw)
        ends.append(end)
    # a pair of two queries is one pair of sequences (and its end cell holds for both) when each query is its own row's sequence
    own = [bool(row_of) and int(query_rows[i]) >= 0 and cleaned[i] == target(int(query_rows[i])) for i in range(n)]
    for i, theirs in enumerate(copies):  # partners come first, so their scores are all there
        for j, p, k in theirs:
            raws[i][j] = raws[p][k]
            if own[i] and own[p]:
                ends[i][j] = ends[p][k]

    # 4. E-values and ranking, per query
    parts = []
    for i, (rows, aligned, lengths) in enumerate(screened):
        raw = raws[i]
        bits = bit_scores(raw, scoring.stats)
        ev = evalues(raw, query_length=len(cleaned[i]), db_residues=db_residues, db_sequences=db_sequences,
                     stats=scoring.stats, target_lengths=lengths)
        pos = np.arange(len(rows))
        keep = aligned & (ev <= evalue) & (raw > 0)
        order = np.lexsort((pos[keep], -raw[keep]))  # bit score descending, then the prefilter's order
        sel = np.flatnonzero(keep)[order][:max_hits]
        parts.append((rows[sel], raw[sel], bits[sel], ev[sel], pos[sel], ends[i][sel, 0], ends[i][sel, 1],
                      len(rows), int(aligned.sum())))
    offsets, (targets, raw, bits, evs, cand_rank, end_a, end_b) = stack_hits(parts, HIT_DTYPES)
    return AlignedHits(offsets=offsets, targets=targets, raw=raw, bits=bits, evalues=evs, cand_rank=cand_rank,
                       n_candidates=sum(p[7] for p in parts), n_aligned=sum(p[8] for p in parts),
                       ends=np.stack([end_a, end_b], axis=1))


def _run_queries(fn, n: int, threads: int, pairs: int) -> list:
    """``[fn(i) for i in range(n)]``: one query per task in a thread pool, or :data:`PROCESS_BLOCKS` contiguous
    blocks of queries per worker process when there is enough work (``pairs``, in filter calls:
    :func:`~phylocl.align.workers.use_processes`; one worker or one query: in this thread)."""
    if not use_processes(threads, pairs):
        return map_blocks(fn, n, threads, processes=False)
    n_blocks = min(n, PROCESS_BLOCKS * threads)
    bounds = [b * n // n_blocks for b in range(n_blocks + 1)]
    blocks = map_blocks(lambda b: [fn(i) for i in range(bounds[b], bounds[b + 1])], n_blocks, threads, processes=True)
    return [r for block in blocks for r in block]


# targets, raw, bits, evalues, cand_rank, the two coordinates of ends
HIT_DTYPES = (np.int64, np.int64, np.float64, np.float64, np.int64, np.int64, np.int64)
PAIRS_PER_TASK = 256  # pairs per scoring task (whole groups of one first sequence)


def _pair_tasks(firsts: dict[str, list[int]]) -> list[list[tuple[str, list[int]]]]:
    """The groups ``first sequence -> its pairs`` cut into tasks of whole groups, about :data:`PAIRS_PER_TASK`
    pairs each (in the dictionary's order)."""
    tasks, task, size = [], [], 0
    for group in firsts.items():
        task.append(group)
        size += len(group[1])
        if size >= PAIRS_PER_TASK:
            tasks.append(task)
            task, size = [], 0
    if task:
        tasks.append(task)
    return tasks


def stack_hits(parts: Sequence[tuple], dtypes: Sequence) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per-query tuples of equal-length hit columns -> CSR ``offsets`` ``(Q + 1,)`` int64 and each of the first
    ``len(dtypes)`` columns concatenated over the queries as ``dtypes[j]`` (what :class:`AlignedHits` holds)."""
    offsets = np.concatenate([[0], np.cumsum([len(p[0]) for p in parts])]).astype(np.int64)
    columns = [np.concatenate([p[j] for p in parts]).astype(dt) if parts else np.zeros(0, dt)
               for j, dt in enumerate(dtypes)]
    return offsets, columns

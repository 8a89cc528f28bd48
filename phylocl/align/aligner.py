"""Score each query against its own candidates with a SIMD Smith-Waterman (parasail), then rank by bit score.

:func:`align_candidates` is the Python API of the alignment stage of ``phylocl search``::

    from phylocl.align import align_candidates, scoring_system
    hits = align_candidates(["MKVLAAGIWK"], ["MKLLAAGIWR", "MSSTQPLE"], [[0, 1]], scoring=scoring_system("protein"))
    hits.query(0)  # (targets, raw scores, bit scores, E-values), best bit score first: target 0

Three steps: the MSV filter per query (:mod:`phylocl.align.msv`), then the choice of the pairs to score (a pair
of two queries that both align it is scored once, by the query listed first), then parasail's striped
Smith-Waterman for the pairs, grouped by their first sequence so that its score profile is built once
(:func:`~phylocl.align.traceback.score_pairs`: scores and end cells; pyopal's, in
:func:`~phylocl.align.traceback.describe_alignments`, is the reference the tests compare with). The two per-query steps run in ``threads`` workers: forked processes
when there is enough work (:mod:`phylocl.align.workers`: the Python between the C calls would serialise
threads), else a thread pool; each query's work is independent of the others', so the result does not depend on
the number or kind of workers. Hits with an E-value above ``evalue`` are dropped; the rest are sorted by bit
score, highest first, ties by candidate order. The traceback (:mod:`phylocl.align.traceback`) is computed later, only for the
hits that are written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from phylocl.align.scoring import ScoringSystem
from phylocl.align.sequences import clean_sequence, string_ranks
from phylocl.align.statistics import bit_scores, evalues
from phylocl.align.traceback import score_pairs
from phylocl.align.workers import PAIR_WEIGHT, grouped_tasks, map_blocks, usable_cpus, use_processes
from phylocl.arguments import is_real, is_whole, positive_int, whole

__all__ = ["AlignedHits", "align_candidates", "default_threads", "stack_hits"]


PROCESS_BLOCKS = 16  # blocks of queries per worker process (the last blocks balance the workers' loads)


def default_threads() -> int:
    """All cores this process may use (:func:`~phylocl.align.workers.usable_cpus`)."""
    return usable_cpus()


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
        traced: ``(T, 9)`` int64 :func:`~phylocl.align.traceback.trace_table` rows (same orientation as ``ends``) of
            the pairs the scoring pass traced (``trace_whole``); traced_at: ``(H,)`` int64 each hit's row in
            ``traced``, ``-1``: not traced (both ``None`` without ``trace_whole``).
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
    traced: np.ndarray | None = None
    traced_at: np.ndarray | None = None

    @property
    def n_queries(self) -> int:
        return len(self.offsets) - 1

    def query(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(targets, raw, bits, evalues)`` of query ``i`` (``-1``: the last, as in a list), best bit score first;
        ``IndexError`` outside the queries."""
        n = self.n_queries
        if not is_whole(i) or not -n <= i < n:
            raise IndexError(f"query {i!r} out of range: {n} queries, numbered 0 to {n - 1}")
        i = int(i) % n
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.targets[a:b], self.raw[a:b], self.bits[a:b], self.evalues[a:b]


def align_candidates(queries: Sequence[str], targets: Sequence[str] | Callable[[int], str],
                     candidates: Sequence[Sequence[int]], *, scoring: ScoringSystem, db_residues: int | None = None,
                     db_sequences: int | None = None, evalue: float = 10.0, max_hits: int | None = None,
                     threads: int | None = None, clean: bool = True,
                     query_rows: Sequence[int] | None = None, filter_pvalue: float | None = None,
                     trace_whole: bool = False, progress: Callable[[str, int, int], None] | None = None
                     ) -> AlignedHits:
    """Align every query with its candidates and return the hits ranked by bit score.

    Args:
        queries: ``Q`` sequences (any case; letters read as in :func:`~phylocl.align.sequences.clean_sequence`).
        targets: the database sequences: a sequence of strings, or a function ``row -> str`` (an index's store).
        candidates: per query, the target numbers to align (``-1`` entries are skipped; repeats are aligned once;
            anything else outside ``0 .. db_sequences - 1`` raises ``ValueError`` naming the query).
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
        progress: called as ``progress(phase, done, total)`` while the work goes on: phase ``"filtering"`` counts
            queries screened by the filter, ``"aligning"`` pairs scored by Smith-Waterman (for a progress bar; the
            results do not depend on it).
        trace_whole: trace in the scoring pass the pairs whose traceback covers the whole pair
            (:func:`~phylocl.align.traceback.score_pairs`; ``traced``), for a caller that traces every hit: the same
            hits, with less work when it is so.

    A query with no candidates (or only ``-1``), or an empty query, has no hits. Raises ``ValueError`` on letters
    the scoring system cannot score (naming the sequence and letter; alignment gaps ``-`` included: remove them),
    a ``targets`` function or mapping without ``db_residues`` / ``db_sequences``, and arguments of the wrong kind
    or range (``TypeError`` / ``ValueError`` naming the argument): ``queries`` or a candidate list given as one
    string, candidates that are not whole numbers, ``evalue`` not ``> 0``, ``max_hits`` or ``threads`` not whole
    numbers (``max_hits >= 0``, ``threads >= 1``), database sizes below 1, ``query_rows`` of another length than
    ``queries``, ``scoring`` not a :class:`~phylocl.align.scoring.ScoringSystem`.
    """
    _check_arguments(queries, targets, candidates, scoring=scoring, evalue=evalue, max_hits=max_hits,
                     query_rows=query_rows, db_residues=db_residues, db_sequences=db_sequences)
    fetch = targets.__getitem__ if not callable(targets) else targets
    if db_residues is None or db_sequences is None:
        if callable(targets) or isinstance(targets, Mapping):
            kind = "mapping" if isinstance(targets, Mapping) else "function"
            raise ValueError(f"give db_residues and db_sequences with a targets {kind}")
        db_residues = sum(len(t) for t in targets) if db_residues is None else db_residues
        db_sequences = len(targets) if db_sequences is None else db_sequences
    threads = positive_int("threads", threads, optional=True)
    threads = default_threads() if threads is None else min(threads, usable_cpus())  # more only queue up
    max_hits = None if max_hits is None else int(max_hits)

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
        rows = np.asarray(candidates[i])
        if rows.size and rows.dtype.kind not in "iu":  # float 1.7 was aligned as target 1
            raise ValueError(f"query {i}: candidates must be whole target numbers, got {rows.dtype} values "
                             f"({rows.ravel()[0]!r} ...)")
        rows = rows.astype(np.int64, copy=False).ravel()
        bad = (rows < -1) | (rows >= db_sequences)
        if bad.any():
            raise ValueError(f"query {i}: candidate {int(rows[bad][0])} is not a target number (0 to "
                             f"{db_sequences - 1}, or -1 for none)")
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
    screened = _run_queries(screen, n, threads, sum(map(len, candidates)),
                            done=None if progress is None or msv is None else _counter(progress, "filtering", n))
    # all candidates in one flat (CSR) layout: query i's are [off[i]:off[i + 1]]
    counts = np.fromiter((len(r) for r, _, _ in screened), np.int64, n)
    off = np.concatenate([[0], np.cumsum(counts)])  # (n + 1,)
    flat_rows = np.concatenate([r for r, _, _ in screened]) if n else np.zeros(0, np.int64)  # (C,)
    kept = np.concatenate([k for _, k, _ in screened]) if n else np.zeros(0, bool)  # (C,) the filter's decisions
    lengths = np.concatenate([ln for _, _, ln in screened]) if n else np.zeros(0, np.int64)  # (C,)
    owner = np.repeat(np.arange(n), counts)  # (C,) query of each candidate
    # 2. which pairs to score: the filter decides each direction with the query's own profile, so a pair of two
    # queries may be aligned for one of them only; when both align it, the query listed first scores it and the
    # other reads its score (the local alignment score is symmetric), wherever the two are computed
    source = _partners(flat_rows, kept, owner, off, query_rows, row_of)  # (C,) flat candidate scoring it; -1: itself
    to_score = np.flatnonzero(kept & (source < 0))  # (P,) in query order

    # 3. Smith-Waterman scores of the pairs to score, each with the end cell of an optimal alignment in the
    # orientation its traceback uses (canonical_first), grouped by that orientation's first sequence so that its
    # score profiles are built once for all its pairs (an all-against-all meets each sequence in hundreds of pairs)
    rows_scored, inverse = np.unique(flat_rows[to_score], return_inverse=True)
    strings = list(cleaned) + [target(t) for t in rows_scored.tolist()]  # queries, then the rows scored
    second = n + inverse.reshape(-1)  # (P,) numbers in `strings`
    first = owner[to_score]  # (P,)
    if scoring.symmetric:  # the smaller sequence first (canonical_first), found through the strings' sorted order
        rank = string_ranks(strings)  # (S,) equal strings, equal ranks
        swap = rank[first] > rank[second]
        first, second = np.where(swap, second, first), np.where(swap, first, second)
        key = rank[first]
    else:
        key = first
    tasks = _pair_tasks(strings, first, second, key)

    options = {"trace_whole": True} if trace_whole else {}

    def score(b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Task ``b``'s pairs: ``(n, 3)`` int32 score and end cell (what crosses from a worker: half of int64),
        the ``(t,)`` positions among them of the pairs traced while scored, and their ``(t, 9)`` rows."""
        if not tasks[b]:
            return np.zeros((0, 3), np.int32), np.zeros(0, np.int64), np.zeros((0, 9), np.int64)
        table = np.concatenate([score_pairs(strings[x], [strings[y] for y in ys], scoring, **options)
                                for x, _, ys in tasks[b]])  # (n, 3) or (n, 3 + 9) with trace_whole
        traced = np.flatnonzero(table[:, 4] > 0) if trace_whole else np.zeros(0, np.int64)  # (t,) length > 0
        return table[:, :3].astype(np.int32), traced, table[traced, 3:]

    found = np.zeros((len(to_score), 3), dtype=np.int64)  # (P, 3) score, end in first, end in second
    on_task = None
    if progress is not None:
        sizes = [sum(len(ys) for _, _, ys in task) for task in tasks]  # pairs of each task
        count = _counter(progress, "aligning", len(to_score))
        on_task = lambda b: count(sizes[b])  # noqa: E731
    parts = map_blocks(score, len(tasks), threads, processes=use_processes(threads, PAIR_WEIGHT * len(to_score)),
                       done=on_task)
    order = np.concatenate([p for task in tasks for _, p, _ in task]) if parts else np.zeros(0, np.int64)  # (P,)
    if parts:
        found[order] = np.concatenate([part[0] for part in parts])
    starts = np.cumsum([0] + [len(part[0]) for part in parts])[:-1]  # each task's first position in `order`
    done = order[np.concatenate([part[1] + s for part, s in zip(parts, starts)])] if parts else order  # (T,)
    traced = np.concatenate([part[2] for part in parts]) if parts else np.zeros((0, 9), np.int64)  # (T, 9)
    raw = np.zeros(len(flat_rows), dtype=np.int64)  # (C,) 0 where not aligned
    ends = np.full((len(flat_rows), 2), -1, dtype=np.int64)  # (C, 2) end cell in the traced orientation; -1: unknown
    raw[to_score], ends[to_score] = found[:, 0], found[:, 1:]
    traced_at = np.full(len(flat_rows), -1, dtype=np.int64)  # (C,) row in `traced`; -1: not traced
    traced_at[to_score[done]] = np.arange(len(done))
    copies = np.flatnonzero(source >= 0)
    raw[copies] = raw[source[copies]]  # partners' entries are scored ones (a copy's source comes first)
    # a pair of two queries is one pair of sequences (and its end cell holds for both) when each query is its own
    # row's sequence
    own = np.array([bool(row_of) and int(query_rows[i]) >= 0 and cleaned[i] == target(int(query_rows[i]))
                    for i in range(n)], dtype=bool)
    same = copies[own[owner[copies]] & own[owner[source[copies]]]]
    ends[same] = ends[source[same]]
    traced_at[same] = traced_at[source[same]]

    # 4. E-values (of the aligned pairs with a positive score: the others are no hits) and ranking
    hit = np.flatnonzero(kept & (raw > 0))  # (A,)
    qlen = np.fromiter(map(len, cleaned), np.int64, n)
    ev = evalues(raw[hit], query_length=qlen[owner[hit]], db_residues=db_residues, db_sequences=db_sequences,
                 stats=scoring.stats, target_lengths=lengths[hit])  # (A,)
    hit = hit[ev <= evalue]
    evs = np.zeros(len(flat_rows))  # (C,) E-values where they count
    evs[hit] = ev[ev <= evalue]
    pos = np.arange(len(flat_rows)) - off[owner]  # (C,) rank in the query's candidate list
    hit = hit[np.lexsort((pos[hit], -raw[hit], owner[hit]))]  # per query: bit score descending, then candidate order
    if max_hits is not None:
        starts = np.searchsorted(owner[hit], np.arange(n))  # (n,) each query's first hit
        hit = hit[np.arange(len(hit)) - starts[owner[hit]] < max_hits]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(owner[hit], minlength=n))]).astype(np.int64)
    return AlignedHits(offsets=offsets, targets=flat_rows[hit], raw=raw[hit], bits=bit_scores(raw[hit], scoring.stats),
                       evalues=evs[hit],
                       cand_rank=pos[hit], n_candidates=len(flat_rows), n_aligned=int(kept.sum()), ends=ends[hit],
                       traced=traced if trace_whole else None,
                       traced_at=traced_at[hit] if trace_whole else None)


def _check_arguments(queries, targets, candidates, *, scoring, evalue, max_hits, query_rows, db_residues,
                     db_sequences) -> None:
    """The checks of :func:`align_candidates` that need no alignment (its docstring lists them)."""
    if not isinstance(scoring, ScoringSystem):
        raise TypeError(f"scoring must be a ScoringSystem (phylocl.align.scoring_system('protein') or 'dna'), got "
                        f"{type(scoring).__name__} {scoring!r}")
    for name, value, one in (("queries", queries, "query"), ("targets", targets, "target"),
                             ("candidates", candidates, "candidate list")):
        if isinstance(value, (str, bytes)):
            raise TypeError(f"{name} must be a list, not one {type(value).__name__} (each letter would be one "
                            f"{one}): wrap it, e.g. [{value[:20]!r}]")
    if len(candidates) != len(queries):
        raise ValueError(f"{len(candidates)} candidate lists for {len(queries)} queries")
    for i, q in enumerate(queries):
        if not isinstance(q, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"query {i}: expected a str, got {type(q).__name__}")
    for i, c in enumerate(candidates):
        if isinstance(c, (str, bytes)) or not (isinstance(c, np.ndarray) or hasattr(c, "__len__")):
            raise TypeError(f"candidates[{i}] must be a list or an array of target numbers (one list per query), "
                            f"got {type(c).__name__} {c!r}")
    if not (is_real(evalue) and evalue > 0):  # NaN and -1 kept nothing, silently
        raise ValueError(f"evalue must be a number > 0 (inf keeps every hit), got {evalue!r}")
    if max_hits is not None and whole("max_hits", max_hits) < 0:
        raise ValueError(f"max_hits must be >= 0 or None, got {max_hits!r}")
    positive_int("db_residues", db_residues, optional=True)
    positive_int("db_sequences", db_sequences, optional=True)
    if query_rows is not None and len(query_rows) != len(queries):
        raise ValueError(f"query_rows must hold one row per query ({len(queries)}), got {len(query_rows)}")


def _partners(rows: np.ndarray, kept: np.ndarray, owner: np.ndarray, off: np.ndarray,
              query_rows: Sequence[int] | None, row_of: dict[int, int]) -> np.ndarray:
    """``(C,)`` int64: for each flat candidate (``rows``, ``kept`` by the filter, of query ``owner``) the flat
    candidate whose score it reads, ``-1`` where it is scored itself: a pair of two queries (``row_of``: database row ->
    query) that both keep it is scored by the query listed first, and the other reads that score."""
    source = np.full(len(rows), -1, dtype=np.int64)
    if not row_of or not len(rows):
        return source
    me = np.asarray(query_rows, dtype=np.int64)  # (n,) each query's row (-1: none)
    keys = np.fromiter(row_of.keys(), np.int64, len(row_of))
    vals = np.fromiter(row_of.values(), np.int64, len(row_of))
    order = np.argsort(keys)
    keys, vals = keys[order], vals[order]
    at = np.minimum(np.searchsorted(keys, rows), len(keys) - 1)
    partner = np.where((keys[at] == rows) & (me[owner] >= 0), vals[at], owner)  # (C,) the query of the row
    ask = np.flatnonzero(kept & (partner < owner))  # its partner comes first: does the partner keep this query's row?
    span = int(max(rows.max(), me.max())) + 1
    have = np.flatnonzero(kept)
    code = owner[have] * span + rows[have]  # (K,) query, row of each kept candidate (rows unique per query)
    by_code = np.argsort(code)
    want = partner[ask] * span + me[owner[ask]]
    at = np.minimum(np.searchsorted(code[by_code], want), len(code) - 1)
    hit = code[by_code][at] == want
    source[ask[hit]] = have[by_code[at[hit]]]
    return source


def _run_queries(fn, n: int, threads: int, pairs: int, done: Callable[[int], None] | None = None) -> list:
    """``[fn(i) for i in range(n)]``: one query per task in a thread pool, or :data:`PROCESS_BLOCKS` contiguous
    blocks of queries per worker process when there is enough work (``pairs``, in filter calls:
    :func:`~phylocl.align.workers.use_processes`; one worker or one query: in this thread). ``done``: called with
    the number of queries of each part once it is in (progress)."""
    if not use_processes(threads, pairs):
        return map_blocks(fn, n, threads, processes=False, done=None if done is None else lambda _: done(1))
    n_blocks = min(n, PROCESS_BLOCKS * threads)
    bounds = [b * n // n_blocks for b in range(n_blocks + 1)]
    blocks = map_blocks(lambda b: [fn(i) for i in range(bounds[b], bounds[b + 1])], n_blocks, threads, processes=True,
                        done=None if done is None else lambda b: done(bounds[b + 1] - bounds[b]))
    return [r for block in blocks for r in block]


def _counter(progress: Callable[[str, int, int], None], phase: str, total: int) -> Callable[[int], None]:
    """A ``done(k)`` that adds ``k`` units of ``phase`` and reports the running count to ``progress``."""
    state = [0]
    progress(phase, 0, total)

    def add(k: int) -> None:
        state[0] += k
        progress(phase, state[0], total)

    return add


# targets, raw, bits, evalues, cand_rank, the two coordinates of ends
HIT_DTYPES = (np.int64, np.int64, np.float64, np.float64, np.int64, np.int64, np.int64)
PAIRS_PER_TASK = 256  # pairs per scoring task (whole groups of one first sequence)


def _pair_tasks(strings: Sequence[str], first: np.ndarray, second: np.ndarray,
                key: np.ndarray) -> list[list[tuple[int, np.ndarray, list[int]]]]:
    """Pairs ``(P,)`` (numbers in ``strings`` of each pair's first and second sequence) grouped by first sequence
    (``key``: equal for equal first sequences) as ``(first, pair numbers, seconds)`` groups, cut into tasks of whole
    groups of about :data:`PAIRS_PER_TASK` pairs each."""
    return [[(int(first[group[0]]), group, second[group].tolist()) for group in task]
            for task in grouped_tasks(key, PAIRS_PER_TASK)]


def stack_hits(parts: Sequence[tuple], dtypes: Sequence) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per-query tuples of equal-length hit columns -> CSR ``offsets`` ``(Q + 1,)`` int64 and each of the first
    ``len(dtypes)`` columns concatenated over the queries as ``dtypes[j]`` (what :class:`AlignedHits` holds)."""
    offsets = np.concatenate([[0], np.cumsum([len(p[0]) for p in parts])]).astype(np.int64)
    columns = [np.concatenate([p[j] for p in parts]).astype(dt) if parts else np.zeros(0, dt)
               for j, dt in enumerate(dtypes)]
    return offsets, columns

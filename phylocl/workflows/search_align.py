"""The alignment stage of ``phylocl search``: each query's ``--candidates`` from the embedding (or sparse index) are
aligned (:mod:`phylocl.align`), hits with E-value above ``--evalue`` dropped, the rest ranked by bit score and the
best ``-k`` written, as TSV or BLAST tabular.

TSV columns: ``query target score rank bitscore evalue``, where ``score`` is still the embedding's cosine similarity
of the pair (the prefilter's score) and ``rank`` follows the bit score. ``blast6``: the twelve columns of
:mod:`phylocl.align.blast6`. The traceback (``blast6`` only) is computed for the written hits only
(:func:`~phylocl.align.traceback.trace_alignment`, once per pair: a pair of two queries of one buffer is traced
once and mirrored); a written pair whose traceback would need more than :data:`TRACEBACK_CELLS` dynamic-programming
cells (two sequences of over ~15,800 residues each) stops the run with one line naming the pair: ``--format tsv``
needs no traceback and scores any length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TextIO

import numpy as np

from phylocl.align import (
    align_candidates,
    blast6_line,
    format_evalue,
)
from phylocl.align.scoring import ScoringSystem
from phylocl.align.strands import align_strands, minus_coordinates, reverse_complement
from phylocl.align.traceback import AlignmentSummary, canonical_first, mirror, trace_alignments
from phylocl.align.workers import PAIR_WEIGHT, map_blocks, use_processes
from phylocl.errors import InputError

__all__ = ["ALIGNED_HEADER", "FORMATS", "TRACEBACK_CELLS", "AlignStage"]

ALIGNED_HEADER = "query\ttarget\tscore\trank\tbitscore\tevalue\n"
TRACEBACK_CELLS = 250_000_000  # kept from pyopal's full mode (~1 GB there); parasail: ~2.5 bytes per traced cell
TRACE_CHUNK = 256  # pairs per thread-pool task (whole groups of one first sequence)
FORMATS = ("tsv", "blast6")


@dataclass
class AlignStage:
    """Aligns one buffer of queries at a time and writes their hits (module docstring).

    Attributes:
        scoring: the scoring system; fetch: database row -> sequence; db_ids: row -> id.
        db_residues, db_sequences: database size for the E-values.
        k: hits written per query; evalue: E-value threshold; out_format: ``tsv`` or ``blast6``; threads: workers.
        filter_pvalue: the ungapped (MSV) filter's P-value threshold (:mod:`phylocl.align.msv`; ``None``: none).
        strand: ``plus``, or ``both`` for DNA (:mod:`phylocl.align.strands`: the better strand per target; minus-strand
            hits are written with ``sstart > send`` in ``blast6``).
    """

    scoring: ScoringSystem
    fetch: Callable[[int], str]
    db_ids: Sequence[str]
    db_residues: int
    db_sequences: int
    k: int
    evalue: float
    out_format: str
    threads: int
    filter_pvalue: float | None = None
    strand: str = "plus"

    def header(self) -> str:
        return ALIGNED_HEADER if self.out_format == "tsv" else ""

    def write(self, f: TextIO, query_ids: Sequence[str], query_seqs: Sequence[str], scores: np.ndarray,
              rows: np.ndarray, query_rows: Sequence[int] | None = None) -> int:
        """Align queries ``(b,)`` with their candidate ``rows`` ``(b, N)`` (cosines ``scores`` ``(b, N)``), write
        their hits; returns the number written. ``query_rows``: database row of each query when the queries are
        the database's own sequences (a pair of two is then aligned once)."""
        queries = [self._clean(s, q) for s, q in zip(query_seqs, query_ids)]
        align = align_candidates if self.strand == "plus" else partial(align_strands, strand=self.strand)
        hits = align(queries, self.fetch, rows, scoring=self.scoring, db_residues=self.db_residues,
                     db_sequences=self.db_sequences, evalue=self.evalue, max_hits=self.k, threads=self.threads,
                     clean=False, query_rows=query_rows, filter_pvalue=self.filter_pvalue)
        tracebacks = self._tracebacks(query_ids, queries, hits, query_rows) if self.out_format == "blast6" else None
        n = 0
        for i, qid in enumerate(query_ids):
            targets, _, bits, evs = hits.query(i)
            cand = hits.cand_rank[hits.offsets[i]:hits.offsets[i + 1]]
            for rank, (t, b, e, c) in enumerate(zip(targets.tolist(), bits.tolist(), evs.tolist(), cand.tolist()),
                                                start=1):
                if tracebacks is None:
                    f.write(f"{qid}\t{self.db_ids[t]}\t{scores[i, c]:.9g}\t{rank}\t{b:.1f}\t{format_evalue(e)}\n")
                else:
                    f.write(blast6_line(qid, self.db_ids[t], tracebacks[i][rank - 1], e, b))
            n += len(targets)
        return n

    def _clean(self, seq: str, qid: str) -> str:
        from phylocl.align import clean_sequence

        try:
            return clean_sequence(seq, self.scoring, what=f"query {qid!r}")
        except ValueError as err:
            raise InputError(str(err)) from None

    def _tracebacks(self, query_ids, queries: list[str], hits, query_rows: Sequence[int] | None = None) -> list[list]:
        """The :class:`~phylocl.align.AlignmentSummary` of every hit, per query. Each pair is traced once in the
        orientation :func:`~phylocl.align.traceback.trace_alignment` chooses and mirrored for the other (a pair of
        two queries of an all-against-all buffer is met twice), so the result does not depend on ``query_rows``.
        A minus-strand hit (``hits.minus``, both strands) is the query's reverse complement traced against the
        target, its own pair, written in blastn's coordinates (:func:`~phylocl.align.strands.minus_coordinates`)."""
        minus = getattr(hits, "minus", None)
        ends = hits.ends if hits.ends is not None else np.full((len(hits.targets), 2), -1, dtype=np.int64)
        jobs: dict[tuple, tuple] = {}  # pair key -> (first, second, score, end cell), traced orientation
        wanted = []  # per query: [(key, mirrored)] in hit order
        for i, q in enumerate(queries):
            me = int(query_rows[i]) if query_rows is not None else -1
            mine = []
            targets, raw = hits.query(i)[:2]
            strands = minus[hits.offsets[i]:hits.offsets[i + 1]].tolist() if minus is not None else [False] * len(raw)
            cells = ends[hits.offsets[i]:hits.offsets[i + 1]].tolist()  # (h, 2) in the traced orientation
            for t, score, on_minus, end in zip(targets.tolist(), raw.tolist(), strands, cells):
                seq = self.fetch(t)
                if len(q) * len(seq) > TRACEBACK_CELLS:
                    raise InputError(f"the alignment of query {query_ids[i]!r} ({len(q):,} residues) with "
                                     f"{self.db_ids[t]!r} ({len(seq):,}) is too large for a traceback "
                                     f"(over {TRACEBACK_CELLS:,} cells); use --format tsv, which needs none")
                x = reverse_complement(q) if on_minus else q
                first = canonical_first(x, seq, self.scoring)
                key = ("minus", i, t) if on_minus else ("rows", min(me, t), max(me, t)) if me >= 0 else ("hit", i, t)
                jobs.setdefault(key, (x, seq, score, end) if first else (seq, x, score, end))
                mine.append((key, not first))
            wanted.append(mine)
        groups: dict[str, list[tuple]] = {}  # first sequence -> its pairs' keys: its score profiles are built once
        for key, (x, *_) in jobs.items():
            groups.setdefault(x, []).append(key)
        tasks, task, size = [], [], 0
        for group in groups.items():
            task.append(group)
            size += len(group[1])
            if size >= TRACE_CHUNK:
                tasks.append(task)
                task, size = [], 0
        if task:
            tasks.append(task)

        processes = use_processes(self.threads, PAIR_WEIGHT * len(jobs))

        def run(b: int) -> list:
            out = []
            for x, keys in tasks[b]:
                pairs = [jobs[k] for k in keys]
                found = trace_alignments(x, [p[1] for p in pairs], self.scoring, [p[2] for p in pairs],
                                         [p[3] for p in pairs])
                out.extend(zip(keys, [tuple(vars(a).values()) for a in found] if processes else found))  # tuples pickle fast
            return out

        done = {}
        for part in map_blocks(run, len(tasks), self.threads, processes=processes):
            done.update(part)
        if processes:
            done = {k: AlignmentSummary(*v) for k, v in done.items()}
        out = [[mirror(done[k]) if flip else done[k] for k, flip in mine] for mine in wanted]
        if minus is not None:  # minus-strand summaries, traced on the reverse complement, in blastn's coordinates
            out = [[minus_coordinates(a, len(queries[i])) if k[0] == "minus" else a for a, (k, _) in zip(row, wanted[i])]
                   for i, row in enumerate(out)]
        return out

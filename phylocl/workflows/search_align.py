"""The alignment stage of ``phylocl search``: each query's ``--candidates`` from the embedding (or sparse index) are
aligned (:mod:`phylocl.align`), hits with E-value above ``--evalue`` dropped, the rest ranked by bit score and the
best ``-k`` written, as TSV or BLAST tabular.

TSV columns: ``query target score rank bitscore evalue``, where ``score`` is still the embedding's cosine similarity
of the pair (the prefilter's score) and ``rank`` follows the bit score. ``blast6``: the twelve columns of
:mod:`phylocl.align.blast6`, or those a ``"6 COLUMN ..."`` format names (:func:`~phylocl.align.blast6.parse_format`). The traceback (``blast6`` only) is computed for the written hits only
(:func:`~phylocl.align.traceback.trace_alignment`, once per pair: a pair of two queries of one buffer is traced
once and mirrored), on the rectangle its alignment spans; a written pair whose alignment spans more than
:data:`~phylocl.align.traceback.TRACE_CELLS` dynamic-programming cells (an alignment of over ~15,800 columns in both
sequences) stops the run with one line naming the pair: ``--format tsv`` needs no traceback and scores any length.
A format naming a letter column (``positive ppos qseq sseq btop``) keeps the tracebacks' CIGAR operations and reads
the letters from them (:mod:`phylocl.align.aligned_letters`): the same alignments, so the other columns do not change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TextIO

import numpy as np

from phylocl.align import align_candidates, clean_sequence, format_evalue
from phylocl.align.blast6 import BLAST6_COLUMNS, LETTER_COLUMNS, blast6_fields, parse_format
from phylocl.align.aligned_letters import AlignedLetters, aligned_letters
from phylocl.align.sequences import string_ranks
from phylocl.align.scoring import ScoringSystem
from phylocl.align.strands import align_strands, reverse_complement
from phylocl.align.traceback import (TABLE_COLUMNS, TRACE_CELLS, TracebackTooLarge, mirror_ops, mirror_rows,
                                     summary_of, trace_tables, traces_whole)
from phylocl.align.workers import PAIR_WEIGHT, grouped_tasks, map_blocks, use_processes
from phylocl.arguments import setting
from phylocl.errors import InputError
from phylocl.retrieval.hits import own_rows

__all__ = ["ALIGNED_HEADER", "AlignStage"]

ALIGNED_HEADER = "query\ttarget\tscore\trank\tbitscore\tevalue\n"
TRACE_CHUNK = 256  # pairs per thread-pool task (whole groups of one first sequence)


@dataclass
class AlignStage:
    """Aligns one buffer of queries at a time and writes their hits (module docstring).

    Attributes:
        scoring: the scoring system; fetch: database row -> sequence; db_ids: row -> id.
        db_residues, db_sequences: database size for the E-values.
        k: hits written per query; evalue: E-value threshold; out_format: ``tsv``, ``blast6`` or ``"6 COLUMN ..."``
            (:func:`~phylocl.align.blast6.parse_format`); threads: workers.
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

    def __post_init__(self) -> None:
        self.kind, self.columns = parse_format(self.out_format)  # "tsv" / "blast6", the tabular columns
        self.letters = bool(set(self.columns) & set(LETTER_COLUMNS))  # the alignments' operations are needed

    def header(self) -> str:
        return ALIGNED_HEADER if self.kind == "tsv" else ""

    def write(self, f: TextIO, query_ids: Sequence[str], query_seqs: Sequence[str], scores: np.ndarray,
              rows: np.ndarray, query_rows: Sequence[int] | None = None) -> int:
        """Align queries ``(b,)`` with their candidate ``rows`` ``(b, N)`` (cosines ``scores`` ``(b, N)``), write
        their hits; returns the number written. ``query_rows``: database row of each query when the queries are
        the database's own sequences (a pair of two is then aligned once)."""
        queries = [self._clean(s, q) for s, q in zip(query_seqs, query_ids)]
        align = align_candidates if self.strand == "plus" else partial(align_strands, strand=self.strand)
        # every hit is traced when -k holds all the candidates: the scoring pass may then trace whole pairs itself
        # (not when the letters are written: the tracebacks of _trace_rows keep the alignments' operations)
        trace_whole = (self.kind == "blast6" and self.k >= np.shape(rows)[1] and traces_whole(self.scoring)
                       and not self.letters)
        hits = align(queries, self.fetch, rows, scoring=self.scoring, db_residues=self.db_residues,
                     db_sequences=self.db_sequences, evalue=self.evalue, max_hits=self.k, threads=self.threads,
                     clean=False, query_rows=query_rows, filter_pvalue=self.filter_pvalue, trace_whole=trace_whole)
        if self.kind == "blast6":
            return self._write_blast6(f, query_ids, queries, hits, query_rows)
        n = 0
        scores = np.clip(scores, -1.0, 1.0)  # the prefilter's cosines: a float32 sum can pass 1 by an ulp
        for i, qid in enumerate(query_ids):
            targets, _, bits, evs = hits.query(i)
            cand = hits.cand_rank[hits.offsets[i]:hits.offsets[i + 1]]
            for rank, (t, b, e, c) in enumerate(zip(targets.tolist(), bits.tolist(), evs.tolist(), cand.tolist()),
                                                start=1):
                f.write(f"{qid}\t{self.db_ids[t]}\t{scores[i, c]:.9g}\t{rank}\t{b:.1f}\t{format_evalue(e)}\n")
            n += len(targets)
        return n

    def _write_blast6(self, f: TextIO, query_ids, queries: list[str], hits, query_rows) -> int:
        """The hits as :func:`~phylocl.align.blast6_line` writes them, from :meth:`_trace_rows`' tables."""
        met = self._targets(hits)  # the hits' target sequences, fetched once for the traces, letters and slen
        if self.letters:
            table, ops, counts = self._trace_rows(query_ids, queries, hits, query_rows, ops=True, met=met)  # (H, 9)
            return self._write_columns(f, query_ids, queries, hits, table, met,
                                       self._letters(queries, hits, table, ops, counts, met))
        table = self._trace_rows(query_ids, queries, hits, query_rows, met=met)  # (H, 9)
        if self.columns != BLAST6_COLUMNS:
            return self._write_columns(f, query_ids, queries, hits, table, met)
        ids = self.db_ids
        lines = []
        for qid, t, row, e, b in zip(np.repeat(np.asarray(query_ids, dtype=object), np.diff(hits.offsets)).tolist(),
                                     hits.targets.tolist(), table.tolist(), hits.evalues.tolist(),
                                     hits.bits.tolist()):
            _, length, identical, mismatch, gapopen, qstart, qend, sstart, send = row
            pident = 100.0 * identical / length if length else 0.0
            lines.append(f"{qid}\t{ids[t]}\t{pident:.3f}\t{length}\t{mismatch}\t{gapopen}\t{qstart}\t{qend}\t"
                         f"{sstart}\t{send}\t{format_evalue(e)}\t{b:.1f}\n")
        f.write("".join(lines))
        return len(lines)

    def _write_columns(self, f: TextIO, query_ids, queries: list[str], hits, table: np.ndarray, met: tuple,
                       letters: AlignedLetters | None = None) -> int:
        """The hits with the columns of a ``"6 COLUMN ..."`` format (:func:`~phylocl.align.blast6.blast6_fields`);
        ``met``: the hits' targets (:meth:`_targets`); ``letters``: the hits' aligned letters (:meth:`_letters`),
        when the format names a letter column."""
        owner = np.repeat(np.arange(len(queries)), np.diff(hits.offsets))  # (H,) query of each hit
        targets = hits.targets.tolist()
        _, t_at, seqs = met
        slen = np.fromiter(map(len, seqs), np.int64, len(seqs))[t_at].tolist()  # (H,) each hit's target length
        minus = getattr(hits, "minus", None)
        if self.scoring.alphabet != "dna":
            strands = [None] * len(targets)
        elif minus is None:
            strands = ["plus"] * len(targets)
        else:
            strands = ["minus" if m else "plus" for m in minus.tolist()]
        lines = []
        if letters is None:
            per_hit = [None] * len(targets)
        else:
            per_hit = list(zip(letters.qseq, letters.sseq, letters.positive.tolist(), letters.btop))
        for q, t, row, e, b, s, strand, aligned in zip(owner.tolist(), targets, table.tolist(), hits.evalues.tolist(),
                                                       hits.bits.tolist(), slen, strands, per_hit):
            lines.append("\t".join(blast6_fields(
                self.columns, qseqid=query_ids[q], sseqid=self.db_ids[t], row=row, evalue=e, bitscore=b,
                qlen=len(queries[q]), slen=s, strand=strand, letters=aligned)) + "\n")
        f.write("".join(lines))
        return len(lines)

    def self_rows(self, rows: np.ndarray, query_ids: Sequence[str], query_seqs: Sequence[str | None]) -> np.ndarray:
        """``(b,)`` the row among each query's candidate ``rows`` ``(b, K)`` with the query's own id when it also
        holds the query's sequence (as the aligner reads both), else ``-1``: a query meets itself only there, and a
        same-id row of another sequence (two genomes' ``PROKKA_00001``) is a hit like any other."""
        own = own_rows(self.db_ids, rows, query_ids)  # (b,)
        for i in np.flatnonzero(own >= 0).tolist():
            seq = query_seqs[i]
            if seq is not None and self._clean(seq, query_ids[i]) != clean_sequence(self.fetch(int(own[i])),
                                                                                     self.scoring):
                own[i] = -1
        return own

    def _clean(self, seq: str, qid: str) -> str:
        try:
            return clean_sequence(seq, self.scoring, what=f"query {qid!r}")
        except ValueError as err:
            raise InputError(str(err)) from None

    def _tracebacks(self, query_ids, queries: list[str], hits, query_rows: Sequence[int] | None = None) -> list[list]:
        """The :class:`~phylocl.align.AlignmentSummary` of every hit, per query (:meth:`_trace_rows` as
        summaries)."""
        table = self._trace_rows(query_ids, queries, hits, query_rows).tolist()
        return [[summary_of(r) for r in table[hits.offsets[i]:hits.offsets[i + 1]]] for i in range(len(queries))]

    def _letters(self, queries: list[str], hits, table: np.ndarray, ops: np.ndarray,
                 counts: np.ndarray, met: tuple) -> AlignedLetters:
        """The aligned letters of the hits (:func:`~phylocl.align.aligned_letters.aligned_letters`) from :meth:`_trace_rows`'
        table and operations (``met``: the hits' targets, :meth:`_targets`). A minus-strand hit is written as blastn
        writes it: the query on its plus strand and the target reverse-complemented, read from ``qstart`` (its
        operations come reversed from :meth:`_trace_rows`)."""
        owner = np.repeat(np.arange(len(queries)), np.diff(hits.offsets))  # (H,) query of each hit
        minus = getattr(hits, "minus", None)
        on_minus = minus.astype(bool) if minus is not None else np.zeros(len(owner), dtype=bool)  # (H,)
        _, t_at, seqs = met
        rc_of = np.unique(t_at[on_minus])  # targets read reverse-complemented
        strings = list(queries) + seqs + [reverse_complement(seqs[i]) for i in rc_of.tolist()]
        tlen = np.fromiter(map(len, seqs), np.int64, len(seqs))[t_at]  # (H,)
        subject = np.where(on_minus, len(queries) + len(seqs) + np.searchsorted(rc_of, t_at),
                           len(queries) + t_at)  # (H,)
        sstart = np.where(on_minus, tlen - table[:, 7], table[:, 7] - 1)  # (H,) 0-based in the subject as read
        return aligned_letters(strings, owner, subject, table[:, 5] - 1, sstart, ops, counts, self.scoring)

    def _targets(self, hits) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """The distinct targets of ``hits``, fetched once: ``(rows (T,) ascending, each hit's index in them (H,),
        their sequences)``."""
        targets, t_at = np.unique(hits.targets, return_inverse=True)
        return targets, t_at.reshape(-1), [self.fetch(t) for t in targets.tolist()]

    def _trace_rows(self, query_ids, queries: list[str], hits, query_rows: Sequence[int] | None = None, *,
                    ops: bool = False, met: tuple | None = None):
        """``(H, 9)`` int64: every hit's alignment as a :func:`~phylocl.align.traceback.trace_table` row, in the
        query's orientation. Each pair is traced once in the orientation :func:`~phylocl.align.traceback.trace_alignment`
        chooses and mirrored for the other (a pair of two queries of an all-against-all buffer is met twice), so the
        result does not depend on ``query_rows``; the end cells the scoring pass found (``hits.ends``) spare the
        tracebacks their score pass. A minus-strand hit (``hits.minus``, both strands) is the query's reverse
        complement traced against the target, its own pair, written in blastn's coordinates
        (:func:`~phylocl.align.strands.minus_coordinates`). A pair the scoring pass traced (``hits.traced``) is not
        traced again.

        ``ops``: ``(table, operations, counts)``, also each hit's CIGAR operations (``(O,)`` uint32, hit after
        hit, :func:`~phylocl.align.traceback.trace_tables`) in the query's orientation and, for a minus-strand hit,
        reversed (the alignment of the query with the target's reverse complement, read from ``qstart``);
        ``counts`` ``(H,)`` operations per hit. Every pair is then traced here (the scoring pass's traces keep no
        operations). ``met``: the hits' targets as :meth:`_targets` gives them (fetched here when ``None``)."""
        minus = getattr(hits, "minus", None)
        n_hits = len(hits.targets)
        owner = np.repeat(np.arange(len(queries)), np.diff(hits.offsets))  # (H,) query of each hit
        on_minus = minus.astype(bool) if minus is not None else np.zeros(n_hits, dtype=bool)  # (H,)
        ends = hits.ends if hits.ends is not None else np.full((n_hits, 2), -1, dtype=np.int64)  # (H, 2)
        # the sequences met: queries, the reverse complements of those with minus-strand hits, the targets
        rc_of = np.unique(owner[on_minus])
        _, t_at, seqs = self._targets(hits) if met is None else met
        strings = list(queries) + [reverse_complement(queries[i]) for i in rc_of.tolist()] + seqs
        x = np.where(on_minus, len(queries) + np.searchsorted(rc_of, owner), owner)  # (H,) query side in strings
        y = len(queries) + len(rc_of) + t_at  # (H,) target side
        if self.scoring.symmetric:  # canonical_first: the smaller sequence first, through the strings' sorted order
            rank = string_ranks(strings)
            flip = rank[x] > rank[y]  # (H,) the query side is traced second
        else:
            rank, flip = np.arange(len(strings)), np.zeros(n_hits, dtype=bool)
        # one job per pair: a minus-strand hit is its own; a pair of two queries' rows (query_rows) is met twice
        me = np.asarray(query_rows, dtype=np.int64)[owner] if query_rows is not None else np.full(n_hits, -1)
        rows_pair = (me >= 0) & ~on_minus
        kind = np.where(on_minus, 2, np.where(rows_pair, 0, 1))
        a_key = np.where(rows_pair, np.minimum(me, hits.targets), owner)
        b_key = np.where(rows_pair, np.maximum(me, hits.targets), hits.targets)
        _, rep, job_of = np.unique(np.stack([kind, a_key, b_key], axis=1), axis=0, return_index=True,
                                   return_inverse=True)  # rep: each job's first hit
        job_of = job_of.reshape(-1)
        firsts, seconds = np.where(flip, y, x)[rep], np.where(flip, x, y)[rep]  # (J,) traced orientation
        job_scores, job_ends = hits.raw[rep].tolist(), ends[rep].tolist()
        done = np.zeros((len(firsts), len(TABLE_COLUMNS)), dtype=np.int64)  # (jobs, 9) traced orientation
        at = hits.traced_at[rep] if getattr(hits, "traced_at", None) is not None else np.full(len(rep), -1)  # (J,)
        known = (at >= 0) & (not ops)  # traced by the scoring pass, in this orientation
        if known.any():
            done[known] = hits.traced[at[known]]
        todo = np.flatnonzero(~known)  # (J',)
        tasks = [[(strings[firsts[todo[group[0]]]], todo[group].tolist()) for group in task]  # one first sequence's
                 for task in grouped_tasks(rank[firsts[todo]], TRACE_CHUNK)]                # jobs together
        seconds = seconds.tolist()

        def run(b: int) -> np.ndarray:
            try:
                return trace_tables([(first, [strings[seconds[j]] for j in group], [job_scores[j] for j in group],
                                      [job_ends[j] for j in group]) for first, group in tasks[b]], self.scoring,
                                    ops=ops)
            except TracebackTooLarge as err:  # its row in this block -> its job
                jobs = [j for _, group in tasks[b] for j in group]
                raise TracebackTooLarge(err.lx, err.ly, err.cells, jobs[err.at]) from None

        processes = use_processes(self.threads, PAIR_WEIGHT * len(todo))
        try:
            parts = map_blocks(run, len(tasks), self.threads, processes=processes)
        except TracebackTooLarge as err:
            h = int(np.flatnonzero(job_of == err.at)[0])  # the job's first hit
            qlen, tlen = len(queries[owner[h]]), len(seqs[t_at[h]])
            raise InputError(f"the alignment of query {query_ids[owner[h]]!r} ({qlen:,} residues) with "
                             f"{self.db_ids[int(hits.targets[h])]!r} ({tlen:,}) spans {err.cells:,} cells, too "
                             f"many for a traceback (over {TRACE_CELLS:,}); use {setting('out_format', 'tsv')}, "
                             "which needs none") from None
        order = np.concatenate([g for task in tasks for _, g in task]) if parts else np.zeros(0, np.int64)  # (J',)
        if parts:
            done[order] = np.concatenate([p[0] for p in parts] if ops else parts)
        out = done[job_of]  # (H, 9)
        out[flip] = mirror_rows(out[flip])
        if ops:
            hit_ops, hit_counts = _hit_ops(parts, order, len(firsts), job_of, flip, on_minus)
        if minus is not None and minus.any():  # reverse-complement coordinates in blastn's (minus_coordinates)
            m = np.fromiter(map(len, queries), np.int64, len(queries))[owner]  # (H,)
            on = on_minus & (out[:, 1] > 0)
            qstart, qend, sstart, send = out[on, 5].copy(), out[on, 6].copy(), out[on, 7].copy(), out[on, 8].copy()
            out[on, 5], out[on, 6], out[on, 7], out[on, 8] = m[on] - qend + 1, m[on] - qstart + 1, send, sstart
        return (out, hit_ops, hit_counts) if ops else out


def _hit_ops(parts: list, order: np.ndarray, n_jobs: int, job_of: np.ndarray, flip: np.ndarray,
             reverse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each hit's CIGAR operations from its job's: ``parts`` the :func:`~phylocl.align.traceback.trace_tables`
    results ``(rows, operations, counts)`` of the jobs ``order`` ``(J',)``; ``job_of`` ``(H,)``; ``flip``
    ``(H,)`` hits whose job was traced with the target first (mirrored: ``I`` <-> ``D``), ``reverse`` ``(H,)``
    hits whose operations are read backwards. Returns ``(operations (O,) uint32, counts (H,))``."""
    job_counts = np.zeros(n_jobs, dtype=np.int64)  # (J,)
    job_start = np.zeros(n_jobs, dtype=np.int64)
    flat = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=np.uint32)
    if parts:
        counts = np.concatenate([p[2] for p in parts])  # (J',)
        job_counts[order] = counts
        job_start[order] = np.cumsum(counts) - counts
    counts = job_counts[job_of]  # (H,)
    first = np.cumsum(counts) - counts  # (H,) each hit's first operation in the output
    local = np.arange(int(counts.sum())) - np.repeat(first, counts)  # (O,) position within its hit
    local = np.where(np.repeat(reverse, counts), np.repeat(counts, counts) - 1 - local, local)
    out = flat[np.repeat(job_start[job_of], counts) + local]
    mirrored = np.repeat(flip, counts)
    out[mirrored] = mirror_ops(out[mirrored])
    return out, counts

"""The alignment stage of ``phylocl search``: each query's ``--candidates`` from the embedding (or sparse index) are
aligned (:mod:`phylocl.align`), hits with E-value above ``--evalue`` dropped, the rest ranked by bit score and the
best ``-k`` written, as TSV or BLAST tabular.

TSV columns: ``query target score rank bitscore evalue``, where ``score`` is still the embedding's cosine similarity
of the pair (the prefilter's score) and ``rank`` follows the bit score. ``blast6``: the twelve columns of
:mod:`phylocl.align.blast6`. The traceback (``blast6`` only) is computed for the written hits only; a written pair
whose traceback would need more than :data:`TRACEBACK_CELLS` dynamic-programming cells (two sequences of over
~15,800 residues each; pyopal's full mode would run out of memory) stops the run with one line naming the pair:
``--format tsv`` needs no traceback and scores any length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from phylocl.align import (
    align_candidates,
    blast6_line,
    describe_alignments,
    format_evalue,
)
from phylocl.align.scoring import ScoringSystem
from phylocl.errors import InputError

__all__ = ["ALIGNED_HEADER", "FORMATS", "TRACEBACK_CELLS", "AlignStage"]

ALIGNED_HEADER = "query\ttarget\tscore\trank\tbitscore\tevalue\n"
TRACEBACK_CELLS = 250_000_000  # about 1 GB of pyopal full-mode memory
FORMATS = ("tsv", "blast6")


@dataclass
class AlignStage:
    """Aligns one buffer of queries at a time and writes their hits (module docstring).

    Attributes:
        scoring: the scoring system; fetch: database row -> sequence; db_ids: row -> id.
        db_residues, db_sequences: database size for the E-values.
        k: hits written per query; evalue: E-value threshold; out_format: ``tsv`` or ``blast6``; threads: workers.
        filter_pvalue: the ungapped (MSV) filter's P-value threshold (:mod:`phylocl.align.msv`; ``None``: none).
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

    def header(self) -> str:
        return ALIGNED_HEADER if self.out_format == "tsv" else ""

    def write(self, f: TextIO, query_ids: Sequence[str], query_seqs: Sequence[str], scores: np.ndarray,
              rows: np.ndarray, query_rows: Sequence[int] | None = None) -> int:
        """Align queries ``(b,)`` with their candidate ``rows`` ``(b, N)`` (cosines ``scores`` ``(b, N)``), write
        their hits; returns the number written. ``query_rows``: database row of each query when the queries are
        the database's own sequences (a pair of two is then aligned once)."""
        queries = [self._clean(s, q) for s, q in zip(query_seqs, query_ids)]
        hits = align_candidates(queries, self.fetch, rows, scoring=self.scoring, db_residues=self.db_residues,
                                db_sequences=self.db_sequences, evalue=self.evalue, max_hits=self.k,
                                threads=self.threads, clean=False, query_rows=query_rows,
                                filter_pvalue=self.filter_pvalue)
        tracebacks = self._tracebacks(query_ids, queries, hits) if self.out_format == "blast6" else None
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

    def _tracebacks(self, query_ids, queries: list[str], hits) -> list[list]:
        def one(i: int):
            targets = [self.fetch(int(t)) for t in hits.query(i)[0]]
            for t, seq in zip(hits.query(i)[0].tolist(), targets):
                if len(queries[i]) * len(seq) > TRACEBACK_CELLS:
                    raise InputError(f"the alignment of query {query_ids[i]!r} ({len(queries[i]):,} residues) with "
                                     f"{self.db_ids[t]!r} ({len(seq):,}) is too large for a traceback "
                                     f"(over {TRACEBACK_CELLS:,} cells); use --format tsv, which needs none")
            return describe_alignments(queries[i], targets, self.scoring)

        if self.threads == 1:
            return [one(i) for i in range(len(queries))]
        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(one, range(len(queries))))

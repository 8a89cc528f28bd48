"""Alignment coordinates and counts of the hits that are written (BLAST tabular columns).

:func:`describe_alignments` re-aligns one query with the targets of its written hits in pyopal's ``full`` mode
(one call per query) and reads, from its column string (``M`` identity, ``X`` substitution, ``I``/``D`` a gap in
one sequence), what BLAST's ``-outfmt 6`` reports:

``length``   alignment columns, gaps included
``pident``   100 x identical columns / ``length``
``mismatch`` substitution columns
``gapopen``  gap openings (runs of gap columns; an ``I`` run next to a ``D`` run counts twice, as in BLAST)
``qstart qend sstart send``  1-based inclusive coordinates of the aligned region in query and target
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from phylocl.align.scoring import ScoringSystem

__all__ = ["AlignmentSummary", "describe_alignments"]

_GAP_RUN = re.compile(r"I+|D+")


@dataclass(frozen=True)
class AlignmentSummary:
    """One local alignment, as BLAST tabular output describes it (module docstring); ``score`` is the raw score."""

    score: int
    length: int
    pident: float
    mismatch: int
    gapopen: int
    qstart: int
    qend: int
    sstart: int
    send: int


def describe_alignments(query: str, targets: Sequence[str], scoring: ScoringSystem) -> list[AlignmentSummary]:
    """Summaries of the local alignments of ``query`` with each of ``targets`` (clean sequences, same order)."""
    import pyopal

    if not targets:
        return []
    aligner = scoring.aligner()
    db = pyopal.Database(list(targets), alphabet=aligner.alphabet)
    out = []
    for r in sorted(aligner.align(query, db, mode="full", algorithm="sw"), key=lambda r: r.target_index):
        cols = r.alignment or ""
        length = len(cols)
        ident = cols.count("M")
        out.append(AlignmentSummary(
            score=int(r.score), length=length, pident=100.0 * ident / length if length else 0.0,
            mismatch=cols.count("X"), gapopen=len(_GAP_RUN.findall(cols)),
            qstart=r.query_start + 1 if length else 0, qend=r.query_end + 1 if length else 0,
            sstart=r.target_start + 1 if length else 0, send=r.target_end + 1 if length else 0))
    return out

"""The alignment stage of search: Smith-Waterman scores of each query's candidates, bit scores and E-values.

A layer above :mod:`phylocl.data` and :mod:`phylocl.retrieval` (never models or torch). See docs/retrieval.md,
"Alignment stage"::

    from phylocl.align import align_candidates, scoring_system, describe_alignments
    scoring = scoring_system("protein")                      # BLOSUM62, gaps 11/1, BLAST's lambda and K
    hits = align_candidates(queries, targets, candidates, scoring=scoring, evalue=10)
    targets_of_q0, raw, bits, evalues = hits.query(0)        # best bit score first
"""

from phylocl.align.aligner import AlignedHits, align_candidates, default_threads
from phylocl.align.blast6 import BLAST6_COLUMNS, blast6_line, format_evalue
from phylocl.align.scoring import KarlinAltschul, ScoringSystem, scoring_system
from phylocl.align.sequences import clean_sequence
from phylocl.align.statistics import bit_scores, evalues, length_adjustment
from phylocl.align.strands import align_strands, reverse_complement
from phylocl.align.traceback import AlignmentSummary, describe_alignments

__all__ = ["BLAST6_COLUMNS", "AlignedHits", "AlignmentSummary", "KarlinAltschul", "ScoringSystem", "align_candidates",
           "align_strands", "bit_scores", "blast6_line", "clean_sequence", "default_threads", "describe_alignments",
           "evalues", "format_evalue", "length_adjustment", "reverse_complement", "scoring_system"]

"""BLAST tabular output (``-outfmt 6``, DIAMOND ``--outfmt 6``): twelve tab-separated columns, no header::

    qseqid sseqid pident length mismatch gapopen qstart qend sstart send evalue bitscore

``pident`` with 3 decimals (BLAST's), ``evalue`` with 3 significant digits (``0`` below 1e-300), ``bitscore`` with
1 decimal. Biopython reads it (``Bio.Align.parse(f, "tabular")``, ``Bio.SearchIO.parse(f, "blast-tab")``), and so
does :func:`phylocl.retrieval.hits.read_hits_tsv` with ``**BLAST_TAB``.
"""

from __future__ import annotations

from phylocl.align.traceback import AlignmentSummary

__all__ = ["BLAST6_COLUMNS", "blast6_line", "format_evalue"]

BLAST6_COLUMNS = ("qseqid", "sseqid", "pident", "length", "mismatch", "gapopen", "qstart", "qend", "sstart",
                  "send", "evalue", "bitscore")


def format_evalue(e: float) -> str:
    """An E-value as BLAST-style text: 3 significant digits, ``0`` when it underflows."""
    return "0" if e < 1e-300 else f"{e:.3g}"


def blast6_line(qid: str, sid: str, aln: AlignmentSummary, evalue: float, bitscore: float) -> str:
    """One ``-outfmt 6`` line (with its newline)."""
    return (f"{qid}\t{sid}\t{aln.pident:.3f}\t{aln.length}\t{aln.mismatch}\t{aln.gapopen}\t{aln.qstart}\t"
            f"{aln.qend}\t{aln.sstart}\t{aln.send}\t{format_evalue(evalue)}\t{bitscore:.1f}\n")

"""BLAST tabular output (``-outfmt 6``, DIAMOND ``--outfmt 6``): tab-separated columns, no header. The default
twelve::

    qseqid sseqid pident length mismatch gapopen qstart qend sstart send evalue bitscore

``pident`` with 3 decimals (BLAST's), ``evalue`` with 3 significant digits (``0`` below 1e-300), ``bitscore`` with
1 decimal. Biopython reads it (``Bio.Align.parse(f, "tabular")``, ``Bio.SearchIO.parse(f, "blast-tab")``), and so
does :func:`phylocl.retrieval.hits.read_hits_tsv` with ``**BLAST_TAB``.

Other columns, named as BLAST and DIAMOND name them (``phylocl search --format "6 qseqid sseqid qlen slen
qcovhsp"``, like ``blastp -outfmt "6 ..."``; :data:`FIELDS`), each written as ``blastp``/``blastn`` 2.12 writes it
(tested against them):

``score``    raw alignment score
``nident``   identical columns
``gaps``     gap columns (``length - nident - mismatch``)
``qlen`` ``slen``   query and subject lengths (residues)
``qcovhsp``  percent of the query the alignment covers, ``int(100 (qend - qstart + 1) / qlen + 0.5)``
``scovhsp``  the same for the subject (DIAMOND's column; written like ``qcovhsp``)
``sstrand``  ``plus`` or ``minus`` (DNA); ``N/A`` for protein, as blastp writes it

and the columns of the aligned letters (:data:`LETTER_COLUMNS`, :mod:`phylocl.align.aligned_letters`; computed only when
named: the tracebacks then keep the alignments' operations):

``positive`` columns scoring above 0, identities included, protein ``J`` against another letter not (as blastp;
             for DNA equal to ``nident``)
``ppos``     ``100 positive / length`` with 2 decimals
``qseq`` ``sseq``  the aligned query and subject letters, ``-`` for gaps (upper case; a minus-strand DNA hit: the
             query on its plus strand, the subject reverse-complemented)
``btop``     BLAST traceback operations: identity runs as numbers, other columns as query letter + subject letter

Letters are written as phylocl aligns them, upper case: protein ``B J Z U O`` as given (as blastp writes them),
``*`` as ``X`` (blastp writes ``*``), DNA ``U`` as ``T``. Not available: the titles and taxonomy, and per-subject coverage over several HSPs
(``qcovs``): phylocl writes one alignment per pair.
"""

from __future__ import annotations

from collections.abc import Sequence

from phylocl.align.traceback import AlignmentSummary

__all__ = ["BLAST6_COLUMNS", "FIELDS", "LETTER_COLUMNS", "blast6_line", "blast6_fields", "coverage", "format_evalue",
           "parse_format"]

BLAST6_COLUMNS = ("qseqid", "sseqid", "pident", "length", "mismatch", "gapopen", "qstart", "qend", "sstart",
                  "send", "evalue", "bitscore")
FIELDS = {  # every column --format "6 ..." may name -> its type in phylocl.Searcher's rows
    "qseqid": str, "sseqid": str, "pident": float, "length": int, "mismatch": int, "gapopen": int, "qstart": int,
    "qend": int, "sstart": int, "send": int, "evalue": float, "bitscore": float, "score": int, "nident": int,
    "gaps": int, "qlen": int, "slen": int, "qcovhsp": int, "scovhsp": int, "sstrand": str, "positive": int,
    "ppos": float, "qseq": str, "sseq": str, "btop": str,
}
LETTER_COLUMNS = ("positive", "ppos", "qseq", "sseq", "btop")  # the columns read from the aligned letters
_LETTERS = frozenset(LETTER_COLUMNS)
_TABULAR = ("6", "blast6")  # the first word of a tabular --format


def format_evalue(e: float) -> str:
    """An E-value as BLAST-style text: 3 significant digits, ``0`` when it underflows."""
    return "0" if e < 1e-300 else f"{e:.3g}"


def coverage(start: int, end: int, length: int) -> int:
    """Percent of a sequence of ``length`` residues that the 1-based inclusive span ``start..end`` (either order)
    covers, rounded half up as BLAST rounds ``qcovhsp``; 0 for an empty alignment (``start == 0``)."""
    if start == 0 or length <= 0:
        return 0
    return int(100.0 * (abs(end - start) + 1) / length + 0.5)


def parse_format(text: str) -> tuple[str, tuple[str, ...]]:
    """``(kind, columns)`` of a ``--format`` value: ``tsv`` -> ``("tsv", ())``; ``blast6`` or ``6`` ->
    ``("blast6", BLAST6_COLUMNS)``; ``"6 qseqid sseqid qlen"`` (or ``"blast6 ..."``) -> those columns, in that
    order; ``std`` stands for the twelve and a column named again is dropped, as blastp does. Raises ``ValueError``
    naming an unknown word."""
    if not isinstance(text, str):
        raise ValueError(f"the output format must be a string, got {type(text).__name__}")
    words = text.replace(",", " ").split()
    if words == ["tsv"]:
        return "tsv", ()
    if not words or words[0] not in _TABULAR:
        raise ValueError(f"the output format must be tsv, blast6, or \"6 COLUMN ...\" (BLAST's -outfmt 6 with "
                         f"columns), got {text!r}")
    # "std": the twelve (BLAST's qaccver/saccver are the ids here); a column named twice is written once, as blastp
    columns = tuple(dict.fromkeys(c for w in words[1:] for c in (BLAST6_COLUMNS if w == "std" else (w,))))
    columns = columns or BLAST6_COLUMNS
    unknown = [c for c in columns if c not in FIELDS]
    if unknown:
        raise ValueError(f"unknown tabular column {unknown[0]!r} in the output format; known: std "
                         f"{' '.join(FIELDS)}")
    return "blast6", columns


def blast6_line(qid: str, sid: str, aln: AlignmentSummary, evalue: float, bitscore: float) -> str:
    """One ``-outfmt 6`` line (with its newline)."""
    return (f"{qid}\t{sid}\t{aln.pident:.3f}\t{aln.length}\t{aln.mismatch}\t{aln.gapopen}\t{aln.qstart}\t"
            f"{aln.qend}\t{aln.sstart}\t{aln.send}\t{format_evalue(evalue)}\t{bitscore:.1f}\n")


_TEXT = {  # column -> its text from (qseqid, sseqid, table row, evalue, bitscore, qlen, slen, strand, letters)
    "qseqid": lambda h: h[0], "sseqid": lambda h: h[1],
    "pident": lambda h: f"{100.0 * h[2][2] / h[2][1] if h[2][1] else 0.0:.3f}",
    "length": lambda h: str(h[2][1]), "mismatch": lambda h: str(h[2][3]), "gapopen": lambda h: str(h[2][4]),
    "qstart": lambda h: str(h[2][5]), "qend": lambda h: str(h[2][6]), "sstart": lambda h: str(h[2][7]),
    "send": lambda h: str(h[2][8]), "evalue": lambda h: format_evalue(h[3]), "bitscore": lambda h: f"{h[4]:.1f}",
    "score": lambda h: str(h[2][0]), "nident": lambda h: str(h[2][2]),
    "gaps": lambda h: str(h[2][1] - h[2][2] - h[2][3]), "qlen": lambda h: str(h[5]), "slen": lambda h: str(h[6]),
    "qcovhsp": lambda h: str(coverage(h[2][5], h[2][6], h[5])),
    "scovhsp": lambda h: str(coverage(h[2][7], h[2][8], h[6])),
    "sstrand": lambda h: h[7] or "N/A",
    "positive": lambda h: str(h[8][2]), "ppos": lambda h: f"{100.0 * h[8][2] / h[2][1] if h[2][1] else 0.0:.2f}",
    "qseq": lambda h: h[8][0], "sseq": lambda h: h[8][1], "btop": lambda h: h[8][3],
}


def blast6_fields(columns: Sequence[str], *, qseqid: str, sseqid: str, row: Sequence[int], evalue: float,
                  bitscore: float, qlen: int, slen: int, strand: str | None,
                  letters: tuple[str, str, int, str] | None = None) -> list[str]:
    """The text of ``columns`` for one hit. ``row``: its traceback table row (``score length nident mismatch
    gapopen qstart qend sstart send``, :data:`phylocl.align.traceback.TABLE_COLUMNS`, coordinates as written);
    ``strand``: ``plus`` / ``minus`` for DNA, ``None`` for protein; ``letters``: ``(qseq, sseq, positive, btop)``
    (:class:`~phylocl.align.aligned_letters.AlignedLetters`), needed for the :data:`LETTER_COLUMNS`."""
    if letters is None and not _LETTERS.isdisjoint(columns):
        raise ValueError(f"the columns {' '.join(c for c in columns if c in LETTER_COLUMNS)} need the aligned letters")
    hit = (qseqid, sseqid, row, evalue, bitscore, qlen, slen, strand, letters)
    return [_TEXT[c](hit) for c in columns]

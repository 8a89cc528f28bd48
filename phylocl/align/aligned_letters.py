"""The aligned letters of written hits: BLAST's ``qseq``, ``sseq``, ``btop`` and ``positive`` columns, read from
the CIGAR operations of the traceback that gave the hits' other columns (:func:`~phylocl.align.traceback.trace_tables`
with ``ops=True``), all hits at once in NumPy.

Conventions, as ``blastp`` and ``blastn`` 2.12 write them (checked with the binaries,
``tests/align/test_blast6_letters.py``):

``qseq`` ``sseq``  the aligned parts of query and subject, ``-`` in gap columns, upper case (a lower-case letter is
                   written in upper case); a minus-strand DNA hit is written with the query on its plus strand and
                   the subject reverse-complemented (both read from ``qstart`` on).
``btop``           "Blast traceback operations": a run of identical columns as its length, any other column as its
                   query letter then its subject letter (``-`` for a gap), in ``qseq``'s order: ``10QX9-G40``.
``positive``       identical columns plus substitutions that score above 0 (an identity counts even where the matrix
                   scores it below 0, as ``X``-``X`` or ``O``-``O`` under BLOSUM62), except ``J`` against another
                   letter, which blastp never counts (:meth:`~phylocl.align.scoring.ScoringSystem.positive_table`);
                   for DNA this is ``nident`` (no two different letters score above 0 in blastn's scoring).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from phylocl.align.parasail_calls import CIGAR_D as _D
from phylocl.align.parasail_calls import CIGAR_EQ as _EQ
from phylocl.align.parasail_calls import CIGAR_I as _I
from phylocl.align.parasail_calls import CIGAR_X as _X
from phylocl.align.scoring import ScoringSystem

__all__ = ["AlignedLetters", "aligned_letters", "expand_btop"]
_GAP = ord("-")


@dataclass(frozen=True)
class AlignedLetters:
    """The letter columns of ``H`` hits: ``qseq``, ``sseq``, ``btop`` lists of ``H`` strings, ``positive`` ``(H,)``
    int64."""

    qseq: list[str]
    sseq: list[str]
    btop: list[str]
    positive: np.ndarray


def _split(text: str, bounds: np.ndarray) -> list[str]:
    """``text`` cut at ``bounds`` ``(H + 1,)``."""
    b = bounds.tolist()
    return [text[i:j] for i, j in zip(b[:-1], b[1:])]


def aligned_letters(strings: Sequence[str], query_of: np.ndarray, subject_of: np.ndarray, qstart: np.ndarray,
                    sstart: np.ndarray, ops: np.ndarray, counts: np.ndarray,
                    scoring: ScoringSystem) -> AlignedLetters:
    """The letter columns of ``H`` alignments.

    Args:
        strings: the sequences met (clean letters, ASCII); query_of, subject_of: ``(H,)`` each hit's query and
            subject in ``strings``, in the direction the alignment reads them.
        qstart, sstart: ``(H,)`` 0-based position of each alignment's first column in its query and subject.
        ops: ``(O,)`` uint32 CIGAR operations (``length << 4 | code``: ``=``, ``X``, ``I`` a query letter against
            a gap, ``D`` a subject letter against a gap) of all hits in hit order, no leading gaps;
            counts: ``(H,)`` operations per hit.
        scoring: the scoring system (``positive``).
    """
    n = len(counts)
    counts = np.asarray(counts, dtype=np.int64)
    ops = np.asarray(ops, dtype=np.uint32)
    kind = (ops & 0xF).astype(np.uint8)  # (O,) per operation run
    size = (ops >> 4).astype(np.int64)  # (O,)
    run_hit = np.repeat(np.arange(n), counts)  # (O,)
    first_run = np.concatenate([[0], np.cumsum(counts)])  # (H + 1,) each hit's runs
    run_col = np.concatenate([[0], np.cumsum(size)])  # (O + 1,) each run's first column, all hits
    bounds = run_col[first_run]  # (H + 1,) each hit's columns
    col_kind = np.repeat(kind, size)  # (C,) one code per alignment column
    lengths = np.fromiter(map(len, strings), np.int64, len(strings))
    base = np.concatenate([[0], np.cumsum(lengths)])[:-1]  # (S,) each string's offset in buf
    buf = np.frombuffer("".join(strings).encode("ascii"), dtype=np.uint8)
    columns = np.arange(int(run_col[-1]))  # (C,)

    def side(gap: int, of: np.ndarray, start: np.ndarray) -> np.ndarray:  # (C,) one side's letters, '-' in gaps
        eats = kind != gap  # (O,) runs that read this side's letters
        read = np.concatenate([[0], np.cumsum(size * eats)])  # (O + 1,) letters read before each run, all hits
        at = (base[of] + np.asarray(start, dtype=np.int64) - read[first_run[:-1]])[run_hit] + read[:-1]  # (O,)
        index = np.repeat(at - run_col[:-1], size)  # (C,) each column's letter in buf, for the runs that read
        index += columns
        out = buf.take(index, mode="clip")  # (C,)
        out[col_kind == gap] = _GAP
        return out

    q = side(_D, query_of, qstart)  # (C,)
    s = side(_I, subject_of, sstart)  # (C,)
    # positive: identities, and substitutions scoring above 0
    sub = col_kind == _X
    good = scoring.positive_table().ravel()[(q[sub].astype(np.intp) << 8) | s[sub]]  # (X columns,)
    eq = kind == _EQ
    positive = np.bincount(run_hit[eq], weights=size[eq], minlength=n) + np.bincount(
        np.repeat(run_hit[kind == _X], size[kind == _X])[good], minlength=n)
    qtext, stext = q.tobytes().decode("ascii"), s.tobytes().decode("ascii")
    return AlignedLetters(qseq=_split(qtext, bounds), sseq=_split(stext, bounds),
                          btop=_btop(q, s, col_kind == _EQ, kind, size, run_hit, first_run),
                          positive=positive.astype(np.int64))


def _btop(q: np.ndarray, s: np.ndarray, ident: np.ndarray, kind: np.ndarray, size: np.ndarray, run_hit: np.ndarray,
          first_run: np.ndarray) -> list[str]:
    """BTOP strings of hits whose columns ``(C,)`` are the letters ``q``, ``s`` (``ident``: identical), from
    their operation runs ``kind``, ``size``, ``run_hit`` ``(O,)`` (``first_run`` ``(H + 1,)``: each hit's)."""
    eq = kind == _EQ  # (O,)
    joins = np.zeros(len(kind), dtype=bool)  # (O,) an identity run right after another of its hit (merged)
    joins[1:] = eq[1:] & eq[:-1] & (run_hit[1:] == run_hit[:-1])
    opens = eq & ~joins  # (O,) the first run of each merged run of identities
    if joins.any():  # (parasail merges them: not met so far)
        merged = np.cumsum(opens) - 1  # (O,) its number, for identity runs
        run_len = np.bincount(merged[eq], weights=size[eq], minlength=int(opens.sum())).astype(np.int64)  # (R,)
    else:
        run_len = size[eq]  # (R,)
    digits = np.ones(len(run_len), dtype=np.int64)  # (R,) decimal digits of each run length
    for p in range(1, len(str(int(run_len.max(initial=0))))):
        digits += run_len >= 10 ** p
    emit = np.where(eq, 0, 2 * size)  # (O,) characters each run writes: 2 a column, or the identities' count
    emit[opens] = digits
    pos = np.concatenate([[0], np.cumsum(emit)])  # (O + 1,)
    out = np.empty(int(pos[-1]), dtype=np.uint8)
    letters = np.ones(len(out), dtype=bool)  # output characters that are letters (not digits)
    at = pos[:-1][opens]  # (R,)
    for d in range(int(digits.max(initial=0))):  # the d-th digit of each run length that has one
        has = digits > d
        out[at[has] + d] = 48 + (run_len[has] // 10 ** (digits[has] - 1 - d)) % 10
        letters[at[has] + d] = False
    other = ~ident
    pairs = np.empty(2 * int(other.sum()), dtype=np.uint8)  # (2 x non-identical columns,) query, subject letters
    pairs[0::2], pairs[1::2] = q[other], s[other]
    out[letters] = pairs
    return _split(out.tobytes().decode("ascii"), pos[first_run])


def expand_btop(btop: str, query: str, subject: str) -> tuple[str, str]:
    """``(qseq, sseq)`` that ``btop`` describes, given the aligned query and subject letters without gaps (a slow
    reference: the identities' letters are read from ``query``)."""
    import re

    qa, sa, i, j = [], [], 0, 0
    for number, pair in re.findall(r"(\d+)|(\D\D)", btop):
        if number:
            k = int(number)
            qa.append(query[i:i + k])
            sa.append(subject[j:j + k])
            i, j = i + k, j + k
        else:
            qa.append(pair[0])
            sa.append(pair[1])
            i += pair[0] != "-"
            j += pair[1] != "-"
    return "".join(qa), "".join(sa)

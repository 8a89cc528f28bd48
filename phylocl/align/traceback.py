"""Alignment coordinates and counts of the hits that are written (BLAST tabular columns).

Two implementations of the same description of an optimal local alignment:

- :func:`trace_alignment` (what ``phylocl search`` uses): one pair, in three parasail calls on as few cells as it
  can (module section "The fast path" below); the result depends only on the two sequences, and the alignment of
  ``(b, a)`` is that of ``(a, b)`` with query and target swapped (:func:`mirror`), so an all-against-all search
  traces each pair of two queries once.
- :func:`describe_alignments`, the reference: one query with many targets in pyopal's ``full`` mode (one call per
  query; Opal's scalar traceback over the rows up to the alignment's end), about 3x slower per pair.

Both read, from the alignment's columns (identity, substitution, a gap in one sequence), what BLAST's
``-outfmt 6`` reports:

``length``   alignment columns, gaps included
``pident``   100 x identical columns / ``length``
``mismatch`` substitution columns
``gapopen``  gap openings (runs of gap columns; an ``I`` run next to a ``D`` run counts twice, as in BLAST)
``qstart qend sstart send``  1-based inclusive coordinates of the aligned region in query and target

The fast path. The score of a pair is already known from the alignment stage, but not where the alignment lies,
and a traceback over the whole ``len(query) x len(target)`` matrix is what makes the reference slow: the written
hits of an all-against-all search are mostly short local alignments of unrelated proteins (E-value up to 10), whose
aligned rectangle holds ~14% of the pair's cells (Mycoplasma, 138,169 hits). So:

0. when the score says the alignment probably covers most of the pair (``(S / 2)^2`` cells or more, half the
   pair's; ``S / 2`` columns: Mycoplasma's written hits score 1.6 per column at the median), one parasail
   ``sw_trace_scan_sat`` over the whole pair; otherwise
1. a SIMD score pass over the pair (parasail ``sw_striped_sat``: 8-bit lanes, 16/32-bit where they saturate) gives
   the best score ``S`` and an end cell;
2. the same pass over the reversed sequences, restricted to a window of ``2 S + 20`` residues before that end (4x
   larger while it does not reach ``S``; at worst the whole prefix), gives a start cell: some optimal alignment
   lies in the rectangle between start and end (the window's best score is ``S`` only if it holds one);
3. parasail's ``sw_trace_scan_sat`` on that rectangle alone gives the alignment's CIGAR (``=``, ``X``, ``I``,
   ``D``), checked to score ``S``.

Co-optimal alignments: when several alignments share the best score, the two implementations may choose different
ones (parasail's and Opal's tie-breaking differ), so ``length``, ``pident``, ``mismatch``, ``gapopen`` and the
coordinates may differ while the score is the same (13.7% of the Mycoplasma all-against-all's lines; tested:
every fast alignment re-scores to the reference score). To make the choice independent of which sequence is the
query, the fast path aligns each pair in one orientation (the lexicographically smaller sequence as query; with a
symmetric matrix) and mirrors it for the other, so ``search --db`` (which knows when two queries meet) and
``search --index`` (which does not) write the same lines.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from phylocl.align.parasail_calls import CIGAR_D as _D
from phylocl.align.parasail_calls import CIGAR_EQ as _EQ
from phylocl.align.parasail_calls import CIGAR_I as _I
from phylocl.align.parasail_calls import CIGAR_X as _X
from phylocl.align.parasail_calls import SATURATED as _SATURATED
from phylocl.align.parasail_calls import Result as _Result
from phylocl.align.scoring import ScoringSystem

__all__ = ["TABLE_COLUMNS", "TRACE_CELLS", "AlignmentSummary", "TracebackTooLarge", "canonical_first",
           "describe_alignments", "mirror", "mirror_ops", "mirror_rows", "score_pairs", "summary_of", "trace_alignment",
           "trace_alignments", "trace_table", "trace_tables", "traces_whole"]

_GAP_RUN = re.compile(r"I+|D+")
WINDOW_PER_SCORE = 2  # first start-search window: WINDOW_PER_SCORE * S + WINDOW_PAD residues before the end
WINDOW_PAD = 20
COLUMN_SCORE = 2  # score per alignment column assumed by _whole (Mycoplasma's written hits: median 1 / 1.6 columns)
WHOLE_FRACTION = 0.5
TRACE_CELLS = 250_000_000  # the most cells one traceback may hold (parasail keeps ~2.5 bytes per traced cell)


class TracebackTooLarge(ValueError):
    """A pair whose traced rectangle (the whole pair, or the region between an optimal alignment's start and end)
    holds more than :data:`TRACE_CELLS` cells: ``lx``, ``ly`` the pair's lengths, ``cells`` the rectangle's, ``at``
    the pair's row in :func:`trace_tables`' output (``-1`` until known)."""

    def __init__(self, lx: int, ly: int, cells: int, at: int = -1) -> None:
        super().__init__(lx, ly, cells, at)  # the arguments again, so that it pickles (worker processes)
        self.lx, self.ly, self.cells, self.at = lx, ly, cells, at

    def __str__(self) -> str:
        return (f"the traceback of a pair of {self.lx:,} and {self.ly:,} residues would hold {self.cells:,} cells "
                f"(over {TRACE_CELLS:,})")


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


EMPTY = AlignmentSummary(score=0, length=0, pident=0.0, mismatch=0, gapopen=0, qstart=0, qend=0, sstart=0, send=0)


def mirror(aln: AlignmentSummary) -> AlignmentSummary:
    """The same alignment with query and target swapped (the counts are those of the same columns)."""
    return AlignmentSummary(score=aln.score, length=aln.length, pident=aln.pident, mismatch=aln.mismatch,
                            gapopen=aln.gapopen, qstart=aln.sstart, qend=aln.send, sstart=aln.qstart, send=aln.qend)


def canonical_first(query: str, target: str, scoring: ScoringSystem) -> bool:
    """Whether :func:`trace_alignment` aligns this pair with ``query`` as the query (else it aligns ``(target,
    query)`` and mirrors): the smaller sequence goes first when the matrix is symmetric."""
    return query <= target or not scoring.symmetric


def trace_alignment(query: str, target: str, scoring: ScoringSystem, score: int | None = None) -> AlignmentSummary:
    """The summary of an optimal local alignment of two clean sequences (module section "The fast path"); the same
    alignment, mirrored, as ``trace_alignment(target, query)`` when the matrix is symmetric. ``score``: the pair's
    local alignment score when already known (it must be that score): it saves a score pass and 8-bit passes that
    would overflow, with the same result."""
    return summary_of(trace_table(query, [target], scoring, [score])[0].tolist())


# parasail's 8-bit striped score pass saturates above 254 - (matrix maximum) and its 8-bit scan traceback above
# 126 - (matrix maximum) (measured: BLOSUM62's maximum is 11): from these known scores on, whatever the matrix, the
# "sat" functions' first (8-bit) attempt is certainly wasted, and their 16-bit fallback is called directly
_STRIPED_8_MAX = 255
_TRACE_8_MAX = 128


def _start(score: int | None, limit: int) -> int:
    """The width to start a pass at (0: 8 bits, 1: 16 bits): 16 when the known score would saturate 8 bits."""
    return 1 if score is not None and score >= limit else 0


class _Calls:
    """parasail's C functions (:mod:`phylocl.align.parasail_calls`) with one scoring system's matrix and gaps."""

    def __init__(self, scoring: ScoringSystem) -> None:
        from phylocl.align.parasail_calls import parasail_calls

        self.c = parasail_calls()
        # the CMatrix is held here, not only in the scoring system's cache: two threads building their first
        # _Calls at once each make one, and the one the cache drops would be freed under the other's pointer
        self._matrix, self.gap_open, self.gap_extend = scoring.parasail()
        self.matrix = self._matrix.address  # the C functions' matrix argument

    def striped(self, x: bytes, y: bytes, start: int) -> tuple[int, int, int]:
        """``(score, end_query, end_ref)`` of parasail's ``sw_striped`` from width ``start`` on (``sw_striped_sat``
        from 8 bits)."""
        for f in self.c.striped[start:]:
            r = self._result(f(x, len(x), y, len(y), self.gap_open, self.gap_extend, self.matrix))
            if r is not None:
                return r
        raise _overflow(len(x), len(y))

    def _result(self, p: int) -> tuple[int, int, int] | None:
        """The score and end of result ``p`` (freed), ``None`` where it saturated."""
        r = _Result.from_address(p)
        out = None if r.flag & _SATURATED else (r.score, r.end_query, r.end_ref)
        self.c.result_free(p)
        return out

    def trace(self, x: bytes, y: bytes, start: int) -> tuple[int, int, int, int, int, bytes]:
        """``sw_trace_scan`` of ``x`` and ``y`` from width ``start`` on: ``(score, end_query, end_ref, beg_query,
        beg_ref, ops)``, ``ops`` the CIGAR's uint32 operations as bytes."""
        out = self.c.traced(self.c.trace[start:], x, y, self.gap_open, self.gap_extend, self.matrix)
        if out is None:
            raise _overflow(len(x), len(y))
        return out


def _overflow(lx: int, ly: int) -> OverflowError:
    # "sat" widens 8 -> 16 -> 32 bits itself; a 32-bit overflow needs ~10^8 residues
    return OverflowError(f"alignment score overflows parasail's lanes ({lx} and {ly} residues)")


_CALLS_LOCK = threading.Lock()


def _calls(scoring: ScoringSystem) -> _Calls:
    calls = scoring._cache.get("parasail_calls")
    if calls is None:
        with _CALLS_LOCK:
            calls = scoring._cache.get("parasail_calls")
            if calls is None:
                calls = scoring._cache["parasail_calls"] = _Calls(scoring)
    return calls


def trace_alignments(first: str, others: Sequence[str], scoring: ScoringSystem,
                     scores: Sequence[int | None] | None = None,
                     ends: Sequence[tuple[int, int] | None] | None = None) -> list[AlignmentSummary]:
    """``[trace_alignment(first, y, scoring, score) for y, score in zip(others, scores)]``, the same summaries,
    with ``first``'s parasail score profiles built once for all the pairs it is traced first in. ``ends``: per
    pair, the end cell :func:`score_pairs` found in the pair's traced orientation (``(position in the first
    sequence, position in the second)``, 0-based; ``None`` or negative: not known), given with its ``score``: the
    score pass is then skipped, with the same result."""
    return [summary_of(row) for row in trace_table(first, others, scoring, scores, ends).tolist()]


# columns of trace_table's rows
TABLE_COLUMNS = ("score", "length", "identical", "mismatch", "gapopen", "qstart", "qend", "sstart", "send")
_MIRRORED = [0, 1, 2, 3, 4, 7, 8, 5, 6]  # a row's columns with query and target swapped


def summary_of(row: Sequence[int]) -> AlignmentSummary:
    """The :class:`AlignmentSummary` of one :func:`trace_table` row (``pident`` from its identical columns)."""
    score, length, identical, mismatch, gapopen, qstart, qend, sstart, send = row
    return AlignmentSummary(score=score, length=length, pident=100.0 * identical / length if length else 0.0,
                            mismatch=mismatch, gapopen=gapopen, qstart=qstart, qend=qend, sstart=sstart, send=send)


def mirror_rows(rows: np.ndarray) -> np.ndarray:
    """:func:`trace_table` rows ``(n, 9)`` with query and target swapped (:func:`mirror` of each)."""
    return rows[:, _MIRRORED]


def mirror_ops(ops: np.ndarray) -> np.ndarray:
    """CIGAR operations ``(O,)`` uint32 (``length << 4 | code``) with query and target swapped (``I`` <-> ``D``)."""
    kind = ops & 0xF
    return np.where((kind == _I) | (kind == _D), ops ^ (_I ^ _D), ops).astype(np.uint32)


def trace_table(first: str, others: Sequence[str], scoring: ScoringSystem,
                scores: Sequence[int | None] | None = None,
                ends: Sequence[tuple[int, int] | None] | None = None) -> np.ndarray:
    """:func:`trace_alignments` as an ``(n, 9)`` int64 table, columns :data:`TABLE_COLUMNS` (``identical``: the
    alignment's identical columns, ``pident = 100 * identical / length``); the CIGARs of all the pairs are
    summarised in one pass (:func:`_summaries`), which is what a search that writes many hits calls."""
    return trace_tables([(first, others, scores, ends)], scoring)


def trace_tables(groups: Sequence[tuple], scoring: ScoringSystem, *, ops: bool = False):
    """:func:`trace_table` of several groups ``(first, others, scores, ends)`` (``scores``, ``ends``: lists or
    ``None``), their rows stacked in group order, all the CIGARs summarised in one pass.

    ``ops``: ``(rows, operations, counts)`` instead of ``rows``: the alignments themselves, as the CIGAR
    operations ``(O,)`` uint32 (``length << 4 | code``, codes ``=`` 7, ``X`` 8, ``I`` 1: a letter of the row's
    query against a gap, ``D`` 2; no leading gaps: the alignment starts at the row's ``qstart``, ``sstart``) of
    every row in row order, ``counts`` ``(n,)`` operations per row (0 where there is no alignment); the rows are
    the same (:mod:`phylocl.align.aligned_letters` reads the letters from them).

    Raises :class:`TracebackTooLarge` (``at``: the pair's row) for a pair whose optimal alignment spans more than
    :data:`TRACE_CELLS` cells; a longer pair whose alignment is shorter is traced in its aligned rectangle."""
    traced, flips = [], []
    for first, others, scores, ends in groups:
        scores = [None] * len(others) if scores is None else scores
        ends = [None] * len(others) if ends is None else ends
        if not first:
            traced += [None] * len(others)
            flips += [False] * len(others)
            continue
        x = first.encode("ascii")
        profiles = _Profiles(x, scoring)
        try:
            for y, score, end in zip(others, scores, ends):
                if canonical_first(first, y, scoring):
                    traced.append(_trace(x, y.encode("ascii"), scoring, score, profiles, end))
                    flips.append(False)
                else:
                    traced.append(_trace(y.encode("ascii"), x, scoring, score, end=end))
                    flips.append(True)
        except TracebackTooLarge as err:
            raise TracebackTooLarge(err.lx, err.ly, err.cells, len(traced)) from None
        finally:
            profiles.free()
    flip = np.asarray(flips, dtype=bool)
    if ops:
        rows, operations, counts = _summaries(traced, with_ops=True)
        flipped = np.repeat(flip, counts)  # (O,) operations of mirrored rows
        if flipped.any():
            operations[flipped] = mirror_ops(operations[flipped])
    else:
        rows = _summaries(traced)
    rows[flip] = mirror_rows(rows[flip])
    return (rows, operations, counts) if ops else rows


def score_pairs(first: str, others: Sequence[str], scoring: ScoringSystem, *,
                trace_whole: bool = False) -> np.ndarray:
    """``(n, 3)`` int64: per ``(first, other)`` pair (clean sequences) its local alignment score and the end cell
    of an optimal alignment, ``(score, end in first, end in other)`` (0-based; ``(0, -1, -1)`` where a sequence is
    empty), with ``first``'s score profiles built once. It is the score pass of the fast path, so a pair scored
    here in its traced orientation (:func:`canonical_first`) can skip that pass in :func:`trace_alignments`
    (``ends``); the scores are those of any Smith-Waterman of the scoring system (pyopal's: tested).

    ``trace_whole``: ``(n, 3 + 9)``, the last 9 columns the :func:`trace_table` row of the pairs traced here
    (zeros elsewhere: ``length`` 0), for a search that will trace every hit it scores in this orientation. A pair
    whose 8-bit pass saturates and that :func:`_whole_likely` picks is traced at once over the whole pair (the
    traceback's own first step for such a score, :func:`_whole`); when the traced score confirms it, that trace
    is the pair's row and its 16-bit score pass is skipped; else the pair is scored as without ``trace_whole``.
    Scores and rows are the same either way; only the work differs."""
    out = np.zeros((len(others), 3), dtype=np.int64)
    out[:, 1:] = -1
    traced = [None] * len(others)
    found = {}  # pair number -> (score, end in first, end in other)
    if first and len(others):
        profiles = _Profiles(first.encode("ascii"), scoring)
        calls, lx = profiles.calls, len(first)
        try:
            for j, y in enumerate(others):
                if not y:
                    continue
                yb = y.encode("ascii")
                if not trace_whole:
                    found[j] = profiles.forward(yb, None)
                    continue
                r = profiles.forward(yb, None, widths=1)  # None: the 8-bit pass saturated
                if r is None and lx * len(y) <= TRACE_CELLS and _whole_likely(scoring, lx, len(y)):
                    tr = calls.trace(profiles.x, yb, 1)  # 16 bits: an 8-bit saturating score is over _TRACE_8_MAX
                    if _whole(tr[0], lx, len(y)) and _start(tr[0], _TRACE_8_MAX) == 1:  # as _trace traces it
                        found[j], traced[j] = tr[:3], (tr, tr[0], 0, 0)
                        continue
                found[j] = r if r is not None else profiles.forward(yb, None, first_width=1)
        finally:
            profiles.free()
        if found:
            at = np.fromiter(found.keys(), np.int64, len(found))
            out[at] = np.array(list(found.values()), dtype=np.int64).reshape(-1, 3)
    return np.concatenate([out, _summaries(traced)], axis=1) if trace_whole else out


def traces_whole(scoring: ScoringSystem) -> bool:
    """Whether :func:`score_pairs` with ``trace_whole`` traces any pair of this scoring system (DNA's:
    :func:`_whole_likely`); without, a caller need not ask for it."""
    return scoring.alphabet == "dna"


def _whole_likely(scoring: ScoringSystem, lx: int, ly: int) -> bool:
    """Whether :func:`score_pairs` (``trace_whole``) traces a pair whose 8-bit score pass saturated over the whole
    pair at once: for DNA, when the lengths allow a whole trace at all (``+2`` per column at most). Measured on the
    E. coli/Shigella CDS (150 queries, both strands): all 13,810 such pairs were traced whole, and the 16-bit score
    pass this skips cost 5.0 s there against 6.5 s for their traces. Protein pairs are not (Mycoplasma: 64% of the
    5,791 saturated pairs are traced whole; a whole trace costs ~1.3 16-bit passes, so guessing wrong costs more
    than guessing right saves)."""
    if not traces_whole(scoring):
        return False
    best = max(max(r) for r in scoring.scores)
    span = best * min(lx, ly) / COLUMN_SCORE  # the most columns a score allows _whole to assume
    return span * span >= WHOLE_FRACTION * lx * ly


class _Profiles:
    """The score pass of one first sequence against others, as parasail's ``sw_striped_sat`` runs it (8-bit, then
    16 and 32 bits where a score saturates) but with the 8/16-bit query profiles built once (lazily)."""

    def __init__(self, x: bytes, scoring: ScoringSystem) -> None:
        self.x = x
        self.calls = _calls(scoring)
        self._made = [0, 0]  # 8-, 16-bit profile pointers (0: not built)

    def free(self) -> None:
        for i, p in enumerate(self._made):
            if p:
                self.calls.c.profile_free(p)
                self._made[i] = 0

    def forward(self, y: bytes, score: int | None, *, first_width: int = 0,
                widths: int = 3) -> tuple[int, int, int] | None:
        """``(score, end in x, end in y)`` of the first unsaturated width among ``widths`` widths (8, 16, 32 bits)
        from ``first_width`` on (raised to 16 bits for a known ``score`` that saturates 8); ``None`` where all
        of them saturated."""
        calls = self.calls
        c = calls.c
        start = max(first_width, _start(score, _STRIPED_8_MAX))
        for width in range(start, min(2, first_width + widths)):
            p = self._made[width]
            if not p:
                p = self._made[width] = c.profile_create[width](self.x, len(self.x), calls.matrix)
            r = calls._result(c.striped_profile[width](p, y, len(y), calls.gap_open, calls.gap_extend))
            if r is not None:
                return r
        return calls.striped(self.x, y, 2) if first_width + widths > 2 else None


def _trace(x: str | bytes, y: str | bytes, scoring: ScoringSystem, score: int | None = None,
           profiles: _Profiles | None = None, end: tuple[int, int] | None = None) -> tuple | None:
    """The traceback of an optimal local alignment of ``x`` and ``y`` (clean letters, as text or ASCII bytes;
    module section "The fast path"), as :func:`_summaries` takes it: ``(traceback, best score, start of the traced
    rectangle in x, in y)``, ``None`` for no alignment (a score of 0)."""
    if not x or not y:
        return None
    calls = _calls(scoring)
    lx, ly = len(x), len(y)
    x = x.encode("ascii") if isinstance(x, str) else x
    y = y.encode("ascii") if isinstance(y, str) else y
    striped = _start(score, _STRIPED_8_MAX)
    # the score pass's result, when score_pairs already ran it on this pair in this orientation
    fwd = (score, int(end[0]), int(end[1])) if score is not None and end is not None and end[0] >= 0 else None
    best = score
    if best is None:
        fwd = profiles.forward(y, score) if profiles is not None else calls.striped(x, y, striped)
        best = fwd[0]
    if best <= 0:
        return None
    if _whole(best, lx, ly) and lx * ly <= TRACE_CELLS:  # one traceback over the whole pair
        return calls.trace(x, y, _start(score, _TRACE_8_MAX)), best, 0, 0
    if fwd is None:
        fwd = profiles.forward(y, score) if profiles is not None else calls.striped(x, y, striped)
    _, qe, te = fwd
    width = WINDOW_PER_SCORE * best + WINDOW_PAD
    while True:  # the start: the reversed pass over a window before the end, grown until it holds an optimum
        q0, t0 = max(0, qe + 1 - width), max(0, te + 1 - width)
        rev = calls.striped(x[q0:qe + 1][::-1], y[t0:te + 1][::-1], striped)
        if rev[0] == best or (q0 == 0 and t0 == 0):
            break
        width *= 4
    qs, ts = qe - rev[1], te - rev[2]
    if (qe + 1 - qs) * (te + 1 - ts) > TRACE_CELLS:  # traced in pieces (phylocl.align.split_trace)
        from phylocl.align.split_trace import split_trace

        try:
            tr = split_trace(x[qs:qe + 1], y[ts:te + 1], best, matrix=calls.matrix, gap_open=calls.gap_open,
                             gap_extend=calls.gap_extend, cells=TRACE_CELLS)
        except ValueError:
            raise TracebackTooLarge(lx, ly, (qe + 1 - qs) * (te + 1 - ts)) from None
    else:
        tr = calls.trace(x[qs:qe + 1], y[ts:te + 1], _start(score, _TRACE_8_MAX))
    if fwd[0] != best or rev[0] != best:  # cannot happen: the rectangle holds an optimal alignment
        raise RuntimeError(f"the score passes found {fwd[0]} and {rev[0]}, the pair's best local score is "
                           f"{best} ({lx} and {ly} residues)")
    return tr, best, qs, ts


def _whole(score: int, lx: int, ly: int) -> bool:
    """Whether to trace the whole pair in one pass: when an alignment of ``score / COLUMN_SCORE`` columns would
    cover at least :data:`WHOLE_FRACTION` of the pair's cells (it depends only on the score and the lengths, so both
    orders decide alike). One traceback pass costs ~2.7 score passes; the three passes cost ~1 + ~1 + 2.7 x the
    rectangle's share for a long alignment, less for a short one."""
    span = score / COLUMN_SCORE
    return span * span >= WHOLE_FRACTION * lx * ly


def _summaries(traced: Sequence[tuple | None], *, with_ops: bool = False):
    """``(n, 9)`` int64 rows (:data:`TABLE_COLUMNS`) of tracebacks ``(traceback, best, qs, ts)`` from
    :func:`_trace` (:meth:`_Calls.trace` of the rectangle starting at ``(qs, ts)``, 0-based; ``None``: no alignment,
    a row of zeros), all CIGARs read in one NumPy pass. parasail writes the unaligned start of a traced rectangle as
    leading ``I`` / ``D`` runs: they move the start and are not alignment columns. ``with_ops``: ``(rows, operations,
    counts)``, the CIGAR operations without the leading runs (:func:`trace_tables`)."""
    out = np.zeros((len(traced), len(TABLE_COLUMNS)), dtype=np.int64)
    done = [j for j, t in enumerate(traced) if t is not None]
    if not done:
        return (out, np.zeros(0, dtype=np.uint32), np.zeros(len(traced), dtype=np.int64)) if with_ops else out
    info = np.array([(t[0][0], t[1], t[2], t[3], *t[0][1:5]) for t in (traced[j] for j in done)],
                    dtype=np.int64)  # (m, 8) traced score, best, qs, ts, end_query, end_ref, beg_query, beg_ref
    bad = np.flatnonzero(info[:, 0] != info[:, 1])
    if len(bad):  # cannot happen: the traced region holds an optimal alignment
        raise RuntimeError(f"traceback scored {info[bad[0], 0]}, the pair's best local score is {info[bad[0], 1]}")
    raws = [traced[j][0][5] for j in done]
    ops = np.frombuffer(b"".join(raws), dtype=np.uint32)  # (o,) length << 4 | BAM op, all pairs
    m = len(done)
    counts = np.fromiter(map(len, raws), dtype=np.int64, count=m) // 4  # (m,) operations per pair
    pair = np.repeat(np.arange(m), counts)  # (o,)
    kind = (ops & 0xF).astype(np.int64)
    size = (ops >> 4).astype(np.int64)
    gap = (kind == _I) | (kind == _D)
    # an operation is leading when no alignment column (= or X) comes before it in its pair
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])  # (m,)
    seen = np.cumsum(~gap) - np.repeat(np.cumsum(~gap)[starts] - (~gap)[starts], counts)  # columns so far, per pair
    lead = gap & (seen == 0)
    lead_i = np.bincount(pair[lead & (kind == _I)], weights=size[lead & (kind == _I)], minlength=m).astype(np.int64)
    lead_d = np.bincount(pair[lead & (kind == _D)], weights=size[lead & (kind == _D)], minlength=m).astype(np.int64)
    body = ~lead
    cell = pair[body] * 9 + kind[body]
    columns = np.bincount(cell, weights=size[body], minlength=9 * m).astype(np.int64).reshape(m, 9)  # (m, 9)
    runs = np.bincount(cell, minlength=9 * m).reshape(m, 9)  # runs per operation: I next to D counts twice
    _, best, qs, ts, end_query, end_ref, beg_query, beg_ref = info.T
    out[done] = np.stack([best, columns.sum(axis=1), columns[:, _EQ], columns[:, _X], runs[:, _I] + runs[:, _D],
                          qs + beg_query + lead_i + 1, qs + end_query + 1, ts + beg_ref + lead_d + 1,
                          ts + end_ref + 1], axis=1)
    if not with_ops:
        return out
    counts = np.zeros(len(traced), dtype=np.int64)
    counts[done] = np.bincount(pair[body], minlength=m)
    return out, ops[body], counts

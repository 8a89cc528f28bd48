"""Tracebacks of alignments too large for one traceback table: cut where an optimal path crosses a middle row.

A traceback keeps ~2.5 bytes per cell of its rectangle (parasail), so one over
:data:`~phylocl.align.traceback.TRACE_CELLS` cells is not traced in one pass (two 35,000-residue titins: 1.2 x 10^9
cells, ~3 GB). Within the rectangle of an optimal local alignment (its start and end cells, score ``S``), every
optimal *global* alignment of the two substrings is an optimal local alignment (it scores ``S``; a higher one would
be a better local alignment, and it has no end gaps, which would only cost). So the rectangle is aligned globally,
in pieces, as Hirschberg's method does with score passes of linear memory (parasail's ``nw_rowcol``, the last row
of the table):

- for a row ``r`` near the middle, ``top[c]`` is the best global score of the first ``r`` letters of ``x`` against the
  first ``c`` of ``y``, and ``bottom[c]`` that of the rest of ``x`` against the rest of ``y`` (a pass over both
  reversed);
- a column ``c`` with ``top[c] + bottom[c] == S`` cuts an optimal path: the two pieces' optimal alignments, one after
  the other, score ``S``. (The sum is never above ``S``; it falls short at every ``c`` only where each optimal path
  crosses row ``r`` inside a gap begun above it, charged twice. Other rows are then tried, ``r +- 1, 2, 4, ...``.)
- each piece is cut again until it fits :data:`~phylocl.align.traceback.TRACE_CELLS` and is traced (``nw_trace``).

The cost is about one score pass over the rectangle per level of cutting (a few levels) plus the pieces'
tracebacks. The alignment written is one of the optimal ones (which one may differ from a one-pass traceback's
choice, as co-optimal alignments do); it depends only on the two sequences in the traced orientation.
"""

from __future__ import annotations

import numpy as np

from phylocl.align.parasail_calls import CIGAR_D, CIGAR_I, SATURATED, Result, parasail_calls

__all__ = ["global_ops", "split_trace"]

MAX_OFFSET = 1 << 24  # rows tried around the middle: offsets 0, +-1, +-2, +-4, ... up to this


def _gap(n: int, gap_open: int, gap_extend: int) -> int:
    """Score of a gap of ``n`` letters in parasail's convention (``open`` includes the first extension)."""
    return 0 if n == 0 else -(gap_open + (n - 1) * gap_extend)


def _last_row(x: bytes, y: bytes, matrix: int, gap_open: int, gap_extend: int) -> np.ndarray:
    """``(len(y) + 1,)`` int64: the best global score of all of ``x`` (not empty) against each prefix of ``y``."""
    c = parasail_calls()
    out = np.empty(len(y) + 1, dtype=np.int64)
    out[0] = _gap(len(x), gap_open, gap_extend)
    if not y:
        return out
    for f in c.nw_rowcol:
        p = f(x, len(x), y, len(y), gap_open, gap_extend, matrix)
        if not Result.from_address(p).flag & SATURATED:
            out[1:] = np.ctypeslib.as_array(c.score_row(p), shape=(len(y),))
            c.result_free(p)
            return out
        c.result_free(p)
    raise OverflowError(f"global score overflows parasail's 32-bit lanes ({len(x)} and {len(y)} residues)")


def _trace_piece(x: bytes, y: bytes, matrix: int, gap_open: int, gap_extend: int) -> tuple[int, np.ndarray]:
    """``(score, ops)`` of an optimal global alignment of ``x`` and ``y`` (``ops``: uint32 CIGAR operations)."""
    if not x or not y:
        n, code = (len(x), CIGAR_I) if x else (len(y), CIGAR_D)
        return _gap(n, gap_open, gap_extend), np.array([n << 4 | code] if n else [], dtype=np.uint32)
    traced = parasail_calls().traced(parasail_calls().nw_trace, x, y, gap_open, gap_extend, matrix)
    if traced is not None:
        return traced[0], np.frombuffer(traced[5], dtype=np.uint32).copy()
    raise OverflowError(f"global score overflows parasail's 32-bit lanes ({len(x)} and {len(y)} residues)")


def _offsets(mid: int, rows: int):
    """Rows to cut at, in order: ``mid``, then ``mid +- 1, 2, 4, ...`` within ``1..rows - 1``."""
    yield mid
    step = 1
    while step <= MAX_OFFSET and (mid - step >= 1 or mid + step <= rows - 1):
        for r in (mid + step, mid - step):
            if 1 <= r <= rows - 1:
                yield r
        step *= 2


def global_ops(x: bytes, y: bytes, score: int, *, matrix: int, gap_open: int, gap_extend: int,
               cells: int) -> np.ndarray:
    """uint32 CIGAR operations of an optimal global alignment of ``x`` and ``y``, whose optimal global score is
    ``score``, traced in pieces of at most ``cells`` cells (module docstring). Raises ``ValueError`` where no row
    near the middle cuts an optimal path."""
    pieces: list[np.ndarray] = []
    stack = [(x, y, score)]
    while stack:  # depth first, top piece before bottom piece: the operations in order
        a, b, s = stack.pop()
        if len(a) * len(b) <= cells or len(a) < 2:
            got, ops = _trace_piece(a, b, matrix, gap_open, gap_extend)
            if got != s:  # cannot happen: the pieces' scores add up to an optimal one
                raise RuntimeError(f"a piece of {len(a)} x {len(b)} traced {got}, expected {s}")
            pieces.append(ops)
            continue
        for r in _offsets(len(a) // 2, len(a)):
            top = _last_row(a[:r], b, matrix, gap_open, gap_extend)  # (n + 1,) a[:r] against b[:c]
            bottom = _last_row(a[r:][::-1], b[::-1], matrix, gap_open, gap_extend)[::-1]  # a[r:] against b[c:]
            total = top + bottom
            if total.max() > s:  # cannot happen: s is the optimum
                raise RuntimeError(f"a cut of {len(a)} x {len(b)} scored {int(total.max())} above the optimum {s}")
            hit = np.flatnonzero(total == s)
            if len(hit):
                c = int(hit[0])
                stack.append((a[r:], b[c:], int(bottom[c])))
                stack.append((a[:r], b[:c], int(top[c])))
                break
        else:
            raise ValueError(f"no row cuts an optimal alignment of {len(a)} x {len(b)} residues")
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.uint32)


def split_trace(x: bytes, y: bytes, score: int, *, matrix: int, gap_open: int, gap_extend: int,
                cells: int) -> tuple[int, int, int, int, int, bytes]:
    """The rectangle ``x`` x ``y`` of an optimal local alignment of score ``score`` (its first and last cells
    aligned), traced as :meth:`~phylocl.align.traceback._Calls.trace` reports a traceback: ``(score, end_query,
    end_ref, beg_query, beg_ref, ops)``, 0-based within the rectangle, ``ops`` the CIGAR's uint32 operations as
    bytes."""
    ops = global_ops(x, y, score, matrix=matrix, gap_open=gap_open, gap_extend=gap_extend, cells=cells)
    return score, len(x) - 1, len(y) - 1, 0, 0, ops.tobytes()

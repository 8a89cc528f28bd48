"""parasail's C functions called directly through ctypes, for the tracebacks' many small calls.

parasail's own Python bindings wrap every call in Python: the sequences are checked and encoded again, a ``Result``
object with a finalizer is made, and each field read (``saturated``, ``score``, the CIGAR) is another ctypes call
through a wrapper. The tracebacks of an all-against-all search make ~300,000 such calls on small rectangles, where
that Python costs about as much as the dynamic programming. Here the same C functions of the same library
(``libparasail`` from the ``parasail`` package) are called with their arguments already in C form (bytes,
lengths, the matrix and profile pointers), each result is read once and freed at once, so the results are those
of the bindings; ctypes releases the GIL during each call, as the bindings do.

Widths: :func:`run` takes a function family (8, 16, 32 bits) and the width to start at, and goes on to the next
width where a score saturates: what parasail's ``*_sat`` functions do from 8 bits.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import sys
from ctypes import POINTER, c_char_p, c_int, c_void_p
from pathlib import Path

__all__ = ["CIGAR_D", "CIGAR_EQ", "CIGAR_I", "CIGAR_X", "SATURATED", "CMatrix", "Cigar", "Parasail", "Result", "library_path", "parasail_calls"]

SATURATED = 1 << 6  # PARASAIL_FLAG_SATURATED (parasail.h)
# the BAM operation codes of parasail's CIGAR (Cigar.seq: length << 4 | code): I a query letter against a gap, D a
# target letter against a gap, = an identity, X a substitution
CIGAR_I, CIGAR_D, CIGAR_EQ, CIGAR_X = 1, 2, 7, 8


class Result(ctypes.Structure):
    """``parasail_result_t`` (parasail.h)."""

    _fields_ = [("score", c_int), ("end_query", c_int), ("end_ref", c_int), ("flag", c_int), ("extra", c_void_p)]


class Cigar(ctypes.Structure):
    """``parasail_cigar_t``: ``seq`` points at ``len`` uint32 operations (length << 4 | BAM code)."""

    _fields_ = [("seq", c_void_p), ("len", c_int), ("beg_query", c_int), ("beg_ref", c_int)]


class Parasail:
    """The C functions the tracebacks use, with ctypes signatures of their own (parasail's bindings keep theirs).

    Attributes (lists indexed by width: 0 = 8 bits, 1 = 16, 2 = 32):
        striped: ``sw_striped_{8,16,32}(s1, len1, s2, len2, open, extend, matrix)``.
        trace: ``sw_trace_scan_{8,16,32}`` (same arguments; the result holds the traceback).
        nw_rowcol, nw_trace: ``nw_rowcol_striped_{16,32}``, ``nw_trace_scan_{16,32}`` (global alignment, same
        arguments); score_row: ``result_get_score_row(result)`` (the last row of a rowcol result).
        striped_profile: ``sw_striped_profile_{8,16}(profile, s2, len2, open, extend)``.
        profile_create: ``profile_create_{8,16}(s1, len1, matrix)``.
        profile_free, result_free, cigar_free; get_cigar: ``result_get_cigar_extra(result, s1, len1, s2, len2,
        matrix, case_sensitive, aliases)``; matrix_create, matrix_set_value, matrix_free (:class:`CMatrix`).
    """

    def __init__(self) -> None:
        lib = ctypes.CDLL(library_path())  # the bindings' library; function objects of our own

        def fn(name: str, argtypes: list, restype=c_void_p):
            f = getattr(lib, f"parasail_{name}")
            f.argtypes, f.restype = argtypes, restype
            return f

        pair = [c_char_p, c_int, c_char_p, c_int, c_int, c_int, c_void_p]
        self.striped = [fn(f"sw_striped_{b}", pair) for b in (8, 16, 32)]
        self.trace = [fn(f"sw_trace_scan_{b}", pair) for b in (8, 16, 32)]
        self.nw_rowcol = [fn(f"nw_rowcol_striped_{b}", pair) for b in (16, 32)]  # global, the last row kept
        self.nw_trace = [fn(f"nw_trace_scan_{b}", pair) for b in (16, 32)]  # global, with a traceback
        self.score_row = fn("result_get_score_row", [c_void_p], POINTER(c_int))
        self.striped_profile = [fn(f"sw_striped_profile_{b}", [c_void_p, c_char_p, c_int, c_int, c_int])
                                for b in (8, 16)]
        self.profile_create = [fn(f"profile_create_{b}", [c_char_p, c_int, c_void_p]) for b in (8, 16)]
        self.profile_free = fn("profile_free", [c_void_p], None)
        self.result_free = fn("result_free", [c_void_p], None)
        self.cigar_free = fn("cigar_free", [c_void_p], None)
        self.get_cigar = fn("result_get_cigar_extra",
                            [c_void_p, c_char_p, c_int, c_char_p, c_int, c_void_p, c_int, c_char_p])
        self.matrix_create = fn("matrix_create", [c_char_p, c_int, c_int])
        self.matrix_set_value = fn("matrix_set_value", [c_void_p, c_int, c_int, c_int], None)
        self.matrix_free = fn("matrix_free", [c_void_p], None)


    def traced(self, widths, x: bytes, y: bytes, gap_open: int, gap_extend: int, matrix: int) -> tuple | None:
        """The traceback of the first of ``widths`` (functions of :attr:`trace` or :attr:`nw_trace`) whose scores do
        not saturate: ``(score, end_query, end_ref, beg_query, beg_ref, ops)``, ``ops`` the CIGAR's uint32
        operations as bytes; ``None`` when every width saturates."""
        for f in widths:
            p = f(x, len(x), y, len(y), gap_open, gap_extend, matrix)
            r = Result.from_address(p)
            if r.flag & SATURATED:
                self.result_free(p)
                continue
            q = self.get_cigar(p, x, len(x), y, len(y), matrix, 0, None)
            cigar = Cigar.from_address(q)
            out = (r.score, r.end_query, r.end_ref, cigar.beg_query, cigar.beg_ref,
                   ctypes.string_at(cigar.seq, 4 * cigar.len))
            self.cigar_free(q)
            self.result_free(p)
            return out
        return None


class CMatrix:
    """A parasail substitution matrix over ``letters`` with ``scores`` (rows and columns in the order of
    ``letters``), made by parasail's C functions as the bindings' ``matrix_create`` + ``set_value`` make it (no
    import of the bindings: ~40 ms of a search's start); freed with the object."""

    def __init__(self, calls: Parasail, letters: str, scores) -> None:
        self._free = calls.matrix_free
        self.address = calls.matrix_create(letters.encode("ascii"), 0, 0)
        if not self.address:
            raise MemoryError("parasail_matrix_create failed")
        for i, row in enumerate(scores):
            for j, value in enumerate(row):
                calls.matrix_set_value(self.address, i, j, int(value))

    def __del__(self) -> None:
        if getattr(self, "address", None):
            self._free(self.address)
            self.address = None


def library_path() -> str:
    """The parasail library the ``parasail`` package ships (found without importing the package's bindings,
    which define ctypes signatures for ~2,500 functions); where it is not in the package folder, the one the
    bindings find (they also search ``LD_LIBRARY_PATH`` and the like)."""
    name = {"darwin": "libparasail.dylib", "win32": "parasail.dll"}.get(sys.platform, "libparasail.so")
    spec = importlib.util.find_spec("parasail")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / name).is_file():
            return str(Path(folder) / name)
    from parasail import bindings_v2

    return bindings_v2._lib._name


@functools.cache
def parasail_calls() -> Parasail:
    """The process's one :class:`Parasail` (loaded on first use)."""
    return Parasail()

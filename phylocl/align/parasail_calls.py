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
from ctypes import c_char_p, c_int, c_void_p

__all__ = ["SATURATED", "Cigar", "Parasail", "Result", "parasail_calls"]

SATURATED = 1 << 6  # PARASAIL_FLAG_SATURATED (parasail.h)


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
        striped_profile: ``sw_striped_profile_{8,16}(profile, s2, len2, open, extend)``.
        profile_create: ``profile_create_{8,16}(s1, len1, matrix)``.
        profile_free, result_free, cigar_free; get_cigar: ``result_get_cigar_extra(result, s1, len1, s2, len2,
        matrix, case_sensitive, aliases)``.
    """

    def __init__(self) -> None:
        from parasail import bindings_v2

        lib = ctypes.CDLL(bindings_v2._lib._name)  # the library the bindings loaded; fresh function objects

        def fn(name: str, argtypes: list, restype=c_void_p):
            f = getattr(lib, f"parasail_{name}")
            f.argtypes, f.restype = argtypes, restype
            return f

        pair = [c_char_p, c_int, c_char_p, c_int, c_int, c_int, c_void_p]
        self.striped = [fn(f"sw_striped_{b}", pair) for b in (8, 16, 32)]
        self.trace = [fn(f"sw_trace_scan_{b}", pair) for b in (8, 16, 32)]
        self.striped_profile = [fn(f"sw_striped_profile_{b}", [c_void_p, c_char_p, c_int, c_int, c_int])
                                for b in (8, 16)]
        self.profile_create = [fn(f"profile_create_{b}", [c_char_p, c_int, c_void_p]) for b in (8, 16)]
        self.profile_free = fn("profile_free", [c_void_p], None)
        self.result_free = fn("result_free", [c_void_p], None)
        self.cigar_free = fn("cigar_free", [c_void_p], None)
        self.get_cigar = fn("result_get_cigar_extra",
                            [c_void_p, c_char_p, c_int, c_char_p, c_int, c_void_p, c_int, c_char_p])

    @staticmethod
    def matrix_pointer(matrix) -> int:
        """The address of a parasail ``Matrix`` (from the bindings) as the C functions take it."""
        return ctypes.cast(matrix.pointer, c_void_p).value


@functools.cache
def parasail_calls() -> Parasail:
    """The process's one :class:`Parasail` (loaded on first use)."""
    return Parasail()

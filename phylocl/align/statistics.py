"""Karlin-Altschul statistics: bit scores and E-values of local alignment scores, as BLASTP computes them.

For a raw score ``S`` of a scoring system with gapped parameters ``lambda`` and ``K``, the bit score is
``S' = (lambda S - ln K) / ln 2``. The E-value is the expected number of unrelated database sequences scoring at
least ``S`` against the query (what BLAST's ``-evalue`` and DIAMOND's ``--evalue`` threshold), with the whole
database as search space. Two forms, the ones BLAST+ uses:

**Spouge's finite-size correction** (Park, Sheetlin, Ma, Mott, Spouge 2012; BLAST+'s default for BLASTP), where BLAST
tabulates its parameters (every protein system, from BLAST+'s tables): for a target of ``n_t`` residues in a database of ``n``,
``E = K exp(-lambda S) area(S, m, n_t) n / n_t``, where ``area`` replaces ``m n_t`` by the expected lengths left
once an alignment of score ``S`` is placed (means and variances linear in ``S``, Gaussian tails). It matches
``blastp -comp_based_stats 0 -seg no`` to its printed digits (``tests/align/test_blast_reference.py``).

**Length-adjusted Karlin-Altschul** for DNA (and a system without those parameters): ``E = K m' n' exp(-lambda S)`` with ``m' = m - l``, ``n' = n - N l`` for a query of ``m`` residues
against a database of ``N`` sequences and ``n`` residues in total. ``l`` is BLAST's **length adjustment**, the
expected length of an alignment that just reaches significance (an alignment cannot start in its last ``l``
positions): the largest integer ``l <= alpha / lambda * (ln K + ln(m' n')) + beta`` (the fixed point of BLAST+'s
``BLAST_ComputeLengthAdjustment``; ``0`` when the search space is too small for one). We apply it, as BLASTP and
DIAMOND do, so that E-values read like theirs (within rounding of the tabulated parameters; without it they would
be up to ~2x larger for short proteins). ``m'`` is kept ``>= 1 / K`` and ``n' >= 1``.

BLASTP's composition-based statistics (its default ``-comp_based_stats 2``) and SEG masking are not applied: our
scores are plain Smith-Waterman scores, and E-values are those of ``blastp -comp_based_stats 0 -seg no``.
"""

from __future__ import annotations

import math

import numpy as np

from phylocl.align.scoring import KarlinAltschul

__all__ = ["bit_scores", "evalues", "length_adjustment", "search_space"]

LN2 = math.log(2.0)


def _scored(raw: np.ndarray, stats: KarlinAltschul) -> np.ndarray:
    """Raw scores as the E-values read them: float64, odd ones rounded down with ``stats.round_down`` (BLASTN)."""
    y = np.asarray(raw, dtype=np.float64)
    return y - np.mod(y, 2.0) if stats.round_down else y


def bit_scores(raw: np.ndarray, stats: KarlinAltschul) -> np.ndarray:
    """Bit scores of raw scores ``(n,)`` -> ``(n,)`` float64."""
    return (stats.lam * np.asarray(raw, dtype=np.float64) - stats.log_k) / LN2


def length_adjustment(m: int, n: int, n_seqs: int, stats: KarlinAltschul) -> int:
    """BLAST's length adjustment ``l`` for a query of ``m`` residues against ``n_seqs`` sequences of ``n`` residues.

    The largest integer ``l >= 0`` with ``l <= alpha/lambda (ln K + ln((m - l)(n - N l))) + beta`` (the right side
    decreases in ``l``, so the condition holds up to the fixed point and the answer is its floor); found by
    bisection on ``[0, l_max]``, ``l_max`` the largest ``l`` keeping ``(m - l)(n - N l) >= max(m, n) / K``.
    """
    m, n, big_n = float(m), float(n), float(max(n_seqs, 1))
    a, b = stats.alpha / stats.lam, stats.beta

    def space(ell: float) -> float:
        return (m - ell) * (n - big_n * ell)

    floor_space = max(m, n) / stats.K
    if space(0.0) < floor_space:
        return 0
    # largest ell in [0, min(m, n / N)) with space(ell) >= floor_space (space decreases there): a quadratic root
    qa, qb, qc = big_n, -(big_n * m + n), m * n - floor_space
    disc = max(qb * qb - 4 * qa * qc, 0.0)
    ell_max = (-qb - math.sqrt(disc)) / (2 * qa)

    def ok(ell: int) -> bool:
        return ell <= a * (stats.log_k + math.log(space(ell))) + b

    lo, hi = 0, math.floor(ell_max)
    if not ok(lo):
        return 0
    if ok(hi):
        return hi
    while hi - lo > 1:  # ok(lo) and not ok(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def search_space(m: int, n: int, n_seqs: int, stats: KarlinAltschul) -> float:
    """Effective search space ``m' n'`` (module docstring) of a query of ``m`` residues."""
    ell = length_adjustment(m, n, n_seqs, stats)
    return max(m - ell, 1.0 / stats.K) * max(n - n_seqs * ell, 1.0)


def _erfc(x: np.ndarray) -> np.ndarray:
    """``erfc`` elementwise with the standard library's ``math.erfc`` (importing scipy.special for it would cost a
    one-query search about 0.1 s of start-up; a few hundred values per query cost microseconds)."""
    x = np.asarray(x, dtype=np.float64)
    return np.fromiter(map(math.erfc, x.ravel().tolist()), np.float64, x.size).reshape(x.shape)


def _spouge(raw: np.ndarray, m: int | np.ndarray, target_lengths: np.ndarray, db_residues: int,
            stats: KarlinAltschul) -> np.ndarray:
    alpha_v, sigma, a_un, alpha_un, g = stats.gumbel
    a, lam = stats.alpha, stats.lam
    b, beta, tau = 2 * g * (a_un - a), 2 * g * (alpha_un - alpha_v), 2 * g * (alpha_un - sigma)
    y = _scored(raw, stats)

    def side(length):  # expected free length past an alignment of score y, and the probability it is positive
        ell = np.asarray(length, dtype=np.float64) - (a * y + b)
        sd = np.sqrt(np.maximum(2 * alpha_v / lam, alpha_v * y + beta))
        f = ell / sd
        p = 0.5 * _erfc(-f / math.sqrt(2.0))
        return ell * p + sd * np.exp(-0.5 * f * f) / math.sqrt(2 * math.pi), p

    p1, q1 = side(m)
    n_t = np.maximum(np.asarray(target_lengths, dtype=np.float64), 1.0)
    p2, q2 = side(n_t)
    area = p1 * p2 + np.maximum(2 * sigma / lam, sigma * y + tau) * q1 * q2
    return area * stats.K * np.exp(-lam * y) * (db_residues / n_t)


def evalues(raw: np.ndarray, *, query_length: int | np.ndarray, db_residues: int, db_sequences: int,
            stats: KarlinAltschul, target_lengths: np.ndarray | None = None) -> np.ndarray:
    """E-values ``(n,)`` float64 of raw scores ``(n,)`` of one query against a database (module docstring), or of
    several queries' scores at once: ``query_length`` ``(n,)``, the query of each score (the same values as one
    query at a time).

    ``target_lengths`` ``(n,)``: residues of each hit's target, needed for the finite-size correction (systems
    with ``stats.gumbel``); without them, or without ``gumbel``, the length-adjusted form is used.
    """
    if stats.gumbel is not None and target_lengths is not None:
        return _spouge(raw, query_length, target_lengths, db_residues, stats)
    if np.ndim(query_length):
        m, which = np.unique(np.asarray(query_length, dtype=np.int64), return_inverse=True)
        space = np.array([search_space(int(v), db_residues, db_sequences, stats) for v in m])[which.reshape(-1)]
    else:
        space = search_space(query_length, db_residues, db_sequences, stats)
    return stats.K * space * np.exp(-stats.lam * _scored(raw, stats))

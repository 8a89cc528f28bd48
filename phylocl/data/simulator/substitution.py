"""Substitution models: BLOSUM62-derived replacement probabilities for protein, JC69 / K80 for DNA.

Protein (:func:`blosum62_model`). BLOSUM62 scores are half-bit log-odds, ``S_ab = 2 log2(q_ab / (p_a p_b))``, with
``q`` the target pair frequencies and ``p`` the background frequencies. Since ``sum_b q_ab = p_a``, the background
solves ``sum_b p_b 2^(S_ab / 2) = 1`` for every ``a`` (a 20 x 20 linear system; the solution is positive and sums
to 0.97 because the scores are rounded). Then ``q_ab ∝ p_a p_b 2^(S_ab / 2)`` (normalised, symmetric), the
stationary frequencies are its marginals ``pi_a`` and the replacement matrix is
``P(b | a) = q_ab / pi_a ∝ p_b 2^(S_ab / 2)``.

For evolution along a tree this one-step matrix becomes a reversible continuous-time Markov chain
(:func:`protein_rate_matrix`): ``Q = P - I`` rescaled to one expected substitution per site per unit time, and
``P(t) = expm(Q t)`` by the eigen-decomposition of the symmetrised matrix (:func:`transition_matrix`), so branch
lengths are in substitutions per site.

DNA: closed forms for K80 (``kappa`` = transition/transversion rate ratio) over ``A C G T``; JC69 is
``kappa = 1``. ``d`` is the expected number of substitutions per site.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["AMINO_ACIDS", "NUCLEOTIDES", "blosum62_model", "protein_rate_matrix", "transition_matrix",
           "k80_transition_matrix", "jc69_p_distance"]

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"  # the order of phylocl.data.alphabet.PROTEIN letters, without X
NUCLEOTIDES = "ACGT"


@lru_cache(maxsize=1)
def blosum62_model() -> tuple[np.ndarray, np.ndarray]:
    """``(pi, P)``: stationary frequencies ``(20,)`` and replacement matrix ``P[a, b] = P(b | a)`` ``(20, 20)``.

    Letters in :data:`AMINO_ACIDS` order; rows of ``P`` sum to 1; ``pi @ P == pi`` (detailed balance holds).
    """
    from Bio.Align import substitution_matrices

    blosum = substitution_matrices.load("BLOSUM62")
    scores = np.array([[blosum[a][b] for b in AMINO_ACIDS] for a in AMINO_ACIDS], dtype=np.float64)
    odds = 2.0 ** (scores / 2.0)  # q_ab / (p_a p_b)
    background = np.linalg.solve(odds, np.ones(len(AMINO_ACIDS)))
    joint = background[:, None] * background[None, :] * odds
    joint = (joint + joint.T) / (2.0 * joint.sum())
    pi = joint.sum(axis=1)
    return pi, joint / pi[:, None]


def protein_rate_matrix() -> tuple[np.ndarray, np.ndarray]:
    """``(pi, Q)``: the BLOSUM62 replacement matrix as a rate matrix, scaled to ``-sum_a pi_a Q_aa = 1``."""
    pi, p = blosum62_model()
    q = p - np.eye(len(pi))
    return pi, q / float(-(pi * np.diag(q)).sum())


def transition_matrix(q: np.ndarray, pi: np.ndarray, t: float) -> np.ndarray:
    """``expm(Q t)`` for a rate matrix ``Q`` reversible w.r.t. ``pi``; rows sum to 1, ``(S, S)``."""
    if t < 0:
        raise ValueError(f"branch length must be >= 0, got {t}")
    root = np.sqrt(pi)
    sym = root[:, None] * q / root[None, :]  # Pi^1/2 Q Pi^-1/2, symmetric
    sym = (sym + sym.T) / 2.0
    evals, evecs = np.linalg.eigh(sym)
    pt = (evecs * np.exp(evals * t)) @ evecs.T
    pt = pt / root[:, None] * root[None, :]
    pt = np.clip(pt, 0.0, None)
    return pt / pt.sum(axis=1, keepdims=True)


def k80_transition_matrix(d: float, kappa: float = 1.0) -> np.ndarray:
    """K80 transition probabilities over ``A C G T`` after ``d`` substitutions/site, ``(4, 4)``.

    ``P_transition = 1/4 + 1/4 e^(-4d/(k+2)) - 1/2 e^(-2d(k+1)/(k+2))``, each transversion
    ``1/4 - 1/4 e^(-4d/(k+2))``; ``kappa = 1`` is JC69.
    """
    if d < 0 or kappa <= 0:
        raise ValueError(f"need d >= 0 and kappa > 0, got d={d}, kappa={kappa}")
    e1 = np.exp(-4.0 * d / (kappa + 2.0))
    e2 = np.exp(-2.0 * d * (kappa + 1.0) / (kappa + 2.0))
    ts = 0.25 + 0.25 * e1 - 0.5 * e2
    tv = 0.25 - 0.25 * e1
    same = 1.0 - ts - 2.0 * tv
    partner = {0: 2, 1: 3, 2: 0, 3: 1}  # A<->G, C<->T are transitions
    out = np.full((4, 4), tv)
    for a, b in partner.items():
        out[a, b] = ts
        out[a, a] = same
    return out


def jc69_p_distance(d: float | np.ndarray) -> float | np.ndarray:
    """Expected proportion of differing sites under JC69 after ``d`` substitutions per site: ``3/4 (1 - e^(-4d/3))``."""
    return 0.75 * (1.0 - np.exp(-4.0 * np.asarray(d) / 3.0))

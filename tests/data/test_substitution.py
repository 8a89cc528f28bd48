"""Substitution models: BLOSUM62-derived chain, expm by eigen-decomposition, K80/JC69 closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from Bio.Align import substitution_matrices

from phylocl.data.simulator.substitution import (AMINO_ACIDS, blosum62_model, jc69_p_distance, k80_transition_matrix,
                                       protein_rate_matrix, transition_matrix)


def expm_series(a: np.ndarray, terms: int = 60) -> np.ndarray:
    out, term = np.eye(len(a)), np.eye(len(a))
    for k in range(1, terms):
        term = term @ a / k
        out = out + term
    return out


def k80_rate_matrix(kappa: float) -> np.ndarray:
    beta = 1.0 / (kappa + 2.0)  # one substitution per site per unit time
    q = np.full((4, 4), beta)
    for a, b in ((0, 2), (2, 0), (1, 3), (3, 1)):
        q[a, b] = kappa * beta
    np.fill_diagonal(q, 0.0)
    np.fill_diagonal(q, -q.sum(axis=1))
    return q


def test_blosum62_replacement_matrix():
    pi, p = blosum62_model()
    assert p.shape == (20, 20) and np.allclose(p.sum(axis=1), 1.0) and np.all(p > 0)
    np.testing.assert_allclose(pi @ p, pi, atol=1e-12)
    np.testing.assert_allclose(pi[:, None] * p, (pi[:, None] * p).T, atol=1e-12)  # detailed balance
    # P(b|a) ∝ p_b 2^(S_ab/2), with p the background that BLOSUM62's own scores imply
    b62 = substitution_matrices.load("BLOSUM62")
    s = np.array([[b62[a][b] for b in AMINO_ACIDS] for a in AMINO_ACIDS])
    bg = np.linalg.solve(2.0 ** (s / 2), np.ones(20))
    ratio = p / (bg[None, :] * 2.0 ** (s / 2))
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones((1, 20)), rtol=1e-10)
    assert AMINO_ACIDS[int(np.argmax(pi))] == "L" and AMINO_ACIDS[int(np.argmin(pi))] == "W"
    assert p[AMINO_ACIDS.index("I"), AMINO_ACIDS.index("V")] > p[AMINO_ACIDS.index("I"), AMINO_ACIDS.index("D")]


def test_protein_chain_expm_matches_series_and_scales_to_one_substitution():
    pi, q = protein_rate_matrix()
    assert -(pi * np.diag(q)).sum() == pytest.approx(1.0)
    for t in (0.0, 0.05, 0.7, 2.0):
        np.testing.assert_allclose(transition_matrix(q, pi, t), expm_series(q * t), atol=1e-9)
    p1, p2, p3 = (transition_matrix(q, pi, t) for t in (0.3, 0.4, 0.7))
    np.testing.assert_allclose(p1 @ p2, p3, atol=1e-10)  # Chapman-Kolmogorov
    h = 1e-6
    np.testing.assert_allclose((transition_matrix(q, pi, h) - np.eye(20)) / h, q, atol=1e-4)
    np.testing.assert_allclose(transition_matrix(q, pi, 200.0), np.tile(pi, (20, 1)), atol=1e-8)


@pytest.mark.parametrize("kappa", [1.0, 2.0, 5.0])
@pytest.mark.parametrize("d", [0.0, 0.1, 0.8, 3.0])
def test_k80_closed_form_matches_matrix_exponential(kappa, d):
    closed = k80_transition_matrix(d, kappa)
    np.testing.assert_allclose(closed, expm_series(k80_rate_matrix(kappa) * d), atol=1e-10)
    np.testing.assert_allclose(closed, transition_matrix(k80_rate_matrix(kappa), np.full(4, 0.25), d), atol=1e-10)
    if kappa == 1.0:
        assert 1.0 - closed[0, 0] == pytest.approx(jc69_p_distance(d))

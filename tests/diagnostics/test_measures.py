"""Representation measures against closed forms and slow references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from phylocl.diagnostics.measures import (alignment, effective_rank, embedding_health, family_pairs,
                                          masked_residual, pair_alignment, rank_collapse_residual, uniformity)


def _residual_by_minimisation(x: np.ndarray) -> float:
    """Reference: minimise ||X - 1 v^T||_F over v numerically (least squares), no closed form assumed."""
    ones = np.ones((len(x), 1))
    v, *_ = np.linalg.lstsq(ones, x, rcond=None)  # (1, D)
    return float(np.linalg.norm(x - ones @ v) / np.linalg.norm(x))


@pytest.mark.parametrize("length, dim", [(1, 4), (7, 3), (20, 16)])
def test_residual_of_any_rank_one_token_matrix_is_zero(length, dim):
    x = np.random.default_rng(length).normal(size=dim)
    assert rank_collapse_residual(np.ones((length, 1)) * x) == pytest.approx(0.0, abs=1e-12)
    assert rank_collapse_residual(np.zeros((length, dim))) == 0.0


def test_residual_of_a_random_full_rank_matrix_is_large_and_matches_the_minimiser():
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.normal(size=(30, 16))
        assert np.linalg.matrix_rank(x) == 16
        r = rank_collapse_residual(x)
        assert r > 0.9  # centred Gaussian rows: ||X - mean||^2 / ||X||^2 ~ (L - 1) / L
        assert r == pytest.approx(_residual_by_minimisation(x), rel=1e-10)
    shifted = rng.normal(size=(30, 16)) * 0.1 + 5.0  # tokens near one common vector: small residual
    assert rank_collapse_residual(shifted) < 0.05


def test_masked_residual_ignores_padding_and_equals_the_per_sequence_reference():
    rng = np.random.default_rng(1)
    h = torch.tensor(rng.normal(size=(3, 9, 5)))
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[1, 4:] = False
    mask[2, 1:] = False
    h[1, 4:] = 1e6  # garbage at padded positions must not matter
    got = masked_residual(h, mask).numpy()
    want = [rank_collapse_residual(h[b, mask[b]].numpy()) for b in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert got[2] == 0.0  # a single token is rank one


def test_effective_rank_of_k_orthonormal_vectors_is_k():
    rng = np.random.default_rng(2)
    for k in (1, 3, 10):
        q, _ = np.linalg.qr(rng.normal(size=(32, k)))  # (32, k) orthonormal columns
        assert effective_rank(q.T) == pytest.approx(k, rel=1e-10)  # k orthonormal rows in 32 dimensions
    assert effective_rank(np.ones((50, 8))) == pytest.approx(1.0)
    assert effective_rank(np.zeros((4, 4))) == 0.0


def test_effective_rank_equals_the_entropy_formula_on_a_known_spectrum():
    s = np.array([4.0, 2.0, 1.0, 1.0])
    x = np.diag(s)
    p = s / s.sum()
    assert effective_rank(x) == pytest.approx(math.exp(-(p * np.log(p)).sum()))


def test_uniformity_and_alignment_closed_forms():
    e = np.eye(3)
    # two antipodal unit vectors: squared distance 4, so log exp(-t * 4) = -4t
    assert uniformity(np.stack([e[0], -e[0]])) == pytest.approx(-8.0)
    assert uniformity(np.stack([e[0], -e[0]]), t=0.5) == pytest.approx(-2.0)
    # orthonormal set: every squared distance is 2
    assert uniformity(e) == pytest.approx(-4.0)
    assert alignment(e, e) == 0.0  # identical pairs
    assert alignment(e[:1], -e[:1]) == pytest.approx(4.0)  # ||2 e||^2
    assert alignment(e[:1], -e[:1], alpha=1.0) == pytest.approx(2.0)


def test_pair_alignment_in_blocks_equals_alignment_of_the_gathered_pairs(monkeypatch):
    import phylocl.diagnostics.measures as measures

    z = np.random.default_rng(5).normal(size=(30, 7))
    i, j = family_pairs([str(k % 4) for k in range(30)])
    for alpha in (2.0, 1.0):
        want = alignment(z[i], z[j], alpha=alpha)
        assert pair_alignment(z, i, j, alpha=alpha) == pytest.approx(want, rel=1e-12)
        monkeypatch.setattr(measures, "_PAIR_BLOCK", 3 * 7)  # 3 pairs per block: many blocks, a short last one
        assert pair_alignment(z, i, j, alpha=alpha) == pytest.approx(want, rel=1e-12)
        monkeypatch.undo()
    with pytest.raises(ValueError, match="index vectors"):
        pair_alignment(z, i, j[:-1])


def test_uniformity_equals_a_slow_loop():
    z = np.random.default_rng(3).normal(size=(12, 4))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    vals = [math.exp(-2 * np.sum((z[i] - z[j]) ** 2)) for i in range(12) for j in range(i + 1, 12)]
    assert uniformity(z) == pytest.approx(math.log(sum(vals) / len(vals)), rel=1e-10)


def test_family_pairs_are_every_within_family_pair_once():
    i, j = family_pairs(["a", "b", "a", "c", "a", "b"])
    assert sorted(zip(i.tolist(), j.tolist())) == [(0, 2), (0, 4), (1, 5), (2, 4)]
    i, j = family_pairs(["a"] * 10, max_pairs=7)
    assert len(i) == 7 and all(a < b for a, b in zip(i, j))


def test_embedding_health_of_collapsed_and_spread_sets():
    rng = np.random.default_rng(4)
    spread = rng.normal(size=(400, 16))
    h = embedding_health(spread, [str(k % 40) for k in range(400)])
    assert h["effective_rank"] > 14 and h["dim_std_mean"] == pytest.approx(h["dim_std_uniform"], rel=0.15)
    assert h["n_family_pairs"] == 40 * 45 and h["alignment"] > 1.5
    collapsed = np.ones((400, 16)) + 1e-3 * rng.normal(size=(400, 16))
    c = embedding_health(collapsed, None)
    assert c["effective_rank"] < 1.1 and c["dim_std_min"] < 1e-3 and c["alignment"] is None
    assert c["uniformity"] > -0.01  # every pair at distance ~0
    with pytest.raises(ValueError, match="labels"):
        embedding_health(spread, ["a"] * 3)


def test_large_matrices_take_the_gram_route_with_the_same_singular_values(monkeypatch):
    import phylocl.diagnostics.measures as m

    rng = np.random.default_rng(3)
    for shape in ((40, 300), (300, 40)):
        z = rng.normal(size=shape) * np.linspace(1.0, 1e-3, shape[1])  # a spread spectrum
        exact = np.linalg.svd(z, compute_uv=False)
        monkeypatch.setattr(m, "_GRAM_ABOVE", 0)
        gram = m.singular_values(z)
        monkeypatch.setattr(m, "_GRAM_ABOVE", 10**12)
        assert gram.shape == exact.shape == (40,)
        np.testing.assert_allclose(gram, exact, rtol=1e-6, atol=1e-9)
        assert m.effective_rank(z) == pytest.approx(float(np.exp(-(p := exact / exact.sum()) @ np.log(p))))

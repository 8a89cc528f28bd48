"""Indel length distributions (means as configured, zipf is a power law) and the indel process on a branch."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.data.simulator.indels import IndelModel


@pytest.mark.parametrize("dist, mean", [("geometric", 2.0), ("geometric", 5.0), ("zipf", 1.5), ("zipf", 3.0)])
def test_length_mean_matches_config(dist, mean):
    m = IndelModel(rate=0.1, mean=mean, distribution=dist, max_length=50)
    x = m.lengths(200_000, np.random.default_rng(1))
    assert x.min() >= 1 and (dist == "geometric" or x.max() <= 50)
    assert x.mean() == pytest.approx(mean, rel=0.02)


def test_zipf_is_a_power_law_and_geometric_has_p_one_over_mean():
    m = IndelModel(mean=2.0, distribution="zipf", max_length=30)
    p = m.length_probs
    a = np.log2(p[0] / p[1])  # P(1) / P(2) = 2^a
    np.testing.assert_allclose(p[2] / p[5], 2.0**a, rtol=1e-9)  # P(3) / P(6) = 2^a too
    assert (np.arange(1, 31) * p).sum() == pytest.approx(2.0, abs=1e-6)
    g = IndelModel(mean=4.0).lengths(100_000, np.random.default_rng(2))
    assert (g == 1).mean() == pytest.approx(0.25, abs=0.01)


def test_branch_changes_length_as_expected():
    """Events ~ Poisson(rate t (n + 1)); insertions and deletions are equally likely, so the mean change is ~0."""
    m = IndelModel(rate=0.05, mean=2.0)
    rng = np.random.default_rng(3)
    pi = np.full(4, 0.25)
    changes = []
    for _ in range(400):
        s, c = m.apply(np.zeros(500, dtype=np.int64), np.zeros(500, dtype=np.int64), 0.4, pi=pi, n_categories=4,
                       rng=rng)
        assert len(s) == len(c) >= 1
        changes.append(len(s) - 500)
    changes = np.array(changes)
    assert abs(changes.mean()) < 1.0
    # variance of the net change = E[events] * E[len^2] = (0.05 * 0.4 * 501) * (2 * 2^2 - 2) for geometric(1/2)
    assert changes.var() == pytest.approx(0.05 * 0.4 * 501 * 6, rel=0.2)
    same = m.apply(np.arange(9), np.zeros(9, dtype=np.int64), 0.0, pi=pi, n_categories=1, rng=rng)[0]
    assert same.tolist() == list(range(9))


def test_validation():
    with pytest.raises(ValueError, match="rate"):
        IndelModel(rate=-1)
    with pytest.raises(ValueError, match="distribution"):
        IndelModel(distribution="poisson")
    with pytest.raises(ValueError, match="mean"):
        IndelModel(mean=0.5)
    with pytest.raises(ValueError, match="mean"):
        IndelModel(mean=30, distribution="zipf", max_length=50)

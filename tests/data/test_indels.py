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


class _SpyRng:
    """A generator that records the means of its Poisson draws (everything else: the wrapped generator's)."""

    def __init__(self, rng):
        self._rng, self.poisson_means = rng, []

    def poisson(self, lam, *args, **kwargs):
        self.poisson_means.append(lam)
        return self._rng.poisson(lam, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._rng, name)


@pytest.mark.parametrize("rate, t, n", [(0.05, 0.4, 500), (0.2, 1.5, 7), (1.0, 0.01, 1)])
def test_indel_events_are_poisson_with_mean_rate_t_n_plus_1(rate, t, n):
    """The number of events on a branch is ``Poisson(rate * t * (n + 1))`` (module doc): its mean, exactly."""
    spy = _SpyRng(np.random.default_rng(0))
    IndelModel(rate=rate, mean=2.0).apply(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), t,
                                          pi=np.full(4, 0.25), n_categories=1, rng=spy)
    assert spy.poisson_means == [pytest.approx(rate * t * (n + 1), rel=1e-12)]


def test_deletions_never_remove_the_last_residue():
    m = IndelModel(rate=5.0, mean=6.0)  # many long events on short sequences
    rng = np.random.default_rng(4)
    for n in (1, 2, 3) * 200:
        s, c = m.apply(np.arange(n), np.zeros(n, dtype=np.int64), 1.0, pi=np.full(4, 0.25), n_categories=1, rng=rng)
        assert len(s) == len(c) >= 1


def test_zipf_lengths_follow_their_table_up_to_max_length():
    """Sampled zipf lengths have the tabulated frequencies, the longest (``max_length``) included."""
    m = IndelModel(mean=1.8, distribution="zipf", max_length=3)
    x = m.lengths(100_000, np.random.default_rng(5))
    freq = np.bincount(x, minlength=5)[1:] / len(x)  # lengths 1..4
    assert freq[3] == 0
    np.testing.assert_allclose(freq[:3], m.length_probs, atol=0.01)
    assert m.length_probs[2] > 0.1

"""Discrete gamma rates: Yang's published values, mean 1, and a Monte-Carlo reference of the bin means."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.data.simulator.rates import discrete_gamma_rates


def test_matches_yang_1994_table():
    np.testing.assert_allclose(discrete_gamma_rates(0.5, 4), [0.0334, 0.2519, 0.8203, 2.8944], atol=1e-4)


@pytest.mark.parametrize("alpha, k", [(0.3, 4), (1.0, 4), (2.0, 8), (5.0, 3)])
def test_bin_means_match_monte_carlo(alpha, k):
    """Mean of equiprobable bins of Gamma(alpha, 1/alpha) samples, normalised to mean 1 (a slow obvious route)."""
    x = np.sort(np.random.default_rng(0).gamma(alpha, 1.0 / alpha, size=400_000))
    ref = np.array([b.mean() for b in np.array_split(x, k)])
    rates = discrete_gamma_rates(alpha, k)
    assert rates.mean() == pytest.approx(1.0, abs=1e-12)
    assert np.all(np.diff(rates) > 0)
    np.testing.assert_allclose(rates, ref / ref.mean(), rtol=0.03, atol=2e-3)


def test_no_heterogeneity_and_bad_values():
    assert discrete_gamma_rates(None).tolist() == [1.0]
    assert discrete_gamma_rates(float("inf")).tolist() == [1.0]
    with pytest.raises(ValueError, match="shape"):
        discrete_gamma_rates(0.0)
    with pytest.raises(ValueError, match="categories"):
        discrete_gamma_rates(1.0, 0)

"""Rate heterogeneity across sites: the discrete gamma model (Yang 1994).

Site rates follow a gamma distribution with shape ``alpha`` and mean 1 (variance ``1 / alpha``: small ``alpha``
means a few fast sites and many nearly invariant ones). The continuous distribution is cut into ``categories``
equiprobable bins and each bin is represented by its **mean** rate (Yang's "mean" method), so the category rates
average exactly 1 and a branch of length ``t`` stays ``t`` expected substitutions per site. Each site draws one
category, uniformly, when it is created (at the root, or when an insertion creates it) and keeps it down the tree.

The bin means have a closed form: with ``q_k`` the ``k / K`` quantiles of ``Gamma(alpha, 1/alpha)``, the mean of
bin ``k`` is ``K * (I(alpha + 1, alpha q_{k+1}) - I(alpha + 1, alpha q_k))`` where ``I`` is the regularised lower
incomplete gamma function.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["discrete_gamma_rates", "draw_site_rates"]


@lru_cache(maxsize=64)
def _rates(alpha: float, categories: int) -> tuple[float, ...]:
    from scipy.special import gammainc, gammaincinv  # scipy comes with scikit-learn

    probs = np.arange(1, categories) / categories
    cuts = np.concatenate([[0.0], gammaincinv(alpha, probs), [np.inf]])  # quantiles of Gamma(alpha, 1) (K + 1,)
    upper = gammainc(alpha + 1.0, cuts)  # (K + 1,); I(a + 1, inf) = 1
    means = categories * np.diff(upper)  # mean of Gamma(alpha, 1/alpha) within each bin
    return tuple(float(m) for m in means / means.mean())


def discrete_gamma_rates(alpha: float | None, categories: int = 4) -> np.ndarray:
    """Category rates ``(categories,)`` of the discrete gamma with shape ``alpha``; mean exactly 1, increasing.

    ``alpha=None`` (or ``inf``) means no heterogeneity: ``[1.0]``.

    Example: ``discrete_gamma_rates(0.5, 4)`` ≈ ``[0.033, 0.252, 0.822, 2.893]`` (Yang 1994, table 1).
    """
    if alpha is None or np.isinf(alpha):
        return np.ones(1)
    if not alpha > 0:
        raise ValueError(f"gamma shape must be > 0, got {alpha}")
    if isinstance(categories, bool) or not isinstance(categories, (int, np.integer)) or categories < 1:
        raise ValueError(f"gamma categories must be an integer >= 1, got {categories!r}")
    return np.array(_rates(float(alpha), int(categories)))


def draw_site_rates(n: int, rates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Category index of ``n`` new sites, uniform over ``len(rates)`` categories: ``(n,)`` int64."""
    return rng.integers(len(rates), size=n)

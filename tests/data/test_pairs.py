"""Pair strategies: uniform is uniform over distinct members, distant shifts pair distances up, hardest = argmax."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.data.pairs import DistantPairs, HardestPairs, UniformPairs, get_pair_strategy
from phylocl.data.simulator.simulate import yule_tree
from phylocl.data.trees import patristic_matrix


@pytest.fixture
def tree_distances():
    """Patristic distances of a 12-leaf random tree: the family's known tree."""
    names = [f"s{i}" for i in range(12)]
    return patristic_matrix(yule_tree(names, np.random.default_rng(5), height=0.5), names)


def test_uniform_never_pairs_a_member_with_itself_and_is_uniform():
    n, draws = 5, 40_000
    rng = np.random.default_rng(0)
    counts = np.zeros((n, n))
    for _ in range(draws):
        i, j = UniformPairs().sample(n, rng)
        counts[i, j] += 1
    assert np.all(np.diag(counts) == 0)
    off = counts[~np.eye(n, dtype=bool)] / draws
    assert np.abs(off - 1 / (n * (n - 1))).max() < 0.01
    assert UniformPairs().sample(2, rng) in [(0, 1), (1, 0)]
    with pytest.raises(ValueError, match="at least 2"):
        UniformPairs().sample(1, rng)


@pytest.mark.parametrize("strategy", [UniformPairs(), DistantPairs(alpha=2.0), HardestPairs()])
def test_deterministic_given_generator(strategy, tree_distances):
    a = [strategy.sample(12, np.random.default_rng(9), tree_distances) for _ in range(3)]
    b = [strategy.sample(12, np.random.default_rng(9), tree_distances) for _ in range(3)]
    assert a == b


def test_distant_weights_are_distance_power_alpha(tree_distances):
    iu, ju, p = DistantPairs(alpha=1.5).weights(tree_distances)
    w = tree_distances[iu, ju] ** 1.5
    np.testing.assert_allclose(p, w / w.sum())
    _, _, p0 = DistantPairs(alpha=0.0).weights(tree_distances)
    np.testing.assert_allclose(p0, 1.0 / len(p0))
    _, _, pz = DistantPairs().weights(np.zeros((4, 4)))
    np.testing.assert_allclose(pz, 1.0 / 6)  # all distances 0: uniform


@pytest.mark.parametrize("scale, alpha", [(1.0, 400.0), (1e-3, 200.0)])
def test_distant_weights_of_a_large_alpha_keep_their_ratios(scale, alpha):
    """``d ** alpha`` overflowed to inf (distances above 1, alpha 400) or underflowed to 0 (close orthologs at
    1e-3 substitutions per site, alpha 200), and the pairs fell back to *uniform*, the opposite of the farthest
    pair that a large alpha asks for (alpha 30 already gave it probability ~1)."""
    d = scale * np.array([[0.0, 2.0, 3.0], [2.0, 0.0, 10.0], [3.0, 10.0, 0.0]])
    iu, ju, p = DistantPairs(alpha=alpha).weights(d)
    ref = np.exp(alpha * (np.log(d[iu, ju]) - np.log(d[iu, ju]).max()))  # the same ratios, in logs
    np.testing.assert_allclose(p, ref / ref.sum())
    assert p[(iu == 1) & (ju == 2)] == pytest.approx(1.0)
    _, _, p_zero = DistantPairs(alpha=alpha).weights(np.array([[0.0, 0.0, 50.0], [0.0, 0.0, 50.0], [50.0, 50.0, 0.0]]))
    np.testing.assert_allclose(p_zero, [0.0, 0.5, 0.5])  # a zero distance keeps weight 0


def test_distant_shifts_sampled_distances_upwards(tree_distances):
    d = tree_distances
    draws = 20_000
    rng = np.random.default_rng(1)
    mean = {}
    for strat in (UniformPairs(), DistantPairs(alpha=1.0), DistantPairs(alpha=3.0)):
        got = [d[strat.sample(12, rng, d)] for _ in range(draws)]
        mean[(strat.name, getattr(strat, "alpha", 0))] = np.mean(got)
    iu, ju = np.triu_indices(12, 1)
    pairs = d[iu, ju]
    assert mean["uniform", 0] == pytest.approx(pairs.mean(), rel=0.02)
    assert mean["distant", 1.0] == pytest.approx((pairs**2).sum() / pairs.sum(), rel=0.02)
    assert mean["uniform", 0] < mean["distant", 1.0] < mean["distant", 3.0]


def test_hardest_returns_the_farthest_member(tree_distances):
    rng = np.random.default_rng(2)
    seen = set()
    for _ in range(200):
        i, j = HardestPairs().sample(12, rng, tree_distances)
        row = tree_distances[i].copy()
        row[i] = -np.inf
        assert j == int(np.argmax(row)) and j != i
        seen.add(i)
    assert len(seen) == 12  # anchors are uniform
    rng = np.random.default_rng(0)
    for _ in range(30):  # all members identical (distance 0): never the anchor itself; the lowest other index
        i, j = HardestPairs().sample(3, rng, np.zeros((3, 3)))
        assert j == (1 if i == 0 else 0)


def test_distant_pairs_come_in_both_orders(tree_distances):
    rng = np.random.default_rng(3)
    first = [DistantPairs().sample(12, rng, tree_distances) for _ in range(2000)]
    assert 0.45 < np.mean([i < j for i, j in first]) < 0.55


def test_registry():
    assert isinstance(get_pair_strategy("distant", alpha=2), DistantPairs)
    assert get_pair_strategy("distant", alpha=2).alpha == 2
    assert get_pair_strategy("hardest").needs_distances and not get_pair_strategy("uniform").needs_distances
    with pytest.raises(ValueError, match="unknown pair strategy"):
        get_pair_strategy("closest")
    with pytest.raises(ValueError, match="alpha"):
        DistantPairs(alpha=-1)

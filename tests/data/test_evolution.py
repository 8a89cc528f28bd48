"""EvolutionModel: identity against the closed form, gamma heterogeneity, real roots, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from Bio.Phylo.BaseTree import Clade, Tree

from phylocl.data.simulator.evolution import EvolutionModel
from phylocl.data.simulator.indels import IndelModel
from phylocl.data.simulator.substitution import jc69_p_distance


def cherry(d: float, names=("a", "b")) -> Tree:
    """Two leaves ``d`` substitutions/site apart (each ``d / 2`` from the root)."""
    return Tree(root=Clade(branch_length=0.0, clades=[Clade(branch_length=d / 2, name=n) for n in names]))


def star(t: float, n: int) -> Tree:
    return Tree(root=Clade(branch_length=0.0, clades=[Clade(branch_length=t, name=f"l{i}") for i in range(n)]))


def test_expected_identity_is_jc69_for_dna_with_equal_rates():
    m = EvolutionModel(alphabet="dna", kappa=1.0)
    for d in (0.0, 0.1, 0.7, 2.5):
        assert m.expected_identity(d) == pytest.approx(1 - float(jc69_p_distance(d)), abs=1e-12)


@pytest.mark.parametrize("alphabet, gamma", [("protein", None), ("protein", 0.5), ("dna", 1.0)])
@pytest.mark.parametrize("d", [0.1, 1.0, 3.0])
def test_identity_matches_closed_form_without_indels(alphabet, gamma, d):
    """Observed identity of two leaves over 20,000 sites within 4 binomial SDs of the model's expectation."""
    m = EvolutionModel(alphabet=alphabet, gamma_shape=gamma)
    rng = np.random.default_rng(int(d * 10) + (gamma is None))
    leaves = m.evolve(m.random_root(20_000, rng), cherry(d), rng)
    want = m.expected_identity(d)
    got = float((leaves["a"] == leaves["b"]).mean())
    assert got == pytest.approx(want, abs=4 * np.sqrt(want * (1 - want) / 20_000) + 1e-3)


def test_twilight_zone_is_reachable_and_identity_falls_with_divergence():
    m = EvolutionModel(gamma_shape=1.0)
    ids = [m.expected_identity(d) for d in (0.02, 0.5, 2.0, 4.0)]
    assert ids[0] > 0.97 and all(np.diff(ids) < 0) and 0.2 <= ids[-1] <= 0.3


def test_gamma_increases_the_variance_of_per_site_changes():
    """Per site, the number of 30 leaves (star tree) that differ from the root: its mean follows the closed form
    with and without heterogeneity, its variance across sites is far larger with strong heterogeneity."""
    root_rng = np.random.default_rng(5)
    stats = {}
    for gamma in (None, 0.3):
        m = EvolutionModel(alphabet="protein", gamma_shape=gamma)
        rng = np.random.default_rng(6)
        root = m.random_root(4000, root_rng)
        leaves = m.evolve(root, star(0.2, 30), rng)
        changed = np.stack([leaves[f"l{i}"] != root for i in range(30)]).sum(axis=0)  # (sites,)
        p = 1 - m.expected_identity(0.2)
        assert changed.mean() == pytest.approx(30 * p, rel=0.05)
        stats[gamma] = (changed.var(), 30 * p * (1 - p))
    (v0, binom0), (v1, _) = stats[None], stats[0.3]
    assert v0 < 1.5 * binom0  # equal rates: close to binomial
    assert v1 > 3.0 * v0


def test_indels_change_lengths_and_rates_follow_inserted_sites():
    m = EvolutionModel(gamma_shape=1.0, indels=IndelModel(rate=0.2, mean=3.0, distribution="zipf"))
    rng = np.random.default_rng(7)
    leaves = m.evolve(m.random_root(300, rng), star(0.5, 8), rng)
    assert len({len(s) for s in leaves.values()}) > 1
    # the rate category of every site travels with it through insertions and deletions: original sites (marked
    # by states >= 100, which no insertion draws) keep theirs, inserted sites get categories of their own
    indels = IndelModel(rate=0.3, mean=3.0)
    states = np.arange(100, 600)  # (500,) site markers
    cats = states % 4  # category known from the marker
    new_states, new_cats = indels.apply(states, cats, 1.0, pi=np.full(20, 0.05), n_categories=4,
                                        rng=np.random.default_rng(8))
    assert new_states.shape == new_cats.shape
    original = new_states >= 100
    assert 0 < original.sum() < 500  # some sites were deleted
    np.testing.assert_array_equal(new_cats[original], new_states[original] % 4)
    assert np.all(np.diff(new_states[original]) > 0)  # survivors keep their order
    inserted = new_cats[~original]
    assert inserted.size > 50 and set(inserted.tolist()) == {0, 1, 2, 3}  # drawn over every category


def test_real_roots_and_determinism():
    m = EvolutionModel(gamma_shape=0.5, indels=IndelModel(rate=0.1))
    root = m.encode("MKVLAXAGIWB", np.random.default_rng(0))  # X and B are not states: drawn from pi
    assert m.decode(root)[:5] == "MKVLA" and m.decode(root)[6:10] == "AGIW" and len(root) == 11
    same = m.evolve(m.encode("MKVLAAGIW" * 5, np.random.default_rng(0)), cherry(1e-9), np.random.default_rng(1))
    assert m.decode(same["a"]) == "MKVLAAGIW" * 5  # no time, no change
    runs = [m.evolve(m.random_root(200, np.random.default_rng(2)), cherry(1.0), np.random.default_rng(3))
            for _ in range(2)]
    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in "ab")
    other = m.evolve(m.random_root(200, np.random.default_rng(2)), cherry(1.0), np.random.default_rng(4))
    assert not np.array_equal(runs[0]["a"], other["a"])


def test_validation():
    with pytest.raises(ValueError, match="alphabet"):
        EvolutionModel(alphabet="rna")
    with pytest.raises(ValueError, match="kappa"):
        EvolutionModel(alphabet="dna", kappa=0)
    with pytest.raises(ValueError, match="gamma shape"):
        EvolutionModel(gamma_shape=-1.0)

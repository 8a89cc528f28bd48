"""Simulated families: known-distance checks (JC69, K80, BLOSUM62 chain), trees, layout, determinism."""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pytest

from phylocl.data.layouts import read_dataset
from phylocl.data.simulator.simulate import SimulationParams, simulate_families, write_simulation, yule_tree
from phylocl.data.simulator.substitution import AMINO_ACIDS, jc69_p_distance, k80_transition_matrix, protein_rate_matrix, \
    transition_matrix
from phylocl.data.trees import patristic_matrix
from phylocl.errors import InputError


def leaf_pairs(fam):
    dist = patristic_matrix(fam.tree, fam.ids)
    for i, j in itertools.combinations(range(len(fam.ids)), 2):
        a = np.frombuffer(fam.sequences[i].encode(), dtype=np.uint8)
        b = np.frombuffer(fam.sequences[j].encode(), dtype=np.uint8)
        yield dist[i, j], a, b


def test_jc69_p_distance_matches_closed_form():
    params = SimulationParams(families=2, members=6, length=20_000, alphabet="dna", seed=0, rate=0.4, kappa=1.0)
    for fam in simulate_families(params):
        for d, a, b in leaf_pairs(fam):
            assert (a != b).mean() == pytest.approx(float(jc69_p_distance(d)), abs=0.02)


def test_k80_transition_and_transversion_proportions():
    params = SimulationParams(families=1, members=5, length=30_000, alphabet="dna", seed=1, rate=0.3, kappa=4.0)
    purine = np.frombuffer(b"AG", dtype=np.uint8)
    for d, a, b in leaf_pairs(simulate_families(params)[0]):
        p = k80_transition_matrix(d, 4.0)
        diff = a != b
        transition = diff & (np.isin(a, purine) == np.isin(b, purine))
        assert transition.mean() == pytest.approx(p[0, 2], abs=0.015)
        assert (diff & ~transition).mean() == pytest.approx(2 * p[0, 1], abs=0.015)


def test_protein_identity_matches_the_blosum62_chain():
    params = SimulationParams(families=1, members=5, length=20_000, alphabet="protein", seed=2, rate=0.5)
    pi, q = protein_rate_matrix()
    fam = simulate_families(params)[0]
    composition = np.array([fam.sequences[0].count(c) for c in AMINO_ACIDS]) / params.length
    assert np.abs(composition - pi).max() < 0.01  # stationary root, stationary leaves
    for d, a, b in leaf_pairs(fam):
        expected = float(pi @ np.diag(transition_matrix(q, pi, d)))  # reversible: identity after distance d
        assert (a == b).mean() == pytest.approx(expected, abs=0.02)


def test_yule_tree_is_ultrametric_with_requested_height():
    tree = yule_tree([f"x{i}" for i in range(9)], np.random.default_rng(0), height=0.7)
    depths = [tree.distance(tree.root, leaf) for leaf in tree.get_terminals()]
    assert np.allclose(depths, 0.7) and sorted(t.name for t in tree.get_terminals()) == [f"x{i}" for i in range(9)]


def test_written_layout_reads_back_with_trees(tmp_path):
    params = SimulationParams(families=3, members=4, length=80, alphabet="protein", seed=3, indel_rate=0.05)
    fams = simulate_families(params)
    out = write_simulation(fams, tmp_path / "sim", params=params)
    ds = read_dataset(out)
    assert ds.family_names == ["fam0", "fam1", "fam2"] and len(ds) == 12 and set(ds.trees) == set(ds.family_names)
    for fam in fams:
        idx = ds.family_index[fam.name]
        assert [ds.ids[i] for i in idx] == fam.ids and [ds.sequences[i] for i in idx] == fam.sequences
        from phylocl.data.trees import read_tree

        np.testing.assert_allclose(patristic_matrix(read_tree(ds.trees[fam.name]), fam.ids),
                                   patristic_matrix(fam.tree, fam.ids), atol=1e-8)
    assert len({len(s) for s in ds.sequences}) > 1  # indels change lengths
    meta = json.loads((out / "simulation.json").read_text())
    assert meta["params"]["members"] == 4 and "BLOSUM62" in meta["model"]


def test_deterministic_and_overwrite_rules(tmp_path):
    p = SimulationParams(families=2, members=3, length=50, seed=5)
    assert [f.sequences for f in simulate_families(p)] == [f.sequences for f in simulate_families(p)]
    q = SimulationParams(families=2, members=3, length=50, seed=6)
    assert [f.sequences for f in simulate_families(p)] != [f.sequences for f in simulate_families(q)]
    assert all(len(s) == 50 for f in simulate_families(p) for s in f.sequences)  # no indels by default
    out = write_simulation(simulate_families(p), tmp_path / "o", params=p)
    with pytest.raises(InputError, match="not empty"):
        write_simulation(simulate_families(q), out, params=q)
    write_simulation(simulate_families(q), out, params=q, overwrite=True)
    assert json.loads((out / "simulation.json").read_text())["params"]["seed"] == 6
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not an earlier simulation"):
        write_simulation(simulate_families(q), other, params=q, overwrite=True)
    assert (other / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError):
        SimulationParams(families=1, members=1, length=10)


def test_overwrite_refuses_naming_files_phylocl_did_not_write(tmp_path):
    """issue 25, defect 5: ``simulate -o SIM --overwrite`` replaced the whole folder, deleting the user's files in it."""
    p = SimulationParams(families=3, members=3, length=40, seed=1)
    out = write_simulation(simulate_families(p), tmp_path / "sim", params=p)
    (out / "notes.txt").write_text("keep me")
    (out / "trees" / "mine.nwk").write_text("(a,b);")
    q = SimulationParams(families=2, members=3, length=40, seed=2)
    with pytest.raises(InputError, match="notes.txt") as err:
        write_simulation(simulate_families(q), out, params=q, overwrite=True)
    assert "trees/mine.nwk" in str(err.value) and "\n" not in str(err.value)
    assert (out / "notes.txt").read_text() == "keep me" and (out / "trees" / "mine.nwk").is_file()
    assert json.loads((out / "simulation.json").read_text())["params"]["seed"] == 1  # nothing replaced
    (out / "notes.txt").unlink()
    (out / "trees" / "mine.nwk").unlink()
    write_simulation(simulate_families(q), out, params=q, overwrite=True)  # only ours: replaced, 3 families -> 2
    assert sorted(p.name for p in out.glob("*.fasta")) == ["fam0.fasta", "fam1.fasta"]


def test_families_are_written_as_they_are_made(tmp_path, monkeypatch):
    """Issue 25, defect 10: every family used to be held in memory before the first was written."""
    import phylocl.data.simulate as sim
    from phylocl.cli import main

    real = sim.iter_families
    seen = []

    def watched(params):
        for k, fam in enumerate(real(params)):
            if k:  # the previous family is already on disk (in the output's temporary folder)
                seen.append(any(tmp_path.glob(f"**/fam{k - 1}.fasta")))
            yield fam

    monkeypatch.setattr(sim, "iter_families", watched)
    assert main(["simulate", "--families", "4", "--members", "2", "--length", "10", "-o", str(tmp_path / "s")]) == 0
    assert seen == [True, True, True]
    assert len(list((tmp_path / "s").glob("fam*.fasta"))) == 4


@pytest.mark.parametrize("flags, needle", [
    (["--families", "1000000000", "--members", "8", "--length", "100"], "free"),  # disk
    (["--families", "2", "--members", "1000000000", "--length", "30"], "of memory"),
    (["--families", "2", "--members", "3", "--length", "1000000000000"], "of memory"),
])
def test_sizes_that_cannot_fit_are_refused_with_the_estimate(tmp_path, capsys, monkeypatch, flags, needle):
    from phylocl.cli import main

    monkeypatch.setattr("phylocl.data.simulate.available_memory", lambda: 16 * 10**9)
    monkeypatch.setattr("shutil.disk_usage", lambda p: type("U", (), {"free": 100 * 10**9})())
    assert main(["simulate", *flags, "-o", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and needle in err and "GB" in err, err
    assert not (tmp_path / "s").exists()


def test_the_size_estimates_bound_what_is_written(tmp_path):
    p = SimulationParams(families=3, members=4, length=50)
    out = write_simulation(simulate_families(p), tmp_path / "s", params=p)
    written = sum(f.stat().st_size for f in out.rglob("*") if f.is_file() and f.name != "simulation.json")
    assert written <= p.output_bytes() <= 4 * written


@pytest.mark.parametrize("kwargs, message", [
    ({"length": 0}, "length >= 1; got 2, 4, 0"),  # said "indel_mean (2) must be <= length (0)"
    ({"length": 1}, "indel_mean (2) must be <= length (1)"),
    ({"members": 1}, "members >= 2"),
])
def test_parameters_out_of_range_name_the_first_rule_they_break(kwargs, message):
    from phylocl.data.simulator.simulate import SimulationParams

    with pytest.raises(ValueError, match=re.escape(message)):
        SimulationParams(**{"families": 2, "members": 4, "length": 50, **kwargs})


def test_divergence_draws_half_a_log_uniform_diameter():
    """``divergence=(lo, hi)``: the root-to-leaf height is half a diameter drawn log-uniformly in [lo, hi]."""
    params = SimulationParams(families=2, members=3, length=20, divergence=(0.2, 3.0))
    rng, ref = np.random.default_rng(9), np.random.default_rng(9)
    heights = [params.height(rng) for _ in range(200)]
    want = [float(np.exp(ref.uniform(np.log(0.2), np.log(3.0)))) / 2 for _ in range(200)]
    np.testing.assert_allclose(heights, want, rtol=1e-12)
    assert 0.1 <= min(heights) and max(heights) <= 1.5

"""Evolved-family training source: determinism, divergence spread, roots (FASTA, random), mixing into batches."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.data.alphabet import get_alphabet
from phylocl.data.datamodule import DataConfig, OrthologDataModule
from phylocl.data.simulator.evolution import EvolutionModel
from phylocl.data.simulator.evolved import EvolvedPairs, evolved_rows
from phylocl.data.simulator.evolved_config import EvolvedConfig
from phylocl.data.simulator.simulate import SimulationParams, simulate_families, write_simulation
from phylocl.data.views import SequenceView
from phylocl.errors import InputError

PROTEIN = get_alphabet("protein")


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    params = SimulationParams(families=12, members=4, length=60, alphabet="protein", seed=1, rate=0.3)
    return write_simulation(simulate_families(params), tmp_path_factory.mktemp("sim") / "sim", params=params)


def source(seed=0, roots=(), **kw) -> EvolvedPairs:
    return EvolvedPairs(config=EvolvedConfig(fraction=0.5, **kw), alphabet="protein",
                        view=SequenceView(alphabet=PROTEIN, max_len=400), roots=roots, label_offset=100, seed=seed)


def test_items_are_deterministic_by_seed_and_key():
    a, b = source(seed=3), source(seed=3)
    for key in [(0, 0, 0), (2, 5, 7)]:
        x, y = a[key], b[key]
        assert np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) and x[2] == y[2] == 100 + key[-1]
    assert not np.array_equal(a[(0, 0, 0)][0], a[(0, 0, 1)][0])
    assert not np.array_equal(a[(0, 0, 0)][0], source(seed=4)[(0, 0, 0)][0])


def test_divergence_spread_is_log_uniform_and_identity_follows_it():
    src = source(divergence=(0.05, 5.0), indel_rate=0.0, random_root_length=(300, 300), gamma_shape=1.0)
    model = EvolutionModel(gamma_shape=1.0)
    ds, ident, want = [], [], []
    for j in range(150):
        (a, b), d = src.family((0, 0, j))
        ds.append(d)
        ident.append(np.mean([x == y for x, y in zip(a, b)]))  # no indels: site by site
        want.append(model.expected_identity(d))
    logd = np.log(ds)
    assert min(ds) >= 0.05 and max(ds) <= 5.0
    assert logd.mean() == pytest.approx(np.log(0.5), abs=0.25)  # log-uniform on [log 0.05, log 5]
    assert max(ident) > 0.9 and min(ident) < 0.35  # near-identical to the twilight zone
    assert np.abs(np.array(ident) - np.array(want)).mean() < 0.04


def test_roots_from_fasta_and_random(tmp_path, sim_dir):
    roots = ["MKVLAAGIWHHEERRTTY" * 3, "PPGGSSWWYYNNQQDDEE" * 3]
    near = source(roots=roots, divergence=(1e-9, 1e-9), indel_rate=0.0)
    for j in range(6):
        (a, b), _ = near.family((0, 0, j))
        assert a == b and a in roots
    rand = source(roots=roots, random_root_fraction=1.0, divergence=(1e-9, 1e-9), random_root_length=(30, 40))
    (a, _), _ = rand.family((0, 0, 0))
    assert a not in roots and 30 <= len(a) <= 40
    fasta = tmp_path / "roots.fasta"
    fasta.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(roots)))
    dm = OrthologDataModule(config=DataConfig(path=str(sim_dir), evolved={"fraction": 0.5, "roots": str(fasta)}))
    dm.setup()
    assert dm.evolved_pairs().roots == roots
    dm2 = OrthologDataModule(config=DataConfig(path=str(sim_dir), evolved={"fraction": 0.5, "roots": "train"}))
    dm2.setup()
    assert dm2.evolved_pairs().roots == list(dm2.train_set.sequences)
    bad = OrthologDataModule(config=DataConfig(path=str(sim_dir), evolved={"fraction": 0.5,
                                                                          "roots": str(tmp_path / "none.fa")}))
    bad.setup()
    with pytest.raises(InputError):
        bad.evolved_pairs()


@pytest.mark.parametrize("fraction, n_evolved", [(0.25, 2), (0.5, 4), (1.0, 8)])
def test_mixing_ratio_in_training_batches(sim_dir, fraction, n_evolved):
    dm = OrthologDataModule(config=DataConfig(path=str(sim_dir), fractions=(1.0, 0.0, 0.0), batch_size=8,
                                              max_len=40, evolved={"fraction": fraction}))
    dm.setup()
    batches = list(dm.train_dataloader())
    assert batches
    for batch in batches:
        labels = batch["labels"].tolist()
        evolved = [lab for lab in labels if lab >= len(dm.labels)]
        assert len(labels) == 8 and len(evolved) == n_evolved
        assert len(set(labels)) == len(labels)  # evolved families never collide with each other or real ones
    first = next(iter(dm.train_dataloader()))
    assert np.array_equal(first["a"]["input_ids"].numpy(), batches[0]["a"]["input_ids"].numpy())  # same seed


def test_evolved_rows_and_config_validation():
    assert evolved_rows(EvolvedConfig(), 64) == 0
    assert evolved_rows(EvolvedConfig(fraction=0.3), 64) == 19
    assert evolved_rows(EvolvedConfig(fraction=0.001), 64) == 1
    for bad, match in [({"fraction": 1.5}, "fraction"), ({"divergence": (0.0, 1.0)}, "divergence"),
                       ({"divergence": (2.0, 1.0)}, "divergence"), ({"members": 1}, "members"),
                       ({"gamma_shape": 0.0}, "gamma_shape"), ({"indel_length": "poisson"}, "indel_length"),
                       ({"indel_mean": 0.5}, "mean"), ({"random_root_length": (0, 5)}, "random_root_length")]:
        with pytest.raises(ValueError, match=match):
            EvolvedConfig(**bad)
    with pytest.raises(ValueError, match="data.evolved.fraction"):
        DataConfig(path="x", evolved={"fraction": -0.1})

"""Harder training signal (issue 24 item 3): divergence curriculum of evolved families, hard batches with evolved
rows."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.data.alphabet import get_alphabet
from phylocl.data.datamodule import DataConfig, OrthologDataModule
from phylocl.data.simulator.evolved import EvolvedPairs
from phylocl.data.simulator.evolved_config import EvolvedConfig
from phylocl.data.simulator.simulate import SimulationParams, simulate_families, write_simulation
from phylocl.data.views import SequenceView

PROTEIN = get_alphabet("protein")


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    params = SimulationParams(families=24, members=3, length=50, alphabet="protein", seed=2, rate=0.3)
    return write_simulation(simulate_families(params), tmp_path_factory.mktemp("sim") / "sim", params=params)


def curriculum(**kw) -> EvolvedConfig:
    return EvolvedConfig(fraction=0.25, divergence=(0.05, 5.0), curriculum_steps=40, curriculum_start=0.5, **kw)


def test_curriculum_bounds_rise_linearly_then_stay():
    c = curriculum()
    assert c.divergence_at(0) == (0.05, 0.5)
    assert c.divergence_at(20) == pytest.approx((0.05, 2.75))
    assert c.divergence_at(40) == pytest.approx((0.05, 5.0)) and c.divergence_at(400) == pytest.approx((0.05, 5.0))
    assert EvolvedConfig(divergence=(0.05, 5.0)).divergence_at(0) == (0.05, 5.0)  # off: the whole range
    for bad in [{"curriculum_steps": -1}, {"curriculum_steps": 10, "curriculum_start": 6.0},
                {"curriculum_steps": 10, "curriculum_start": 0.01}]:
        with pytest.raises(ValueError, match="curriculum"):
            EvolvedConfig(divergence=(0.05, 5.0), **bad)


def test_divergence_drawn_at_a_step_respects_the_schedule():
    src = EvolvedPairs(config=curriculum(random_root_length=(40, 40)), alphabet="protein",
                       view=SequenceView(alphabet=PROTEIN, max_len=100), seed=0, steps_per_epoch=10)
    for epoch, step in [(0, 0), (0, 5), (1, 0), (2, 7), (5, 3)]:
        s = epoch * 10 + step
        assert src.global_step((epoch, step, 0)) == s
        lo, hi = src.config.divergence_at(s)
        ds = [src.family((epoch, step, j))[1] for j in range(40)]
        assert min(ds) >= lo and max(ds) <= hi + 1e-9
        assert max(ds) > lo + 0.5 * (hi - lo) * 0.5  # the range is used, not only its bottom
    early = [src.family((0, 0, j))[1] for j in range(40)]
    late = [src.family((5, 0, j))[1] for j in range(40)]
    assert max(early) <= 0.5 < max(late)
    off = EvolvedPairs(config=EvolvedConfig(fraction=0.25, random_root_length=(40, 40)), alphabet="protein",
                       view=SequenceView(alphabet=PROTEIN, max_len=100), seed=0)
    assert max(off.family((0, 0, j))[1] for j in range(40)) > 0.5  # no curriculum: remote families at step 0
    with pytest.raises(ValueError, match="steps_per_epoch"):
        EvolvedPairs(config=curriculum(), alphabet="protein", view=SequenceView(alphabet=PROTEIN, max_len=100))


def test_curriculum_follows_the_training_loader(sim_dir):
    dm = OrthologDataModule(config=DataConfig(path=str(sim_dir), fractions=(1.0, 0.0, 0.0), batch_size=8,
                                              max_len=40, evolved={"fraction": 0.25, "curriculum_steps": 4,
                                                                   "curriculum_start": 0.1,
                                                                   "divergence": (0.05, 5.0)}))
    dm.setup()
    loader = dm.train_dataloader()
    src = loader.dataset.evolved
    assert src.steps_per_epoch == len(loader.batch_sampler) == 24 // 6


def test_hard_batches_with_evolved_rows(sim_dir):
    dm = OrthologDataModule(config=DataConfig(path=str(sim_dir), fractions=(1.0, 0.0, 0.0), batch_size=8,
                                              max_len=40, batching="knn", hard_pool=5,
                                              evolved={"fraction": 0.25}))
    dm.setup()
    loader = dm.train_dataloader()
    keys = list(loader.batch_sampler)
    assert len(keys) == 24 // 6
    n_real = len(dm.labels)
    seen = []
    hard = dm.hard
    for batch_keys in keys:
        real = [k[0] for k in batch_keys if k[0] != "evolved"]
        evolved = [k for k in batch_keys if k[0] == "evolved"]
        assert len(real) == 6 and len(evolved) == 2 and len(set(real)) == 6
        # the real rows are a hard batch: after the anchor, each row is a neighbour of an earlier one (or filler
        # once the neighbourhood is used up)
        near = sum(any(r in hard.neighbours[q] for q in real[:i]) for i, r in enumerate(real) if i)
        assert near >= 3
        seen += real
    assert sorted(seen) == list(range(24))  # each real family once per round
    for batch in loader:
        labels = batch["labels"].tolist()
        assert len(labels) == 8 and sum(lab >= n_real for lab in labels) == 2 and len(set(labels)) == 8
    # refresh: a new table changes the next batches' real rows, never the evolved rows
    before = list(loader.batch_sampler)
    hard.refresh(np.random.default_rng(0).normal(size=(len(hard.rows), 16)).astype(np.float32))
    after = list(loader.batch_sampler)
    assert [[k for k in b if k[0] == "evolved"] for b in before] == [[k for k in b if k[0] == "evolved"] for b in after]
    assert [[k for k in b if k[0] != "evolved"] for b in before] != [[k for k in b if k[0] != "evolved"] for b in after]


def test_hard_batches_refuse_evolved_only():
    with pytest.raises(ValueError, match="no real rows"):
        DataConfig(path="x", batching="knn", evolved={"fraction": 1.0})
    DataConfig(path="x", batching="knn", evolved={"fraction": 0.5})  # accepted now

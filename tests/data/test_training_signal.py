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


# --- alignment-guided positives ----------------------------------------------------------------------------------

def _mutate(seq: str, rate: float, rng) -> str:
    letters = "ACDEFGHIKLMNPQRSTVWY"
    return "".join(letters[rng.integers(20)] if rng.random() < rate else c for c in seq)


def planted_dataset():
    """Six two-member families of unrelated random proteins; F4's second member is a homolog of F1's members."""
    from phylocl.data.dataset import OrthologDataset

    rng = np.random.default_rng(5)
    ids, seqs, fams = [], [], []
    roots = ["".join("ACDEFGHIKLMNPQRSTVWY"[i] for i in rng.integers(20, size=150)) for _ in range(6)]
    for f, root in enumerate(roots):
        for m in range(2):
            ids.append(f"F{f}_{m}")
            fams.append(f"F{f}")
            seqs.append(_mutate(roots[1] if (f, m) == (4, 1) else root, 0.15, rng))
    return OrthologDataset(ids=ids, sequences=seqs, families=fams, alphabet=PROTEIN)


def test_mined_pairs_are_the_planted_homologs():
    from phylocl.workflows.aligned_positives import mine_aligned_pairs

    ds = planted_dataset()
    fams = ds.family_names
    pairs, stats = mine_aligned_pairs(ds, fams, evalue=1e-3, candidates=8, members=2)
    assert {tuple(p) for p in pairs.tolist()} == {(2, 9), (3, 9)}  # F1_0-F4_1 and F1_1-F4_1 only
    assert stats["pairs"] == 2 and stats["families_joined"] == 2 and stats["representatives"] == 12
    none, _ = mine_aligned_pairs(ds, fams, evalue=1e-300, candidates=8, members=2)
    assert len(none) == 0
    one, _ = mine_aligned_pairs(ds, fams, evalue=1e-3, candidates=8, members=1, seed=0)
    assert all(ds.families[a] != ds.families[b] for a, b in one.tolist())


def test_profile_candidates_rank_the_homolog_first_and_skip_own_family():
    from phylocl.workflows.aligned_positives import profile_candidates

    ds = planted_dataset()
    owner = np.repeat(np.arange(6), 2)
    cands = profile_candidates(ds.sequences, owner, PROTEIN, k=3, width=3)
    assert cands.shape == (12, 3)
    assert all(owner[c] != owner[i] for i, row in enumerate(cands) for c in row)
    assert cands[9, 0] in (2, 3) and cands[2, 0] == 9


def test_merged_labels_join_components_only():
    from phylocl.data.aligned import merged_labels

    labels = {"a": 3, "b": 1, "c": 7, "d": 0, "e": 5}
    merged = merged_labels(labels, [("a", "c"), ("c", "b")])
    assert merged == {"a": 1, "b": 1, "c": 1, "d": 0, "e": 5}
    assert merged_labels(labels, []) == labels
    with pytest.raises(ValueError, match="unlabelled"):
        merged_labels(labels, [("a", "zz")])


@pytest.mark.parametrize("mode", ["merge", "pairs"])
def test_aligned_pairs_in_training_batches(sim_dir, mode):
    cfg = DataConfig(path=str(sim_dir), fractions=(1.0, 0.0, 0.0), batch_size=8, max_len=40, aligned_evalue=1e-3,
                     aligned_mode=mode)
    dm = OrthologDataModule(config=cfg)
    dm.setup()
    fam_of = dm.train_set.families
    idx = dm.train_set.family_index
    f0, f1, f2 = sorted(idx)[:3]
    dm.set_aligned_pairs(np.array([[idx[f0][0], idx[f1][0]], [idx[f1][1], idx[f2][0]]]))
    pairs = dm.train_pairs()
    joined = {pairs.labels[f] for f in (f0, f1, f2)}
    assert joined == {min(dm.labels[f] for f in (f0, f1, f2))}  # one loss label for the chain f0 - f1 - f2
    others = [f for f in idx if f not in (f0, f1, f2)]
    assert all(pairs.labels[f] == dm.labels[f] for f in others)
    assert len(pairs) == 24 + (2 if mode == "pairs" else 0)
    if mode == "pairs":
        a, b, label = pairs[(24, 0, 0)]
        ends = [dm.train_set.sequences[idx[f0][0]], dm.train_set.sequences[idx[f1][0]]]
        views = sorted(PROTEIN.decode(v) for v in (a, b))
        assert label in joined and fam_of[idx[f0][0]] != fam_of[idx[f1][0]]
        assert (views[0] in ends[0] and views[1] in ends[1]) or (views[0] in ends[1] and views[1] in ends[0])
        keys = [k[0] for b in dm.train_dataloader().batch_sampler for k in b]
        assert 24 in keys and 25 in keys  # the sampler draws the pair items like families
    with pytest.raises(ValueError, match="random"):
        DataConfig(path="x", batching="knn", aligned_evalue=1e-3)


def test_train_workflow_mines_pairs_into_the_datamodule(sim_dir):
    from types import SimpleNamespace

    from phylocl.workflows.train import _mine_aligned

    cfg = DataConfig(path=str(sim_dir), fractions=(1.0, 0.0, 0.0), batch_size=8, max_len=40, aligned_evalue=1e-3)
    dm = OrthologDataModule(config=cfg)
    dm.setup()
    _mine_aligned(dm, SimpleNamespace(data=cfg))
    fams = dm.train_set.families
    assert dm.aligned_pairs is not None and dm.aligned_pairs.shape[1] == 2
    assert all(fams[a] != fams[b] for a, b in dm.aligned_pairs.tolist())

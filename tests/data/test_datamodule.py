"""DataConfig validation and the OrthologDataModule wiring, on the shipped example data and simulated families."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from phylocl.data.datamodule import DataConfig, OrthologDataModule
from phylocl.data.simulator.simulate import SimulationParams, simulate_families, write_simulation
from phylocl.errors import InputError

EXAMPLE = Path(__file__).resolve().parents[2] / "datasets" / "example-mini-mit"


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    params = SimulationParams(families=12, members=5, length=60, alphabet="protein", seed=1, rate=0.4)
    return write_simulation(simulate_families(params), tmp_path_factory.mktemp("sim") / "sim", params=params)


def make(path, **kw):
    dm = OrthologDataModule(config=DataConfig(path=str(path), **kw))
    dm.setup()
    return dm


def test_setup_splits_and_labels(sim_dir):
    dm = make(sim_dir, fractions=(0.5, 0.25, 0.25), seed=2)
    parts = [set(s.family_names) for s in (dm.train_set, dm.val_set, dm.test_set)]
    assert [len(p) for p in parts] == [6, 3, 3] and not (parts[0] & parts[1] or parts[0] & parts[2])
    assert dm.alphabet.name == "protein"
    assert dm.labels == {f"fam{i:02d}": i for i in range(12)}


def test_train_batches(sim_dir):
    dm = make(sim_dir, fractions=(0.5, 0.25, 0.25), batch_size=4, max_len=32, mask_prob=0.1,
              pairs_per_family_per_epoch=2, pad_to_multiple_of=8)
    batches = list(dm.train_dataloader())
    assert len(batches) == 2  # 6 families, batches of 4, drop_last, 2 rounds
    train_labels = {dm.labels[f] for f in dm.train_set.family_names}
    for b in batches:
        assert b["a"]["input_ids"].shape[0] == b["b"]["input_ids"].shape[0] == len(b["labels"]) == 4
        assert len(set(b["labels"].tolist())) == 4 and set(b["labels"].tolist()) <= train_labels
        assert b["a"]["input_ids"].shape[1] <= 32 and b["a"]["input_ids"].shape[1] % 8 == 0
    again = list(make(sim_dir, fractions=(0.5, 0.25, 0.25), batch_size=4, max_len=32, mask_prob=0.1,
                      pairs_per_family_per_epoch=2, pad_to_multiple_of=8).train_dataloader())
    assert all(torch.equal(x["a"]["input_ids"], y["a"]["input_ids"]) for x, y in zip(batches, again))


def test_eval_batches_cover_every_sequence_once_whole_and_length_sorted():
    dm = make(EXAMPLE / "protein", fractions=(0.6, 0.2, 0.2), batch_size=16, max_len=200)
    for split, loader in ((dm.val_set, dm.val_dataloader()), (dm.test_set, dm.test_dataloader())):
        seen, widths = [], []
        for b in loader:
            assert set(b) == {"tokens", "labels", "index"}
            for row, i in enumerate(b["index"].tolist()):
                n = int(b["tokens"]["attention_mask"][row].sum())
                # whole sequences (the encoder windows long ones), as phylocl evaluate embeds them
                assert n == len(split.sequences[i])
                assert dm.alphabet.decode(b["tokens"]["input_ids"][row, :n].numpy()) == split.sequences[i]
                assert b["labels"][row].item() == dm.labels[split.families[i]]
            seen += b["index"].tolist()
            widths.append(b["tokens"]["input_ids"].shape[1])
        assert sorted(seen) == list(range(len(split)))
        assert widths == sorted(widths, reverse=True)


def test_distant_pairs_token_budget_and_ranks(sim_dir):
    dm = make(sim_dir, fractions=(1.0, 0.0, 0.0), pair_strategy="distant", alpha=2.0, batch_size=4,
              token_budget=120, max_len=40, drop_last=False)
    assert dm.distances is not None and len(dm.distances._memo) == 12
    assert dm.distances.source("fam00") == "tree"  # simulate writes trees, read_dataset picks them up
    for b in dm.train_dataloader():
        for v in ("a", "b"):
            assert b[v]["input_ids"].numel() <= 120
    assert dm.val_dataloader() == [] and dm.test_dataloader() == []
    seen = []
    for rank in range(2):
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank)
        seen.append([set(b["labels"].tolist()) for b in dm.train_dataloader()])
    assert len(seen[0]) == len(seen[1]) and all(not (x & y) for x, y in zip(*seen))


def test_several_inputs_and_extra_training_data(sim_dir, tmp_path):
    params = SimulationParams(families=3, members=3, length=40, seed=9)  # fam0..fam2: no clash with fam00..
    other = write_simulation(simulate_families(params), tmp_path / "other", params=params)
    params = SimulationParams(families=11, members=3, length=40, seed=8)  # fam00..fam10: clash
    clash = write_simulation(simulate_families(params), tmp_path / "clash", params=params)
    dm = OrthologDataModule(config=DataConfig(paths=[str(sim_dir), str(other), str(clash)],
                                              fractions=(0.8, 0.2, 0.0)))
    dm.setup()
    names = set(dm.train_set.family_names) | set(dm.val_set.family_names)
    assert len(names) == 12 + 3 + 11 and {"fam0", "sim/fam00", "clash/fam00", "fam11"} <= names
    dm = make(sim_dir, fractions=(0.5, 0.5, 0.0), extra_train_paths=[str(other)])
    assert {"fam0", "fam1", "fam2"} <= set(dm.train_set.family_names) and len(dm.val_set.family_names) == 6
    with pytest.raises(InputError, match="families of the val/test sets"):
        make(sim_dir, fractions=(0.5, 0.5, 0.0), extra_train_paths=[str(clash)])
    with pytest.raises(InputError, match="share an alphabet"):
        make(sim_dir, extra_train_paths=[str(EXAMPLE / "dna")])
    for twin in (str(sim_dir), str(sim_dir) + "/", str(sim_dir / ".." / sim_dir.name)):  # its families twice
        with pytest.raises((InputError, ValueError), match="is given twice"):
            OrthologDataModule(config=DataConfig(paths=[str(sim_dir), str(other), twin])).setup()


def test_training_batches_are_length_bucketed_by_default(sim_dir):
    dm = make(sim_dir, fractions=(0.5, 0.25, 0.25), batch_size=3, max_len=32)
    sampler = dm.train_dataloader().batch_sampler
    assert sampler.bucket and sampler.sort_window == 8
    assert list(sampler.lengths) == list(dm.train_pairs().family_lengths(typical=True))
    off = make(sim_dir, fractions=(0.5, 0.25, 0.25), batch_size=3, max_len=32, bucket_by_length=False)
    assert not off.train_dataloader().batch_sampler.bucket


def test_config_validation_and_typed_overrides():
    from phylocl.configtools import apply_overrides, from_dict

    cfg = from_dict(DataConfig, apply_overrides({}, ["paths=[a,b]", "fractions=[0.7,0.2,0.1]", "token_budget=4096",
                                                     "pair_strategy=hardest", "holdout={test: [F1]}"]))
    assert cfg.paths == ["a", "b"] and cfg.fractions == (0.7, 0.2, 0.1) and cfg.holdout == {"test": ["F1"]}
    bad = [dict(fractions=(0.5, 0.5, 0.5)), dict(batch_size=0), dict(mask_prob=1.0), dict(token_budget=10),
           dict(pair_strategy="closest"), dict(alpha=-1.0), dict(labels="x.tsv"), dict(holdout={"dev": []}),
           dict(alphabet="rna2"), dict(mask_prob=0.6, substitution_prob=0.5), dict(bucket_by_length="yes"),
           dict(bucket_window=0)]
    for kw in bad:
        with pytest.raises(ValueError):
            DataConfig(**kw)
    with pytest.raises(InputError, match="no data given"):
        OrthologDataModule(config=DataConfig()).setup()


def test_lightning_fit_reshuffles_pairs_every_epoch(sim_dir):
    import lightning as L

    class Probe(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(32, 4)
            self.seen = []

        def training_step(self, batch, _):
            self.seen.append((self.current_epoch, batch["labels"].tolist(), batch["a"]["input_ids"].sum().item()))
            return self.emb(batch["a"]["input_ids"]).mean() + self.emb(batch["b"]["input_ids"]).mean()

        def validation_step(self, batch, _):
            assert set(batch) == {"tokens", "labels", "index"}

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = OrthologDataModule(config=DataConfig(path=str(sim_dir), batch_size=3, max_len=20, seed=1))
    probe = Probe()
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(probe, datamodule=dm)
    epochs = [[s[1:] for s in probe.seen if s[0] == e] for e in (0, 1)]
    assert len(epochs[0]) == len(epochs[1]) == 3 and epochs[0] != epochs[1]


def test_distance_settings_the_data_cannot_meet_are_one_input_error(sim_dir, tmp_path):
    """``data.distance=tree`` with families without a tree, and a ``data.kmer_size`` whose words overflow the
    k-mer codes, ended ``phylocl train`` in a ValueError traceback from the distance computation."""
    bare = tmp_path / "bare"
    bare.mkdir()
    for fasta in sorted(sim_dir.glob("*.fasta")):  # the simulation without its trees/
        (bare / fasta.name).write_text(fasta.read_text())
    with pytest.raises(InputError, match=r"data.distance=tree, but 6 training families have no tree \(e.g. fam"):
        make(bare, fractions=(0.5, 0.25, 0.25), pair_strategy="distant", distance="tree")
    with pytest.raises(InputError, match=r"data.kmer_size=15 is too large for the protein alphabet \(at most 14;"):
        make(bare, fractions=(0.5, 0.25, 0.25), pair_strategy="hardest", kmer_size=15)
    assert make(bare, fractions=(0.5, 0.25, 0.25), pair_strategy="distant", kmer_size=14).distances is not None
    # with every family's tree, k-mers are not used and the size does not matter (as before)
    assert make(sim_dir, fractions=(0.5, 0.25, 0.25), pair_strategy="distant", kmer_size=1000).distances is not None

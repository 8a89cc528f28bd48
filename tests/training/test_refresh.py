"""Hard-negative batches in training: refresh changes neighbours with the encoder, batch hardness is logged, the
cached path and group batches run, and bad settings are refused."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from phylocl.data.datamodule import DataConfig, OrthologDataModule
from phylocl.data.simulator.simulate import SimulationParams, simulate_families, write_simulation
from phylocl.errors import InputError
from phylocl.models.registry import build_encoder
from phylocl.training.refresh import embed_dataset
from phylocl.workflows import train as train_mod


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    """24 simulated protein families as ``sequences.fasta`` + ``labels.tsv`` with a ``clan`` column (3 clans)."""
    from phylocl.data.layouts import read_dataset

    params = SimulationParams(families=24, members=4, length=50, alphabet="protein", seed=3, rate=0.3)
    root = tmp_path_factory.mktemp("sim")
    ds = read_dataset(write_simulation(simulate_families(params), root / "sim", params=params))
    out = root / "labelled"
    out.mkdir()
    (out / "sequences.fasta").write_text("".join(f">{i}\n{s}\n" for i, s in zip(ds.ids, ds.sequences)))
    clans = {f: f"clan{k % 3}" for k, f in enumerate(ds.family_names)}
    (out / "labels.tsv").write_text("sequence_id\tfamily_id\tclan\n" + "".join(
        f"{i}\t{f}\t{clans[f]}\n" for i, f in zip(ds.ids, ds.families)))
    return out


def _module(sim_dir, **kw):
    dm = OrthologDataModule(config=DataConfig(path=str(sim_dir), fractions=(1.0, 0.0, 0.0), batch_size=4,
                                              max_len=40, batching="knn", refresh_members=2, **kw))
    dm.setup()
    dm.train_dataloader()
    return dm


def test_refresh_changes_neighbours_only_when_the_encoder_changes(sim_dir):
    dm = _module(sim_dir)
    hard = dm.hard
    start = hard.neighbours.copy()
    assert hard.sampler is not None and np.array_equal(hard.sampler.neighbours, start)
    sample = dm.train_set.subset(hard.rows)
    torch.manual_seed(0)
    enc = build_encoder("gmlp-tiny", alphabet="protein", max_len=40, dropout=0.0, drop_path=0.0)
    x = embed_dataset(enc, dm.eval_dataloader(sample), len(sample))
    assert hard.refresh(x) > 0  # k-mer neighbours -> encoder neighbours
    assert hard.refresh(x) == 0.0  # same encoder, same neighbours
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(0.5 * torch.randn_like(p))
    assert hard.refresh(embed_dataset(enc, dm.eval_dataloader(sample), len(sample))) > 0
    assert np.array_equal(hard.sampler.neighbours, hard.neighbours)  # the live sampler got the new table


@pytest.mark.parametrize("extra", [[], ["cache.enabled=true", "cache.chunk_size=2"],
                                   ["data.batching=group", "data.group_by=clan"]], ids=["knn", "cached", "group"])
def test_training_logs_hardness_and_refreshes(sim_dir, tmp_path, extra):
    sets = ["model.name=gmlp-tiny", f"data.path={sim_dir}", "data.max_len=40", "data.batch_size=4",
            "data.fractions=[0.8,0.2,0.0]", "data.batching=knn", "data.refresh_every=2", "trainer.max_steps=5",
            "trainer.val_every_n_steps=5", "trainer.log_every_n_steps=1", "optim.warmup_steps=1", *extra]
    train_mod.train(None, tmp_path / "run", overrides=sets, progress=False)
    with open(tmp_path / "run" / "logs" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    neg = [float(r["train/neg_sim"]) for r in rows if r.get("train/neg_sim")]
    assert len(neg) == 5 and all(-1.0 <= v <= 1.0 for v in neg)
    assert [int(r["step"]) for r in rows if r.get("train/neighbours_changed")] == [2, 4]
    assert all(r["train/pos_prob"] for r in rows if r.get("train/neg_sim"))


def test_bad_hard_negative_settings():
    for kw in (dict(batching="group"), dict(group_by="clan"), dict(batching="closest"), dict(refresh_every=-1),
               dict(refresh_members=0), dict(batching="knn", token_budget=1024), dict(hard_pool=0)):
        with pytest.raises(ValueError):
            DataConfig(**kw)


def test_missing_group_column_is_named(sim_dir):
    dm = OrthologDataModule(config=DataConfig(path=str(sim_dir), batching="group", group_by="fold"))
    with pytest.raises(InputError, match="data.group_by: no labels column 'fold'"):
        dm.setup()

"""Learning curves: ``phylocl train`` logs dev and training-family figures against pairs seen; the plot helper."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import phylocl
from phylocl.data.datamodule import DataConfig, OrthologDataModule
from phylocl.errors import InputError
from phylocl.retrieval.evaluation import evaluate_embeddings
from phylocl.training.refresh import embed_dataset
from phylocl.workflows import train as train_mod
from phylocl.workflows.curves import plot_curves, read_curves

EXAMPLE = Path(__file__).resolve().parents[2] / "datasets" / "example-mini-mit" / "protein"
SETS = ["model.name=gmlp-tiny", f"data.path={EXAMPLE}", "data.max_len=48", "data.batch_size=3",
        "data.fractions=[0.6,0.2,0.2]", "trainer.max_steps=6", "trainer.log_every_n_steps=1",
        "optim.warmup_steps=2", "eval.train_families=4"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("curves") / "run"
    train_mod.train(None, out, overrides=SETS + ["trainer.val_every_n_steps=3"], progress=False)
    return out


def test_train_logs_dev_and_training_family_figures_against_pairs_seen(run):
    with open(run / "logs" / "metrics.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("val/map_r")]
    assert [float(r["val/pairs_seen"]) for r in rows] == [3 * 3, 6 * 3]  # steps x pairs per step
    assert all(0 <= float(r["train_fam/map_r"]) <= 1 and r["train_fam/auc1"] for r in rows)
    curves = read_curves(run)
    assert [x for x, _ in curves["val"]] == [x for x, _ in curves["train_fam"]] == [9.0, 18.0]


def test_training_family_sample_is_fixed_and_from_training_families(run):
    splits = json.loads((run / "splits.json").read_text())
    cfg = DataConfig(path=str(EXAMPLE), fractions=(0.6, 0.2, 0.2))
    dms = [OrthologDataModule(config=cfg, train_eval_families=4) for _ in range(2)]
    for dm in dms:
        dm.setup()
    sample = dms[0].train_eval_set()
    assert sample.family_names == dms[1].train_eval_set().family_names and len(sample.family_names) == 4
    assert set(sample.family_names) <= set(splits["train"])
    assert len(dms[0].val_dataloader()) == 2
    off = OrthologDataModule(config=cfg)
    off.setup()
    assert not isinstance(off.val_dataloader(), list)  # train_eval_families=0: the dev loader alone


def test_logged_training_family_figures_are_the_encoders(tmp_path):
    out = tmp_path / "run"
    train_mod.train(None, out, overrides=SETS + ["trainer.val_every_n_steps=6"], progress=False)
    with open(out / "logs" / "metrics.csv") as fh:
        logged = [float(r["train_fam/map_r"]) for r in csv.DictReader(fh) if r.get("train_fam/map_r")]
    dm = OrthologDataModule(config=DataConfig(path=str(EXAMPLE), fractions=(0.6, 0.2, 0.2), max_len=48),
                            train_eval_families=4)
    dm.setup()
    sample = dm.train_eval_set()
    # reference: the exported (= only validated) encoder on the same deterministic crops, scored directly
    x = embed_dataset(phylocl.load_encoder(out), dm.eval_dataloader(sample), len(sample))
    assert len(logged) == 1
    assert logged[0] == pytest.approx(evaluate_embeddings(np.asarray(x), sample.families)["map_r"], abs=1e-4)


def test_plot_helper_writes_a_figure_and_names_bad_runs(run, tmp_path):
    png = plot_curves([run, run], tmp_path / "c.png", metric="auc1")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError, match="no logs/metrics.csv"):
        read_curves(tmp_path)


def test_the_curves_command_line_is_one_line_and_exit_2_on_bad_input(tmp_path, capsys):
    from phylocl.workflows.curves import main

    assert main([str(tmp_path / "nothing"), "-o", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no logs/metrics.csv" in err and "Traceback" not in err
    (tmp_path / "run" / "logs").mkdir(parents=True)
    assert main([str(tmp_path / "run"), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "output is a directory" in err
    assert not (tmp_path / "c.png").exists()


def _fake_run(folder, text: bytes):
    (folder / "logs").mkdir(parents=True)
    (folder / "logs" / "metrics.csv").write_bytes(text)
    return folder


GOOD = b"step,val/pairs_seen,val/map_r,train_fam/map_r\n3,96,0.25,0.5\n6,192,0.5,0.75\n"


@pytest.mark.parametrize("case, text, out, message", [
    ("suffix", GOOD, "c.txt", "c.txt: cannot write a figure as .txt; use one of "),  # a matplotlib traceback
    ("pgf", GOOD, "c.pgf", "c.pgf: cannot write a figure as .pgf"),  # needs LaTeX: a traceback after reading
    ("number", b"val/pairs_seen,val/map_r\n96,0.25\n192,abc\n", "c.png", "metrics.csv:3: 'abc' is not a number"),
    ("utf8", b"val/pairs_seen,val/map_r\n96,\xff\n", "c.png", "metrics.csv: not UTF-8 text"),
    ("input", GOOD, "run/logs/metrics.csv", "metrics.csv: output would overwrite an input file"),
], ids=["suffix", "pgf", "number", "utf8", "input"])
def test_bad_figure_names_and_tables_are_one_line_exit_2_and_nothing_written(tmp_path, capsys, case, text, out,
                                                                              message):
    from phylocl.workflows.curves import main

    run = _fake_run(tmp_path / "run", text)
    assert main([str(run), "-o", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert (run / "logs" / "metrics.csv").read_bytes() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_hand_made_table_is_plotted_with_both_curves(tmp_path):
    run = _fake_run(tmp_path / "run", GOOD)
    assert read_curves(run) == {"val": [(96.0, 0.25), (192.0, 0.5)], "train_fam": [(96.0, 0.5), (192.0, 0.75)]}
    assert plot_curves([run], tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")


def test_a_misspelt_metric_is_named_with_the_logged_ones(tmp_path):
    """It was 'no val/mapr with val/pairs_seen logged (an older run, or validation off)'."""
    run = _fake_run(tmp_path / "run", GOOD)
    with pytest.raises(InputError, match="no val/mapr logged; the metric must be one of map_r$"):
        read_curves(run, metric="mapr")

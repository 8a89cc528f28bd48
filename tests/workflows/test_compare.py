"""``phylocl compare``: one real tiny study end to end, then the bookkeeping (resume, failures, interruption, summary
statistics, config errors) with a stand-in for ``train`` that writes a run folder of known numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from phylocl.cli import main
from phylocl.errors import InputError
from phylocl.workflows import compare as compare_mod
from phylocl.workflows import train as train_mod
from phylocl.workflows.compare_config import CompareConfig, ReferenceConfig, load_compare_config
from phylocl.workflows.compare_report import summarize

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "datasets" / "example-mini-mit" / "protein"  # 10 families; fractions 0.6/0.2/0.2 -> 6 train

BASE = {
    "data": {"path": str(EXAMPLE), "fractions": [0.6, 0.2, 0.2], "max_len": 40, "pair_strategy": "uniform"},
    "model": {"name": "gmlp-tiny"},
    "eval": {"ks": [1, 5]},
    # budget 24: 12 steps at batch 2, 6 at batch 4, 4 for the reference at all 6 training families
    "compare": {"batch_sizes": [2, 4], "seeds": [0], "pairs_budget": 24, "log_points": 100,
                "dynamics_fraction": 0.25, "reference": {"batch_size": 1024, "chunk_size": 2}},
}


def _write_config(tmp_path: Path, **compare) -> Path:
    cfg = json.loads(json.dumps(BASE))
    cfg["compare"].update(compare)
    path = tmp_path / "compare.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _rows(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------------------------------ a fake train
def _fake_metrics(loss: str, batch: int, seed: int) -> dict:
    rng = np.random.default_rng([batch, seed, ["infonce", "flatnce"].index(loss)])
    m = rng.uniform(0.1, 0.9, size=5)
    return {"top1": m[0], "map_r": m[1], "auc1": m[2], "recall@1": m[3], "recall@5": m[4], "n_queries": 37}


def _fake_curve(step: int, loss: str) -> tuple[float, float]:
    """(grad_norm, pos_prob) logged at ``step``."""
    return (1.0 + step if loss == "flatnce" else 10.0 - 0.1 * step), 0.5 + 0.01 * step


class FakeTrain:
    """Stands in for ``train``: writes encoder.pt, metrics.json and logs/metrics.csv like a finished run.

    ``fail``: cell names that raise RuntimeError; ``interrupt``: cell names that raise KeyboardInterrupt.
    """

    def __init__(self, fail=(), interrupt=()):
        self.calls: list[str] = []
        self.fail, self.interrupt = set(fail), set(interrupt)

    def __call__(self, config, out_dir, *, overrides=(), data=None, resume=False, progress=True):
        out = Path(out_dir)
        self.calls.append(out.name)
        if out.name in self.interrupt:
            raise KeyboardInterrupt("training interrupted")
        out.mkdir(parents=True)  # a fresh folder every time: compare clears failed attempts
        if out.name in self.fail:
            raise RuntimeError("CUDA out of memory (pretend)\nsecond line")
        steps, every = config.trainer.max_steps, config.trainer.log_every_n_steps
        (out / "logs").mkdir()
        with open(out / "logs" / "metrics.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["epoch", "step", "train/grad_norm", "train/loss", "train/pos_prob", "train/infonce"])
            for s in range(every - 1, steps, every):
                g, p = _fake_curve(s, config.loss.name)
                w.writerow([0, s, g, 1.0, p, 2.0])
        test = _fake_metrics(config.loss.name, config.data.batch_size, config.trainer.seed)
        metrics = {"steps": steps, "wall_seconds": 1.0, "device": "fake", "test": test, "val": {"map_r": 0.5}}
        (out / "metrics.json").write_text(json.dumps(metrics))
        (out / "encoder.pt").write_bytes(b"fake")
        return train_mod.TrainResult(out, out / "encoder.pt", metrics)


@pytest.fixture
def fake_train(monkeypatch):
    def install(**kwargs) -> FakeTrain:
        fake = FakeTrain(**kwargs)
        monkeypatch.setattr(train_mod, "train", fake)
        return fake
    return install


# --------------------------------------------------------------------------------------------- real end to end
def test_tiny_study_end_to_end(tmp_path, capsys):
    """Real training: every cell row, equal pairs seen, per-cell configs, frozen family-disjoint split, outputs."""
    out = tmp_path / "study"
    assert main(["compare", "--config", str(_write_config(tmp_path)), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "5/5 cells finished" in captured.out
    assert "[5/5] ref-infonce-b6-s0" in captured.err and "ETA" in captured.err

    rows = _rows(out)
    assert list(rows[0]) == compare_mod.result_columns([1, 5])
    assert [r["cell"] for r in rows] == ["infonce-b2-s0", "flatnce-b2-s0", "infonce-b4-s0", "flatnce-b4-s0",
                                         "ref-infonce-b6-s0"]
    assert {r["status"] for r in rows} == {"ok"}
    assert {int(r["pairs_seen"]) for r in rows} == {24}
    assert [int(r["steps"]) for r in rows] == [12, 12, 6, 6, 4]
    for r in rows:
        assert 0.0 <= float(r["map_r"]) <= 1.0 and 0.0 <= float(r["auc1"]) <= 1.0
        assert int(r["n_queries"]) > 0 and r["device"].startswith("cpu")
        assert 1.0 <= float(r["effective_rank"]) and float(r["uniformity"]) < 0 <= float(r["alignment"])

    split = json.loads((out / "split.json").read_text())
    assert split["train_pair_families"] == 6
    held = set(split["holdout"]["val"]) | set(split["holdout"]["test"])
    for r in rows:
        cell = out / "cells" / r["cell"]
        cfg = yaml.safe_load((cell / "config.yaml").read_text())
        assert cfg["loss"]["name"] == r["loss"] and cfg["data"]["batch_size"] == int(r["batch_size"])
        assert cfg["trainer"]["max_steps"] == int(r["steps"]) and cfg["cache"]["enabled"] == (r["cell"][:4] == "ref-")
        splits = json.loads((cell / "splits.json").read_text())  # written by train: the same split in every cell
        assert splits["test"] == sorted(split["holdout"]["test"]) and not set(splits["train"]) & held
        # the first/last dynamics columns are the means of the logged values over those parts
        with open(cell / "logs" / "metrics.csv", newline="") as fh:
            logged = [(int(x["step"]), float(x["train/grad_norm"])) for x in csv.DictReader(fh)
                      if x.get("train/grad_norm")]
        steps = int(r["steps"])
        first = [v for s, v in logged if s < 0.25 * steps]
        assert float(r["grad_norm_first"]) == pytest.approx(np.mean(first), rel=1e-5)
        last = [v for s, v in logged if s >= 0.75 * steps]
        assert float(r["grad_norm_last"]) == pytest.approx(np.mean(last), rel=1e-5)

    summary = (out / "summary.md").read_text()
    assert "| infonce (reference, cached) | 6 | 4 | 1 |" in summary and "Δ MAP@R" in summary
    assert "| effective rank | alignment | uniformity |" in summary
    for name in ("compare.png", "dynamics.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------------------- bookkeeping (fake)
def test_rerun_skips_finished_cells_and_extends_the_grid(tmp_path, fake_train):
    cfg = _write_config(tmp_path)
    out = tmp_path / "study"
    fake = fake_train()
    assert main(["compare", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert len(fake.calls) == 5
    before = (out / "results.csv").read_text()

    fake = fake_train()
    assert main(["compare", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert fake.calls == []
    assert (out / "results.csv").read_text() == before

    # a row lost after the encoder was exported (crash between the two) is rebuilt, not retrained
    (out / "cells" / "flatnce-b4-s0" / "cell.json").unlink()
    fake = fake_train()
    assert main(["compare", "--config", str(cfg), "--out", str(out), "--quiet", "--set", "compare.seeds=[0,1]"]) == 0
    assert sorted(fake.calls) == ["flatnce-b2-s1", "flatnce-b4-s1", "infonce-b2-s1", "infonce-b4-s1",
                                  "ref-infonce-b6-s1"]
    rows = _rows(out)
    assert len(rows) == 10 and {r["status"] for r in rows} == {"ok"}
    assert len({r["pairs_seen"] for r in rows}) == 1


def test_a_folder_holding_a_users_results_csv_is_refused(tmp_path, fake_train, capsys):
    """A folder that is no study (no split.json) but holds a name a study writes: refused, nothing trained or
    written (the user's results.csv and summary.md were replaced before)."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "results.csv").write_text("mine")
    fake = fake_train()
    assert main(["compare", "--config", str(_write_config(tmp_path)), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds results.csv, which phylocl compare writes" in err
    assert fake.calls == [] and sorted(p.name for p in out.iterdir()) == ["results.csv"]


def test_settings_shared_by_all_cells_cannot_change_on_rerun(tmp_path, fake_train, capsys):
    cfg = _write_config(tmp_path)
    out = tmp_path / "study"
    fake_train()
    assert main(["compare", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    fake = fake_train()
    assert main(["compare", "--config", str(cfg), "--out", str(out), "--set", "optim.lr=0.01"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "different settings" in err and "optim" in err
    assert fake.calls == []


def test_failed_cell_is_recorded_others_finish_and_rerun_retries_it(tmp_path, fake_train, capsys):
    cfg = _write_config(tmp_path)
    out = tmp_path / "study"
    fake = fake_train(fail={"flatnce-b2-s0"})
    assert main(["compare", "--config", str(cfg), "--out", str(out)]) == 1
    assert len(fake.calls) == 5
    assert "FAILED (RuntimeError: CUDA out of memory (pretend) second line)" in capsys.readouterr().err
    rows = {r["cell"]: r for r in _rows(out)}
    assert rows["flatnce-b2-s0"]["status"] == "failed"
    assert rows["flatnce-b2-s0"]["error"] == "RuntimeError: CUDA out of memory (pretend) second line"
    assert rows["flatnce-b2-s0"]["map_r"] == ""
    assert "Traceback" in (out / "cells" / "flatnce-b2-s0" / "error.log").read_text()
    assert all(r["status"] == "ok" for name, r in rows.items() if name != "flatnce-b2-s0")
    summary = json.loads((out / "summary.json").read_text())
    assert [g["n"] for g in summary["groups"] if g["loss"] == "flatnce" and g["batch_size"] == 2] == []

    fake = fake_train()
    assert main(["compare", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert fake.calls == ["flatnce-b2-s0"]
    assert {r["status"] for r in _rows(out)} == {"ok"}


def test_interrupt_keeps_finished_cells_and_says_how_to_continue(tmp_path, fake_train, capsys):
    cfg = _write_config(tmp_path)
    out = tmp_path / "study"
    fake_train(interrupt={"infonce-b4-s0"})
    assert main(["compare", "--config", str(cfg), "--out", str(out)]) == 130
    assert "run the same command again" in capsys.readouterr().err
    status = [r["status"] for r in _rows(out)]
    assert status == ["ok", "ok", "pending", "pending", "pending"]
    fake = fake_train()
    assert main(["compare", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert fake.calls == ["infonce-b4-s0", "flatnce-b4-s0", "ref-infonce-b6-s0"]


def test_batches_larger_than_the_training_set_are_skipped(tmp_path, fake_train):
    out = tmp_path / "study"
    fake = fake_train()
    assert main(["compare", "--config", str(_write_config(tmp_path, batch_sizes=[2, 8])), "--out", str(out),
                 "--quiet"]) == 0
    rows = {r["cell"]: r for r in _rows(out)}
    assert rows["infonce-b8-s0"]["status"] == "skipped" and "6 training families" in rows["infonce-b8-s0"]["error"]
    assert "infonce-b8-s0" not in fake.calls and len(fake.calls) == 3


def test_summary_is_the_mean_and_std_of_results_csv(tmp_path, fake_train):
    out = tmp_path / "study"
    fake_train()
    assert main(["compare", "--config", str(_write_config(tmp_path, seeds=[0, 1, 2])), "--out", str(out),
                 "--quiet"]) == 0
    rows = _rows(out)
    summary = json.loads((out / "summary.json").read_text())
    md = (out / "summary.md").read_text()
    assert len(summary["groups"]) == 5
    for g in summary["groups"]:
        members = [r for r in rows if r["loss"] == g["loss"] and int(r["batch_size"]) == g["batch_size"]
                   and bool(int(r["reference"])) == g["reference"]]
        assert g["n"] == len(members) == 3
        for col in ("map_r", "auc1", "grad_norm_first", "pos_prob_last"):
            x = np.array([float(r[col]) for r in members])
            assert g["stats"][col]["mean"] == pytest.approx(x.mean(), rel=1e-5)
            assert g["stats"][col]["std"] == pytest.approx(x.std(ddof=1), rel=1e-5)
        s = g["stats"]["map_r"]
        assert f"{s['mean']:.3f} ± {s['std']:.3f}" in md
    for p in summary["paired"]:
        d = [float(f["map_r"]) - float(i["map_r"]) for f in rows for i in rows
             if f["loss"] == "flatnce" and i["loss"] == "infonce" and f["seed"] == i["seed"]
             and int(f["batch_size"]) == int(i["batch_size"]) == p["batch_size"] and f["reference"] == "0"]
        assert p["stats"]["map_r"]["mean"] == pytest.approx(np.mean(d), rel=1e-5)
        assert p["stats"]["map_r"]["std"] == pytest.approx(np.std(d, ddof=1), rel=1e-5)
    # dynamics columns: means of the fake curve over the first / last quarter of the steps
    r = next(r for r in rows if r["cell"] == "flatnce-b2-s0")
    steps = int(r["steps"])
    first = [_fake_curve(s, "flatnce")[0] for s in range(steps) if s < steps / 4]
    last = [_fake_curve(s, "flatnce")[1] for s in range(steps) if s >= 3 * steps / 4]
    assert float(r["grad_norm_first"]) == pytest.approx(np.mean(first))
    assert float(r["pos_prob_last"]) == pytest.approx(np.mean(last))


def test_summarize_single_seed_has_no_std_and_ignores_failed_rows():
    rows = [{"loss": "infonce", "batch_size": 8, "seed": 0, "reference": 0, "steps": 4, "map_r": 0.25,
             "status": "ok"},
            {"loss": "infonce", "batch_size": 8, "seed": 1, "reference": 0, "steps": 4, "map_r": "",
             "status": "failed"}]
    (g,) = summarize(rows, ["map_r"])["groups"]
    assert g["n"] == 1 and g["stats"]["map_r"] == {"n": 1, "mean": 0.25, "std": None}


# ------------------------------------------------------------------------------------------------- the grid
def test_plan_is_seed_major_with_capped_reference_and_skips():
    grid = CompareConfig(batch_sizes=[8, 64], seeds=[0, 1], pairs_budget=64,
                         reference=ReferenceConfig(batch_size=1024, seeds=[1, 5]))
    cells = compare_mod.plan_cells(grid, train_families=40)
    assert [c.name for c in cells] == [
        "infonce-b8-s0", "flatnce-b8-s0", "infonce-b64-s0", "flatnce-b64-s0",
        "infonce-b8-s1", "flatnce-b8-s1", "infonce-b64-s1", "flatnce-b64-s1", "ref-infonce-b40-s1",
        "ref-infonce-b40-s5"]
    assert [bool(c.skip) for c in cells] == [False, False, True, True, False, False, True, True, False, False]


def test_cell_config_sets_only_the_per_cell_fields():
    grid, base = load_compare_config(REPO / "configs" / "compare-small-batch.yaml")
    holdout = {"val": ["a"], "test": ["b", "c"]}
    cell = compare_mod.Cell(loss="flatnce", batch_size=16, seed=2)
    cfg = compare_mod.cell_config(base, grid, cell, holdout=holdout)
    steps = grid.pairs_budget // 16
    assert (cfg.loss.name, cfg.data.batch_size, cfg.trainer.max_steps) == ("flatnce", 16, steps)
    assert (cfg.data.seed, cfg.trainer.seed, cfg.data.holdout) == (2, 2, holdout)
    assert cfg.data.fractions == (1.0, 0.0, 0.0) and cfg.cache.enabled is False
    assert cfg.optim.warmup_steps == round(grid.warmup_fraction * steps)
    assert cfg.trainer.val_every_n_steps > steps  # evaluations: 0 -> no validation during training
    assert (cfg.model, cfg.loss.temperature, cfg.optim.lr, cfg.data.max_len) == \
        (base.model, base.loss.temperature, base.optim.lr, base.data.max_len)
    ref = compare_mod.cell_config(base, grid, compare_mod.Cell(loss="infonce", batch_size=500, seed=0,
                                                               reference=True), holdout=holdout)
    assert ref.cache.enabled and ref.cache.chunk_size == grid.reference.chunk_size


def test_data_paths_are_kept_as_written(tmp_path):
    """``--data`` folders named like YAML words (``yes``, ``null``) or holding ``: `` or a quote stay paths (they
    were read as YAML: ``data.path: True is not a valid Optional``)."""
    names = ["yes", "null", "a: b", "it's", "[x]"]  # relative, as typed
    _, base = load_compare_config(REPO / "configs" / "compare-small-batch.yaml", data=names)
    assert base.data.path == names[0] and list(base.data.paths) == names[1:]


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("compare-*.yaml")), ids=lambda p: p.stem)
def test_shipped_compare_configs_are_valid(path):
    from phylocl.models.registry import get_config

    grid, base = load_compare_config(path)
    get_config(base.model.name, **base.model.overrides)
    assert set(grid.losses) == {"infonce", "flatnce"} and grid.pairs_budget >= max(grid.batch_sizes)


# ------------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("item, words", [
    ("compare.batch_sizes=[]", "batch_sizes"),
    ("compare.batch_sizes=[1, 8]", "batch_sizes"),
    ("compare.losses=[infonce, nce]", "compare.losses"),
    ("compare.seeds=[0, 0]", "seeds"),
    ("compare.pairs_budget=3", "pairs_budget"),
    ("compare.nope=1", "compare.nope"),
    ("eval.enabled=false", "eval.enabled"),
    ("loss.temperature=0", "temperature"),
    ("data.path=/nonexistent/data", "/nonexistent/data"),
])
def test_bad_config_exits_2_with_one_line_and_writes_nothing(tmp_path, item, words, capsys, fake_train):
    out = tmp_path / "study"
    fake = fake_train()
    assert main(["compare", "--config", str(_write_config(tmp_path)), "--out", str(out), "--set", item]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err
    assert not out.exists() and fake.calls == []


def test_config_without_a_compare_section_is_refused(tmp_path, capsys):
    assert main(["compare", "--config", str(REPO / "configs" / "example.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "no compare: section" in capsys.readouterr().err
    with pytest.raises(InputError, match="not found"):
        load_compare_config(tmp_path / "missing.yaml")


def test_a_study_from_before_a_new_setting_existed_resumes(tmp_path, fake_train, capsys):
    """A setting added to phylocl later (absent from the stored compare.yaml) takes its default: not a change."""
    import yaml

    cfg = _write_config(tmp_path)
    out = tmp_path / "study"
    fake_train()
    assert main(["compare", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    stored = yaml.safe_load((out / "compare.yaml").read_text())
    assert stored["data"].pop("crop") == "random"  # as written by a version without data.crop
    (out / "compare.yaml").write_text(yaml.safe_dump(stored, sort_keys=False))
    fake = fake_train()
    assert main(["compare", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert fake.calls == []
    # asking for the non-default value of the new setting is a change of study
    (out / "compare.yaml").write_text(yaml.safe_dump(stored, sort_keys=False))
    assert main(["compare", "--config", str(cfg), "--out", str(out), "--set", "data.crop=matched"]) == 2
    assert "different settings (sections data)" in capsys.readouterr().err


def test_second_study_into_a_locked_folder_is_refused(tmp_path, fake_train, capsys):
    """issue 25, defect 4: two ``phylocl compare`` runs into one --out corrupted the study silently."""
    import fcntl
    import os

    from phylocl.workflows.compare import LOCK_NAME

    out = tmp_path / "study"
    out.mkdir()
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    os.write(fd, b"4242\n")
    fcntl.flock(fd, fcntl.LOCK_EX)  # another study holds the folder
    fake = fake_train()
    try:
        code = main(["compare", "--config", str(_write_config(tmp_path)), "--out", str(out), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "another `phylocl compare` (pid 4242)" in err, err
        assert fake.calls == [] and sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written
    finally:
        os.close(fd)
    assert main(["compare", "--config", str(_write_config(tmp_path)), "--out", str(out), "--quiet"]) == 0
    assert not (out / LOCK_NAME).exists() and (out / "results.csv").is_file()


def test_dynamics_plot_takes_each_losss_first_finished_seed(tmp_path, fake_train, monkeypatch):
    """With flatnce-b2-s0 failed, dynamics.png showed no FlatNCE curve at batch 2 though seed 1 finished there."""
    from phylocl.workflows import compare_report

    plotted = {}
    monkeypatch.setattr(compare_report, "plot_dynamics",
                        lambda curves, path, *, title="": plotted.update(keys=set(curves), title=title))
    fake_train(fail={"flatnce-b2-s0"})
    out = tmp_path / "study"
    assert main(["compare", "--config", str(_write_config(tmp_path, seeds=[0, 1])), "--out", str(out),
                 "--quiet"]) == 1
    assert plotted["keys"] == {("infonce", 2), ("flatnce", 2), ("infonce", 4), ("flatnce", 4)}
    assert plotted["title"] == "protein: first finished seed of each (0, 1)"


def test_summary_names_the_data_given_as_data_paths_alone(tmp_path, fake_train):
    """``data.paths`` without ``data.path``: the title was 'FlatNCE vs InfoNCE: ' and the data line began ', '."""
    fake_train()
    out = tmp_path / "study"
    assert main(["compare", "--config", str(_write_config(tmp_path)), "--out", str(out), "--quiet",
                 "--set", "data.path=null", "--set", f"data.paths=[{EXAMPLE}]"]) == 0
    md = (out / "summary.md").read_text().splitlines()
    assert md[0] == "# FlatNCE vs InfoNCE: protein"
    assert md[2] == f"- data: {EXAMPLE} (protein); families train/val/test 6/2/2, test sequences 37"
    assert md[3].startswith("- model: gmlp-tiny; crops of 40")


def test_a_budget_below_the_reference_batch_skips_the_reference_only(tmp_path, fake_train):
    """The reference batch is every training family (up to reference.batch_size); a budget below it gave the
    reference 0 steps, and the whole study was refused with 'trainer.max_steps must be >= 1, got 0', a setting the
    user never made (e.g. ``--set compare.pairs_budget=256`` on the Mycoplasma config, 515 training families)."""
    out = tmp_path / "study"
    fake = fake_train()
    assert main(["compare", "--config", str(_write_config(tmp_path, pairs_budget=5)), "--out", str(out),
                 "--quiet"]) == 0
    rows = {r["cell"]: r for r in _rows(out)}
    ref = rows["ref-infonce-b6-s0"]
    assert ref["status"] == "skipped" and "pairs_budget 5 < reference batch 6" in ref["error"]
    assert fake.calls == ["infonce-b2-s0", "flatnce-b2-s0", "infonce-b4-s0", "flatnce-b4-s0"]


def test_a_train_run_folder_is_refused(tmp_path, fake_train, capsys):
    """train refuses a study's folder, but compare wrote a study into a train run's: its split.json and compare.yaml
    then made ``phylocl train --resume`` of that run refuse the folder as a study's."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (run / "config.json").write_text("{}")
    (run / "model.safetensors").write_bytes(b"x")
    before = sorted(p.name for p in run.iterdir())
    fake = fake_train()
    capsys.readouterr()
    assert main(["compare", "--config", str(_write_config(tmp_path)), "--out", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "holds a phylocl train run (its exported model, checkpoints/last.ckpt)" in err and err.count("\n") == 1
    assert sorted(p.name for p in run.iterdir()) == before and fake.calls == []

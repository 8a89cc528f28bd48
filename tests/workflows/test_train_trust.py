"""``phylocl train`` trust (issue 25): checkpoints never run code (defect 1), a diverged run is not exported
(defect 2), a killed run is not silently started over and a finished one is not rewritten (defect 8); the export is a
``save_pretrained`` model folder, and old ``encoder.pt`` runs still load (issue 26, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import phylocl
from phylocl.cli import main
from train_cli import REPO, refused, tiny_sets, train_args
from phylocl.config import load_config
from phylocl.configtools import to_dict
from phylocl.workflows.run_folder import write_config

SETS = tiny_sets(steps=4, val_every=2, warmup=1)


def _args(out, *extra, sets=SETS):
    return train_args(out, sets, *extra)


def _refused(capsys, argv, *needles):
    return refused(capsys, argv, *needles)


class _Evil:
    """Unpickling it opens (creates) the file ``marker``: code run by a checkpoint."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _run_folder_with(out: Path, name: str, payload) -> None:
    """A run folder as a killed run leaves it (config.yaml, checkpoints/NAME), with ``payload`` as the checkpoint."""
    (out / "checkpoints").mkdir(parents=True)
    write_config(out, to_dict(load_config(None, SETS)))
    torch.save(payload, out / "checkpoints" / name)


# ------------------------------------------------------------------------------------- defect 1: no code on resume
@pytest.mark.parametrize("name", ["last.ckpt", "interrupted.ckpt"])
def test_resume_from_a_crafted_checkpoint_runs_no_code(tmp_path, capsys, name):
    out, marker = tmp_path / "run", tmp_path / "pwned"
    _run_folder_with(out, name, {"state_dict": {}, "epoch": 0, "global_step": 1, "x": _Evil(marker)})
    _refused(capsys, ["train", "--resume", "--out", out, "--quiet"], name, "refusing to load")
    assert not marker.exists()  # the pickle's code never ran


def test_a_real_checkpoint_loads_weights_only(tmp_path):
    from phylocl.training.checkpoints import load_checkpoint

    out = tmp_path / "run"
    assert main(_args(out)) == 0
    state = load_checkpoint(out / "checkpoints" / "last.ckpt")
    assert state["global_step"] == 4 and "state_dict" in state


def test_every_load_in_the_package_is_data_only():
    """No ``torch.load(weights_only=False)``, ``pickle``, ``np.load(allow_pickle=True)`` or ``yaml.load`` in
    phylocl/: each file phylocl reads is read as data."""
    import re

    bad = re.compile(r"weights_only\s*=\s*False|allow_pickle\s*=\s*True|\byaml\.(?:load|unsafe_load|full_load)\(|"
                     r"\bimport pickle\b|\bpickle\.loads?\(|\bnp\.load\((?![^)]*allow_pickle=False)")
    hits = [f"{p.relative_to(REPO)}:{i}" for p in (REPO / "phylocl").rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if bad.search(line)]
    assert hits == []


# ---------------------------------------------------------------------- a finished run, trained once for the module
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(_args(out)) == 0
    return out


@pytest.fixture
def run_copy(finished_run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    return out


# ------------------------------------------------------------------- issue 26 item 5: a save_pretrained model folder
def test_train_exports_a_model_folder_that_load_encoder_reads(finished_run):
    assert (finished_run / "config.json").is_file() and (finished_run / "model.safetensors").is_file()
    assert not (finished_run / "encoder.pt").exists()
    config = json.loads((finished_run / "config.json").read_text())
    assert config["model_type"] == "phylocl-encoder" and config["name"] == "gmlp-tiny"
    enc = phylocl.load_encoder(finished_run)
    x = enc.embed(["MKVLAAGIVGLLA", "MSTAPQRWPLLL"])
    assert x.shape == (2, enc.embed_dim) and np.isfinite(x).all()


def test_an_old_run_with_encoder_pt_still_loads_and_counts_as_finished(run_copy, capsys):
    enc = phylocl.load_encoder(run_copy)
    (run_copy / "config.json").unlink()
    (run_copy / "model.safetensors").unlink()
    enc.save(run_copy / "encoder.pt")  # what phylocl train wrote before issue 26
    old = phylocl.load_encoder(run_copy)
    assert all(torch.equal(a, b) for a, b in zip(enc.state_dict().values(), old.state_dict().values()))
    _refused(capsys, _args(run_copy), "already holds a trained encoder")
    before = (run_copy / "metrics.json").read_bytes()
    assert main(["train", "--resume", "--out", str(run_copy), "--quiet"]) == 0
    assert "finished" in capsys.readouterr().err and (run_copy / "metrics.json").read_bytes() == before


# ------------------------------------------------------------------- defect 8: killed runs and finished runs
def test_training_into_a_killed_run_without_resume_is_refused(run_copy, capsys):
    for name in ("config.json", "model.safetensors", "metrics.json", "splits.json"):
        (run_copy / name).unlink()  # killed after its last checkpoint, before the export
    log = (run_copy / "logs" / "metrics.csv").read_bytes()
    _refused(capsys, _args(run_copy), "--resume", "new --out")
    assert (run_copy / "logs" / "metrics.csv").read_bytes() == log  # the earlier logs are kept
    assert (run_copy / "checkpoints" / "last.ckpt").is_file()


def test_resume_of_a_finished_run_is_a_no_op_that_says_so(run_copy, capsys):
    before = {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(run_copy), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "already finished" in err and err.count("\n") == 1, err
    assert {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file()} == before  # metrics.json untouched


# ----------------------------------------------------------------------------- defect 2: no export of a diverged run
@pytest.mark.parametrize("eval_enabled", ["true", "false"])
def test_a_run_that_diverges_on_its_last_update_is_not_exported(tmp_path, capsys, eval_enabled):
    out = tmp_path / "run"
    _refused(capsys, _args(out, "optim.lr=1e30", "trainer.max_steps=1", "optim.warmup_steps=0",
                           f"eval.enabled={eval_enabled}"), "after step 1", "no encoder was exported")
    assert not out.exists()


def test_export_check_names_the_parameter_that_is_not_finite():
    from phylocl.errors import InputError
    from phylocl.workflows.train_checks import check_exportable

    torch.manual_seed(0)
    enc = phylocl.build_encoder("gmlp-tiny")
    check_exportable(enc, ["MKVLAAGIVG", "MSTAPQRW"], step=7)  # a healthy encoder passes
    name, param = next(iter(enc.named_parameters()))
    with torch.no_grad():
        param.view(-1)[0] = float("inf")
    with pytest.raises(InputError, match=f"after step 7: parameter {name} holds inf"):
        check_exportable(enc, ["MKVLAAGIVG", "MSTAPQRW"], step=7)


def test_a_run_killed_before_its_first_checkpoint_is_not_started_over_silently(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    write_config(out, to_dict(load_config(None, SETS)))  # killed right after training started
    _refused(capsys, _args(out), "before its first checkpoint", "new --out")
    _refused(capsys, ["train", "--resume", "--out", out, "--quiet"], "nothing to resume")
    _refused(capsys, ["train", "--resume", "--out", tmp_path / "nope", "--quiet"], "no such run folder to resume")
    assert not (tmp_path / "nope").exists()
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml"]


@pytest.mark.parametrize("name", ["metrics.json", "model.safetensors", "splits.json", "logs"])
def test_a_folder_holding_a_users_file_of_a_run_files_name_is_refused(tmp_path, capsys, name):
    """A folder that is no run but holds a file that train writes (a user's metrics.json, model.safetensors...):
    refused, the file untouched (train replaced it before); other files of the user's do not matter."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / name).mkdir() if name == "logs" else (out / name).write_text("mine")
    _refused(capsys, _args(out), f"holds {name}, which phylocl train writes")
    assert sorted(p.name for p in out.iterdir()) == sorted(["notes.txt", name])
    assert name == "logs" or (out / name).read_text() == "mine"


def test_a_run_shorter_than_the_log_interval_still_writes_its_metrics_csv(tmp_path):
    """log_every_n_steps 10, 3 steps, no validation: logs/metrics.csv (which the README promises and the curves
    read) holds the last step (Lightning wrote none before)."""
    import csv

    out = tmp_path / "run"
    sets = [s for s in tiny_sets(steps=3, val_every=100, warmup=1) if not s.startswith("trainer.log_every")]
    assert main(train_args(out, sets, "trainer.log_every_n_steps=10")) == 0
    rows = list(csv.DictReader(open(out / "logs" / "metrics.csv")))
    assert [int(r["step"]) for r in rows if r.get("train/loss")] == [2]


def test_resume_with_max_steps_below_the_steps_done_is_refused(tmp_path, capsys):
    """Lightning stopped at once and exported the run under a config.yaml whose max_steps it had passed."""
    out = tmp_path / "run"
    _run_folder_with(out, "last.ckpt", {"state_dict": {}, "global_step": 7})
    _refused(capsys, ["train", "--resume", "--out", out, "--quiet", "--set", "trainer.max_steps=3"],
             "the run has done 7 steps, more than trainer.max_steps=3")
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.yaml"]


def test_a_config_inside_the_run_folder_it_would_replace_is_named(tmp_path, capsys):
    out = tmp_path / "own"
    out.mkdir()
    (out / "config.yaml").write_text("trainer:\n  max_steps: 2\n")
    argv = ["train", "--config", out / "config.yaml", "--out", out, "--quiet"]
    _refused(capsys, argv, "is the config.yaml that phylocl train writes into --out")  # "a run that stopped ..."
    assert (out / "config.yaml").read_text() == "trainer:\n  max_steps: 2\n"


def test_ctrl_c_during_the_export_says_how_to_finish_and_resume_does(tmp_path, capsys, monkeypatch):
    import phylocl.workflows.train as train_mod

    out = tmp_path / "run"
    real = train_mod._export

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "_export", interrupted)
    assert main(_args(out)) == 130
    err = capsys.readouterr().err
    assert f"export interrupted; finish it with --resume --out {out}" in err and err.count("\n") == 1
    assert not (out / "model.safetensors").exists()
    monkeypatch.setattr(train_mod, "_export", real)
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0
    assert (out / "model.safetensors").is_file() and json.loads((out / "metrics.json").read_text())["steps"] == 4


@pytest.mark.multiprocess
def test_phylocl_train_on_two_ddp_processes_exports_the_run(tmp_path):
    """`--set trainer.devices=2` (the README's example): Lightning relaunches the command for rank 1, which refused
    the folder rank 0 had just claimed ("a run that stopped before its first checkpoint"), killing the run."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    argv = [sys.executable, "-m", "phylocl.cli", *map(str, _args(out, "trainer.accelerator=cpu",
                                                                   "trainer.devices=2"))]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "metrics.json").read_text())["steps"] == 4 and (out / "model.safetensors").is_file()


@pytest.mark.multiprocess
@pytest.mark.timeout(200)
def test_a_checkpoint_write_failing_on_rank_0_of_ddp_stops_every_rank_with_one_line(tmp_path):
    """A full disk at rank 0's checkpoint of step 4 (of 2 DDP processes): one line, exit 2, the run folder and the
    checkpoints of step 2 kept for --resume, as with one process. Rank 0 raised before Lightning's barrier after
    the write, where rank 1 waited: it stayed there until rank 0's process had gone, then printed a 50-line
    traceback ("[rank1]: RuntimeError: ... Connection closed by peer"); with NCCL it may wait out the process-group
    timeout (30 minutes)."""
    from ddp_cli import run_ranks
    from phylocl.training.checkpoints import load_checkpoint

    patch = """
import errno, torch
_save = torch.save
def _full(obj, f, *args, **kwargs):
    if launched_rank() == 0 and isinstance(obj, dict) and obj.get("global_step") == 4:
        raise OSError(errno.ENOSPC, "No space left on device")
    return _save(obj, f, *args, **kwargs)
torch.save = _full
"""
    out = tmp_path / "ddp"
    code, err, seconds = run_ranks(tmp_path, patch, _args(out, "trainer.accelerator=cpu", "trainer.devices=2"))
    lines = [line for line in err.splitlines() if "sync_dist=True" not in line]  # Lightning's note on val/ logging
    assert code == 2 and len(lines) == 1, err[-3000:]
    assert lines[0].startswith(f"phylocl train: error: {out / 'checkpoints'}/") and "Traceback" not in err
    assert "cannot write: no space left on device" in lines[0] and f"--resume --out {out} " in lines[0]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert load_checkpoint(out / "checkpoints" / "last.ckpt")["global_step"] == 2
    assert (out / "config.yaml").is_file() and not (out / "model.safetensors").exists()
    assert seconds < 120  # every rank ended (they share the stderr pipe), long before the process-group timeout


def test_ddp_spawn_is_refused_in_one_line(tmp_path, capsys):
    _refused(capsys, _args(tmp_path / "run", "trainer.strategy=ddp_spawn"), "trainer.strategy=ddp_spawn is not supported")
    assert not (tmp_path / "run").exists()


def test_a_compare_study_folder_is_refused(tmp_path, capsys):
    """train used another lock file than compare and wrote its run into a study's folder, even a running one."""
    out = tmp_path / "study"
    out.mkdir()
    (out / "split.json").write_text("{}")
    _refused(capsys, _args(out), "holds a phylocl compare study")
    assert sorted(p.name for p in out.iterdir()) == ["split.json"]


def test_out_of_memory_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    """A MemoryError (an allocation `ulimit -v` refused) was a traceback with exit 1."""
    import phylocl.cli as cli

    def boom(args):
        raise MemoryError

    monkeypatch.setitem(cli.COMMANDS, "inspect", boom)  # main() runs the command through COMMANDS
    assert main(["inspect", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("phylocl inspect: error: out of memory;") and err.count("\n") == 1


@pytest.mark.parametrize("batching", ["random", "knn", "group"])
def test_a_batch_size_above_the_training_families_is_said_for_every_batching(batching):
    """README: 'a data.batch_size larger than the training families ... is said once before training'. Hard-negative
    batching (knn, group) said nothing, though a round with fewer families than a batch is one batch of them all."""
    from types import SimpleNamespace

    from phylocl.workflows.train_checks import split_notes

    sets = [f"data.batching={batching}", "data.batch_size=100"] + (["data.group_by=fold"] if batching == "group" else [])
    cfg = load_config(None, sets)
    families = {f"f{i}": [2 * i, 2 * i + 1] for i in range(18)} | {"single": [36]}
    split = SimpleNamespace(family_index=families, families=[f for f, rows in families.items() for _ in rows])
    notes = split_notes(SimpleNamespace(train_set=split, val_set=split, test_set=split), cfg)
    assert notes == ["data.batch_size is 100 but the training split has 18 families with two or more sequences: "
                     "every batch holds at most 18 pairs"]

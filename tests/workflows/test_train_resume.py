"""``phylocl train --resume`` equals an uninterrupted run with hard-negative batches refreshed during training
(``data.batching=knn``, ``data.refresh_every``), and after a SIGKILL between validations
(``trainer.checkpoint_every_n_steps``): every row of ``logs/metrics.csv`` and every weight."""

from __future__ import annotations

import csv

import pytest
import torch

from families import mutated_families, write_fasta
from phylocl.cli import main
from phylocl.training import module as module_mod
from phylocl.training.checkpoints import load_checkpoint
from train_cli import run_killed, tiny_sets, train_args

STEPS, VAL_EVERY = 10, 4
WALL_TIME = "train/refresh_s"  # seconds a refresh took: the one figure of metrics.csv that is not a function of the run


@pytest.fixture(scope="module")
def many_families(tmp_path_factory):
    """40 families of 4 (one FASTA each): 24 training families, 6 batches of 4 per epoch."""
    folder = tmp_path_factory.mktemp("families")
    records = mutated_families(families=40, members=4, lengths=(30, 60), rate=0.3, seed=3)
    for f in range(40):
        write_fasta(folder / f"f{f:02d}.fasta", [r for r in records if r[0].startswith(f"f{f}_")])
    return folder


def _sets(folder, *extra) -> list[str]:
    return tiny_sets(steps=STEPS, val_every=VAL_EVERY, warmup=2) + [f"data.path={folder}", "eval.train_families=4",
                                                                     *extra]


KNN = ("data.batching=knn", "data.refresh_every=3", "data.refresh_members=2")  # refreshes at steps 3, 6, 9


def _csv(out) -> list[dict]:
    with open(out / "logs" / "metrics.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if k != WALL_TIME} for row in csv.DictReader(fh)]


def _same_run(out, ref) -> None:
    from safetensors.numpy import load_file

    assert _csv(out) == _csv(ref)
    a, b = load_file(ref / "model.safetensors"), load_file(out / "model.safetensors")
    assert all((a[k] == b[k]).all() for k in a)


@pytest.fixture(scope="module")
def knn_reference(tmp_path_factory, many_families):
    out = tmp_path_factory.mktemp("knn") / "ref"
    assert main(train_args(out, _sets(many_families, *KNN))) == 0
    return out


def _interrupt_in_step(monkeypatch, at_step):
    """Ctrl-C inside the training step that starts at ``global_step == at_step`` (after that step's refresh)."""
    real = module_mod.ContrastiveModule._global_loss

    def interrupted(self, *args):
        if self.global_step == at_step:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(module_mod.ContrastiveModule, "_global_loss", interrupted)


@pytest.mark.parametrize("at_step, workers", [(4, 0), (3, 0), (7, 0), (5, 2)])
# mid-epoch after the refresh of step 3; inside the refresh's own step; in the second epoch after the refresh at its
# first batch; with loader workers (which draw batches further ahead of training)
def test_knn_batches_refreshed_before_an_interrupt_are_those_of_the_uninterrupted_run(
        tmp_path, monkeypatch, capsys, many_families, knn_reference, at_step, workers):
    """The neighbour table refreshed before the interrupt was not in the checkpoint: the resumed run drew its
    batches from the k-mer table of the start, and its losses and weights differed from the uninterrupted run's."""
    sets = _sets(many_families, *KNN)
    ref = knn_reference
    if workers:
        ref = tmp_path / "ref"
        sets.append(f"data.num_workers={workers}")
        assert main(train_args(ref, sets)) == 0
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_in_step(m, at_step)
        assert main(train_args(out, sets)) == 130
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    _same_run(out, ref)


def test_a_knn_checkpoint_without_the_neighbour_table_resumes_with_it_recomputed(tmp_path, monkeypatch, capsys,
                                                                                 many_families):
    """A checkpoint of phylocl 0.5.0 holds no table: the run resumes, recomputes it at once and says so."""
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_in_step(m, 7)
        assert main(train_args(out, _sets(many_families, *KNN))) == 130
    ckpt = out / "checkpoints" / "interrupted.ckpt"
    state = load_checkpoint(ckpt)
    assert state["OrthologDataModule"]["hard"]["refreshes"] == 2
    del state["OrthologDataModule"]["hard"]  # as 0.5.0 wrote it
    torch.save(state, ckpt)
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "note: the checkpoint holds no hard-negative neighbour table" in err and "at step 7" in err
    assert [int(r["step"]) for r in _csv(out) if r.get("train/neighbours_changed")] == [3, 6, 7, 9]


# ------------------------------------------------------------------------------------ SIGKILL between validations
def _killed_in_step(out, sets, at_step) -> None:
    """Train ``sets`` into ``out`` in a child process killed (``kill -9``) inside the step that starts at
    ``global_step == at_step``."""
    run_killed(out, sets, method="_global_loss", when=f"self.global_step == {at_step}")


@pytest.mark.parametrize("extra, every, at_step, saved", [((), 3, 7, 6), (KNN, 5, 7, 5), (KNN, 0, 7, 4)])
# validations at 4 and 8: checkpoints at the starts of steps 3 and 6 (random batches), or 5 (knn: after the refresh
# of step 3, with batches drawn ahead), then killed in step 7; off: from last.ckpt of the validation at step 4 (knn)
def test_a_run_killed_between_validations_loses_at_most_checkpoint_every_n_steps(
        tmp_path, capsys, many_families, extra, every, at_step, saved):
    sets = _sets(many_families, *extra, f"trainer.checkpoint_every_n_steps={every}")
    ref = tmp_path / "ref"
    assert main(train_args(ref, sets)) == 0
    out = tmp_path / "run"
    _killed_in_step(out, sets, at_step)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert load_checkpoint(out / "checkpoints" / "last.ckpt")["global_step"] == saved  # was 4 (the validation's)
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    _same_run(out, ref)


@pytest.mark.parametrize("value, says", [("-1", "must be an integer >= 0 (0 or null: off), got -1"),
                                         ("1.5", "expected an integer or null, got 1.5"),
                                         ("true", "expected an integer or null, got True")])
def test_bad_checkpoint_every_n_steps_is_refused_in_one_line(tmp_path, capsys, value, says):
    from train_cli import EXAMPLE, refused

    name = "trainer.checkpoint_every_n_steps"
    refused(capsys, ["train", "--data", EXAMPLE, "--out", tmp_path / "run", "--set", f"{name}={value}"],
            f"{name}{':' * (value != '-1')} {says}")
    assert not (tmp_path / "run").exists()


def test_a_run_of_0_5_0_resumes_with_periodic_checkpoints(tmp_path, monkeypatch, capsys, many_families):
    """Its config.yaml has no trainer.checkpoint_every_n_steps (it was refused as a changed config); the setting
    may change on --resume, and does not change the run."""
    import yaml

    sets = _sets(many_families)
    ref = tmp_path / "ref"
    assert main(train_args(ref, sets)) == 0
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_in_step(m, 2)
        assert main(train_args(out, sets)) == 130
    stored = yaml.safe_load((out / "config.yaml").read_text())
    del stored["trainer"]["checkpoint_every_n_steps"]  # as 0.5.0 wrote it
    (out / "config.yaml").write_text(yaml.safe_dump(stored, sort_keys=False))
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--quiet", "--set", "trainer.checkpoint_every_n_steps=3"]) == 0, \
        capsys.readouterr().err
    _same_run(out, ref)


def test_a_checkpoint_that_cannot_be_written_keeps_the_run_for_resume(tmp_path, capsys, monkeypatch, many_families):
    """A full disk at the step checkpoint of step 6 (validations at 4 and 8): one line, exit 2, and the run folder
    with the validation's last.ckpt kept, so that --resume gives the uninterrupted run. The write failing became an
    InputError, on which a new run's folder is removed: every checkpoint was lost."""
    import errno

    from train_cli import refused

    sets = _sets(many_families, "trainer.checkpoint_every_n_steps=3")
    ref = tmp_path / "ref"
    assert main(train_args(ref, sets)) == 0
    out = tmp_path / "run"
    real = torch.save

    def full(obj, f, *args, **kwargs):
        if obj.get("global_step") == 6:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(torch, "save", full)
        capsys.readouterr()
        refused(capsys, train_args(out, sets), "last.ckpt: cannot write: no space left on device",
                f"--resume --out {out}")
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert load_checkpoint(out / "checkpoints" / "last.ckpt")["global_step"] == 4
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    _same_run(out, ref)


def test_without_validation_step_checkpoints_and_the_periodic_one_share_last_ckpt(tmp_path, capsys, many_families):
    """No validation (eval.enabled=false): last.ckpt every val_every_n_steps (4) and, between, every
    checkpoint_every_n_steps (2). Lightning's periodic checkpoint found StepCheckpoint's last.ckpt in place and wrote
    last-v1.ckpt instead, so last.ckpt missed steps 4 and 8: a kill in step 5 resumed from step 2 (3 steps lost)."""
    sets = _sets(many_families, "eval.enabled=false", "trainer.checkpoint_every_n_steps=2")
    ref = tmp_path / "ref"
    assert main(train_args(ref, sets)) == 0
    assert [p.name for p in (ref / "checkpoints").iterdir()] == ["last.ckpt"]
    out = tmp_path / "run"
    _killed_in_step(out, sets, 5)
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["last.ckpt"]
    assert load_checkpoint(out / "checkpoints" / "last.ckpt")["global_step"] == 4  # was 2
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    _same_run(out, ref)


def test_moved_state_reads_the_old_folders_paths_as_the_new_ones():
    from phylocl.workflows.train_checkpoints import moved_state

    old = {"dirpath": "/a/run/checkpoints", "best_model_path": "/a/run/checkpoints/best.ckpt", "best_model_score": 0.5,
           "best_k_models": {"/a/run/checkpoints/best.ckpt": 0.5}, "kth_best_model_path": "/elsewhere/x.ckpt",
           "last_model_path": ""}
    new = moved_state(old, "/b/copy/checkpoints")
    assert new["dirpath"] == "/b/copy/checkpoints" and new["best_model_path"] == "/b/copy/checkpoints/best.ckpt"
    assert new["best_k_models"] == {"/b/copy/checkpoints/best.ckpt": 0.5} and new["best_model_score"] == 0.5
    assert new["kth_best_model_path"] == "/elsewhere/x.ckpt" and new["last_model_path"] == ""  # not of that folder
    assert moved_state(old, "/a/run/checkpoints") is old and old["dirpath"] == "/a/run/checkpoints"  # unchanged


def test_a_moved_or_copied_run_folder_resumes_as_in_place(tmp_path, capsys):
    """Lightning reloads a checkpoint callback's best score and paths only in the folder they were saved in: a moved
    run folder then exported best.ckpt from the old folder ("no such file"), and a copy lost its best score, so its
    next validation replaced best.ckpt however worse. Both now resume as the folder in place does."""
    import shutil

    sets = tiny_sets(steps=2, val_every=1, warmup=1)
    first = tmp_path / "run"
    assert main(train_args(first, sets)) == 0
    shutil.copytree(first, tmp_path / "copy")
    shutil.copytree(first, tmp_path / "before-move")
    first.rename(tmp_path / "moved")
    shutil.copytree(tmp_path / "before-move", first)  # the run in place again, to resume there
    more = [s for s in sets if not s.startswith("trainer.max_steps")]
    for name in ("run", "copy", "moved"):
        assert main(train_args(tmp_path / name, more, "trainer.max_steps=4") + ["--resume"]) == 0, capsys.readouterr().err
    weights = {name: (tmp_path / name / "model.safetensors").read_bytes() for name in ("run", "copy", "moved")}
    assert weights["copy"] == weights["run"] == weights["moved"]
    rows = {name: (tmp_path / name / "logs" / "metrics.csv").read_text() for name in ("run", "copy")}
    assert rows["copy"].count("\n") == rows["run"].count("\n")

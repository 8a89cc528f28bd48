"""``phylocl train --resume`` of an interrupted run: its ``logs/metrics.csv`` is labelled as an uninterrupted run's
(an interrupt inside a step made every later row one step late: its own step missing, one labelled max_steps), and
a run whose training data changed since it began is refused, naming the file (it silently went on with other
families and another split)."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import time

import lightning as L
import pytest
import torch

from families import mutated_families, write_fasta
from phylocl.cli import main
from phylocl.training import module as module_mod
from phylocl.training.checkpoints import INPUTS_KEY, load_checkpoint
from phylocl.workflows import train_checkpoints
from train_cli import EXAMPLE, refused, run_killed, tiny_sets, train_args

STEPS, VAL_EVERY = 8, 3
SETS = tiny_sets(steps=STEPS, val_every=VAL_EVERY, warmup=2)


def _rows(out) -> tuple[list[int], list[int]]:
    """Steps of the training rows and of the validation rows of ``out/logs/metrics.csv``, in file order."""
    with open(out / "logs" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return ([int(r["step"]) for r in rows if r.get("train/loss")],
            [int(r["step"]) for r in rows if r.get("val/map_r")])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The folder of the uninterrupted run of SETS."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(train_args(out, SETS)) == 0
    return out


@pytest.fixture(scope="module")
def uninterrupted(reference):
    return _rows(reference)


def _same_run(out, ref) -> None:
    """``out`` wrote the metrics.csv (every row, every figure) and the weights of the uninterrupted run ``ref``."""
    from safetensors.numpy import load_file

    assert _csv(out) == _csv(ref)
    a, b = load_file(ref / "model.safetensors"), load_file(out / "model.safetensors")
    assert all((a[k] == b[k]).all() for k in a)


def _interrupt_in_step(monkeypatch, at_step, sigterm=False):
    """Ctrl-C (or a real SIGTERM) landing inside the training step that starts at ``global_step == at_step``, before
    its optimizer step: where most of a step's time goes."""
    real = module_mod.ContrastiveModule._global_loss

    def interrupted(self, *args):
        if self.global_step == at_step:
            if sigterm:
                os.kill(os.getpid(), signal.SIGTERM)  # Lightning notes it; phylocl's handler raises Terminated
                time.sleep(5)
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(module_mod.ContrastiveModule, "_global_loss", interrupted)


def _interrupt_in_batch_end(monkeypatch, at_step):
    """Ctrl-C in the ``on_train_batch_end`` hooks (a last.ckpt being saved) of the batch that reached ``at_step``."""
    class Interrupt(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == at_step:
                raise KeyboardInterrupt

    real = train_checkpoints.CheckpointTrainer  # the Trainer of phylocl train

    def trainer(*args, **kwargs):
        kwargs["callbacks"] = list(kwargs.get("callbacks", [])) + [Interrupt()]
        return real(*args, **kwargs)

    monkeypatch.setattr(train_checkpoints, "CheckpointTrainer", trainer)


def _interrupt_in_validation(monkeypatch, at_step, signals=()):
    """In the validation at ``global_step == at_step``, at its second batch: the ``signals`` sent to this process
    (as Ctrl-C or ``kill`` would), then, without signals, a KeyboardInterrupt raised at once."""
    real = module_mod.ContrastiveModule.validation_step

    def interrupted(self, batch, batch_idx, dataloader_idx=0):
        if self.global_step == at_step and batch_idx == 1 and dataloader_idx == 0:
            for sig in signals:
                os.kill(os.getpid(), sig)
            if not signals:
                raise KeyboardInterrupt
        return real(self, batch, batch_idx, dataloader_idx)

    monkeypatch.setattr(module_mod.ContrastiveModule, "validation_step", interrupted)


def _interrupted_then_resumed(out, monkeypatch, capsys, interrupt, *args, sets=SETS, code=130) -> None:
    with monkeypatch.context() as m:
        interrupt(m, *args)
        assert main(train_args(out, sets)) == code
    assert (out / "checkpoints" / "interrupted.ckpt").exists()
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err


# --------------------------------------------------------------------------------------- labels of metrics.csv
@pytest.mark.parametrize("at_step", [4, VAL_EVERY, 2 * VAL_EVERY])  # mid-interval, right after each validation
def test_interrupt_inside_a_step_resumes_with_the_uninterrupted_step_labels(tmp_path, monkeypatch, capsys,
                                                                           uninterrupted, at_step):
    out = tmp_path / "run"
    _interrupted_then_resumed(out, monkeypatch, capsys, _interrupt_in_step, at_step)
    train_steps, val_steps = _rows(out)
    assert train_steps == uninterrupted[0] == list(range(STEPS))  # was: at_step missing, a row labelled STEPS
    assert val_steps == uninterrupted[1]  # and validation ran one batch early from then on


def test_sigterm_inside_a_step_resumes_with_the_uninterrupted_step_labels(tmp_path, monkeypatch, capsys,
                                                                         uninterrupted):
    out = tmp_path / "run"
    _interrupted_then_resumed(out, monkeypatch, capsys, _interrupt_in_step, 5, True, code=143)
    assert _rows(out) == uninterrupted


def test_interrupt_after_a_step_keeps_that_steps_row(tmp_path, monkeypatch, capsys, uninterrupted):
    """Interrupted in the step's on_train_batch_end hooks: its update is done (a resume does not redo it) and its
    row, not yet logged then, is written with the interrupted.ckpt instead of being lost."""
    out = tmp_path / "run"
    _interrupted_then_resumed(out, monkeypatch, capsys, _interrupt_in_batch_end, 5)
    assert _rows(out)[0] == uninterrupted[0]


@pytest.mark.parametrize("at_step, sig, code", [(VAL_EVERY, signal.SIGINT, 130),
                                               (2 * VAL_EVERY, signal.SIGTERM, 143)])
def test_a_signal_during_a_validation_stops_training_when_it_has_ended(tmp_path, monkeypatch, capsys, reference,
                                                                       at_step, sig, code):
    """The validation runs to its end (its figures whole) and training stops before the next step. It used to stop
    inside the validation, and Lightning resumed that validation without as many batches as were done: the
    figures of that step (and the best.ckpt they chose) came from part of the families."""
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_in_validation(m, at_step, [sig])
        assert main(train_args(out, SETS)) == code
    err = capsys.readouterr().err
    assert "training stops when this validation ends" in err and "continue with --resume" in err
    assert (out / "checkpoints" / "interrupted.ckpt").exists()
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    _same_run(out, reference)


def _signal_after_the_update(monkeypatch, at_step, sig):
    """``sig`` sent to this process between the optimizer step and the scheduler step of the step that starts at
    ``global_step == at_step`` (where an interrupt lost the step's row and put every later learning rate one step
    late)."""
    real = torch.optim.lr_scheduler.LambdaLR.step
    steps = []

    def stepped(self, *args, **kwargs):
        steps.append(None)
        if len(steps) == at_step + 2:  # its first call is LambdaLR's own, at construction
            os.kill(os.getpid(), sig)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.lr_scheduler.LambdaLR, "step", stepped)


@pytest.mark.parametrize("at_step, sig, code", [(4, signal.SIGINT, 130), (2 * VAL_EVERY - 1, signal.SIGTERM, 143)])
def test_a_signal_after_the_optimizer_step_stops_at_the_next_batch(tmp_path, monkeypatch, capsys, reference,
                                                                   at_step, sig, code):
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _signal_after_the_update(m, at_step, sig)
        assert main(train_args(out, SETS)) == code
    assert capsys.readouterr().err.count("\n") == 1  # "phylocl train: interrupted (... --resume ...)"
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    _same_run(out, reference)


def test_a_second_signal_stops_a_validation_at_once_and_resumes_from_the_validation_before(
        tmp_path, monkeypatch, capsys, reference):
    """Nothing is saved inside the validation: --resume continues from last.ckpt, saved at the end of the
    validation before, and redoes the steps since."""
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_in_validation(m, 2 * VAL_EVERY, [signal.SIGINT, signal.SIGINT])
        assert main(train_args(out, SETS)) == 130
    assert not (out / "checkpoints" / "interrupted.ckpt").exists()
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    _same_run(out, reference)


def test_a_second_signal_in_the_first_validation_says_there_is_nothing_to_resume(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_in_validation(m, VAL_EVERY, [signal.SIGINT, signal.SIGINT])
        assert main(train_args(out, SETS)) == 130
    err = capsys.readouterr().err
    assert "before its first checkpoint" in err and "--resume" not in err


def test_an_exception_inside_a_validation_resumes_the_run_exactly(tmp_path, monkeypatch, capsys, reference):
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_in_validation(m, 2 * VAL_EVERY)
        assert main(train_args(out, SETS)) == 130
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    _same_run(out, reference)


def test_a_run_killed_during_a_validation_resumes_with_that_validation(tmp_path, reference):
    """SIGKILL (out of memory, a scheduler's hard limit) inside a validation: last.ckpt used to be saved before each
    validation, and Lightning resumes such a checkpoint as if its validation had run: that step's figures were
    missing and it was never a candidate for best.ckpt (another model was exported)."""
    out = tmp_path / "run"
    run_killed(out, SETS, method="validation_step", when=f"self.global_step == {2 * VAL_EVERY} and args[1] == 1")
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0
    _same_run(out, reference)


def test_resume_from_an_interrupted_checkpoint_of_an_earlier_phylocl_is_labelled_right(tmp_path, monkeypatch,
                                                                                      capsys, uninterrupted):
    """The labels are put right when the run resumes, so interrupted.ckpt files written before the fix resume right."""
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _interrupt_in_step(m, 4)
        assert main(train_args(out, SETS)) == 130
    ckpt = out / "checkpoints" / "interrupted.ckpt"
    state = load_checkpoint(ckpt)
    del state[INPUTS_KEY]  # as an earlier phylocl wrote it
    torch.save(state, ckpt)
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "note: " in err and "records no fingerprint of the training data" in err and "not checked" in err
    assert _rows(out) == uninterrupted


# ------------------------------------------------------------------------------ the same run, interrupted or not
def _csv(out) -> list[dict]:
    with open(out / "logs" / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def many_families(tmp_path_factory):
    """40 families of 4 (one FASTA each): 24 training families, 6 batches of 4 per epoch, so that an interrupt
    lands inside an epoch (the bundled set has one batch per epoch)."""
    folder = tmp_path_factory.mktemp("families")
    records = mutated_families(families=40, members=4, lengths=(30, 60), rate=0.3, seed=3)
    for f in range(40):
        write_fasta(folder / f"f{f:02d}.fasta", [r for r in records if r[0].startswith(f"f{f}_")])
    return folder


DROPOUT = "model.overrides={dropout: 0.2, drop_path: 0.1}"


@pytest.mark.parametrize("at_step, workers, extra", [(3, 0, ()), (8, 0, ()), (8, 2, ()), (8, 0, (DROPOUT,))])
# inside the first epoch; inside the second, right after a validation (with loader workers, which draw batches
# before Lightning sets the epoch; with dropout, whose masks come from torch's generator, not in checkpoints)
def test_a_run_interrupted_inside_an_epoch_resumes_with_the_batches_it_had_not_trained_on(
        tmp_path, monkeypatch, capsys, many_families, at_step, workers, extra):
    """The resumed epoch used to start again from its first batch (and end early, Lightning counting the batches
    done): the resumed run trained on other batches, its losses and weights differed from an uninterrupted run's."""
    from safetensors.numpy import load_file

    sets = SETS + [f"data.path={many_families}", "trainer.max_steps=10", "trainer.val_every_n_steps=4",
                   "eval.train_families=4", f"data.num_workers={workers}", *extra]
    ref = tmp_path / "ref"
    assert main(train_args(ref, sets)) == 0
    out = tmp_path / "run"
    _interrupted_then_resumed(out, monkeypatch, capsys, _interrupt_in_step, at_step, sets=sets)
    assert _csv(out) == _csv(ref)  # every row, every figure
    a, b = load_file(ref / "model.safetensors"), load_file(out / "model.safetensors")
    assert all((a[k] == b[k]).all() for k in a)


# ------------------------------------------------------------------------------------- data changed on resume
@pytest.fixture
def data(tmp_path):
    """A copy of the bundled dataset folder (sequences.fasta + labels.tsv) the test may change."""
    folder = tmp_path / "data"
    shutil.copytree(EXAMPLE, folder)
    return folder


def _interrupted_on(out, data_sets, monkeypatch, capsys, at_step=2):
    with monkeypatch.context() as m:
        _interrupt_in_step(m, at_step)
        assert main(train_args(out, data_sets)) == 130
    capsys.readouterr()


def _relabel_one_sequence(labels):
    """Move the first sequence of the labels table into the family of the last one (same size, same time)."""
    st = labels.stat()
    lines = labels.read_text().splitlines()
    first, last = lines[1].split("\t"), lines[-1].split("\t")
    assert first[1] != last[1]
    first[1] = last[1]
    text = "\n".join([lines[0], "\t".join(first), *lines[2:]]) + "\n"
    labels.write_text(text)
    os.utime(labels, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    return st


def test_resume_after_the_labels_changed_is_refused_naming_the_file(tmp_path, data, monkeypatch, capsys):
    out = tmp_path / "run"
    sets = SETS + [f"data.path={data}"]
    _interrupted_on(out, sets, monkeypatch, capsys)
    _relabel_one_sequence(data / "labels.tsv")
    err = refused(capsys, ["train", "--resume", "--out", out, "--quiet"],
                  f"{data / 'labels.tsv'}: the training data changed since the run began", "was modified",
                  "new --out")
    assert "sequences then" in err  # how the splits changed
    assert (out / "checkpoints" / "interrupted.ckpt").exists()  # the run is left as it was
    assert not (out / "config.json").exists()


def test_resume_after_a_sequence_changed_in_place_is_refused(tmp_path, data, monkeypatch, capsys):
    """Same size, modification time put back: what was read differs, so it is refused all the same."""
    out = tmp_path / "run"
    sets = SETS + [f"data.path={data}"]
    _interrupted_on(out, sets, monkeypatch, capsys)
    fasta = data / "sequences.fasta"
    st = fasta.stat()
    text = fasta.read_text()
    i = text.index("\n") + 1  # the first letter of the first sequence
    fasta.write_text(text[:i] + ("C" if text[i] != "C" else "A") + text[i + 1:])
    os.utime(fasta, ns=(st.st_atime_ns, st.st_mtime_ns))
    refused(capsys, ["train", "--resume", "--out", out, "--quiet"], f"the training data read from {data} differs",
            "no input file's size or time changed")


def test_resume_of_a_fasta_and_labels_run_names_the_fasta_file_that_grew(tmp_path, data, monkeypatch, capsys):
    out = tmp_path / "run"
    fasta, labels = tmp_path / "seqs.fasta", tmp_path / "labels.tsv"
    shutil.copy(data / "sequences.fasta", fasta)
    shutil.copy(data / "labels.tsv", labels)
    sets = SETS + [f"data.path={fasta}", f"data.labels={labels}"]
    _interrupted_on(out, sets, monkeypatch, capsys)
    size = fasta.stat().st_size
    family = labels.read_text().splitlines()[1].split("\t")[1]
    with open(fasta, "a") as f:  # one more member of a family, in both files
        f.write(">extra_sequence\nMKTAYIAKQRQISFVKSHFSRQ\n")
    with open(labels, "a") as f:
        f.write(f"extra_sequence\t{family}\tspecies\n")
    refused(capsys, ["train", "--resume", "--out", out, "--quiet"], f"{fasta}: ", f"was {size} bytes",
            "and 1 more input file")


def test_touched_but_unchanged_data_resumes(tmp_path, data, monkeypatch, capsys):
    out = tmp_path / "run"
    sets = SETS + [f"data.path={data}"]
    _interrupted_on(out, sets, monkeypatch, capsys)
    for p in data.iterdir():
        os.utime(p)  # a copy, a checkout: new times, the same data
    (data / "README.txt").write_text("notes\n")  # a file the reader does not read
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    assert (out / "config.json").exists()


def test_every_checkpoint_records_the_fingerprint(tmp_path, data, monkeypatch, capsys):
    out = tmp_path / "run"
    sets = SETS + [f"data.path={data}"]
    _interrupted_on(out, sets, monkeypatch, capsys, at_step=5)
    for name in ("last.ckpt", "interrupted.ckpt"):
        inputs = load_checkpoint(out / "checkpoints" / name)[INPUTS_KEY]
        assert set(inputs["splits"]) == {"train", "val", "test"}
        assert set(inputs["files"][str(data)]["files"]) == {str(data / "labels.tsv"), str(data / "sequences.fasta")}


def test_split_digest_sees_a_tree_edited_in_place(tmp_path):
    """A Newick tree's branch lengths choose the distant pairs: an edit of the tree (same path) changes the digest."""
    from types import SimpleNamespace

    from phylocl.workflows.train_checks import _split_digest

    tree = tmp_path / "F1.nwk"
    tree.write_text("((a:0.1,b:0.2):0.3,c:0.4);\n")
    ds = SimpleNamespace(ids=["a", "b", "c"], families=["F1"] * 3, sequences=["MKV", "MKI", "MKL"], metadata={},
                         trees={"F1": tree})
    before = _split_digest(ds)
    tree.write_text("((a:0.1,b:0.2):0.3,c:4.0);\n")
    assert _split_digest(ds)["sha256"] != before["sha256"]
    tree.write_text("((a:0.1,b:0.2):0.3,c:0.4);\n")
    assert _split_digest(ds) == before

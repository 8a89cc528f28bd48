"""``phylocl train`` faults that would lose data or ship a broken model (issue 14): divergence, one-family batches,
two runs into one folder, resume (config at the start, config differences, kept logs), settings checked before
training, output places, damaged checkpoints. Every refusal: one line, exit 2, no traceback, nothing left behind."""

from __future__ import annotations

import csv
import fcntl
import os

import lightning as L
import pytest
import torch

from phylocl.cli import main
from train_cli import refused, tiny_sets, train_args
from phylocl.training import module as module_mod
from phylocl.workflows.run_folder import LOCK_NAME
from phylocl.workflows import train_checkpoints

SETS = tiny_sets(steps=6, val_every=3, warmup=2)


def _args(out, *extra, sets=SETS):
    return train_args(out, sets, *extra)


def _refused(capsys, argv, *needles):
    return refused(capsys, argv, *needles)


# ------------------------------------------------------------------------------------------------ divergence
@pytest.mark.parametrize("eval_enabled", ["true", "false"])
def test_nan_loss_stops_at_that_step_without_export(tmp_path, capsys, monkeypatch, eval_enabled):
    real = module_mod.ContrastiveModule._global_loss

    def diverging(self, z_a, z_b, labels):
        loss = real(self, z_a, z_b, labels)
        return loss * float("nan") if self.global_step >= 2 else loss

    monkeypatch.setattr(module_mod.ContrastiveModule, "_global_loss", diverging)
    out = tmp_path / "run"
    _refused(capsys, _args(out, f"eval.enabled={eval_enabled}"), "training stopped at step 3: the loss is nan",
             "no encoder was exported")
    assert not out.exists()  # a refused run leaves no folder (and no interrupted.ckpt to resume from)


def test_infinite_gradient_stops_at_that_step(tmp_path, capsys, monkeypatch):
    real = torch.nn.utils.clip_grad_norm_

    def exploding(params, max_norm, *a, **k):
        norm = real(params, max_norm, *a, **k)
        return norm * float("inf")

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", exploding)
    _refused(capsys, _args(tmp_path / "run"), "training stopped at step 1: the gradient norm is inf")
    assert not (tmp_path / "run").exists()


def test_huge_learning_rate_diverges_and_is_caught(tmp_path, capsys):
    """A real divergence (no monkeypatching): lr 1e30 turns the loss NaN within two steps; before issue 14 this exited 0
    with evaluation off and exported an all-NaN encoder."""
    out = tmp_path / "run"
    _refused(capsys, _args(out, "optim.lr=1e30", "eval.enabled=false", "trainer.max_steps=20", "optim.warmup_steps=0",
                           "loss.learn_temperature=true"), "training stopped at step", " is nan")
    assert not out.exists()


# ----------------------------------------------------------------------------------------- one-family batches
def _one_pair_family(tmp_path):
    d = tmp_path / "fams"
    d.mkdir()
    (d / "F1.fasta").write_text(">a\nMKTAYIAKQRQISFVKSHFSRQ\n>b\nMKTAYIAKQRQISFVKSHFSRA\n")
    for k in range(2, 8):
        (d / f"F{k}.fasta").write_text(f">s{k}\nMKTAYIAKQRQISFVKSHFS{'ACDEFGHIK'[k]}\n")
    return d


def test_one_training_family_with_two_members_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    _refused(capsys, _args(out, "data.fractions=[1,0,0]", sets=SETS[:1] + SETS[2:]) + ["--data",
             _one_pair_family(tmp_path)], "1 training family has two or more sequences", "at least 2")
    assert not out.exists()


def test_batch_of_one_family_is_refused(tmp_path, capsys):
    _refused(capsys, _args(tmp_path / "run", "data.batch_size=1"), "data.batch_size must be >= 2")
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------------------------------- locking
def test_second_run_into_a_locked_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    os.write(fd, b"4242\n")
    fcntl.flock(fd, fcntl.LOCK_EX)  # another run holds the folder
    try:
        _refused(capsys, _args(out), "another `phylocl train` (pid 4242) is writing to this folder")
        assert out.is_dir() and (out / LOCK_NAME).exists()  # the other run's folder is left alone
        (out / "checkpoints").mkdir()
        (out / "checkpoints" / "last.ckpt").write_bytes(b"PK half-written by the other run")
        _refused(capsys, ["train", "--resume", "--out", out, "--quiet"], "another `phylocl train` (pid 4242)")
        assert (out / LOCK_NAME).read_text() == "4242\n"
    finally:
        os.close(fd)


def test_stale_lock_of_a_dead_process_does_not_block(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text("999999\n")  # written by a run that was killed: nobody holds the lock
    assert main(_args(out)) == 0
    assert (out / "config.json").exists() and not (out / LOCK_NAME).exists()


# ------------------------------------------------------------------------------------------------------ resume
class _Interrupt(L.Callback):
    def __init__(self, at_step):
        self.at_step = at_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.at_step:
            raise KeyboardInterrupt


def _interrupted_run(out, monkeypatch, capsys, at_step=4):
    real_trainer = train_checkpoints.CheckpointTrainer  # the Trainer of phylocl train

    def trainer_with_interrupt(*args, **kwargs):
        kwargs["callbacks"] = list(kwargs.get("callbacks", [])) + [_Interrupt(at_step)]
        return real_trainer(*args, **kwargs)

    monkeypatch.setattr(train_checkpoints, "CheckpointTrainer", trainer_with_interrupt)
    assert main(_args(out)) == 130
    err = capsys.readouterr().err
    monkeypatch.setattr(train_checkpoints, "CheckpointTrainer", real_trainer)
    return err


def test_suggested_resume_command_works_and_keeps_earlier_log_rows(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    err = _interrupted_run(out, monkeypatch, capsys)
    assert f"--resume --out {out}" in err and (out / "config.yaml").exists()
    assert not (out / LOCK_NAME).exists()
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 0  # exactly the suggested command
    with open(out / "logs" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    steps = [int(r["step"]) for r in rows if r.get("train/loss")]
    # rows written before the interrupt are kept (Lightning's logger would delete them), none twice; the row of
    # the step the interrupt cut short (3, logged after on_train_batch_end) never reached the logger
    assert steps == sorted(set(steps)) and {0, 1, 2, 4, 5} <= set(steps)


def test_resume_with_another_config_names_the_differences(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    _interrupted_run(out, monkeypatch, capsys)
    _refused(capsys, _args(out, "optim.lr=0.5", "data.max_len=40") + ["--resume"], "optim.lr:",
             "data.max_len: 48 -> 40")
    assert (out / "checkpoints" / "interrupted.ckpt").exists()  # the run is left as it was
    assert main(_args(out, "trainer.max_steps=7") + ["--resume"]) == 0  # a longer run is allowed


def test_truncated_checkpoint_on_resume_is_one_line(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    _interrupted_run(out, monkeypatch, capsys, at_step=2)
    for name in ("interrupted.ckpt", "last.ckpt"):
        p = out / "checkpoints" / name
        if p.exists():
            p.write_bytes(p.read_bytes()[:300])
    _refused(capsys, ["train", "--resume", "--out", out, "--quiet"], "cannot resume", "truncated or corrupt")


# -------------------------------------------------------------------------------- settings checked up front
SETTINGS = [
    ("trainer.devices=abc", "trainer.devices"),
    ("trainer.precision=bogus", "trainer.precision"),
    ("eval.monitor=bogus", "eval.monitor"),
    ("eval.ks=[0]", "eval.ks"),
    ("trainer.devices=0", "trainer.devices"),
    ("trainer.accelerator=warp", "trainer.accelerator"),
]


@pytest.mark.parametrize("setting, needle", SETTINGS)
def test_lightning_settings_refused_before_training(tmp_path, capsys, setting, needle):
    _refused(capsys, _args(tmp_path / "run", setting), needle)
    assert not (tmp_path / "run").exists()


def test_an_unknown_strategy_is_refused_before_the_data_are_read(tmp_path, capsys):
    """It was refused by Lightning's Trainer, after the data were read: behind the notes about them."""
    _refused(capsys, _args(tmp_path / "run", "trainer.strategy=foo"), "trainer.strategy=foo is not a Lightning "
             "strategy", "ddp")
    assert not (tmp_path / "run").exists()


def test_several_nodes_outside_a_multi_node_launch_are_refused(tmp_path, capsys, monkeypatch):
    """``trainer.num_nodes=2`` in a plain shell waited forever for the other node (in a C call: Ctrl-C did not stop
    it), after writing config.yaml."""
    for name in list(os.environ):
        if name == "MASTER_ADDR" or name.startswith(("SLURM_", "LSB_", "OMPI_", "PMI_")) or name in (
                "TORCHELASTIC_RUN_ID", "GROUP_RANK", "LOCAL_WORLD_SIZE"):
            monkeypatch.delenv(name)
    _refused(capsys, _args(tmp_path / "run", "trainer.num_nodes=2"), "trainer.num_nodes=2", "wait for the other "
             "nodes forever", "srun")
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is there")
def test_gpu_accelerator_without_a_gpu(tmp_path, capsys):
    _refused(capsys, _args(tmp_path / "run", "trainer.accelerator=gpu"), "no CUDA GPU is available")
    assert not (tmp_path / "run").exists()


def test_output_places(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    _refused(capsys, _args(f), "output folder is a file")
    _refused(capsys, _args(f / "run"), "is a file, not a folder")
    _refused(capsys, _args("/proc/phylocl-run"), "under /proc")
    assert f.read_text() == "x"


def test_config_error_leaves_no_empty_folders(tmp_path, capsys):
    out = tmp_path / "a" / "b" / "run"
    _refused(capsys, _args(out, "data.path=/nonexistent"), "no such file")
    _refused(capsys, _args(out, "model.name=nope"), "nope")
    assert not (tmp_path / "a").exists()


def test_train_data_fasta_needs_labels_and_set_data_labels_works(tmp_path, capsys):
    fa, labels = tmp_path / "s.fa", tmp_path / "l.tsv"
    text, rows = "", "sequence_id\tfamily_id\n"
    for f in range(4):
        for m in range(2):
            text += f">f{f}m{m}\nMKTAYIAKQRQISFVKSHFSRQ{'ACDE'[f]}{'AC'[m]}\n"
            rows += f"f{f}m{m}\tF{f}\n"
    fa.write_text(text)
    labels.write_text(rows)
    sets = [s for s in SETS if not s.startswith("data.path")] + ["data.fractions=[1,0,0]", "data.batch_size=2"]
    err = _refused(capsys, _args(tmp_path / "r1", sets=sets) + ["--data", fa], "--set data.labels=TSV for train")
    assert "--labels TSV" not in err and "(--labels for inspect" in err
    assert main(_args(tmp_path / "r2", f"data.labels={labels}", sets=sets) + ["--data", str(fa)]) == 0


def test_file_system_without_locks_still_trains_with_a_warning(tmp_path, capsys, monkeypatch):
    import errno

    import phylocl.workflows.run_folder as run_folder

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(run_folder.fcntl, "flock", no_locks)
    with pytest.warns(UserWarning, match="cannot lock the run folder"):
        assert main(_args(tmp_path / "run")) == 0
    assert (tmp_path / "run" / "config.json").exists()


def test_resuming_an_old_run_without_config_yaml_says_what_to_pass(tmp_path, capsys):
    out = tmp_path / "old"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.ckpt").write_bytes(b"x")
    _refused(capsys, ["train", "--resume", "--out", out, "--quiet"], "has no config.yaml",
             "resume with the run's own --config/--data/--set")

"""SIGTERM is handled like Ctrl-C (no output, no hidden temporaries, one line), and temporaries left by a killed
run (SIGKILL) are swept by the next run into the same output, while a live writer's are left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from phylocl.atomic import atomic_path, sweep_stale
from phylocl.cli import main

REPO = Path(__file__).resolve().parents[1]


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_sigterm_during_embed_leaves_nothing(tmp_path):
    fifo = tmp_path / "q.pipe"
    os.mkfifo(fifo)
    out = tmp_path / "e.npz"
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from phylocl.cli import main; sys.exit(main())",
                             "embed", "--fasta", str(fifo), "--model", "kmer:2", "-o", str(out), "--quiet"],
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE, text=True)
    with open(fifo, "w") as w:  # opens once the reader has; keep the pipe open so embed waits for more
        w.write("".join(f">s{i}\nMKTAYIAKQR\n" for i in range(300)))
        w.flush()
        shards = tmp_path / "e.npz.shards"  # embed writes its rows into resumable shards there

        def spooling() -> bool:
            return any(n.endswith(".spool") for n in _hidden(tmp_path) + (_hidden(shards) if shards.is_dir() else []))

        deadline = time.time() + 60
        while not spooling() and time.time() < deadline:
            time.sleep(0.05)
        assert spooling()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip() == "phylocl embed: terminated" and "Traceback" not in err
    assert not out.exists() and _hidden(tmp_path) == []
    assert not shards.exists()  # a pipe cannot be read again, so its shards are not kept for a resume


def test_stale_temporaries_of_a_killed_run_are_swept(tmp_path, capsys):
    fa = tmp_path / "q.fa"
    fa.write_text(">a\nMKTAYIAKQR\n>b\nMKTAYIAKQK\n")
    out = tmp_path / "e.npz"
    dead = 2 ** 22 + 12345  # above the default pid_max: never a live process
    stale = [tmp_path / f".e.npz.{dead}.abc123.spool", tmp_path / f".e.npz.{dead}.def456.tmp.npz"]
    live = tmp_path / f".e.npz.{os.getpid()}.zzz.spool"  # a concurrent writer's: kept
    legacy = tmp_path / ".e.npz.qwerty.spool"  # an untagged one from an older phylocl, fresh: kept
    other = tmp_path / f".other.npz.{dead}.abc.spool"  # another output's: not ours to touch
    for p in (*stale, live, legacy, other):
        p.write_bytes(b"x")
    assert main(["embed", "--fasta", str(fa), "--model", "kmer:2", "-o", str(out), "--quiet"]) == 0
    assert out.exists()
    assert _hidden(tmp_path) == sorted(p.name for p in (live, legacy, other))
    old = time.time() - 2 * 24 * 3600
    os.utime(legacy, (old, old))
    assert sweep_stale(out) == [legacy]


def test_atomic_path_sweeps_stale_tmp_files(tmp_path):
    out = tmp_path / "hits.tsv"
    stale = tmp_path / f".hits.tsv.{2 ** 22 + 7}.x.tmp.tsv"
    stale.write_text("half")
    with atomic_path(out) as tmp:
        tmp.write_text("query\n")
    assert out.read_text() == "query\n" and not stale.exists()


def test_os_errors_are_one_line(tmp_path, capsys, monkeypatch):
    import phylocl.workflows.embed_buffers as buffers_mod

    def boom(*a, **k):
        raise OSError(28, "No space left on device", str(tmp_path / "e.npz"))

    monkeypatch.setattr(buffers_mod, "embed_buffers", boom)  # used by embed's shard writer
    fa = tmp_path / "q.fa"
    fa.write_text(">a\nMKTAYIAKQR\n")
    assert main(["embed", "--fasta", str(fa), "--model", "kmer:2", "-o", str(tmp_path / "e.npz"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == f"phylocl embed: error: {tmp_path / 'e.npz'}: no space left on device\n"
    assert _hidden(tmp_path) == []


def test_disk_full_inside_an_atomic_write_names_the_output(tmp_path, capsys, monkeypatch):
    """issue 25, defect 13: a full disk while a sparse index was written said only "no space left on device" (a
    write to an open file carries no file name); the one line must name the output."""
    import errno

    import phylocl.retrieval.sparse_build as build_mod

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(build_mod.os, "pwrite", full)
    fa = tmp_path / "db.fa"
    fa.write_text(">a\nMKTAYIAKQR\n>b\nMSTAPQRWPL\n")
    out = tmp_path / "db.idx"
    assert main(["index", "--fasta", str(fa), "--model", "kmer:2", "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == f"phylocl index: error: {out}: cannot write: no space left on device\n"
    assert not out.exists() and _hidden(tmp_path) == []


def test_disk_full_in_atomic_path_names_the_final_file_not_the_temporary(tmp_path):
    import errno

    from phylocl.errors import InputError

    out = tmp_path / "hits.tsv"
    with pytest.raises(InputError) as err:
        with atomic_path(out) as tmp:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert str(err.value) == f"{out}: cannot write: no space left on device"
    with pytest.raises(OSError) as err:  # an error about another file (an input) is left as it is
        with atomic_path(out) as tmp:
            raise OSError(errno.ENOENT, "No such file or directory", str(tmp_path / "input.fa"))
    assert err.value.filename == str(tmp_path / "input.fa")


def test_sigterm_during_train_exits_143_in_one_line(tmp_path):
    """Issue 25, defect 11: Lightning's own SIGTERM handler made train exit 130 ("interrupted") after printing its
    "Received SIGTERM" and checkpoint lines; now 143 and one line, and interrupted.ckpt is kept for --resume."""
    data = tmp_path / "d"
    data.mkdir()
    fams = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLEDPVVAWLKERTTGHLA", "PLVNNWEDTKKLIGQHRSGYYV", "WWKRLEEHAPSNMTGQCDAF"]
    for f, seq in enumerate(fams):
        (data / f"F{f}.fasta").write_text("".join(f">F{f}_{m}\n{seq[m:] + seq[:m]}\n" for m in range(3)))
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from phylocl.cli import main; sys.exit(main())",
                             "train", "--data", str(data), "--out", str(out), "--set", "model.name=gmlp-tiny",
                             "--set", "data.batch_size=2", "--set", "data.max_len=32", "--set", "eval.enabled=false",
                             "--set", "trainer.max_steps=1000000", "--set", "trainer.val_every_n_steps=1000000"],
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    metrics = out / "logs" / "metrics.csv"
    while not (metrics.exists() and metrics.stat().st_size > 0) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)  # rows are flushed every log_every_n_steps: Lightning's handler is in place by then
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == [f"phylocl train: terminated (training terminated; continue with --resume "
                                        f"--out {out})"], err
    assert (out / "checkpoints" / "interrupted.ckpt").exists()

"""Two ``phylocl embed`` runs writing the same output: the second is refused at once in one line (exit 2), leaving
nothing behind, while the first goes on; the lock file ``.<out>.lock`` lives only as long as the run that holds it.
A distributed run's lock is rank 0's: the ranks it (or a launcher) started do not refuse it."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time

import pytest

from phylocl.cli import main
from phylocl.errors import InputError
from phylocl.workflows import embed as embed_mod
from phylocl.workflows import run_folder
from phylocl.workflows.run_folder import output_lock_path

AA = "ACDEFGHIKLMNPQRSTVWY"


def _fasta(path, n=20):
    path.write_text("".join(f">s{i}\n{(AA * 3)[i % 20:i % 20 + 30]}\n" for i in range(n)))
    return path


class _Held:
    """The lock of ``out`` held by "another run" (this test process), its pid file reading ``4242``."""

    def __init__(self, out):
        self.path = output_lock_path(out)

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT)
        os.write(self.fd, b"4242\n")
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)
        self.path.unlink()


def _refused(capsys, argv, *needles):
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_a_second_embed_of_the_same_output_is_refused_and_leaves_nothing(tmp_path, capsys):
    fasta = _fasta(tmp_path / "in.fasta")
    out = tmp_path / "out.npz"
    with _Held(out):
        _refused(capsys, ["embed", "--fasta", fasta, "--model", "kmer:2", "-o", out, "--quiet", "--shard-size", "4"],
                 f"phylocl embed: error: {out}: another `phylocl embed` (pid 4242) is writing this output",
                 "choose another -o")
        assert sorted(p.name for p in tmp_path.iterdir()) == [".out.npz.lock", "in.fasta"]  # nothing of its own
        assert output_lock_path(out).read_text() == "4242\n"  # the other run's lock is left alone
        # a run into another output of the same folder is not held up
        other = tmp_path / "b.npz"
        assert main(["embed", "--fasta", str(fasta), "--model", "kmer:2", "-o", str(other), "--quiet"]) == 0
    assert main(["embed", "--fasta", str(fasta), "--model", "kmer:2", "-o", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.npz", "in.fasta", "out.npz"]  # no lock file left


def test_the_lock_is_held_while_the_run_writes_and_removed_after(tmp_path, monkeypatch):
    """While shards are written the lock file names this process; a refusal of bad input removes it too."""
    fasta = _fasta(tmp_path / "in.fasta")
    out = tmp_path / "sub" / "out.npz"  # a folder the run creates
    seen = []
    real = embed_mod.write_shards

    def watching(*args, **kwargs):
        lock = output_lock_path(out)
        seen.append(lock.read_text())
        fd = os.open(lock, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        return real(*args, **kwargs)

    monkeypatch.setattr(embed_mod, "write_shards", watching)
    assert embed_mod.embed(out=out, model="kmer:2", fasta=fasta, progress=False).n == 20
    assert seen == [f"{os.getpid()}\n"] and sorted(p.name for p in out.parent.iterdir()) == ["out.npz"]
    bad = tmp_path / "bad.fasta"
    bad.write_text(">a\n\n")
    with pytest.raises(InputError, match="empty sequence"):
        embed_mod.embed(out=tmp_path / "new" / "x.npz", model="kmer:2", fasta=bad, progress=False)
    assert not (tmp_path / "new").exists()  # neither its folder nor its lock


def test_a_lock_file_left_by_a_killed_run_does_not_block(tmp_path, capsys):
    fasta = _fasta(tmp_path / "in.fasta")
    out = tmp_path / "out.npz"
    output_lock_path(out).write_text("999999\n")  # SIGKILLed: its file is there, its lock went with it
    assert main(["embed", "--fasta", str(fasta), "--model", "kmer:2", "-o", str(out), "--quiet"]) == 0
    assert not output_lock_path(out).exists()


def test_a_lock_file_removed_by_its_holder_is_not_taken(tmp_path, monkeypatch):
    """A run that opened the lock file just as its holder finished (and removed it) locks the removed file: it must
    start over on the file the path names now, or a third run could hold the lock at the same time."""
    lock = tmp_path / ".out.npz.lock"
    lock.write_text("4242\n")
    real_open, opened = os.open, []

    def open_then_holder_finishes(path, flags, mode=0o777, **kw):
        fd = real_open(path, flags, mode, **kw)
        if not opened:
            os.unlink(path)  # the holder removes its file and releases the lock
        opened.append(fd)
        return fd

    monkeypatch.setattr(run_folder.os, "open", open_then_holder_finishes)
    with run_folder.output_lock(tmp_path / "out.npz", command="embed"):
        monkeypatch.setattr(run_folder.os, "open", real_open)
        assert len(opened) == 2 and lock.read_text() == f"{os.getpid()}\n"
        st, mine = os.stat(lock), os.fstat(opened[1])
        assert (st.st_ino, st.st_dev) == (mine.st_ino, mine.st_dev)
    assert not lock.exists()


def test_distributed_ranks_share_rank_0s_lock(tmp_path, capsys, monkeypatch):
    """``embed --devices 2``: rank 0 takes the lock (and is refused at once when another run holds it); a rank that
    it or a launcher started (RANK/LOCAL_RANK > 0) runs under rank 0's lock instead of refusing it."""
    fasta = _fasta(tmp_path / "in.fasta")
    out = tmp_path / "out.npz"
    calls = []

    def fake_ddp(embedder, items, out, settings, with_labels, sizes, **kw):
        from phylocl.workflows.train_checks import launched_rank

        calls.append(launched_rank())
        return None, launched_rank(), 5

    monkeypatch.setattr(embed_mod, "_predict_distributed", fake_ddp)
    for var in ("RANK", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.delenv(var, raising=False)
    with _Held(out):
        _refused(capsys, ["embed", "--fasta", fasta, "--model", "kmer:2", "-o", out, "--quiet", "--devices", "2"],
                 "another `phylocl embed` (pid 4242) is writing this output")
        assert calls == []  # refused before any process was started
        monkeypatch.setenv("RANK", "1")  # a rank torchrun started
        res = embed_mod.embed(out=out, model="kmer:2", fasta=fasta, devices=2, progress=False)
        assert (res.rank, res.n) == (1, 0)
        monkeypatch.delenv("RANK")
        monkeypatch.setenv("LOCAL_RANK", "1")  # a rank Lightning started on this machine
        res = embed_mod.embed(out=out, model="kmer:2", fasta=fasta, devices=2, progress=False)
        assert (res.rank, res.n) == (1, 0) and calls == [1, 1]
        assert output_lock_path(out).read_text() == "4242\n"  # rank 0's lock, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.fasta"]


@pytest.mark.timeout(60)
def test_two_embed_processes_at_once(tmp_path):
    """Two real processes into one output: the one that starts second is refused in one line while the first is
    writing (held up in its first shard by a slow input: a pipe fed a little at a time), and the first finishes."""
    out = tmp_path / "out.npz"
    code = ("import sys; from phylocl.cli import main; sys.exit(main())")
    cmd = [sys.executable, "-c", code, "embed", "--model", "kmer:2", "-o", str(out), "--quiet", "--fasta"]
    first = subprocess.Popen([*cmd, "/dev/stdin"], stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first.stdin.write(">a\nMKTAYIAKQR\n")
    first.stdin.flush()
    lock = output_lock_path(out)
    deadline = time.monotonic() + 30
    while not lock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock.exists()
    second = subprocess.run([*cmd, str(_fasta(tmp_path / "in.fasta"))], capture_output=True, text=True, timeout=40)
    assert second.returncode == 2, second.stderr
    assert second.stderr.strip().splitlines() == [
        f"phylocl embed: error: {out}: another `phylocl embed` (pid {first.pid}) is writing this output; wait for "
        "it to finish or choose another -o"]
    first.stdin.write(">b\nMKTAYIAKQA\n")
    first.stdin.close()
    assert first.wait(timeout=40) == 0, first.stderr.read()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.fasta", "out.npz"]


def test_an_output_named_255_bytes_gets_its_lock_and_shard_folder(tmp_path, capsys):
    """The lock file and the shard folder carry a cut name with a hash when ``.<name>.lock`` / ``<name>.shards``
    would pass the 255-byte limit of a file name (embed failed with 'file name too long' for names over 248)."""
    from phylocl.workflows.shards import shard_folder_name

    fasta = _fasta(tmp_path / "in.fasta")
    name = "e" * 251 + ".npz"
    out = tmp_path / name
    assert len(output_lock_path(out).name) <= 255 and len(shard_folder_name(name)) <= 255
    assert shard_folder_name("out.npz") == "out.npz.shards"  # a name that fits: as before (resumable)
    assert main(["embed", "--fasta", str(fasta), "--model", "kmer:2", "-o", str(out), "--quiet", "--shard-size",
                 "4"]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.fasta", name])


@pytest.mark.parametrize("source", ["fasta", "embeddings"])
def test_a_second_index_of_the_same_folder_is_refused(tmp_path, capsys, source):
    """Two `phylocl index -o IX` runs both reported success, IX holding whichever finished last; the second is now
    refused at once, the folder left as it was (an earlier bundle stays)."""
    fasta = _fasta(tmp_path / "in.fasta")
    out = tmp_path / "ix"
    assert main(["index", "--fasta", str(fasta), "--model", "kmer:2", "-o", str(out), "--quiet"]) == 0
    before = sorted((p.name, p.read_bytes()) for p in out.iterdir())
    if source == "fasta":
        argv = ["index", "--fasta", fasta, "--model", "kmer:2", "-o", out, "--quiet"]
    else:
        assert main(["embed", "--fasta", str(fasta), "--model", "kmer:2", "-o", str(tmp_path / "e.npz"),
                     "--quiet"]) == 0
        argv = ["index", "--embeddings", tmp_path / "e.npz", "-o", out, "--quiet"]
    capsys.readouterr()  # the notes of the runs above
    with _Held(out):
        _refused(capsys, argv, f"phylocl index: error: {out}: another `phylocl index` (pid 4242) is writing this "
                               "output")
    assert sorted((p.name, p.read_bytes()) for p in out.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.fasta", "ix", *(["e.npz"] if source != "fasta"
                                                                                     else [])])
    assert main([str(a) for a in argv]) == 0 and not output_lock_path(out).exists()  # the lock went with the run

"""Worker pools under a low open-files limit (``ulimit -n``) and a SIGTERM that reaches a worker before it has reset
the handler it inherited: one line naming the limit, exit 2, no worker traceback, no hang, no temporaries."""

from __future__ import annotations

import random
import resource
import subprocess
import sys
from pathlib import Path

import pytest

import phylocl.align.workers as workers
from phylocl.align.workers import use_processes

pytestmark = pytest.mark.skipif(not use_processes(2, workers.MIN_PROCESS_ITEMS), reason="no fork on this platform")

PHYLOCL = [sys.executable, "-c", "import sys; from phylocl.cli import main; sys.exit(main())"]


def _limit(n: int):
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    return preexec


def _fasta(path: Path, n: int = 2000, length: int = 300) -> Path:
    """A database of n * length residues (2000 x 300: past MIN_PARALLEL_RESIDUES, so `index --threads 2` forks)."""
    rng = random.Random(5)
    path.write_text("".join(f">s{i}\n{''.join(rng.choices('ACDEFGHIKLMNPQRSTVWY', k=length))}\n" for i in range(n)))
    return path


@pytest.mark.timeout(60)
def test_index_under_a_low_open_files_limit_says_so_in_one_line(tmp_path):
    """Before: a worker's traceback (or a pool waiting forever for a worker that survived its SIGTERM), then
    'idx: cannot write: too many open files', which blames the output. Two workers need about 20 descriptors
    here (the command itself ~10), so 12 and 14 fail at the pool's start; 64 is enough."""
    fasta = _fasta(tmp_path / "db.fasta")
    for n in (12, 14):
        out = tmp_path / f"idx{n}"
        done = subprocess.run([*PHYLOCL, "index", "--fasta", str(fasta), "--model", "kmer:3", "-o", str(out),
                               "--threads", "2", "--quiet"], capture_output=True, text=True, timeout=40,
                              preexec_fn=_limit(n), cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert lines[0].startswith("phylocl index: error: too many open files")
        assert f"`ulimit -n`: {n})" in lines[0] and "2 worker processes" in lines[0], lines[0]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["db.fasta"]  # no index, no temporaries
    done = subprocess.run([*PHYLOCL, "index", "--fasta", str(fasta), "--model", "kmer:3", "-o", str(tmp_path / "ok"),
                           "--threads", "2", "--quiet"], capture_output=True, text=True, timeout=40,
                          preexec_fn=_limit(64), cwd=tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.timeout(60)
def test_a_sigterm_between_a_workers_fork_and_its_initializer_ends_that_worker_quietly(tmp_path):
    """The pool stops the workers it started when it cannot start the next one; a worker that got the SIGTERM
    before it had reset the command line's handler raised in it (a traceback on stderr, or 'phylocl: terminated'
    from the forked copy of the command) and could survive, so that the pool waited for it forever. Here the first
    worker sends itself SIGTERM right after its fork (an at-fork hook): it must die of it silently, and the pool,
    which starts another in its place, must still give every result."""
    flag = tmp_path / "first"
    code = f"""
import os, signal
from phylocl.cli import _sigterm_as_interrupt
from phylocl.align.workers import map_blocks

def first_child_terminates():
    try:
        fd = os.open({str(flag)!r}, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os.kill(os.getpid(), signal.SIGTERM)

os.register_at_fork(after_in_child=first_child_terminates)
with _sigterm_as_interrupt():
    assert map_blocks(lambda b: b * b, 6, 2, processes=True) == [b * b for b in range(6)]
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=40)
    assert flag.exists()
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
    assert done.stderr == "", done.stderr


def test_start_errors_name_the_limit(monkeypatch):
    import errno

    from phylocl.errors import InputError

    from phylocl import errors

    monkeypatch.setattr(errors.resource, "getrlimit", lambda which: (20, 4096))  # the words are errors.py's
    err = workers._start_error(OSError(errno.EMFILE, "Too many open files"), 3)
    assert isinstance(err, InputError) and "`ulimit -n`: 20" in str(err) and "3 worker processes" in str(err)
    assert "process limit (`ulimit -u`)" in str(workers._start_error(OSError(errno.EAGAIN, "again"), 2))
    other = OSError(errno.EIO, "I/O error")
    assert workers._start_error(other, 2) is other


def test_a_pool_that_cannot_start_leaves_no_task_behind(monkeypatch):
    import errno

    from phylocl.errors import InputError

    def no_pipes(*args, **kwargs):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(workers.multiprocessing.get_context("fork"), "Pool", no_pipes)
    with pytest.raises(InputError, match="too many open files"):
        with workers.OrderedPool(lambda x: x, workers=2):
            pass
    assert not workers._TASKS

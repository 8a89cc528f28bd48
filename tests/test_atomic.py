"""Atomic outputs: all or nothing, and the permissions of a normally created file."""

from __future__ import annotations

import os
import stat

import pytest

from phylocl.atomic import atomic_dir, atomic_path


def _mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_atomic_path_publishes_with_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "out.tsv") as tmp:
            tmp.write_text("a\tb\n")
        plain = tmp_path / "plain.tsv"
        plain.write_text("x")
        assert _mode(tmp_path / "out.tsv") == _mode(plain) == 0o644
        with atomic_dir(tmp_path / "folder") as d:
            (d / "f").write_text("x")
        assert _mode(tmp_path / "folder") == 0o755
    finally:
        os.umask(old)


@pytest.mark.parametrize("existing", [True, False])
def test_atomic_path_writes_through_a_symbolic_link(tmp_path, existing):
    """hits.tsv -> /big/disk/hits.tsv: the new output replaced the link with a file beside it, and the target kept
    its stale content (a pipeline reading the target read the previous run's hits)."""
    (tmp_path / "disk").mkdir()
    target = tmp_path / "disk" / "hits.tsv"
    if existing:
        target.write_text("previous run\n")
    (tmp_path / "work").mkdir()
    link = tmp_path / "work" / "hits.tsv"
    os.symlink("../disk/hits.tsv", link)  # a relative link, resolved from its own folder
    with atomic_path(link) as tmp:
        tmp.write_text("new\n")
    assert link.is_symlink() and os.readlink(link) == "../disk/hits.tsv"
    assert target.read_text() == "new\n" and sorted(os.listdir(tmp_path / "disk")) == ["hits.tsv"]
    assert os.listdir(tmp_path / "work") == ["hits.tsv"]


def test_a_dangling_link_into_a_missing_folder_is_refused_and_nothing_is_created(tmp_path):
    from phylocl.errors import InputError

    os.symlink(tmp_path / "missing" / "deeper" / "out.tsv", tmp_path / "out.tsv")
    with pytest.raises(InputError, match="whose folder does not exist"), atomic_path(tmp_path / "out.tsv") as tmp:
        tmp.write_text("x")
    assert not (tmp_path / "missing").exists() and (tmp_path / "out.tsv").is_symlink()


def test_atomic_dir_writes_through_a_symbolic_link(tmp_path):
    (tmp_path / "disk" / "run").mkdir(parents=True)
    (tmp_path / "disk" / "run" / "old").write_text("x")
    os.symlink(tmp_path / "disk" / "run", tmp_path / "run")
    with atomic_dir(tmp_path / "run") as d:
        (d / "new").write_text("y")
    assert (tmp_path / "run").is_symlink() and os.listdir(tmp_path / "disk" / "run") == ["new"]
    assert sorted(os.listdir(tmp_path / "disk")) == ["run"] and sorted(os.listdir(tmp_path)) == ["disk", "run"]


def test_failure_leaves_neither_output_nor_temporary(tmp_path):
    target = tmp_path / "out.npz"
    target.write_text("previous")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(tmp_path / "d") as d:
            (d / "f").write_text("x")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_failure_removes_the_folders_it_created_for_the_output(tmp_path, kind):
    """``-o new/deeper/out.tsv`` that fails leaves no ``new/deeper``; a folder that was there, or one that holds
    something else by then, stays."""
    (tmp_path / "kept").mkdir()
    writer = atomic_path if kind == "file" else atomic_dir
    for out in (tmp_path / "new" / "deeper" / "out.tsv", tmp_path / "kept" / "sub" / "out.tsv"):
        with pytest.raises(RuntimeError):
            with writer(out) as tmp:
                (tmp / "f").write_text("x") if kind == "folder" else tmp.write_text("half")
                raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"] and not any((tmp_path / "kept").iterdir())
    busy = tmp_path / "busy" / "deeper" / "out.tsv"
    with pytest.raises(RuntimeError):
        with writer(busy) as tmp:
            (busy.parent / "other.tsv").write_text("another writer's")  # written meanwhile into the new folder
            raise RuntimeError("boom")
    assert sorted(p.name for p in busy.parent.iterdir()) == ["other.tsv"]
    with writer(tmp_path / "made" / "out.tsv") as tmp:  # success keeps the folders
        (tmp / "f").write_text("x") if kind == "folder" else tmp.write_text("a")
    assert (tmp_path / "made" / "out.tsv").exists()


def test_atomic_dir_replaces_an_existing_folder_whole(tmp_path):
    target = tmp_path / "index"
    target.mkdir()
    (target / "old").write_text("x")
    with atomic_dir(target) as d:
        (d / "new").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


# ------------------------------------------------------------------ issue 25, defect 6: kill between the two renames
_KILLED_REPLACE = """
import os, sys
from pathlib import Path
from phylocl import atomic
real, calls = os.replace, []
def replace(a, b):
    calls.append(1)
    real(a, b)
    if len(calls) == {after}:
        os._exit(9)  # killed: no except, no finally
atomic.os.replace = replace
with atomic.atomic_dir(Path(sys.argv[1])) as d:
    (d / "version").write_text("new")
"""


def _killed_replace(target, after):
    """Replace the bundle ``target`` in a child process that dies right after its ``after``-th ``os.replace``."""
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = _KILLED_REPLACE.replace("{after}", str(after))
    proc = subprocess.run([sys.executable, "-c", code, str(target)], env={**os.environ, "PYTHONPATH": repo})
    assert proc.returncode == 9


@pytest.mark.parametrize("after", [1, 2])
def test_kill_between_the_renames_of_a_folder_replace_keeps_a_bundle(tmp_path, after):
    target = tmp_path / "index"
    with atomic_dir(target) as d:
        (d / "version").write_text("old")
    _killed_replace(target, after)
    # the next write fails before it completes: the bundle the killed run left (old or new) must survive it
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as d:
            raise RuntimeError("boom")
    assert (target / "version").read_text() in ("old", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # the killed run's temporaries are gone
    with atomic_dir(target) as d:  # and a write that completes replaces it
        (d / "version").write_text("newest")
    assert (target / "version").read_text() == "newest"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


def test_kill_between_the_renames_then_a_reader_finds_the_bundle(tmp_path):
    from phylocl.atomic import recover_interrupted

    target = tmp_path / "index"
    with atomic_dir(target) as d:
        (d / "version").write_text("old")
    _killed_replace(target, 1)
    assert recover_interrupted(target) and (target / "version").read_text() == "old"


def test_kill_between_the_renames_then_a_reader_through_a_link_finds_the_bundle(tmp_path):
    """atomic_dir replaces the folder a link points to (752cf07), so a reader through the link must look for the
    folder set aside beside the target, not beside the link."""
    from phylocl.atomic import read_dir

    (tmp_path / "disk").mkdir()
    target = tmp_path / "disk" / "index"
    with atomic_dir(target) as d:
        (d / "version").write_text("old")
    os.symlink(target, tmp_path / "index")
    _killed_replace(tmp_path / "index", 1)
    assert not target.exists()  # the old folder is aside, the new one not yet in place
    assert read_dir(tmp_path / "index", lambda root: (root / "version").read_text()) == "old"
    assert (tmp_path / "index").is_symlink() and (target / "version").read_text() == "old"


def test_second_rename_failing_restores_the_old_folder(tmp_path, monkeypatch):
    from phylocl import atomic

    target = tmp_path / "index"
    with atomic_dir(target) as d:
        (d / "version").write_text("old")
    real, calls = os.replace, []

    def replace(a, b):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(a, b)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(Exception):
        with atomic_dir(target) as d:
            (d / "version").write_text("new")
    monkeypatch.setattr(atomic.os, "replace", real)
    assert (target / "version").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


def test_stale_temporaries_of_other_names_are_swept_when_their_writer_is_dead(tmp_path):
    """issue 25, defect 13: a killed index build's ``.NAME.PID.*.tmp`` folder goes at the next build in that folder,
    whatever its name; one of a live writer, and look-alike user files, stay."""
    import subprocess
    import sys

    from phylocl.atomic import sweep_stale_in

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".db.idx.{pid}.abcd1234.tmp"
    stale.mkdir()
    (stale / "_cols.bin").write_bytes(b"x")
    live = tmp_path / f".other.idx.{os.getpid()}.efgh5678.tmp"
    live.mkdir()
    mine = tmp_path / ".notes.tmp"
    mine.write_text("user")
    mine2 = tmp_path / f".x.{pid}.tmp"
    mine2.write_text("user")
    assert sweep_stale_in(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, mine.name, mine2.name])


def test_outputs_with_names_near_the_255_byte_limit_are_written_and_replaced(tmp_path):
    """Temporaries add ~30 bytes to the name (".<name>.<pid>.<random>.tmp<suffix>"), so a valid name of 241-255
    bytes was refused ("file name too long"); long names are cut in their temporaries' names, with a hash."""
    from phylocl.atomic import atomic_dir, atomic_path, sweep_stale, temp_prefix

    out = tmp_path / ("a" * 251 + ".tsv")
    for text in ("first", "second"):
        with atomic_path(out) as tmp:
            tmp.write_text(text)
    assert out.read_text() == "second" and len(temp_prefix(out).encode()) < 230
    bundle = tmp_path / ("é" * 127)  # 254 bytes
    for text in ("1", "2"):
        with atomic_dir(bundle) as tmp:
            (tmp / "f").write_text(text)
    assert (bundle / "f").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, bundle.name])
    stale = tmp_path / (temp_prefix(out).replace(f".{os.getpid()}.", ".999999.") + "abcdefgh.tmp.tsv")
    stale.write_text("left by a killed run")
    assert sweep_stale(out) == [stale] and not stale.exists()


def test_running_out_of_file_descriptors_is_not_blamed_on_the_output(tmp_path):
    """EMFILE while writing an output is the process's open-files limit, not the output ('cannot write: too many
    open files' named the output file before); the words name the limit to raise."""
    import errno

    from phylocl.atomic import atomic_dir, atomic_path
    from phylocl.errors import InputError, os_error_message

    for ctx in (atomic_path(tmp_path / "out.tsv"), atomic_dir(tmp_path / "idx")):
        with pytest.raises(InputError) as caught:
            with ctx:
                raise OSError(errno.EMFILE, "Too many open files", str(tmp_path / ".out.tsv.1.x.tmp"))
        assert caught.value.path is None and "cannot write" not in str(caught.value)
        assert "ulimit -n" in str(caught.value) and ".tmp" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temporaries left
    words = os_error_message(OSError(errno.EMFILE, "Too many open files"))
    assert "ulimit -n" in words and "too low" in words


def test_an_os_error_inside_read_dir_keeps_one_file_name(tmp_path):
    """read_dir renamed an OSError's files to the user's paths, and setting filename2 = None made str(err) end in
    ' -> None'."""
    from phylocl.atomic import read_dir

    (tmp_path / "d").mkdir()

    def read(root):
        raise FileNotFoundError(2, "No such file or directory", str(root / "x"))

    with pytest.raises(FileNotFoundError) as err:
        read_dir(tmp_path / "d", read)
    assert err.value.filename == str(tmp_path / "d" / "x")
    assert str(err.value) == f"[Errno 2] No such file or directory: '{tmp_path / 'd' / 'x'}'"

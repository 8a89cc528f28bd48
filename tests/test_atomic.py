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


def test_atomic_dir_replaces_an_existing_folder_whole(tmp_path):
    target = tmp_path / "index"
    target.mkdir()
    (target / "old").write_text("x")
    with atomic_dir(target) as d:
        (d / "new").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]

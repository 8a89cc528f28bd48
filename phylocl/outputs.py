"""Checks on output paths before any work is done: never replace what is not ours to replace.

:func:`check_output_file` refuses, as one :class:`~phylocl.errors.InputError` each: an existing directory, device
node, named pipe or socket (``-o /dev/null`` run as root would otherwise replace the device with a file); a path
that is one of the inputs (same file, by inode) or one of the files of an input folder; a path whose
parent is a file; a place under ``/proc`` or ``/sys``; a folder the user cannot write to.
:func:`check_output_dir` does the same for output folders; :func:`refuse_foreign_files` refuses to replace a
folder of ours that holds files phylocl did not write.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable

from phylocl.atomic import write_target
from phylocl.errors import InputError

__all__ = ["check_output_file", "check_output_dir", "same_file", "refuse_foreign_files", "refuse_clashes"]

_PSEUDO = ("/proc", "/sys")


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` both exist and are the same file (same device and inode)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _in_folder(path: Path, folder: Path) -> bool:
    """True when ``path`` is (by inode) one of the files directly inside the input folder ``folder``."""
    try:
        return any(same_file(path, f) for f in folder.iterdir() if f.is_file())
    except OSError:
        return False


def _check_place(path: Path, *, folder: bool = False) -> None:
    """The nearest existing ancestor must be a writable folder outside ``/proc`` and ``/sys`` (``folder``: ``path``
    itself is a folder to create or fill)."""
    resolved = Path(os.path.abspath(path / "x" if folder else path))
    if any(resolved == Path(p) or Path(p) in resolved.parents for p in _PSEUDO):
        raise InputError(f"is under {next(p for p in _PSEUDO if resolved.is_relative_to(p))}, a kernel "
                         "interface, not a place for output", path=path)
    parent = resolved.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot write here: {parent} is a file, not a folder", path=path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write here: permission denied in {parent}", path=path)


def check_output_file(path: str | Path, *, inputs: Iterable[str | Path] = (), example: str = "out.tsv") -> Path:
    """``path`` as a :class:`Path` if a new file may be written there (see module doc); ``inputs``: the
    command's input files and folders."""
    if isinstance(path, str) and path.endswith(("/", os.sep)):  # Path() drops the slash: a file would be written
        raise InputError(f"names a folder (it ends with '/'); give a file name such as {example}", path=path)
    path = Path(path)
    target = write_target(path)  # where the output goes: through a link, as open() writes
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as err:
        from phylocl.errors import os_error_message

        raise InputError(f"cannot use as output: {os_error_message(err)}", path=path) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise InputError(f"output is a directory; give a file name such as {example}", path=path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise InputError("output exists and is not a regular file (a device, pipe or socket); refusing to "
                         "replace it", path=path)
    for src in inputs:
        if same_file(path, src) or (Path(src).is_dir() and path.exists() and _in_folder(path, Path(src))):
            raise InputError("output would overwrite an input file", path=path)
    _check_place(target)
    return path


def check_output_dir(path: str | Path, *, inputs: Iterable[str | Path] = ()) -> Path:
    """``path`` as a :class:`Path` if it can be an output folder: not a file or device, not an input, writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        if path.is_file():
            raise InputError("output folder is a file; give a folder name", path=path)
        raise InputError("exists and is not a folder (a device, pipe or socket); refusing to replace it", path=path)
    for src in inputs:
        if same_file(path, src):
            raise InputError(f"output folder is the input {src}", path=path)
    _check_place(path, folder=True)
    return path


def refuse_foreign_files(folder: Path, ours, *, what: str) -> None:
    """Refuse (one line naming up to 5 of them) when ``folder`` holds anything phylocl did not write, so that
    replacing the folder as a whole never deletes a user's file. ``ours``: relative paths phylocl writes there."""
    foreign = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                     if not p.is_dir() and str(p.relative_to(folder)) not in ours)
    foreign += sorted(str(p.relative_to(folder)) + "/" for p in folder.rglob("*")
                      if p.is_dir() and not any(o.startswith(str(p.relative_to(folder)) + "/") for o in ours))
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise InputError(f"holds files phylocl did not write ({shown}); replacing {what} would delete them: move "
                         "them away or choose another output", path=folder)


def refuse_clashes(folder: Path, names, *, ours: bool, what: str) -> None:
    """Refuse (one line naming up to 3 of them) to write into ``folder`` when it holds some of ``names`` (what
    ``what`` writes there) but is not an output of ``what`` (``ours``: the caller found its own marker), so that a
    user's file of the same name is never replaced. A missing folder, or one without such names, passes."""
    folder = Path(folder)
    if ours or not folder.is_dir():
        return
    clash = [n for n in names if (folder / n).exists() or (folder / n).is_symlink()]
    if clash:
        shown = ", ".join(clash[:3]) + (f" and {len(clash) - 3} more" if len(clash) > 3 else "")
        raise InputError(f"holds {shown}, which {what} writes, but is not an output of {what}; move them away or "
                         "choose another output folder", path=folder)

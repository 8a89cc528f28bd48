"""Atomic output files: write to a temporary sibling, then ``os.replace`` it into place.

A crash or Ctrl-C never leaves a half-written output behind; readers see the old file or the new one. A place
that cannot be written (no permission, a parent that is a file, a read-only or full disk) is an
:class:`~phylocl.errors.InputError` naming the output.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from phylocl.errors import InputError, os_error_message

__all__ = ["atomic_path", "atomic_dir", "publish_mode", "temp_prefix", "sweep_stale", "sweep_stale_in",
           "recover_interrupted"]

_STALE_SUFFIXES = (".spool", ".tmp", ".old")  # what atomic_path/atomic_dir/EmbeddingWriter leave when killed
_LEGACY_AGE = 24 * 3600  # seconds after which an untagged temporary (an older phylocl's) counts as stale
# ".<name>.<pid>.<8 random characters of tempfile>.<tmp|old|spool>[...]": a temporary of ours, whatever its name
_TAGGED = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[a-z0-9_]{8}\.(?:tmp|old|spool)(?:\..*)?$")


def temp_prefix(path: Path) -> str:
    """Prefix of the hidden temporaries of ``path``: ``.<name>.<pid>.`` (the pid tells :func:`sweep_stale`
    whether their writer is still alive)."""
    return f".{_short(path.name)}.{os.getpid()}."


_SHORTENED = re.compile(r"~[0-9a-f]{8}$")  # how _short ends a name it cut
_NAME_ROOM = 200  # bytes of an output's name kept in its temporaries' names (a name is at most 255 bytes)


def _short(name: str) -> str:
    """``name`` as its temporaries carry it: whole, or for a name over :data:`_NAME_ROOM` bytes its head and a hash
    of the whole (so that ``.<name>.<pid>.<random>.tmp<suffix>`` stays within the 255-byte limit of a file name)."""
    if len(name.encode()) <= _NAME_ROOM:
        return name
    import hashlib

    head = name.encode()[:_NAME_ROOM - 9].decode(errors="ignore")
    return f"{head}~{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _remove(tmp: Path) -> None:
    """Delete a temporary file or folder (a link is unlinked, never followed); errors are ignored."""
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep_stale(path: str | Path) -> list[Path]:
    """Delete the temporaries of ``path`` left by a run that was killed (SIGKILL, power loss); returns them.

    A temporary ``.<name>.<pid>.<random>.tmp*`` / ``.spool`` / ``.old`` is stale when its pid is no longer running
    (an untagged one from an older phylocl: after a day). Temporaries of a live writer are left alone.
    """
    import time

    path = Path(path)
    removed = []
    recover_interrupted(path)
    short = _short(path.name)
    try:
        candidates = list(path.parent.glob(f".{glob_escape(short)}.*"))
    except OSError:
        return removed
    for tmp in candidates:
        rest = tmp.name[len(short) + 2:]
        if not any(sfx in rest for sfx in _STALE_SUFFIXES):
            continue
        head = rest.split(".", 1)[0]
        try:
            stale = not _alive(int(head)) if head.isdigit() else time.time() - tmp.lstat().st_mtime > _LEGACY_AGE
        except OSError:
            continue
        if stale:
            _remove(tmp)
            removed.append(tmp)
    return removed


def sweep_stale_in(folder: str | Path) -> list[Path]:
    """Delete the temporaries of *any* output in ``folder`` whose writer is dead (a killed ``phylocl index`` of
    another name, an embed killed while spooling); returns them.

    Only names of the exact form phylocl gives its temporaries (``.<name>.<pid>.<8 random chars>.tmp|old|spool``)
    with a pid that no longer runs are touched; a folder replace killed between its renames is first undone
    (:func:`recover_interrupted`), so the bundle it held comes back instead of being deleted.
    """
    removed: list[Path] = []
    try:
        entries = sorted(Path(folder).iterdir())
    except OSError:
        return removed
    for tmp in entries:
        m = _TAGGED.match(tmp.name)
        if m is None or _alive(int(m["pid"])) or _SHORTENED.search(m["name"]):
            continue  # (a long name's temporaries do not tell the name: :func:`sweep_stale` of it removes them)
        recover_interrupted(tmp.parent / m["name"])
        if not tmp.exists() and not tmp.is_symlink():
            continue
        _remove(tmp)
        removed.append(tmp)
    return removed


def recover_interrupted(path: str | Path) -> bool:
    """Put back the folder a replace killed between its two renames left aside; True when it did.

    :func:`atomic_dir` moves the old ``path`` into ``.<name>.<pid>.*.old/x`` and then the new folder onto ``path``;
    a kill in between leaves no ``path``. When ``path`` is missing and such an ``.old`` of a dead writer holds
    ``x``, ``x`` goes back to ``path`` (the newest one if several): the old bundle survives, never neither.
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        return False
    try:
        short = _short(path.name)
        olds = [p for p in path.parent.glob(f".{glob_escape(short)}.*.old")
                if (m := _TAGGED.match(p.name)) and m["name"] == short and not _alive(int(m["pid"]))
                and (p / "x").exists()]
    except OSError:
        return False
    for old in sorted(olds, key=lambda p: p.lstat().st_mtime, reverse=True):
        try:
            os.replace(old / "x", path)
        except OSError:
            continue
        shutil.rmtree(old, ignore_errors=True)
        return True
    return False


def glob_escape(name: str) -> str:
    import glob

    return glob.escape(name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish_mode(path: Path, *, directory: bool) -> None:
    """Give a temporary file/dir the permissions a plain ``open``/``mkdir`` would have (mkstemp makes them 0600)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def _about_output(err: BaseException, tmp: Path) -> bool:
    """An OSError raised while writing the temporary ``tmp`` (no file name, or one inside ``tmp``), as opposed to
    one about another file such as an input."""
    if not isinstance(err, OSError) or isinstance(err, (BlockingIOError, InterruptedError)):
        return False
    name = err.filename
    return name is None or os.path.abspath(name) == os.path.abspath(tmp) or \
        os.path.abspath(name).startswith(os.path.abspath(tmp) + os.sep)


def _replace(tmp: Path, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except OSError as err:
        raise InputError(f"cannot write: {os_error_message(err)}", path=path) from None


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it to ``path``, on error delete it.

    The temporary name keeps ``path``'s suffix (or ``suffix``) so libraries that dispatch on the extension
    (``numpy.savez`` adds ``.npz``) write where we expect.

    Example::

        with atomic_path("out.tsv") as tmp:
            tmp.write_text("query\\ttarget\\n")
    """
    path = Path(path)
    sfx = path.suffix if suffix is None else suffix
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(path)
        fd, name = tempfile.mkstemp(prefix=temp_prefix(path), suffix=f".tmp{sfx}", dir=path.parent)
    except OSError as err:
        raise InputError(f"cannot write: {os_error_message(err)}", path=path) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.exists():
            publish_mode(tmp, directory=False)
        _replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if _about_output(err, tmp):  # a full disk while writing: name the output, not the hidden temporary
            raise InputError(f"cannot write: {os_error_message(err)}", path=path) from None
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory next to ``path``; on success it replaces ``path`` as a whole.

    An existing ``path`` is removed only after the new content is complete.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(path)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent))
    except OSError as err:
        raise InputError(f"cannot write: {os_error_message(err)}", path=path) from None
    try:
        yield tmp
        publish_mode(tmp, directory=True)
        if path.exists():
            # two renames: old aside, new in place. A kill between them leaves the old one in .old/x, which the
            # next write or read puts back (recover_interrupted); an error between them puts it back at once.
            old = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".old", dir=path.parent))
            os.replace(path, old / "x")
            try:
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.replace(old / "x", path)
                shutil.rmtree(old, ignore_errors=True)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if _about_output(err, tmp):  # a full disk while writing: name the output, not the hidden temporary
            raise InputError(f"cannot write: {os_error_message(err)}", path=path) from None
        raise

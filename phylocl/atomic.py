"""Atomic output files: write to a temporary sibling, then ``os.replace`` it into place.

A crash or Ctrl-C never leaves a half-written output behind; readers see the old file or the new one. A place
that cannot be written (no permission, a parent that is a file, a read-only or full disk) is an
:class:`~phylocl.errors.InputError` naming the output.

A folder (:func:`atomic_dir`) is replaced with two renames: a reader of its members uses :func:`read_dir`, which
reads them all from one version of the folder, and :func:`await_replace`, which puts back a folder a killed
replace left aside or waits for a live one. :func:`sweep_stale` / :func:`sweep_stale_in` remove the temporaries
of killed writers.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from phylocl.errors import InputError, os_error_message

__all__ = ["atomic_path", "atomic_dir", "publish_mode", "temp_prefix", "sweep_stale", "sweep_stale_in",
           "recover_interrupted", "await_replace", "read_dir", "READ_ATTEMPTS", "short_name", "names_open",
           "shown_as", "follow_links", "write_target"]

_STALE_SUFFIXES = (".spool", ".tmp", ".old")  # what atomic_path/atomic_dir/EmbeddingWriter leave when killed
_LEGACY_AGE = 24 * 3600  # seconds after which an untagged temporary (an older phylocl's) counts as stale
# ".<name>.<pid>.<8 random characters of tempfile>.<tmp|old|spool>[...]": a temporary of ours, whatever its name
_TAGGED = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[a-z0-9_]{8}\.(?:tmp|old|spool)(?:\..*)?$")


def temp_prefix(path: Path) -> str:
    """Prefix of the hidden temporaries of ``path``: ``.<name>.<pid>.`` (the pid tells :func:`sweep_stale`
    whether their writer is still alive)."""
    return f".{short_name(path.name)}.{os.getpid()}."


_SHORTENED = re.compile(r"~[0-9a-f]{8}$")  # how short_name ends a name it cut
_NAME_ROOM = 200  # bytes of an output's name kept in its temporaries' names (a name is at most 255 bytes)


def short_name(name: str) -> str:
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
    path = Path(path)
    removed = []
    recover_interrupted(path)
    short = short_name(path.name)
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
        olds = _set_aside(path, alive=False)
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


def _replace_pending(path: Path) -> bool:
    """Whether a live writer is between the two renames of a replace of ``path`` (:func:`atomic_dir`): its
    ``.<name>.<pid>.*.old`` holds ``x``, the old folder, and the new one is about to be renamed onto ``path``."""
    try:
        return bool(_set_aside(path, alive=True))
    except OSError:
        return False


def _set_aside(path: Path, *, alive: bool) -> list[Path]:
    """The ``.<name>.<pid>.*.old`` folders of replaces of ``path`` (:func:`atomic_dir`) that hold ``x``, the old
    folder set aside, and whose writer is ``alive`` (or dead)."""
    short = short_name(path.name)
    return [p for p in path.parent.glob(f".{glob_escape(short)}.*.old")
            if (m := _TAGGED.match(p.name)) and m["name"] == short and _alive(int(m["pid"])) == alive
            and (p / "x").exists()]


_REPLACE_WAIT = 2.0  # seconds a reader waits for a live writer to make the second rename of a folder replace


def await_replace(path: str | Path, *, timeout: float = _REPLACE_WAIT) -> None:
    """Make sure a folder that :func:`atomic_dir` replaces is at ``path`` if it can be: a replace killed between its
    renames is undone (:func:`recover_interrupted`), and while a live writer is between them (microseconds, as a
    rule) this waits, up to ``timeout`` seconds, for its new folder to arrive. Returns at once when ``path``
    exists, or is missing with no replace under way (the caller then names what is missing). A link is followed:
    :func:`atomic_dir` replaces the folder it links to."""
    path = _linked(Path(path))
    deadline = time.monotonic() + timeout
    while not (path.exists() or path.is_symlink()):
        if recover_interrupted(path) or not _replace_pending(path) or time.monotonic() > deadline:
            return
        time.sleep(0.002)


READ_ATTEMPTS = 8  # loads of a folder that was replaced during each of them before :func:`read_dir` gives up
_PROC_FD = "/proc/self/fd"


def _open_dir(path: Path) -> int | None:
    """A file descriptor of the folder at ``path`` (``None`` where the system cannot open folders). ``O_PATH``
    where there is one: a folder that may be searched but not listed opens too, as its members did."""
    if not hasattr(os, "O_DIRECTORY"):
        return None
    return os.open(path, os.O_DIRECTORY | getattr(os, "O_PATH", os.O_RDONLY))


def _fd_root(fd: int | None, path: Path) -> Path:
    """The path through which the members of the folder open as ``fd`` are opened: ``/proc/self/fd/<fd>``, which
    the kernel resolves through the open folder (wherever it was renamed to), where that works; else ``path``."""
    if fd is None:
        return path
    root = Path(f"{_PROC_FD}/{fd}")
    return root if names_open(root, fd) else path


def names_open(path: str | Path, fd: int | None, first: os.stat_result | None = None) -> bool:
    """Whether ``path`` still names the file or folder open as ``fd`` (or, without ``fd``, the one ``first``
    described): not when another was renamed onto it or it is gone (same ``st_dev`` and ``st_ino``)."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(fd) if fd is not None else first)
    except OSError:
        return False


def shown_as(text, root: Path, path: Path):
    """``text`` with ``root`` (``/proc/self/fd/N``, :func:`read_dir`) and the paths below it named as ``path`` and
    the paths below it: messages show the paths the user gave. ``text`` that is not a str is returned as it is."""
    if root == path or not isinstance(text, str):
        return text
    return re.sub(re.escape(str(root)) + r"(?![0-9])", lambda _: str(path), text)


def _real_names(err: BaseException, root: Path, path: Path) -> BaseException:
    """``err`` with the members of ``root`` (``/proc/self/fd/N/...``) named as the members of ``path``, in place:
    the user is shown the paths they gave."""
    if isinstance(err, InputError):
        err.message, err.path = shown_as(err.message, root, path), shown_as(err.path, root, path)
        err.args = (err._format(),)
    elif isinstance(err, OSError):
        err.filename = shown_as(err.filename, root, path)
        if err.filename2 is not None:  # assigning None would make str(err) end in " -> None"
            err.filename2 = shown_as(err.filename2, root, path)
    return err


T = TypeVar("T")


def read_dir(path: str | Path, read: Callable[[Path], T], *, attempts: int = READ_ATTEMPTS) -> T:
    """``read(root)`` of a folder that :func:`atomic_dir` may replace while it is read: every member ``read``
    opens under ``root`` comes from one and the same version of the folder, the one at ``path`` when the read
    began (or, where that one was replaced during the read, a later one, read again whole).

    Why this is needed: a replace renames the old folder aside, the new one onto ``path``, then deletes the old one
    file by file. A reader that opens ``path / name`` member after member can get ``meta.json`` of one version and
    a matrix of the next (a "damaged" bundle that is not), or a member already deleted, or no folder at all.

    How (Linux): the folder is opened once as a directory file descriptor ``fd``, and ``root`` is
    ``/proc/self/fd/<fd>``, a path the kernel resolves through that open folder, wherever it has been renamed to
    since, so every member comes from the same version (functions that take paths need no change). That alone
    does not protect members not yet opened when the writer deletes the old version after its swap: such an open
    fails (the file is missing; a file already open, or memory-mapped, stays readable). So the read is checked
    against ``path`` when it ends: when ``path`` still names the folder of ``fd`` (same ``st_dev``, ``st_ino``;
    the open ``fd`` keeps the number from being reused), the old version was never deleted (only a folder renamed
    aside is) and the result, or the error, is the folder's own: a damaged bundle is reported as before, read once.
    When ``path`` names another folder (or none), the read raced a replace: its result (which may have taken a
    member deleted meanwhile for one the bundle lacks) or error is dropped, and the new version is read the same
    way, up to ``attempts`` times in all (then :class:`~phylocl.errors.InputError`: the folder is being rewritten
    faster than it can be read). Each attempt first waits for a live writer between its two renames
    (:func:`await_replace`). Errors name ``path``'s members, not ``/proc`` paths.

    Elsewhere (no ``/proc``, no directory descriptors) ``root`` is ``path`` itself and the same end check drops
    reads that mixed two versions (``fd``, where there is one, still rules out a reused inode number), so a result
    is still one version's; a version put back at ``path`` between two reads (a replace that failed between its
    renames) is not detected there.

    ``read`` must open everything it needs before it returns (memory maps may outlive ``fd``: they hold their
    files); it should raise :class:`~phylocl.errors.InputError` or ``OSError`` for what it cannot read.
    """
    path = Path(path)
    real = _linked(path)  # a link's folder: what atomic_dir replaces (errors still name ``path``)
    for _ in range(attempts):
        await_replace(real)
        try:
            fd = _open_dir(real)
            first = os.stat(real) if fd is None else None
        except OSError as err:
            raise InputError(f"cannot read: {os_error_message(err)}", path=path) from None
        try:
            root = _fd_root(fd, real)
            try:
                result = read(root)
            except Exception as err:
                if names_open(real, fd, first):
                    raise _real_names(err, root, path)
                continue
            if names_open(real, fd, first):
                return result
        finally:
            if fd is not None:
                os.close(fd)
    raise InputError(f"was replaced {attempts} times while being read (rewritten again and again?); try again",
                     path=path)


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


def _out_of_descriptors(err: BaseException) -> None:
    """Raise the one-line error of a process (or system) out of file descriptors: the open-files limit, not the
    output (nor its hidden temporary) is what to name."""
    if isinstance(err, OSError) and err.errno in (errno.EMFILE, errno.ENFILE):
        raise InputError(os_error_message(err)) from None


PSEUDO = ("/proc", "/sys")  # kernel interfaces: never a place for output
_MAX_LINKS = 40  # links followed before giving up, as Linux's ELOOP limit


def _pseudo(path: Path) -> str | None:
    """The kernel interface (``/proc``, ``/sys``) ``path`` (absolute, its folders resolved) lies under, if any."""
    return next((p for p in PSEUDO if path == Path(p) or Path(p) in path.parents), None)


def follow_links(path: str | Path) -> tuple[Path, str | None]:
    """``path`` (absolute) with the symbolic links of its last name followed, as ``open`` follows them (also a
    dangling link: the file it would create), and the kernel interface (``/proc``, ``/sys``) a step of the way
    lies under, else ``None``. ``/dev/stdout`` -> ``/proc/self/fd/1`` is one: an open file of the process, which a
    file renamed onto the link would replace with a regular file (as root, the system's ``/dev/stdout``)."""
    p = Path(os.path.abspath(path))
    for _ in range(_MAX_LINKS):
        parent = Path(os.path.realpath(p.parent))
        p = parent / p.name
        if _pseudo(p) is not None or not p.is_symlink():
            return p, _pseudo(p)
        p = Path(os.path.abspath(parent / os.readlink(p)))
    return p, _pseudo(p)


def _replace(tmp: Path, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except OSError as err:
        raise InputError(f"cannot write: {os_error_message(err)}", path=path) from None


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the folders created, deepest first, so that a write that
    fails can remove them again (:func:`_remove_made`) and leave no trace of its output."""
    made, p = [], folder
    while not p.exists() and not p.is_symlink() and p != p.parent:
        made.append(p)
        p = p.parent
    folder.mkdir(parents=True, exist_ok=True)
    return made


def _remove_made(made: list[Path]) -> None:
    """Remove the folders :func:`_make_parents` created, deepest first, as long as they are empty."""
    for folder in made:
        try:
            folder.rmdir()
        except OSError:
            return


def _linked(path: Path) -> Path:
    """``path``, or the file or folder it links to (:func:`follow_links`)."""
    return follow_links(path)[0] if os.path.islink(path) else path


def write_target(path: str | Path) -> Path:
    """Where an output at ``path`` is written: a symbolic link is written through, as ``open`` writes (its target
    is replaced, the link kept; a dangling link's target is created, not its missing folders). Refused in one line
    (:class:`InputError`): a link to an open file under ``/proc`` (``/dev/stdout``, ``/dev/fd/N``), which a file
    renamed onto it would replace with a regular file (as root: the system's ``/dev/stdout``), and a dangling link
    into a folder that does not exist. Used by :func:`atomic_path`, :func:`atomic_dir` and the output checks of
    :mod:`phylocl.outputs`."""
    path = Path(path)
    if not os.path.islink(path):
        return path
    target, pseudo = follow_links(path)
    if pseudo is not None:
        shown = re.sub(rf"^/proc/{os.getpid()}/", "/proc/self/", str(target))  # as /dev/stdout names it
        raise InputError(f"is a link to {shown}, under {pseudo} (standard output or another open file), not a "
                         "file that can be replaced; name a file (search writes to standard output with -o -)",
                         path=path)
    if not target.parent.is_dir():  # as open() through a dangling link: its folders are not created
        raise InputError(f"cannot write: a link to {target}, whose folder does not exist", path=path)
    return target


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it to ``path``, on error delete it. A ``path`` that
    is a symbolic link is written through, as ``open`` writes: its target is replaced and the link kept.

    The temporary name keeps ``path``'s suffix (or ``suffix``) so libraries that dispatch on the extension
    (``numpy.savez`` adds ``.npz``) write where we expect.

    Example::

        with atomic_path("out.tsv") as tmp:
            tmp.write_text("query\\ttarget\\n")
    """
    path = write_target(path)
    sfx = path.suffix if suffix is None else suffix
    made: list[Path] = []
    try:
        made = _make_parents(path.parent)
        sweep_stale(path)
        fd, name = tempfile.mkstemp(prefix=temp_prefix(path), suffix=f".tmp{sfx}", dir=path.parent)
    except OSError as err:
        _remove_made(made)
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
        _remove_made(made)
        _out_of_descriptors(err)
        if _about_output(err, tmp):  # a full disk while writing: name the output, not the hidden temporary
            raise InputError(f"cannot write: {os_error_message(err)}", path=path) from None
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory next to ``path``; on success it replaces ``path`` as a whole.

    An existing ``path`` is removed only after the new content is complete. A ``path`` that is a symbolic link
    is written through: the folder it links to is replaced, the link kept.
    """
    path = write_target(path)
    made: list[Path] = []
    try:
        made = _make_parents(path.parent)
        sweep_stale(path)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent))
    except OSError as err:
        _remove_made(made)
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
        _remove_made(made)
        _out_of_descriptors(err)
        if _about_output(err, tmp):  # a full disk while writing: name the output, not the hidden temporary
            raise InputError(f"cannot write: {os_error_message(err)}", path=path) from None
        raise

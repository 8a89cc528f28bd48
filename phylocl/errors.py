"""User-facing errors.

Anything wrong with what the user handed us (a path, a FASTA file, a labels table, a config value) is raised as
:class:`InputError`. The CLI turns it into one line on stderr and exit code 2; library users can catch it.
"""

from __future__ import annotations

import errno
from pathlib import Path

try:  # imported now: out of file descriptors, when the limit is to be named, importing it would fail
    import resource
except ImportError:  # Windows
    resource = None

__all__ = ["InputError", "Terminated", "os_error_message", "open_files_message"]


class InputError(ValueError):
    """Bad user input, located as precisely as possible.

    Args:
        message: what is wrong, in words a user can act on.
        path: the offending file or directory, if any.
        line: 1-based line number inside ``path``, if it applies.
        column: 1-based column inside ``line``, where it is known exactly.

    ``str(err)`` reads ``path:line:column: message`` (or ``path:line: message`` / ``path: message`` /
    ``message``), the form compilers use and editors jump to.
    """

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None,
                 column: int | None = None) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        self.column = column if line is not None else None
        super().__init__(self._format())

    def _format(self) -> str:
        if self.path is None:
            return self.message
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        if self.column is not None:
            where += f":{self.column}"
        return f"{where}: {self.message}"


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: outputs in progress are removed (atomic writes); the command exits 143."""


_OS_WORDS = {errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.EISDIR: "is a directory",
             errno.ENOENT: "no such file or directory", errno.ENOTDIR: "a parent of this path is a file, not a folder",
             errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on device",
             errno.EEXIST: "already exists"}


def os_error_message(err: OSError) -> str:
    """Short words for an ``OSError`` (``permission denied``, ``is a directory`` ...), without the path; running out
    of file descriptors names the limit to raise. An error without the system's words (``strerror``) is phylocl's
    own message, kept as written: lowercased, the run folder that a full disk's ``--resume --out DIR`` named was
    another folder wherever DIR had capitals."""
    words = open_files_message(err.errno) or _OS_WORDS.get(err.errno)
    if words:
        return words
    return err.strerror.lower() if err.strerror else (str(err) or type(err).__name__)


def open_files_message(code: int | None, *, to: str = "", advice: str = "") -> str | None:
    """The words for running out of file descriptors (``code``: ``EMFILE``, this process's limit; ``ENFILE``, the
    system's file table), naming what to raise; ``None`` for any other errno. ``to``: what could not be done
    (``" to start 4 worker processes"``); ``advice``: another way out (``"or use fewer --threads"``)."""
    if code == errno.EMFILE:
        return (f"too many open files: the open-files limit (`ulimit -n`: {_nofile_limit()}) is too low{to}; raise "
                f"it (e.g. `ulimit -n 1024`){' ' + advice if advice else ''}")
    if code == errno.ENFILE:
        return (f"too many open files on this system (its file table is full){to}; try again when fewer files are "
                f"open{', ' + advice if advice else ''}")
    return None


def _nofile_limit() -> str:
    try:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (AttributeError, OSError, ValueError):  # no resource module
        return "unknown"
    return "unlimited" if soft == resource.RLIM_INFINITY else f"{soft:,}"

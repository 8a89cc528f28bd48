"""Checks of the arguments Python callers pass to the library: whole and real numbers (never a ``bool``), and
whether a string names an existing path.

``isinstance(True, int)`` holds, so ``k=True`` would search one hit and ``chunk_size=True`` make chunks of one;
``int(2.5)`` is 2, so ``k=2.5`` would be searched as ``k=2``. These checks accept Python and NumPy numbers
(``np.int64(3)``, ``np.float32(0.1)``) and refuse bools, strings, floats where a whole number belongs and anything
else with a ``ValueError`` naming the argument::

    k = whole("k", k)                                        # an int, or ValueError
    chunk_size = positive_int("chunk_size", chunk_size, optional=True)   # int >= 1 or None
    max_scale = positive_real("max_scale", max_scale)        # finite float > 0

A string that may be a path or something else (a model name, a sequence) is probed with :func:`existing_path`,
which is false, not an ``OSError``, for a string no file can be named (a part over 255 bytes, a NUL byte). A string
that must be a path is taken by :func:`usable_path`, which refuses a name too long for a file with an
:class:`~phylocl.errors.InputError` naming the argument (``OSError: File name too long`` before).

Messages name an argument by :func:`option`: the Python keyword (``threads``, ``out_format``) for a caller of the
library, the command's option (``--threads``, ``--format``) while ``phylocl`` runs a command
(:func:`command_line_names`, entered by :func:`phylocl.cli.main`)::

    raise InputError(f"{option('evalue')} must be > 0, got {evalue}")   # "evalue must be ..." / "--evalue must be ..."
"""

from __future__ import annotations

import contextlib
import errno
import math
import numbers
import os
import shlex
from pathlib import Path

from phylocl.errors import InputError

__all__ = ["is_whole", "is_real", "whole", "flag", "positive_int", "positive_real", "existing_path", "usable_path",
           "option", "setting", "command_line_names", "on_command_line"]

# the options of the `phylocl` commands whose names are not the keyword's own (`--filter-pvalue`: filter_pvalue)
_OPTIONS = {"k": "-k", "out_format": "--format", "overlap": "--window-overlap"}
_command_line = False  # True while phylocl.cli.main runs a command; a module flag, not a ContextVar: messages made
# in the command's worker threads (which start with an empty context) name its options too


def is_whole(value) -> bool:
    """Whether ``value`` is a Python or NumPy integer (not a bool, nor NumPy's)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)  # np.bool_ is not Integral


def is_real(value) -> bool:
    """Whether ``value`` is a Python or NumPy real number (int or float; not a bool, nor NumPy's)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)  # np.bool_ is not Real


def whole(name: str, value) -> int:
    """``value`` as an int (:func:`is_whole`); ``ValueError`` naming ``name`` otherwise."""
    if not is_whole(value):
        raise ValueError(f"{name} must be a whole number, got {type(value).__name__} {value!r}")
    return int(value)


def flag(name: str, value) -> bool:
    """``value`` as a bool: ``True``/``False`` (or NumPy's, or the ints 0 and 1); ``TypeError`` naming ``name`` for
    anything else, e.g. the string ``"no"``, which ``bool()`` would read as true."""
    numpy_bool = type(value).__module__ == "numpy" and type(value).__name__ in ("bool_", "bool")  # no NumPy import
    if isinstance(value, bool) or numpy_bool or (is_whole(value) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{option(name)} must be True or False, got {value!r}")


def positive_int(name: str, value, *, optional: bool = False) -> int | None:
    """``value`` as an int >= 1 (:func:`is_whole`), or ``None`` where ``optional``; ``ValueError`` naming ``name``
    otherwise."""
    if optional and value is None:
        return None
    if not is_whole(value) or value < 1:
        raise ValueError(f"{name} must be an int >= 1{' or None' if optional else ''}, got {value!r}")
    return int(value)


def positive_real(name: str, value) -> float:
    """``value`` as a float: a finite real number > 0 (:func:`is_real`); ``ValueError`` naming ``name`` otherwise."""
    if not is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def existing_path(value, *, file: bool = False) -> bool:
    """Whether ``value`` (a str or an ``os.PathLike``; ``~`` expanded) names an existing path (a file, with
    ``file``). False for anything else, including a string that cannot be a path at all: ``Path.exists`` raises
    ``OSError`` (name too long) for a string with a part over 255 bytes, such as a sequence."""
    if not isinstance(value, (str, os.PathLike)):
        return False
    try:
        path = Path(value).expanduser()
        return path.is_file() if file else path.exists()
    except (OSError, ValueError):
        return False


def usable_path(name: str, value) -> Path:
    """``value`` (a str or an ``os.PathLike``; ``~`` expanded) as a ``Path``, once a file could have that name:
    :class:`~phylocl.errors.InputError` naming the path, and the argument ``name`` for a Python caller (a command's
    one line starts with the path, as its other path errors do), where the system refuses the name as too long (a
    part over the file system's limit, 255 bytes on most; the whole over ``PATH_MAX``): each use raised a bare
    ``OSError`` ("File name too long"). Whether the path exists is the caller's to check (its own message)."""
    path = Path(value).expanduser()
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            longest = max((len(os.fsencode(p)) for p in path.parts), default=0)
            detail = (f"one part of it is {longest:,} bytes long, more than a file name may hold (255 on most file "
                      "systems)" if longest > 255 else f"the path is {len(os.fsencode(path)):,} bytes long, more "
                      "than this system allows")
            where = "" if _command_line else f"{name}: "  # the command's message starts with the path, as others
            raise InputError(f"{where}file name too long: {detail}", path=value) from None
    except ValueError:  # a NUL byte: left to the caller's own check (no such file)
        pass
    return path


def option(name: str) -> str:
    """The argument ``name`` (a Python keyword: ``filter_pvalue``) as a message names it: the keyword itself, or
    the ``phylocl`` command's option (``--filter-pvalue``; ``k``: ``-k``, ``out_format``: ``--format``) inside
    :func:`command_line_names`."""
    if not _command_line:
        return name
    return _OPTIONS.get(name, "--" + name.replace("_", "-"))


def setting(name: str, value) -> str:
    """The argument ``name`` given ``value``, as a message suggests it: ``threads=1`` / ``out_format='tsv'``, or
    inside :func:`command_line_names` ``--threads 1`` / ``--format tsv`` (quoted as a shell takes it: ``--format
    '6 qseqid sseqid'``); a bool option of the command line is its flag alone (``setting("align", False)``:
    ``--no-align``)."""
    if not _command_line:
        return f"{name}={value!r}"
    if isinstance(value, bool):
        return option(name) if value else f"--no-{name.replace('_', '-')}"
    return f"{option(name)} {shlex.quote(str(value))}"  # --format '6 qseqid sseqid' as a shell takes it


def on_command_line() -> bool:
    """Whether messages are for a ``phylocl`` command's user (inside :func:`command_line_names`)."""
    return _command_line


@contextlib.contextmanager
def command_line_names():
    """Inside the block, :func:`option` and :func:`setting` name the command line's options (``phylocl.cli.main``
    runs each command in one)."""
    global _command_line
    previous, _command_line = _command_line, True
    try:
        yield
    finally:
        _command_line = previous

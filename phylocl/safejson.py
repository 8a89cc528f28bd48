"""Reading JSON that a user (or a damaged file) hands us: bounded size and nesting, a mapping expected.

``json.loads`` recurses once per nesting level and raises ``RecursionError`` (a traceback, not a message) on a
file of ``[[[[...`` a few thousand deep; a ``null`` or a list where a mapping belongs fails later with an
``AttributeError``. :func:`parse_json_object` checks both first and raises :class:`~phylocl.errors.InputError`,
one line naming the file::

    meta = read_json_object(path / "meta.json")          # dict, or InputError
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from phylocl.errors import InputError, os_error_message

__all__ = ["MAX_DEPTH", "MAX_BYTES", "parse_json_object", "read_json_object", "value_depth"]

MAX_DEPTH = 64  # phylocl's own files nest 3-4 levels deep
MAX_BYTES = 64 << 20  # the largest metadata file phylocl reads (a model record, meta.json, config.json)

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[^\[\]{}]+")


def _depth(text: str) -> int:
    """Deepest bracket nesting of JSON ``text`` (brackets inside strings do not count)."""
    depth = deepest = 0
    for ch in _BRACKETS.sub("", _STRINGS.sub("", text)):
        depth += 1 if ch in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def parse_json_object(text: str, *, what: str, path: str | Path | None = None) -> dict:
    """``text`` parsed as a JSON object (a ``dict``).

    Raises :class:`~phylocl.errors.InputError` (``path: what: ...``) when ``text`` is longer than
    :data:`MAX_BYTES`, nests deeper than :data:`MAX_DEPTH`, is not JSON, or is JSON but not an object.
    """
    if len(text) > MAX_BYTES:
        raise InputError(f"{what} is {len(text):,} characters long, more than the {MAX_BYTES:,} phylocl reads "
                         "(damaged?)", path=path)
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise InputError(f"{what} nests {depth} levels deep, more than the {MAX_DEPTH} phylocl reads (damaged?)",
                         path=path)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise InputError(f"{what} is not valid JSON ({' '.join(str(err).split())})", path=path) from None
    if not isinstance(value, dict):
        raise InputError(f"{what} must be a JSON object, got {type(value).__name__ if value is not None else 'null'}",
                         path=path)
    return value


def read_json_object(path: str | Path, *, what: str | None = None) -> dict:
    """The JSON object in file ``path`` (see :func:`parse_json_object`); unreadable files are one line too. The
    messages read ``path: the file is not valid JSON (...)`` unless ``what`` names the contents."""
    path = Path(path)
    what = what or "the file"  # the message starts with the path: not "x.json: x.json is ..."
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(f"{what} is {size:,} bytes, more than the {MAX_BYTES:,} phylocl reads (damaged?)",
                             path=path)
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot read: {os_error_message(err)}", path=path) from None
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text (damaged?)", path=path) from None
    return parse_json_object(text, what=what, path=path)


def value_depth(value) -> int:
    """Deepest nesting of lists/dicts in ``value`` (a parsed YAML or JSON document), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, (list, tuple)):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:  # deeper is refused anyway: stop walking
                stack.extend((v, depth + 1) for v in item)
    return deepest

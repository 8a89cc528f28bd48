"""The machinery behind every phylocl config: YAML in, typed nested dataclasses out, ``--set key=value`` overrides.

YAML is read once at the boundary (:func:`load_yaml`, with ``extends:``); everything after that is dataclasses
whose fields are type checked on construction (:func:`from_dict`). Overrides use dotted keys, values are parsed
as YAML scalars (``--set optim.lr=3e-4``, ``--set data.paths=[a,b]``, ``--set cache.token_budget=null``). A bad
key or value raises :class:`ConfigError` carrying the dotted key, which :func:`locate` turns into the line of the
YAML file that set it (or says it came from ``--set``).

The schemas themselves live with the layer that consumes them (imports point one way): the training config
(:mod:`phylocl.config`), its ``data:`` section (:mod:`phylocl.data.dataconfig`, the datamodule's argument), the
encoder architecture (:mod:`phylocl.models.encoder_config`, stored in model files) and the ``compare:`` grid
(:mod:`phylocl.workflows.compare_config`).

Why this rather than pydantic or jsonargparse: docs/architecture.md (configs).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from phylocl.errors import InputError, os_error_message
from phylocl.safejson import MAX_DEPTH, value_depth

__all__ = ["from_dict", "to_dict", "apply_overrides", "parse_override", "load_yaml", "ConfigError", "key_lines",
           "locate"]


class ConfigError(ValueError):
    """A bad config key or value; ``key`` is the dotted key (``optim.lr``) or section (``eval``) it concerns."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


MAX_INT = 2**53  # the largest integer a config takes (in size): exact as a float, far below 64-bit overflow


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's floats (``1e-3`` is a number, not the string YAML 1.1 makes it, as
    ``--set optim.lr=1e-3`` already read it) and with a key repeated in one mapping refused: PyYAML keeps the last
    one, so a second ``data:`` section silently dropped the first."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} appears twice (first on line {seen[key] + 1})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


_ConfigLoader.add_implicit_resolver(  # YAML 1.2's float: digits with an exponent and no dot are a float too
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*|[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def yaml_text(text: str):
    """``text`` read as YAML the way config files are (:class:`_ConfigLoader`)."""
    loader = _ConfigLoader(text)  # what yaml.load does, with a SafeLoader subclass: data only
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_yaml(path: str | Path, *, _seen: tuple = ()) -> dict:
    """Read a YAML mapping; missing/unparsable files raise :class:`InputError` naming the path and line.

    A top-level ``extends: other.yaml`` (relative to this file) reads ``other.yaml`` first and merges this file's
    sections over it, key by key, so a config only states what differs from its base.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder; --config takes a YAML file", path=path)
    if not path.is_file():
        raise InputError("config file not found", path=path)
    try:
        data = yaml_text(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise InputError(f"not a text (UTF-8) file: byte 0x{err.object[err.start]:02x} at offset {err.start}",
                         path=path) from None
    except OSError as err:
        raise InputError(f"cannot read: {os_error_message(err)}", path=path) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        raise InputError(f"not valid YAML ({getattr(err, 'problem', err)})", path=path, line=line) from None
    except RecursionError:  # PyYAML recurses once per nesting level
        raise InputError(f"the YAML nests deeper than the {MAX_DEPTH} levels a config may have", path=path) from None
    if value_depth(data) > MAX_DEPTH:
        raise InputError(f"the YAML nests deeper than the {MAX_DEPTH} levels a config may have", path=path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("config must be a YAML mapping (key: value)", path=path)
    base = data.pop("extends", None)
    if base is not None:
        if not isinstance(base, str):
            raise InputError("extends must be the path of another YAML config", path=path)
        base_path = (path.parent / base).resolve()
        if base_path in _seen:
            raise InputError(f"extends forms a cycle through {base_path}", path=path)
        data = _merge(load_yaml(base_path, _seen=_seen + (path.resolve(),)), data)
    return data


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (coercing ints to floats, lists to tuples, dicts to dataclasses)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Union or (hasattr(types, "UnionType") and isinstance(tp, types.UnionType)):
        return _coerce_union(value, tp, key)
    if origin is Literal:
        if value not in get_args(tp):
            raise ValueError(f"{key}: {value!r} is not one of {list(get_args(tp))}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected a mapping, got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if origin in (list, tuple) or tp in (list, tuple):
        return _coerce_sequence(value, tp, key)
    if origin is dict or tp is dict:
        if value is None:  # `key: null` / --set key=null: an empty mapping
            return {}
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected a mapping, got {value!r}")
        inner = get_args(tp)[1] if len(get_args(tp)) == 2 else Any  # e.g. data.holdout's lists of families
        return {k: _coerce(v, inner, f"{key}.{k}") for k, v in value.items()}
    return _coerce_scalar(value, tp, key)


def _coerce_union(value: Any, tp: Any, key: str) -> Any:
    """``value`` as the first member of the union ``tp`` that accepts it (``None`` when the union allows it)."""
    args = get_args(tp)
    if value is None and type(None) in args:
        return None
    members = [arg for arg in args if arg is not type(None)]
    if len(members) == 1:  # Optional[X]: X's own message, naming null too (was "2.5 is not a valid Optional")
        try:
            return _coerce(value, members[0], key)
        except ValueError as err:
            lead, text = f"{key}: expected ", str(err)
            if not text.startswith(lead) or ", got " not in text:
                raise  # e.g. an integer out of range: that is the problem
            what, got = text[len(lead):].split(", got ", 1)
            raise ValueError(f"{lead}{what} or null, got {got}") from None
    for arg in members:
        try:
            return _coerce(value, arg, key)
        except ValueError:
            continue
    names = " or ".join("null" if a is type(None) else _type_name(a) for a in args)
    raise ValueError(f"{key}: {value!r} is not a valid {names}")


def _coerce_sequence(value: Any, tp: Any, key: str) -> Any:
    """A list or tuple annotation: items checked one by one; fixed-length tuples check their length."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{key}: expected a list, got {value!r}")
    origin, args = get_origin(tp), get_args(tp)
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(args) != len(value):
            raise ValueError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    inner = args[0] if args else Any
    items = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    return tuple(items) if origin is tuple or tp is tuple else items


def _coerce_scalar(value: Any, tp: Any, key: str) -> Any:
    """``bool`` / ``float`` / ``int`` / ``str`` / ``Path`` annotations; any other annotation passes through."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{key}: expected true/false, got {value!r}")
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key}: expected a number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond the float range
            number = math.inf
        if not math.isfinite(number):  # YAML's .nan / .inf: slipped past `x <= 0` checks into tracebacks or NaN runs
            shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:20]}... ({len(repr(value))} digits)"
            raise ValueError(f"{key}: expected a finite number, got {shown}")
        return number
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ValueError(f"{key}: expected an integer, got {value!r}")
        if abs(value) > MAX_INT:  # larger values overflow the 64-bit integers of NumPy and torch (a traceback there)
            raise ValueError(f"{key}: {value} is out of range (at most {MAX_INT:,} in size)")
        return value
    if tp is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ValueError(f"{key}: expected a string, got {value!r}")
        return value
    if tp is Path:
        return Path(value)
    return value


def from_dict(cls: type, data: dict, *, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a (nested) dict, checking keys and types. Raises ``ValueError`` naming the key."""
    if not isinstance(data, dict):
        raise ValueError(f"{prefix.rstrip('.') or 'config'}: expected a mapping")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(prefix + u for u in unknown)}; valid: "
                          f"{', '.join(prefix + f for f in fields)}", key=prefix + unknown[0])
    kwargs = {}
    for name, value in data.items():
        try:
            kwargs[name] = _coerce(value, hints[name], prefix + name)
        except ConfigError:
            raise
        except ValueError as err:
            raise ConfigError(str(err), key=prefix + name) from None
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:  # a dataclass's own checks (__post_init__): the section is located
        raise ConfigError(str(err), key=prefix.rstrip(".")) from None


def to_dict(obj: Any) -> Any:
    """Plain-YAML-safe dict of a (nested) dataclass (tuples become lists, paths strings)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"optim.lr=3e-4"`` → ``(["optim", "lr"], 0.0003)``; the value is parsed as YAML."""
    if "=" not in item:
        raise ValueError(f"--set expects key=value, got {item!r}")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ValueError(f"--set expects key=value, got {item!r}")
    try:
        value = yaml_text(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    except RecursionError:  # PyYAML recurses once per nesting level
        value = None
        too_deep = True
    else:
        too_deep = value_depth(value) > MAX_DEPTH
    if too_deep:
        raise ValueError(f"--set {key}: the value nests deeper than the {MAX_DEPTH} levels a config may have")
    # YAML reads 3e-4 as a string (no dot); accept it as a number.
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value.lower() for c in ".e") and not value.isalpha() else value
        except ValueError:
            pass
    return key.split("."), value


def apply_overrides(data: dict, overrides: typing.Iterable[str]) -> dict:
    """Return a copy of the nested dict ``data`` with each ``key=value`` override applied."""
    import copy

    out = copy.deepcopy(data)
    for item in overrides:
        path, value = parse_override(item)
        node = out
        for part in path[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ValueError(f"--set {item}: {part!r} is not a section (the config gives it the value {nxt!r})")
            node = nxt
        node[path[-1]] = value
    return out


def key_lines(path: str | Path) -> dict[str, int]:
    """``{dotted key: 1-based line}`` of every mapping key written in the YAML file ``path`` (not its ``extends``)."""
    try:
        root = yaml.compose(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    out: dict[str, int] = {}

    def walk(node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    out[prefix + str(key.value)] = key.start_mark.line + 1
                    walk(value, f"{prefix}{key.value}.")

    walk(root, "")
    return out


def locate(err: ConfigError, path: str | Path | None, overrides: typing.Iterable[str] = ()) -> dict:
    """``InputError`` keyword arguments placing ``err``: ``{"path", "line"}`` of the YAML line that set its key (or
    the nearest enclosing section); ``{}`` when an override set it or there is no file."""
    key = err.key.split("[", 1)[0]
    overridden = {item.split("=", 1)[0].strip() for item in overrides}
    if path is None or any(key == o or key.startswith(o + ".") or o.startswith(key + ".") for o in overridden):
        return {}
    lines = key_lines(path)
    parts = key.split(".")
    while parts and ".".join(parts) not in lines:
        parts.pop()
    return {"path": path, "line": lines[".".join(parts)]} if parts else {"path": path}

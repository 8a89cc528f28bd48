"""Named encoder configurations and encoder files.

Every ``phylocl/models/model_configs/<name>.yaml`` is one registered model (file stem = name); the registry is a
plain dict ``{name: values}`` read once. Any config key can be overridden when building::

    phylocl.list_models()                                    # ["amlp-small", "gmlp-base", ...]
    enc = phylocl.build_encoder("gmlp-small", alphabet="dna", max_len=128)
    enc.save("run/encoder.pt"); enc2 = phylocl.load_encoder("run")   # file, or a directory holding encoder.pt
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch
import yaml

from phylocl.errors import InputError, os_error_message
from phylocl.models.encoder import ENCODER_FILE, SequenceEncoder
from phylocl.models.encoder_config import EncoderConfig

__all__ = ["CONFIG_DIR", "list_models", "get_config", "build_encoder", "describe_model", "load_encoder"]

CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"


@functools.lru_cache(maxsize=None)
def _registry() -> dict[str, dict[str, Any]]:
    """``{name: raw values}`` from the YAML files (each checked to build a valid config)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        values = yaml.safe_load(path.read_text())
        if not isinstance(values, dict):
            raise InputError("a model config must be a YAML mapping", path=path)
        try:
            EncoderConfig.from_dict({**values, "name": path.stem})
        except ValueError as err:
            raise InputError(str(err), path=path) from None
        out[path.stem] = values
    return out


def list_models() -> list[str]:
    """Sorted names of the registered configurations."""
    return sorted(_registry())


def get_config(name: str, **overrides: Any) -> EncoderConfig:
    """The validated config of model ``name`` with ``overrides`` applied.

    Raises :class:`~phylocl.errors.InputError` (a ``ValueError``) for an unknown name, an unknown override key
    (the message lists the valid keys) or an invalid value.
    """
    registry = _registry()
    if name not in registry:
        raise InputError(f"unknown model {name!r}; registered models: {', '.join(sorted(registry))}")
    try:
        return EncoderConfig.from_dict({**registry[name], "name": name, **overrides})
    except ValueError as err:
        raise InputError(f"model {name}: {err}") from None


def build_encoder(name: str, **overrides: Any) -> SequenceEncoder:
    """A freshly initialised encoder of registered config ``name`` (in train mode), e.g. ``dropout=0.0``."""
    return SequenceEncoder(config=get_config(name, **overrides))


def describe_model(name: str, **overrides: Any) -> dict[str, Any]:
    """The resolved config of ``name`` as a plain dict plus ``"parameters"`` (count; built on the meta device)."""
    config = get_config(name, **overrides)
    with torch.device("meta"):
        n = SequenceEncoder(config=config).num_parameters()
    return {**config.to_dict(), "parameters": n}


def load_encoder(path: str | Path, *, map_location: str | torch.device = "cpu") -> SequenceEncoder:
    """Rebuild an encoder written by :meth:`SequenceEncoder.save` (returned in eval mode).

    ``path`` is the file or a directory holding ``encoder.pt``. A missing, unreadable or inconsistent file
    raises :class:`~phylocl.errors.InputError` naming the path.
    """
    path = Path(path)
    if path.is_dir():
        path = path / ENCODER_FILE
    if not path.is_file():
        raise InputError("encoder file not found", path=path)
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError as err:
        raise InputError(f"cannot read: {os_error_message(err)}", path=path) from None
    if not (head.startswith(b"PK") or head.startswith(b"\x80")):  # torch.save writes a zip (or, long ago, a pickle)
        what = "a FASTA file" if head.startswith(b">") else "empty" if not head else "not a torch file"
        raise InputError(f"not a phylocl encoder file ({what}); a model is an encoder.pt written by `phylocl "
                         "train`, its run folder, kmer:K or a shipped model name", path=path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for truncated/foreign files, with pages of advice
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise InputError(f"not a readable encoder file, truncated or damaged ({type(err).__name__}: {first})",
                         path=path) from None
    if not isinstance(payload, dict) or not {"config", "state_dict"} <= set(payload):
        raise InputError("not a phylocl encoder file (expected a dict with 'config' and 'state_dict')", path=path)
    try:
        encoder = SequenceEncoder(config=EncoderConfig.from_dict(dict(payload["config"])))
        encoder.load_state_dict(payload["state_dict"])
    except (ValueError, TypeError, RuntimeError) as err:
        raise InputError(f"encoder file does not match its config: {err}", path=path) from None
    return encoder.to(map_location).eval()

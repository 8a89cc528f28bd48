"""Named encoder configurations (the registry of architectures; loading trained encoders is
:mod:`phylocl.models.persistence`).

Every ``phylocl/models/model_configs/<name>.yaml`` is one registered model (file stem = name); the registry is a
plain dict ``{name: values}`` read once. Any config key can be overridden when building::

    phylocl.list_models()                                    # ["amlp-small", "gmlp-base", ...]
    enc = phylocl.build_encoder("gmlp-small", alphabet="dna", max_len=128)
    enc.save_pretrained("my-model"); enc2 = phylocl.load_encoder("my-model")   # see phylocl.models.persistence
"""

from __future__ import annotations

import difflib
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from phylocl.arguments import existing_path
from phylocl.errors import InputError
from phylocl.models.backbone_config import with_family_names
from phylocl.models.encoder_config import EncoderConfig
from phylocl.models.model_files import shipped_models
from phylocl.models.size import check_fits

if TYPE_CHECKING:
    from phylocl.models.encoder import SequenceEncoder

# torch is imported only by the functions that build a model, so `phylocl models` starts without it

__all__ = ["CONFIG_DIR", "list_models", "get_config", "build_encoder", "describe_model", "load_encoder"]  # noqa: F822 (load_encoder: module __getattr__)

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
    """Sorted names of the registered configurations (the YAML file stems; each is validated when it is used,
    so listing them imports no torch)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def get_config(name: str, **overrides: Any) -> EncoderConfig:
    """The validated config of model ``name`` with ``overrides`` applied.

    Raises :class:`~phylocl.errors.InputError` (a ``ValueError``) for an unknown name, an unknown override key
    (the message lists the valid keys) or an invalid value, ``TypeError`` for a ``name`` that is not a str.
    NumPy scalars in ``overrides`` count as the Python numbers they hold.
    """
    if not isinstance(name, str):
        hint = " (a trained model's folder or file is read by phylocl.load_encoder)" \
            if isinstance(name, os.PathLike) else ""
        raise TypeError(f"name must be the str name of a registered model (phylocl.list_models()), got "
                        f"{type(name).__name__} {name!r}{hint}")
    registry = _registry()
    if name not in registry:
        raise InputError(f"unknown model {name!r}; registered models: {', '.join(sorted(registry))}"
                         f"{_name_hint(name, registry)}")
    overrides = {k: v.item() if isinstance(v, np.generic) else v for k, v in overrides.items()}  # NumPy scalars
    try:
        values = {**registry[name], "name": name, **with_family_names(registry[name], overrides)}
        return EncoderConfig.from_dict(values)
    except ValueError as err:
        raise InputError(f"model {name}: {err}") from None


def _name_hint(name: str, registry: dict) -> str:
    """``"; did you mean ...?"`` for a near miss (case, spaces, typos), or where ``name`` is a path or a shipped
    trained model, the function that reads it; ``""`` otherwise."""
    if name.strip().lower() in registry:
        return f"; did you mean {name.strip().lower()!r}?"
    if name in shipped_models() or existing_path(name):
        return f"; {name!r} is a trained model or a path: phylocl.load_encoder({name!r}) reads it"
    close = difflib.get_close_matches(name.strip().lower(), list(registry), n=2, cutoff=0.75)
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""


def build_encoder(name: str, **overrides: Any) -> "SequenceEncoder":
    """A freshly initialised (untrained) encoder of registered config ``name`` (in train mode, on the CPU; move it
    with ``.to(device)``), e.g. ``build_encoder("gmlp-small", dropout=0.0)``.

    ``overrides`` are config keys (:class:`~phylocl.models.encoder_config.EncoderConfig`; the registry name itself
    is not one of them). Raises ``TypeError`` when ``name`` is not a str and
    :class:`~phylocl.errors.InputError` (a ``ValueError``) for an unknown name (listing the registered ones and
    the nearest), an unknown override key (listing the valid ones) or a value of the wrong type or range; trained
    models (a folder, a file, a shipped name such as ``"default-protein"``) are read by
    :func:`phylocl.load_encoder` instead."""
    config = get_config(name, **overrides)
    check_fits(config)
    from phylocl.models.encoder import SequenceEncoder

    return SequenceEncoder(config=config)


def describe_model(name: str, **overrides: Any) -> dict[str, Any]:
    """The resolved config of ``name`` as a plain dict of its backbone family's keys (what its ``config.json``
    holds: :func:`~phylocl.models.backbone_config.stored_dict`; a k-mer model lists no attention keys) plus
    ``"parameters"`` (count; built on the meta device)."""
    import torch

    from phylocl.models.backbone_config import stored_dict
    from phylocl.models.encoder import SequenceEncoder

    config = get_config(name, **overrides)
    with torch.device("meta"):
        n = SequenceEncoder(config=config).num_parameters()
    return {**stored_dict(config), "parameters": n}


def __getattr__(name: str):
    if name == "load_encoder":  # re-exported for older imports (lazily: it needs torch)
        from phylocl.models.persistence import load_encoder

        return load_encoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

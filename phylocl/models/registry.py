"""Named encoder configurations (the registry of architectures; loading trained encoders is
:mod:`phylocl.models.persistence`).

Every ``phylocl/models/model_configs/<name>.yaml`` is one registered model (file stem = name); the registry is a
plain dict ``{name: values}`` read once. Any config key can be overridden when building::

    phylocl.list_models()                                    # ["amlp-small", "gmlp-base", ...]
    enc = phylocl.build_encoder("gmlp-small", alphabet="dna", max_len=128)
    enc.save_pretrained("my-model"); enc2 = phylocl.load_encoder("my-model")   # see phylocl.models.persistence
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from phylocl.errors import InputError
from phylocl.models.backbone_config import with_family_names
from phylocl.models.encoder_config import EncoderConfig
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
    (the message lists the valid keys) or an invalid value.
    """
    registry = _registry()
    if name not in registry:
        raise InputError(f"unknown model {name!r}; registered models: {', '.join(sorted(registry))}")
    try:
        values = {**registry[name], "name": name, **with_family_names(registry[name], overrides)}
        return EncoderConfig.from_dict(values)
    except ValueError as err:
        raise InputError(f"model {name}: {err}") from None


def build_encoder(name: str, **overrides: Any) -> "SequenceEncoder":
    """A freshly initialised encoder of registered config ``name`` (in train mode), e.g. ``dropout=0.0``."""
    config = get_config(name, **overrides)
    check_fits(config)
    from phylocl.models.encoder import SequenceEncoder

    return SequenceEncoder(config=config)


def describe_model(name: str, **overrides: Any) -> dict[str, Any]:
    """The resolved config of ``name`` as a plain dict plus ``"parameters"`` (count; built on the meta device)."""
    import torch

    from phylocl.models.encoder import SequenceEncoder

    config = get_config(name, **overrides)
    with torch.device("meta"):
        n = SequenceEncoder(config=config).num_parameters()
    return {**config.to_dict(), "parameters": n}


def __getattr__(name: str):
    if name == "load_encoder":  # re-exported for older imports (lazily: it needs torch)
        from phylocl.models.persistence import load_encoder

        return load_encoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

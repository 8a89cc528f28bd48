"""phylocl.models: sequence encoders (gMLP/aMLP, rotary transformer), their configs and the named registry.

See ``docs/encoders.md``. The usual entry points are re-exported at the package root: ``phylocl.build_encoder``,
``phylocl.list_models``, ``phylocl.load_encoder``.
"""

import importlib

_LAZY = {  # imported on first use: listing shipped models or the NumPy profile path need no torch
    "SequenceEncoder": "phylocl.models.encoder",
    "EncoderConfig": "phylocl.models.encoder_config",
    "load_encoder": "phylocl.models.persistence",
    "shipped_models": "phylocl.models.persistence",
    "build_encoder": "phylocl.models.registry",
    "describe_model": "phylocl.models.registry",
    "get_config": "phylocl.models.registry",
    "list_models": "phylocl.models.registry",
}

__all__ = ["SequenceEncoder", "EncoderConfig", "build_encoder", "describe_model", "get_config", "list_models",
           "load_encoder", "shipped_models"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'phylocl.models' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)

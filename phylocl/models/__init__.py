"""phylocl.models: sequence encoders (gMLP/aMLP, rotary transformer), their configs and the named registry.

See ``docs/encoders.md``. The usual entry points are re-exported at the package root: ``phylocl.build_encoder``,
``phylocl.list_models``, ``phylocl.load_encoder``.
"""

from phylocl.models.encoder import SequenceEncoder
from phylocl.models.encoder_config import EncoderConfig
from phylocl.models.persistence import load_encoder, shipped_models
from phylocl.models.registry import build_encoder, describe_model, get_config, list_models

__all__ = ["SequenceEncoder", "EncoderConfig", "build_encoder", "describe_model", "get_config", "list_models",
           "load_encoder", "shipped_models"]

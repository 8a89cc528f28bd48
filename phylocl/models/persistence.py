"""Loading and saving encoders by name or path: :func:`load_encoder` (``phylocl.load_encoder``) and
:func:`save_pretrained`.

The file formats and the lookup of shipped names are :mod:`phylocl.models.model_files`; building the encoder
from a stored config and weights is :meth:`SequenceEncoder.from_parts`. This module joins the two (it sits above
the encoder; the encoder never imports it). Importing it does not import torch: listing the shipped models needs
none, loading one does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from phylocl.models import model_files
from phylocl.models.model_files import CONFIG_FILE, ENCODER_FILE, MODEL_TYPE, WEIGHTS_FILE, read_model

if TYPE_CHECKING:
    import torch

    from phylocl.models.encoder import SequenceEncoder

__all__ = ["load_encoder", "save_pretrained", "shipped_models", "PRETRAINED_DIR", "CONFIG_FILE", "WEIGHTS_FILE",
           "MODEL_TYPE", "ENCODER_FILE"]

if TYPE_CHECKING:  # torch is imported where an encoder is built: listing shipped models needs none
    import torch

    from phylocl.models.encoder import SequenceEncoder

PRETRAINED_DIR = model_files.PRETRAINED_DIR  # where shipped names are looked up (tests point it elsewhere)


def shipped_models() -> list[str]:
    """Names of the pretrained encoders shipped in ``phylocl/pretrained/`` (its model folders), sorted."""
    return model_files.shipped_models(PRETRAINED_DIR)


def save_pretrained(encoder: "SequenceEncoder", directory: str | Path) -> Path:
    """Write ``encoder`` as a model folder (``config.json`` + ``model.safetensors``, each atomically); returns it.
    Same as ``encoder.save_pretrained(directory)``."""
    return encoder.save_pretrained(directory)


def load_encoder(source: str | Path, *, map_location: "str | torch.device" = "cpu",
                 device: "str | torch.device | None" = None) -> "SequenceEncoder":
    """The encoder named by ``source`` (see :mod:`phylocl.models.model_files`), on ``map_location``, in eval mode.

    Args:
        source: a shipped model name (:func:`shipped_models`), a model folder (``save_pretrained``; a
            ``phylocl train`` run folder is one), or an encoder file (``.pt``, or a folder's ``model.safetensors``
            or ``config.json``); a str or a ``Path`` (``~`` is expanded).
        map_location: where the weights go: ``"cpu"`` (default), ``"cuda"``, ``"cuda:1"``, a ``torch.device``.
            Weights saved on a GPU load anywhere (they are stored as CPU tensors and moved here).
        device: the same as ``map_location`` (the name ``SequenceEncoder.embed`` uses); give one of the two.

    Raises :class:`~phylocl.errors.InputError` (a ``ValueError``) naming the path for a missing, damaged or
    mismatched model or a ``source`` too long for a file name (the message lists the shipped names; a registry name is pointed to
    :func:`phylocl.build_encoder`), ``ValueError`` for a device that is malformed or absent here, ``TypeError``
    for a ``source`` that is not a str or a path.

    Example::

        enc = phylocl.load_encoder("default-protein")     # shipped
        enc.save_pretrained("my-model"); enc = phylocl.load_encoder("my-model")
        enc = phylocl.load_encoder("runs/r1")             # a `phylocl train` folder (a model folder)
    """
    from phylocl.models.encoder import SequenceEncoder, check_device, check_source, resolve_location  # torch

    check_source(source)
    map_location = check_device(resolve_location(map_location, device), "device" if device is not None else
                                "map_location")
    config, state, path = read_model(source, pretrained_dir=PRETRAINED_DIR)
    return SequenceEncoder.from_parts(config, state, path=path, map_location=map_location)

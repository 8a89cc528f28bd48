"""Saving and loading encoders: model folders, legacy ``.pt`` files and the shipped models, by name.

A **model folder** (the standard format, written by :meth:`SequenceEncoder.save_pretrained`) holds two files::

    DIR/config.json          the EncoderConfig keys plus "model_type": "phylocl-encoder" and "phylocl_version"
    DIR/model.safetensors    the weights (safetensors: plain tensors, nothing is unpickled on load)

A **legacy file** (``enc.save("x.pt")``; ``phylocl train`` runs before issue 26: ``encoder.pt``) is one dict
``{"config", "state_dict", "phylocl_version"}`` (``torch.save``), read with ``torch.load(weights_only=True)``.

:func:`load_encoder` takes any of: a shipped model name (``"default-protein"``, a folder under
``phylocl/pretrained/``), a model folder, a folder holding ``encoder.pt``, or a file (``.pt``,
``model.safetensors`` or ``config.json`` of a model folder). Anything else is an
:class:`~phylocl.errors.InputError` naming the path and listing the shipped names.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from phylocl.atomic import atomic_path
from phylocl.errors import InputError, os_error_message
from phylocl.models.encoder import ENCODER_FILE, SequenceEncoder
from phylocl.models.encoder_config import EncoderConfig

__all__ = ["load_encoder", "save_pretrained", "shipped_models", "PRETRAINED_DIR", "CONFIG_FILE", "WEIGHTS_FILE",
           "MODEL_TYPE"]

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
MODEL_TYPE = "phylocl-encoder"
_META_KEYS = ("model_type", "phylocl_version")


def shipped_models() -> list[str]:
    """Names of the pretrained encoders shipped in ``phylocl/pretrained/`` (its model folders), sorted."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / CONFIG_FILE).is_file())


def save_pretrained(encoder: SequenceEncoder, directory: str | Path) -> Path:
    """Write ``encoder`` as a model folder (``config.json`` + ``model.safetensors``, each atomically); returns it.

    Weights are written first, so a folder whose ``config.json`` exists is complete.
    """
    from safetensors.torch import save_file

    from phylocl import __version__

    directory = Path(directory)
    if directory.is_file():
        raise InputError("exists and is a file; a model is saved as a folder", path=directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in encoder.state_dict().items()}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "model_type": MODEL_TYPE})
    config = {"model_type": MODEL_TYPE, **encoder.config.to_dict(), "phylocl_version": __version__}
    with atomic_path(directory / CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps(config, indent=2) + "\n")
    return directory


def _build(config: dict, state: dict, path: Path, map_location) -> SequenceEncoder:
    try:
        encoder = SequenceEncoder(config=EncoderConfig.from_dict(config))
        encoder.load_state_dict(state)
    except (ValueError, TypeError, RuntimeError) as err:
        raise InputError(f"encoder file does not match its config: {err}", path=path) from None
    return encoder.to(map_location).eval()


def _load_folder(directory: Path, map_location) -> SequenceEncoder:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise InputError(f"model folder without {WEIGHTS_FILE}", path=directory)
    try:
        config = json.loads(config_path.read_text())
    except OSError as err:
        raise InputError(f"cannot read: {os_error_message(err)}", path=config_path) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"not a readable model config ({err})", path=config_path) from None
    if not isinstance(config, dict) or config.get("model_type") != MODEL_TYPE:
        raise InputError(f"not a phylocl model config (expected \"model_type\": \"{MODEL_TYPE}\")", path=config_path)
    try:
        state = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise InputError(f"not a readable safetensors file, truncated or damaged ({first})", path=weights_path) from None
    config = {k: v for k, v in config.items() if k not in _META_KEYS}
    return _build(config, state, weights_path, map_location)


def _load_pt(path: Path, map_location) -> SequenceEncoder:
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError as err:
        raise InputError(f"cannot read: {os_error_message(err)}", path=path) from None
    if not (head.startswith(b"PK") or head.startswith(b"\x80")):  # torch.save writes a zip (or, long ago, a pickle)
        what = "a FASTA file" if head.startswith(b">") else "empty" if not head else "not a torch file"
        raise InputError(f"not a phylocl encoder file ({what}); a model is a model folder (save_pretrained, "
                         "as `phylocl train` writes), a legacy encoder.pt, kmer:K or a shipped model name",
                         path=path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated/foreign files, with pages of advice
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise InputError(f"not a readable encoder file, truncated or damaged ({type(err).__name__}: {first})",
                         path=path) from None
    if not isinstance(payload, dict) or not {"config", "state_dict"} <= set(payload):
        raise InputError("not a phylocl encoder file (expected a dict with 'config' and 'state_dict')", path=path)
    return _build(dict(payload["config"]), payload["state_dict"], path, map_location)


def _not_found(source: str, path: Path) -> InputError:
    shipped = shipped_models()
    listing = f"shipped models: {', '.join(shipped)}" if shipped else "no pretrained model is shipped"
    return InputError(f"encoder not found: {source!r} is not an encoder file, a model folder "
                      f"({CONFIG_FILE} + {WEIGHTS_FILE}), a folder holding {ENCODER_FILE}, or a shipped model name "
                      f"({listing})", path=path)


def load_encoder(source: str | Path, *, map_location: str | torch.device = "cpu") -> SequenceEncoder:
    """The encoder named by ``source`` (see the module docstring), on ``map_location``, in eval mode.

    Example::

        enc = phylocl.load_encoder("default-protein")     # shipped
        enc.save_pretrained("my-model"); enc = phylocl.load_encoder("my-model")
        enc = phylocl.load_encoder("runs/r1")             # a `phylocl train` folder (a model folder)
    """
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / CONFIG_FILE).is_file():
            return _load_folder(path, map_location)
        if (path / ENCODER_FILE).is_file():
            return _load_pt(path / ENCODER_FILE, map_location)
        raise _not_found(str(source), path)
    if path.is_file():
        if path.name in (CONFIG_FILE, WEIGHTS_FILE):
            return _load_folder(path.parent, map_location)
        return _load_pt(path, map_location)
    if isinstance(source, str) and source in shipped_models():
        return _load_folder(PRETRAINED_DIR / source, map_location)
    raise _not_found(str(source), path)

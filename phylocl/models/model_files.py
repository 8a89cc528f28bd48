"""Model files on disk: model folders, legacy ``.pt`` files and the shipped folders, read and written as plain
``(config dict, state dict)`` pairs. Building an encoder from them is :mod:`phylocl.models.encoder`'s job, so this
module sits below it and imports no model class.

A **model folder** (the standard format, written by :meth:`SequenceEncoder.save_pretrained`) holds two files::

    DIR/config.json          the backbone family's config keys (phylocl.models.backbone_config; files written
                             by earlier versions hold every EncoderConfig key, and load the same) plus "model_type":
                             "phylocl-encoder" and "phylocl_version"
    DIR/model.safetensors    the weights (safetensors: plain tensors, nothing is unpickled on load)

Weights are written first, so a folder whose ``config.json`` exists is complete. A folder may also hold
``search.json``, ``{"windows": W}``: the window width ``phylocl index --fasta``, ``search --db`` and ``evaluate``
use with the model unless told otherwise (:func:`default_windows`; the shipped ``default-protein``: 200). It is not
part of the model: fingerprints hash the config and the weights only.

A **legacy file** (``enc.save("x.pt")``; the ``encoder.pt`` of earlier ``phylocl train`` runs) is one ``torch.save`` dict
``{"config", "state_dict", "phylocl_version"}``, read with ``torch.load(weights_only=True)``.

:func:`read_model` takes any of: a shipped model name (``"default-protein"``, a folder under
``phylocl/pretrained/``), a model folder, a folder holding ``encoder.pt``, or a file (``.pt``,
``model.safetensors`` or ``config.json`` of a model folder). Anything else is an
:class:`~phylocl.errors.InputError` naming the path and listing the shipped names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from phylocl.atomic import atomic_path
from phylocl.errors import InputError, os_error_message
from phylocl.safejson import read_json_object

__all__ = ["read_model", "write_model_folder", "shipped_models", "default_windows", "PRETRAINED_DIR", "CONFIG_FILE",
           "WEIGHTS_FILE", "MODEL_TYPE", "ENCODER_FILE", "SEARCH_FILE"]

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
ENCODER_FILE = "encoder.pt"  # legacy file name inside a run folder
MODEL_TYPE = "phylocl-encoder"
SEARCH_FILE = "search.json"  # optional: {"windows": W}, the model's default window width for sparse search
_META_KEYS = ("model_type", "phylocl_version")
_ARCHITECTURES = Path(__file__).resolve().parent / "model_configs"  # the registry's files (phylocl.models.registry)


def default_windows(folder: str | Path | None) -> int | None:
    """The window width model folder ``folder`` names in ``search.json`` (``{"windows": W}``; ``0``: none), or
    ``None`` (no such file). A file that is not such an object is an :class:`InputError` naming it."""
    if folder is None or not (Path(folder) / SEARCH_FILE).is_file():
        return None
    path = Path(folder) / SEARCH_FILE
    try:
        width = json.loads(path.read_text()).get("windows")
    except (OSError, ValueError, AttributeError) as err:
        raise InputError(f"cannot read the model's search defaults ({err})", path=path) from None
    if isinstance(width, bool) or not isinstance(width, int) or width < 0:
        raise InputError(f"\"windows\" must be a number of residues >= 0, got {width!r}", path=path)
    return width or None


def shipped_models(pretrained_dir: Path | None = None) -> list[str]:
    """Names of the model folders in ``pretrained_dir`` (default: the shipped ``phylocl/pretrained/``), sorted."""
    folder = PRETRAINED_DIR if pretrained_dir is None else Path(pretrained_dir)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / CONFIG_FILE).is_file())


def _sorted_metadata(data: bytes) -> bytes:
    """``data`` (a safetensors file) with its header's ``__metadata__`` keys in sorted order: safetensors writes them
    from a hash map, in an order that changes from run to run, so the same weights gave different files. Same length
    (the same keys and values); returned unchanged if its header cannot be rewritten so."""
    n = int.from_bytes(data[:8], "little")
    head = json.loads(data[8:8 + n])
    if "__metadata__" not in head:
        return data
    head["__metadata__"] = dict(sorted(head["__metadata__"].items()))
    text = json.dumps(head, separators=(",", ":")).encode()
    if len(text) > n:
        return data
    return data[:8] + text + b" " * (n - len(text)) + data[8 + n:]


def write_model_folder(directory: str | Path, *, config: dict[str, Any], state: dict) -> Path:
    """Write ``config`` (JSON-safe values) and ``state`` (name -> CPU tensor) as a model folder; returns it."""
    from safetensors.torch import save

    from phylocl import __version__

    directory = Path(directory)
    if directory.is_file():
        raise InputError("exists and is a file; a model is saved as a folder", path=directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        tmp.write_bytes(_sorted_metadata(save(state, metadata={"format": "pt", "model_type": MODEL_TYPE})))
    with atomic_path(directory / CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps({"model_type": MODEL_TYPE, **config, "phylocl_version": __version__}, indent=2)
                       + "\n")
    return directory


def _read_folder(directory: Path) -> tuple[dict, dict, Path]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise InputError(f"model folder without {WEIGHTS_FILE}", path=directory)
    try:
        config = read_json_object(config_path, what="the file")  # bounded size and nesting, a mapping
    except InputError as err:
        raise InputError(f"not a readable model config ({err.message})", path=config_path) from None
    if config.get("model_type") != MODEL_TYPE:
        raise InputError(f"not a phylocl model config (expected \"model_type\": \"{MODEL_TYPE}\")", path=config_path)
    try:
        state = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise InputError(f"not a readable safetensors file, truncated or damaged ({first})", path=weights_path) from None
    return {k: v for k, v in config.items() if k not in _META_KEYS}, state, weights_path


def _read_pt(path: Path) -> tuple[dict, dict, Path]:
    import torch

    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError as err:
        raise InputError(f"cannot read: {os_error_message(err)}", path=path) from None
    if not (head.startswith(b"PK") or head.startswith(b"\x80")):  # torch.save writes a zip (or, long ago, a pickle)
        what = "a FASTA file" if head.startswith(b">") else "empty" if not head else "not a torch file"
        raise InputError(f"not a phylocl encoder file ({what}); a model is a model folder (save_pretrained), a "
                         "legacy encoder.pt, a `phylocl train` run folder, kmer:K or a shipped model name",
                         path=path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated/foreign files, with pages of advice
        first = (str(err).strip().splitlines() or [""])[0][:160]
        raise InputError(f"not a readable encoder file, truncated or damaged ({type(err).__name__}: {first})",
                         path=path) from None
    if isinstance(payload, dict) and "state_dict" in payload and "global_step" in payload:
        run = path.parent.parent if path.parent.name == "checkpoints" else None
        where = f"load the run folder {run} once it has exported its model" if run else "load its run folder"
        raise InputError(f"a phylocl train (Lightning) checkpoint, not an encoder file: {where}, or finish the run "
                         "with phylocl train --resume", path=path)
    if not isinstance(payload, dict) or not {"config", "state_dict"} <= set(payload):
        raise InputError("not a phylocl encoder file (expected a dict with 'config' and 'state_dict')", path=path)
    return dict(payload["config"]), payload["state_dict"], path


def _not_found(source: str, path: Path, pretrained_dir: Path | None) -> InputError:
    shipped = shipped_models(pretrained_dir)
    listing = f"shipped models: {', '.join(shipped)}" if shipped else "no pretrained model is shipped"
    if isinstance(source, str) and (_ARCHITECTURES / f"{source}.yaml").is_file():  # a registry name (untrained)
        return InputError(f"{source!r} is a registered architecture, not a trained model: "
                          f"phylocl.build_encoder({source!r}) builds it untrained (then train it); load_encoder "
                          f"takes a trained model ({listing}, a model folder or an encoder file)")
    return InputError(f"encoder not found: {source!r} is not an encoder file, a model folder "
                      f"({CONFIG_FILE} + {WEIGHTS_FILE}), a folder holding {ENCODER_FILE}, or a shipped model name "
                      f"({listing})", path=path)


def read_model(source: str | Path, *, pretrained_dir: Path | None = None) -> tuple[dict, dict, Path]:
    """``(config, state_dict, path)`` of the model named by ``source`` (see the module docstring): the config as
    stored (family or flat keys, no file metadata), CPU tensors, and the file they came from (for messages).
    ``pretrained_dir`` is where shipped names are looked up (default ``phylocl/pretrained/``)."""
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / CONFIG_FILE).is_file():
            return _read_folder(path)
        if (path / ENCODER_FILE).is_file():
            return _read_pt(path / ENCODER_FILE)
        if any((path / "checkpoints").glob("*.ckpt")):  # a run folder of phylocl train before its export
            raise InputError("a phylocl train run that has not exported its model (checkpoints/ but no "
                             f"{CONFIG_FILE} + {WEIGHTS_FILE}): it is still training or was stopped; finish it with "
                             f"phylocl train --resume --out {path}", path=path)
        raise _not_found(str(source), path, pretrained_dir)
    if path.is_file():
        if path.name in (CONFIG_FILE, WEIGHTS_FILE):
            return _read_folder(path.parent)
        return _read_pt(path)
    if isinstance(source, str) and source in shipped_models(pretrained_dir):
        return _read_folder((PRETRAINED_DIR if pretrained_dir is None else Path(pretrained_dir)) / source)
    raise _not_found(str(source), path, pretrained_dir)

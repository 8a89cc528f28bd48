"""Embedding files: one ``.npz`` per set of sequence embeddings, written atomically.

Format (a NumPy ``.npz`` zip archive, members stored uncompressed, readable with ``numpy.load``)::

    embeddings  (N, D) float32   one row per sequence
    ids         (N,)   str       sequence ids, unique
    labels      (N,)   str       family labels (only when the sequences were labelled)
    model       ()     str       JSON object describing the embedder: at least
                                 fingerprint, name, dim (== D) and alphabet
    format      ()     str       "phylocl-embeddings/1"

Members carry a fixed time stamp, so the same rows, ids, labels and model give a byte-identical file (a resumed
``phylocl embed`` equals an uninterrupted one). Files without ``format`` (the first releases) read as version 1;
a newer major version is refused with a message rather than misread.

:func:`save_embeddings` writes arrays already in memory; :class:`EmbeddingWriter` streams chunks (as
``phylocl embed`` produces them) and only creates the file once every chunk is in.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from phylocl.atomic import atomic_path, sweep_stale, temp_prefix
from phylocl.errors import InputError, os_error_message
from phylocl.retrieval.npz_mmap import PickledMember, check_npy_sizes, memmap_member, row_blocks
from phylocl.safejson import parse_json_object

__all__ = ["EmbeddingSet", "EmbeddingWriter", "save_embeddings", "load_embeddings", "check_model_record", "FORMAT"]

FORMAT = "phylocl-embeddings/1"
_log = logging.getLogger(__name__)
MODEL_KEYS = ("fingerprint", "name", "dim", "alphabet")
_EPOCH = (1980, 1, 1, 0, 0, 0)  # time stamp of every archive member (the earliest a zip file can hold)
_CHECK_BYTES = 64 << 20  # bytes of rows checked for NaN per step (a memory-mapped file is never materialised)
_COPY_BLOCK = 16 << 20  # bytes copied per step when streaming the spool into the archive


@dataclass
class EmbeddingSet:
    """Embeddings with their sequence ids, optional labels and the model that made them.

    Attributes:
        embeddings: ``(N, D)`` float32.
        ids: ``N`` unique sequence ids.
        labels: ``N`` family labels, or ``None``.
        model: embedder description (``fingerprint``, ``name``, ``dim``, ``alphabet``, ...).
    """

    embeddings: np.ndarray
    ids: list[str]
    labels: list[str] | None
    model: dict

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def check_model_record(model: dict) -> None:
    """Raise ``ValueError`` when the fields phylocl acts on in an embedder description have the wrong type:
    ``dim`` (and a k-mer model's ``k``, ``sketch_dim``) positive integers, ``name``/``fingerprint`` strings."""
    for key in ("dim", "k"):
        if key in model and not _positive_int(model[key]):
            raise ValueError(f"{key} must be a positive integer, got {model[key]!r}")
    if model.get("kind") == "kmer" and not _positive_int(model.get("k")):
        raise ValueError(f"a k-mer model needs an integer k >= 1, got {model.get('k')!r}")
    if model.get("sketch_dim") is not None and not _positive_int(model["sketch_dim"]):
        raise ValueError(f"sketch_dim must be a positive integer or null, got {model['sketch_dim']!r}")
    for key in ("name", "fingerprint", "alphabet"):
        if key in model and not isinstance(model[key], str):
            raise ValueError(f"{key} must be a string, got {model[key]!r}")


def _check_model(model: dict, dim: int) -> str:
    """Validate the model description against ``dim``; return it as JSON."""
    if not isinstance(model, dict):
        raise ValueError(f"model must be a dict, got {type(model).__name__}")
    missing = [k for k in MODEL_KEYS if k not in model]
    if missing:
        raise ValueError(f"model description lacks {missing}; it needs {list(MODEL_KEYS)}")
    check_model_record(model)
    if int(model["dim"]) != dim:
        raise ValueError(f"model dim {model['dim']} does not match the embeddings' width {dim}")
    try:
        return json.dumps(model, sort_keys=True)
    except TypeError as err:
        raise ValueError(f"model description must be JSON-serialisable: {err}") from None


def _check_chunk(embeddings, ids: Sequence[str], labels: Sequence[str] | None, dim: int | None) -> np.ndarray:
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (N, D), got shape {x.shape}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"embeddings have width {x.shape[1]}, expected {dim}")
    if len(ids) != x.shape[0]:
        raise ValueError(f"got {len(ids)} ids for {x.shape[0]} embeddings")
    if labels is not None and len(labels) != x.shape[0]:
        raise ValueError(f"got {len(labels)} labels for {x.shape[0]} embeddings")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or infinite values")
    return x


def _write_archive(path: Path, write_embeddings: Callable, ids: list[str], labels: list[str] | None,
                   model_json: str) -> None:
    """Write the ``.npz`` members to ``path``; ``write_embeddings(fileobj)`` writes ``embeddings.npy``."""
    members = {"ids": np.array(ids, dtype=str), "model": np.array(model_json), "format": np.array(FORMAT)}
    if labels is not None:
        members["labels"] = np.array(labels, dtype=str)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open(_member("embeddings.npy"), "w", force_zip64=True) as f:
            write_embeddings(f)
        for name, arr in members.items():
            with zf.open(_member(f"{name}.npy"), "w", force_zip64=True) as f:
                np.lib.format.write_array(f, arr, allow_pickle=False)


def _member(name: str) -> zipfile.ZipInfo:
    """A stored archive member with a fixed time stamp, so the same rows always give the same bytes."""
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def save_embeddings(path: str | Path, embeddings, ids: Sequence[str], labels: Sequence[str] | None = None, *,
                    model: dict) -> Path:
    """Write embeddings, ids, labels and the model description to ``path`` (``.npz``) atomically.

    Args:
        embeddings: ``(N, D)`` float array (stored as float32).
        ids: ``N`` unique sequence ids.
        labels: ``N`` family labels, or ``None``.
        model: at least ``fingerprint``, ``name``, ``dim`` (must equal ``D``) and ``alphabet``.

    Returns the path written. Raises ``ValueError`` on inconsistent input.
    """
    x = _check_chunk(embeddings, ids, labels, None)
    if x.shape[0] == 0:
        raise ValueError("no embeddings to save")
    ids = [str(i) for i in ids]
    if len(set(ids)) != len(ids):
        raise ValueError("sequence ids must be unique")
    model_json = _check_model(model, x.shape[1])
    path = Path(path)
    with atomic_path(path) as tmp:
        _write_archive(tmp, lambda f: np.lib.format.write_array(f, x), ids,
                       None if labels is None else [str(s) for s in labels], model_json)
    return path


class EmbeddingWriter:
    """Stream embeddings into an ``.npz`` file chunk by chunk; the file appears only when complete.

    Chunks go to a temporary spool file next to ``path`` as raw float32 rows; :meth:`close` copies the spool into
    the archive in 16 MiB blocks and moves it into place atomically. Memory held: the ids and labels (Python
    strings) plus one 16 MiB copy buffer; the embedding rows themselves live on disk, so peak disk use is about
    twice the embeddings' size while closing. On error (or :meth:`abort`) the spool is deleted and ``path`` is
    left untouched.

    Example::

        with EmbeddingWriter("emb.npz", model=info, with_labels=True) as w:
            for x, ids, labels in chunks:   # x: (B, D)
                w.append(x, ids, labels)
    """

    def __init__(self, path: str | Path, *, model: dict, with_labels: bool = False) -> None:
        self.path = Path(path)
        self.dim = int(model.get("dim", -1)) if isinstance(model, dict) else -1
        if self.dim < 1:
            raise ValueError("model must be a dict with a positive 'dim'")
        self._model_json = _check_model(model, self.dim)
        self.with_labels = bool(with_labels)
        self.ids: list[str] = []
        self.labels: list[str] | None = [] if with_labels else None
        self._seen: set[str] = set()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            sweep_stale(self.path)  # spools of a killed earlier run into the same output
            fd, name = tempfile.mkstemp(prefix=temp_prefix(self.path), suffix=".spool", dir=self.path.parent)
        except OSError as err:
            raise InputError(f"cannot write: {os_error_message(err)}", path=self.path) from None
        self._spool_path = Path(name)
        self._spool = os.fdopen(fd, "wb")
        self.closed = False

    def __len__(self) -> int:
        return len(self.ids)

    def append(self, embeddings, ids: Sequence[str], labels: Sequence[str] | None = None) -> None:
        """Add ``B`` rows: ``embeddings`` ``(B, D)``, their ids and (iff ``with_labels``) their labels."""
        if self.closed:
            raise ValueError("writer is closed")
        if (labels is None) == self.with_labels:
            raise ValueError("labels must be given for every chunk iff with_labels=True")
        x = _check_chunk(embeddings, ids, labels, self.dim)
        new = [str(i) for i in ids]
        if len(set(new)) != len(new) or not self._seen.isdisjoint(new):
            seen, dup = set(self._seen), []
            for i in new:
                if i in seen:
                    dup.append(i)
                seen.add(i)
            raise ValueError(f"duplicate sequence id(s): {dup[:5]}")
        self._spool.write(x.tobytes())
        self._seen.update(new)
        self.ids.extend(new)
        if labels is not None:
            self.labels.extend(str(s) for s in labels)

    def close(self) -> Path:
        """Finalise: write ``path`` atomically and delete the spool. Returns ``path``."""
        if self.closed:
            raise ValueError("writer is closed")
        try:
            if not self.ids:
                raise ValueError("no embeddings were appended")
            self._spool.close()
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False,
                      "shape": (len(self.ids), self.dim)}

            def write_embeddings(f) -> None:
                np.lib.format.write_array_header_1_0(f, header)
                with open(self._spool_path, "rb") as src:
                    while block := src.read(_COPY_BLOCK):
                        f.write(block)

            with atomic_path(self.path) as tmp:
                _write_archive(tmp, write_embeddings, self.ids, self.labels, self._model_json)
        finally:
            self.abort()
        return self.path

    def abort(self) -> None:
        """Drop everything written so far; ``path`` is not created."""
        self.closed = True
        self._spool.close()
        self._spool_path.unlink(missing_ok=True)

    def __enter__(self) -> "EmbeddingWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _check_archive_magic(path: Path) -> None:
    """An .npz is a zip archive: name what the file is instead (a bare .npy array, text) when it is not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as err:
        raise InputError(f"cannot read: {os_error_message(err)}", path=path) from None
    if head.startswith(b"PK"):
        return
    if head.startswith(b"\x93NUMPY"):
        raise InputError("is a bare .npy array, not an embeddings file; write one with `phylocl embed` (or "
                         "phylocl.retrieval.save_embeddings with ids and a model description)", path=path)
    what = "empty" if not head else "not an .npz archive (text or another format)"
    raise InputError(f"{what}; expected an embeddings file written by `phylocl embed`", path=path)


def load_embeddings(path: str | Path, *, mmap: bool = False) -> EmbeddingSet:
    """Read an embeddings file written by :func:`save_embeddings` / :class:`EmbeddingWriter`.

    ``mmap=True``: the rows stay on disk as a read-only ``(N, D)`` float32 ``np.memmap``
    (:func:`~phylocl.retrieval.npz_mmap.memmap_member`), so only the ids, labels and the rows being used take memory;
    a file whose rows cannot be mapped (compressed by another tool) is read into memory.

    Raises :class:`~phylocl.errors.InputError` when the file is missing, not an ``.npz`` archive, or lacks or
    contradicts the expected members.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such embeddings file" if not path.exists() else "not a file", path=path)
    _check_archive_magic(path)
    try:
        check_npy_sizes(path)
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            missing = [k for k in ("embeddings", "ids", "model") if k not in names]
            if missing:
                raise InputError(f"not a phylocl embeddings file: missing {missing}", path=path)
            if "format" in names and str(npz["format"]) != FORMAT:
                raise InputError(f"embeddings format {str(npz['format'])!r} is not the {FORMAT!r} this phylocl "
                                 "reads (written by another version? re-run phylocl embed)", path=path)
            x = _mapped_rows(path) if mmap else None
            unmapped = mmap and x is None
            x = npz["embeddings"] if x is None else x
            ids = npz["ids"].tolist()
            labels = npz["labels"].tolist() if "labels" in names else None
            model_json = str(npz["model"])
    except InputError:
        raise
    except PickledMember as err:
        raise InputError(str(err), path=path) from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError, zlib.error) as err:
        raise InputError(f"cannot read embeddings (truncated or damaged .npz?): {' '.join(str(err).split())}",
                         path=path) from None
    if x.ndim != 2 or x.dtype.kind != "f":
        raise InputError(f"'embeddings' must be a 2-D float array, got {x.dtype} {x.shape}", path=path)
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(f"no embeddings to read ({x.shape[0]} rows of width {x.shape[1]})", path=path)
    if unmapped and x.dtype == np.float32:  # float32 rows that could not be mapped: a compressed member
        _log.warning("%s: the rows cannot be memory-mapped (a compressed member): reading all of them into memory; "
                     "re-save with phylocl embed (uncompressed float32) to map them", path)
    if not all(np.isfinite(rows).all() for _, rows in row_blocks(x, max_bytes=_CHECK_BYTES)):
        raise InputError("embeddings contain NaN or infinite values", path=path)
    if len(ids) != x.shape[0] or (labels is not None and len(labels) != x.shape[0]):
        raise InputError("ids/labels do not match the number of embeddings", path=path)
    ids = [str(i) for i in ids]
    bad = next((i for i in ids if not i or i.split() != [i]), None)
    if bad is not None:  # a tab or newline in an id would break the hits TSV; FASTA ids never hold whitespace
        raise InputError(f"sequence id {bad!r} is empty or holds whitespace", path=path)
    if labels is not None:
        bad = next((str(f) for f in labels if not str(f) or any(c in str(f) for c in "\t\n\r")), None)
        if bad is not None:
            raise InputError(f"label {bad!r} is empty or holds a tab or line break", path=path)
    if len(set(ids)) != len(ids):
        raise InputError("duplicate sequence ids", path=path)
    try:
        model = parse_json_object(model_json, what="the record")
        _check_model(model, x.shape[1])
    except ValueError as err:
        raise InputError(f"bad model description: {err}", path=path) from None
    if not (isinstance(x, np.memmap) and x.dtype == np.float32 and x.flags.c_contiguous):
        x = np.ascontiguousarray(x, dtype=np.float32)
    return EmbeddingSet(embeddings=x, ids=ids,
                        labels=None if labels is None else [str(s) for s in labels], model=model)


def _mapped_rows(path: Path) -> np.ndarray | None:
    try:
        x = memmap_member(path, "embeddings.npy")
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        return None
    return x if isinstance(x, np.memmap) and x.dtype == np.float32 else None

"""Checks of index bundles on disk: a damaged bundle is refused in one line, never a crash or a wrong answer.

- **Checksums**: every file a build writes is listed with its SHA-256 in ``checksums.json``
  (:func:`write_checksums`, called last inside the build's temporary folder). :func:`verify_checksums` compares
  them: files up to :data:`VERIFY_AT_LOAD_BYTES` at every load (cheap), every file with ``phylocl index --verify``
  (:func:`~phylocl.retrieval.index_io.verify_bundle`). Bundles of earlier versions have no ``checksums.json``:
  structure checks only.
- **Structure of a sparse bundle**, at every load (:func:`check_sparse_arrays`, cost ``O(D + N r)``): dtypes and
  shapes, ``ptr`` starting at 0, non-decreasing and ending at ``nnz``, ``dense``/``basis`` shapes and finite.
- **Posting lists as a query reads them** (:func:`checked_lists`, cost proportional to what the query reads
  anyway): row ids in ``0..N-1`` (an id out of range made the sparse product write out of bounds: a segmentation
  fault) and finite values (so no score is NaN). :func:`scan_postings` checks all of them (``--verify``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from phylocl.atomic import atomic_path
from phylocl.errors import InputError

__all__ = ["CHECKSUMS_FILE", "VERIFY_AT_LOAD_BYTES", "write_checksums", "verify_checksums", "check_sparse_arrays",
           "checked_lists", "verify_at_load", "scan_postings", "damaged"]

CHECKSUMS_FILE = "checksums.json"
CHECKSUMS_FORMAT = "phylocl-checksums/1"
VERIFY_AT_LOAD_BYTES = 16 << 20  # files up to this size are verified at every load (~0.03 s each)
_READ = 8 << 20  # bytes hashed per read
_SCAN = 1 << 22  # posting-list entries scanned per step by scan_postings


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_READ):
            h.update(block)
    return h.hexdigest()


def write_checksums(folder: str | Path) -> dict:
    """Write ``folder/checksums.json``: the SHA-256 and size of every other file in ``folder``; returns the record."""
    folder = Path(folder)
    files = {p.name: {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in sorted(folder.iterdir())
             if p.is_file() and p.name != CHECKSUMS_FILE}
    record = {"format": CHECKSUMS_FORMAT, "files": files}
    with atomic_path(folder / CHECKSUMS_FILE) as tmp:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return record


def damaged(message: str, path: Path) -> InputError:
    return InputError(f"damaged index: {message}; rebuild it with `phylocl index`", path=path)


def verify_checksums(folder: str | Path, *, max_bytes: int | None = None) -> int | None:
    """Compare the files of ``folder`` with its ``checksums.json`` (only those up to ``max_bytes`` when given).

    Returns how many files were hashed, ``None`` when the bundle has no checksums (an earlier phylocl built it).
    Raises :class:`InputError` naming the first file that is missing, has another size or another hash.
    """
    folder = Path(folder)
    path = folder / CHECKSUMS_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        files = {str(k): (str(v["sha256"]), int(v["bytes"])) for k, v in record["files"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
        raise damaged(f"{CHECKSUMS_FILE} is unreadable ({' '.join(str(err).split())[:80]})", folder) from None
    hashed = 0
    for name, (digest, size) in sorted(files.items()):
        file = folder / name
        if "/" in name or not file.is_file():
            raise damaged(f"{name} is missing", folder)
        actual = file.stat().st_size
        if actual != size:
            raise damaged(f"{name} holds {actual} bytes, {size} when the index was built", folder)
        if max_bytes is not None and size > max_bytes:
            continue
        if _sha256(file) != digest:
            raise damaged(f"{name} does not match the checksum recorded when the index was built", folder)
        hashed += 1
    return hashed


def verify_at_load(folder: str | Path) -> int | None:
    """The load-time part of :func:`verify_checksums`: files up to :data:`VERIFY_AT_LOAD_BYTES`."""
    return verify_checksums(folder, max_bytes=VERIFY_AT_LOAD_BYTES)


def _finite(arr: np.ndarray, name: str, path: Path) -> None:
    flat = arr.reshape(-1)
    for lo in range(0, len(flat), _SCAN):
        if not np.isfinite(flat[lo:lo + _SCAN]).all():
            raise damaged(f"{name} holds values that are not finite (NaN or inf)", path)


def check_sparse_arrays(path: str | Path, *, ptr, rows, values, dense, basis, ntotal: int, dim: int,
                        nnz: int | None = None, rank: int | None = None) -> None:
    """The structure checks of a sparse bundle made at every load (see the module docstring); ``nnz`` and ``rank``:
    what ``meta.json`` says, when it says it."""
    path = Path(path)
    for name, arr, kinds in (("ptr.npy", ptr, "i"), ("rows.npy", rows, "i"), ("values.npy", values, "f"),
                             ("dense.npy", dense, "f"), ("basis.npy", basis, "f")):
        if arr.dtype.kind not in kinds:
            raise damaged(f"{name} has dtype {arr.dtype}", path)
    if ptr.ndim != 1 or rows.ndim != 1 or values.ndim != 1 or ptr.dtype != rows.dtype:
        raise damaged(f"ptr.npy {ptr.shape} {ptr.dtype} / rows.npy {rows.shape} {rows.dtype} / values.npy "
                       f"{values.shape} are not posting lists", path)
    if len(ptr) != dim + 1:
        raise damaged(f"ptr.npy holds {len(ptr)} positions for {dim} columns (meta.json)", path)
    if len(rows) != len(values) or (nnz is not None and len(rows) != nnz):
        raise damaged(f"rows.npy ({len(rows)}) and values.npy ({len(values)}) do not hold the "
                       f"{nnz if nnz is not None else len(rows)} entries of meta.json", path)
    p = np.asarray(ptr, dtype=np.int64)
    if p[0] != 0 or p[-1] != len(rows) or (np.diff(p) < 0).any():
        raise damaged(f"ptr.npy is not non-decreasing from 0 to {len(rows)} (the posting lists' bounds)", path)
    r = basis.shape[0] if basis.ndim == 2 else -1
    if basis.ndim != 2 or basis.shape[1] != dim or dense.shape != (ntotal, 2 * r) or (rank is not None and
                                                                                     r != rank):
        raise damaged(f"dense.npy {dense.shape} / basis.npy {basis.shape} do not fit {ntotal} rows of width {dim}"
                       + (f" and rank {rank}" if rank is not None else ""), path)
    _finite(basis, "basis.npy", path)
    _finite(dense, "dense.npy", path)


def checked_lists(lists, index, cols):
    """``lists`` (the CSR slice ``index.postings[cols]``, read for a query) after checking that the row ids of the
    columns not checked before are in ``0..N-1`` and their values finite; raises :class:`InputError` naming the
    damaged file otherwise.

    Each posting list is checked once per loaded index (``index._checked_cols``), so the checks cost one pass over
    the lists of a process's first queries and nothing once their columns were seen. One pass each: the ids as
    unsigned (a negative id reads as a huge one) and the sum of the values (finite exactly when every value is:
    stored values are at most 1 in size, so the sum cannot overflow).
    """
    if not len(lists.indices):
        return lists
    seen = index._checked_cols  # (D,) bool
    fresh = ~seen[cols]  # (n,) columns of this slice not checked yet
    if not fresh.any():
        return lists
    ids, values = lists.indices, lists.data
    if not fresh.all():
        keep = np.repeat(fresh, np.diff(lists.indptr))  # (entries,) entries of the fresh columns
        ids, values = ids[keep], values[keep]
    where = Path(index.source or "sparse index")
    if len(ids):
        unsigned = ids.view(np.uint32 if ids.dtype == np.int32 else np.uint64)
        if int(unsigned.max()) >= index.ntotal:
            bad = ids[unsigned >= index.ntotal][0]
            raise damaged(f"rows.npy holds row id {bad} outside 0..{index.ntotal - 1}", where)
        if not np.isfinite(values.sum()):
            raise damaged("values.npy holds values that are not finite (NaN or inf)", where)
    seen[cols] = True
    return lists


def scan_postings(index, path: str | Path) -> None:
    """Check every posting list of a loaded sparse ``index`` (row ids in range, values finite), in blocks."""
    rows, values = index.postings.indices, index.postings.data
    for lo in range(0, len(rows), _SCAN):
        block = rows[lo:lo + _SCAN]
        if len(block) and (int(block.min()) < 0 or int(block.max()) >= index.ntotal):
            raise damaged(f"rows.npy holds row ids outside 0..{index.ntotal - 1}", Path(path))
        if not np.isfinite(values[lo:lo + _SCAN]).all():
            raise damaged("values.npy holds values that are not finite (NaN or inf)", Path(path))

"""Checks of index bundles on disk: a damaged bundle is refused in one line, never a crash or a wrong answer.

- **Checksums**: every file a build writes is listed with its SHA-256 in ``checksums.json``
  (:func:`write_checksums`, called last inside the build's temporary folder). :func:`verify_checksums` compares
  them: files up to :data:`VERIFY_AT_LOAD_BYTES` at every load (cheap), every file with ``phylocl index --verify``
  (:func:`~phylocl.retrieval.index_io.verify_bundle`). Bundles of earlier versions have no ``checksums.json``:
  structure checks only.
- **Structure of a sparse bundle**, at every load (:func:`check_sparse_arrays`, cost ``O(D + r D)``): dtypes and
  shapes, ``ptr`` starting at 0, non-decreasing and ending at ``nnz``, ``dense``/``basis`` shapes, ``basis`` finite.
- **The rows' low-rank part** (``dense.npy``, ``N x m`` values: 1.1 GB at 10^6 windowed proteins, 0.25 s to scan) is
  checked where a search reads it (:func:`check_low_rank`): a value that is not finite makes every product with its
  row NaN or infinite, so the products are checked instead of the file (at no cost to a small search, which no
  longer scans the whole array before its first query); ``--verify`` scans it whole.
- **Posting lists as a query reads them** (cost proportional to what the query reads anyway): row ids in
  ``0..N-1`` before the lists are scored (:func:`fresh_lists`: an id out of range made the sparse product write
  out of bounds, a segmentation fault), and finite values after (:func:`check_scored`: a value that is not finite
  makes the query's sum for its row NaN or infinite, so no score is NaN). :func:`scan_postings` checks all of them
  and the low-rank part (``--verify``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from phylocl.atomic import atomic_path
from phylocl.errors import InputError

__all__ = ["CHECKSUMS_FILE", "VERIFY_AT_LOAD_BYTES", "write_checksums", "verify_checksums", "check_sparse_arrays",
           "check_scored", "check_low_rank", "fresh_lists", "verify_at_load", "scan_postings", "damaged"]

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
                        nnz: int | None = None, rank: int | None = None, columns: int | None = None) -> None:
    """The structure checks of a sparse bundle made at every load (see the module docstring); ``nnz`` and ``rank``:
    what ``meta.json`` says, when it says it; ``columns``: the low-rank columns ``dense.npy`` holds (``meta.json``'s
    ``dense_columns``; ``None``: all ``2r``)."""
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
    width = 2 * r if columns is None else columns
    if basis.ndim != 2 or basis.shape[1] != dim or dense.shape != (ntotal, width) or (rank is not None and
                                                                                      r != rank):
        raise damaged(f"dense.npy {dense.shape} / basis.npy {basis.shape} do not fit {ntotal} rows of width {dim}"
                       + (f" and rank {rank}" if rank is not None else ""), path)
    _finite(basis, "basis.npy", path)


def fresh_lists(index, cols: np.ndarray) -> np.ndarray:
    """The columns of ``cols`` whose posting lists ``index`` has not checked before, after checking that their row
    ids are in ``0..N-1``; raises :class:`InputError` naming the damaged file otherwise.

    Each list is read where it lies (one pass over its ids as unsigned, where a negative id reads as a huge one; no
    copy: 2-3x less than copying the lists out first). Call :func:`check_scored` once they are scored: that checks
    their values and records them as checked (``index._checked_cols``), so a process pays for the checks of its
    first queries' lists only.
    """
    fresh = cols[~index._checked_cols[cols]]  # (f,)
    if not len(fresh):
        return fresh
    ptr = index.postings.indptr
    ids = np.asarray(index.postings.indices)
    ids = ids.view(np.uint32 if ids.dtype == np.int32 else np.uint64)  # (nnz,) no copy
    n = index.ntotal
    for a, b in zip(ptr[fresh].tolist(), ptr[fresh + 1].tolist()):
        if b > a and int(ids[a:b].max()) >= n:
            bad = ids[a:b][ids[a:b] >= n][0].astype(np.int64 if ids.dtype == np.uint64 else np.int32)
            where = Path(index.source or "sparse index")
            raise damaged(f"rows.npy holds row id {int(bad)} outside 0..{n - 1}", where)
    return fresh


def check_scored(index, fresh: np.ndarray, sums: np.ndarray) -> None:
    """After the lists of :func:`fresh_lists` ``fresh`` were scored into ``sums`` ``(N,)`` (their values times the
    query's weights, summed per row): raise :class:`InputError` if a sum is not finite (a value of those lists is
    NaN or infinite: its product is not finite whatever the weight, and so is every sum it enters), else record the
    lists as checked."""
    if not len(fresh):
        return
    if not np.isfinite(sums).all():
        raise damaged("values.npy holds values that are not finite (NaN or inf)", Path(index.source or "sparse index"))
    index._checked_cols[fresh] = True


def check_low_rank(index, products: np.ndarray) -> None:
    """Raise :class:`InputError` unless every value of ``products`` is finite: the low-rank terms a search computed
    from rows of ``index.dense`` (``u @ dense[rows].T``, any shape). A NaN or infinite coefficient of a row makes
    its product with any query NaN or infinite (``inf * 0`` is NaN), so a damaged ``dense.npy`` never gives a score
    that is not finite, only for the rows a search reads."""
    if not np.isfinite(products).all():
        raise damaged("dense.npy holds values that are not finite (NaN or inf)", Path(index.source or "sparse index"))


def scan_postings(index, path: str | Path) -> None:
    """Check every posting list of a loaded sparse ``index`` (row ids in range, values finite) and its low-rank part
    (``dense``, finite), in blocks."""
    _finite(index.dense, "dense.npy", Path(path))
    rows, values = index.postings.indices, index.postings.data
    for lo in range(0, len(rows), _SCAN):
        block = rows[lo:lo + _SCAN]
        if len(block) and (int(block.min()) < 0 or int(block.max()) >= index.ntotal):
            raise damaged(f"rows.npy holds row ids outside 0..{index.ntotal - 1}", Path(path))
        if not np.isfinite(values[lo:lo + _SCAN]).all():
            raise damaged("values.npy holds values that are not finite (NaN or inf)", Path(path))

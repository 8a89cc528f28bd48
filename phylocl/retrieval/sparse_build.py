"""Write a :class:`~phylocl.retrieval.sparse_index.SparseIndex` bundle from rows streamed in order, in bounded memory.

Rows arrive row-major (one :class:`~phylocl.sparse_rows.SparseRows` block at a time) and the index is column-major
(posting lists), so building is a transposition done on disk:

1. each block's columns, values and row lengths are appended to scratch files inside the bundle's temporary
   folder, and every column's count is accumulated (``np.bincount``);
2. the counts give each posting list's start (``ptr``); the scratch rows are read back in blocks of
   :data:`READ_VALUES` values, sorted by column (stable, so rows stay increasing within a list), and each column's
   run is written at its list's next free position with ``os.pwrite``.

Memory is one block (plus the ids), never the index: writing through a memory map would count every written
page of the 2-7 GB files in the process's resident memory. The folder appears only when complete
(:func:`phylocl.atomic.atomic_dir`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from phylocl.atomic import atomic_dir
from phylocl.retrieval.index_checks import write_checksums
from phylocl.retrieval.bundle import SPARSE_FORMAT
import phylocl.retrieval.sparse_index as sparse_index
from phylocl.retrieval.sparse_index import KIND, SparseIndex, list_bounds, nonzero_columns, row_block_edges
from phylocl.sparse_ops import csr_dense, csr_transpose
from phylocl.sparse_rows import SparseRows

__all__ = ["write_sparse_index", "sparse_index_in_memory", "READ_VALUES", "WINDOWS_KIND"]

WINDOWS_KIND = "sparse-windows"  # a bundle of window rows (phylocl.retrieval.windowed, which imports this module)

READ_VALUES = 1 << 24  # stored values transposed per step in the second pass (16 M: ~200 MB of temporaries)


def _npy(path: Path, dtype, shape: tuple) -> int:
    """Create an ``.npy`` file of ``shape`` (contents left to be written) and return the byte offset of its data."""
    np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).flush()
    with open(path, "rb") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        return f.tell()


def write_sparse_index(path: str | Path, blocks: Iterable[tuple[SparseRows, Sequence[str], Sequence[str] | None]],
                       *, model: dict, finish: Callable[[Path], dict] | None = None,
                       window: dict | None = None) -> dict:
    """Write the bundle of all rows of ``blocks`` (``(rows, ids, labels or None)`` each) at ``path``.

    ``finish(folder)``, when given, is called with the bundle's temporary folder once the rows are written, to add
    members of its own (the database sequences: :mod:`phylocl.retrieval.sequence_store`); the record it returns is
    merged into ``meta.json``. ``window`` (``{"window": W, "stride": S}``): each block's ``rows`` are the window
    rows of its sequences (a :class:`~phylocl.retrieval.windowed.WindowRows`: ``.rows``, ``.owners``, ``.n``) with
    one id and label per *sequence*; the bundle is then of kind ``sparse-windows`` with ``owners.npy`` (window row
    -> sequence) and ``window`` as its ``params`` (:mod:`phylocl.retrieval.windowed`). Returns the ``meta.json``
    record. Raises ``ValueError`` on duplicate ids, on blocks of different widths or bases, on labels given for some
    blocks only, and on zero rows.
    """
    ids: list[str] = []
    labels: list[str] = []
    labelled: set[bool] = set()
    basis = used = None
    n_rows = 0
    with atomic_dir(path) as tmp:
        names = ("cols", "vals", "lens", "dense") + (("owners",) if window is not None else ())
        scratch = {name: open(tmp / f"_{name}.bin", "wb") for name in names}
        try:
            for rows, block_ids, block_labels in blocks:
                if window is not None:  # window rows of len(block_ids) sequences
                    if rows.n != len(block_ids):
                        raise ValueError(f"{len(block_ids)} ids for {rows.n} sequences")
                    scratch["owners"].write((rows.owners + len(ids)).astype(np.int64).tobytes())
                    rows = rows.rows
                if basis is None:
                    basis, dim, counts = rows.basis.astype(np.float32), rows.dim, np.zeros(rows.dim, np.int64)
                if rows.dim != dim or rows.basis.shape != basis.shape:
                    raise ValueError("rows of different widths or low-rank bases in one index")
                if window is None and len(block_ids) != len(rows):
                    raise ValueError(f"{len(block_ids)} ids for {len(rows)} rows")
                n_rows += len(rows)
                scratch["cols"].write(rows.indices.astype(np.int32).tobytes())
                scratch["vals"].write(rows.values.astype(np.float32).tobytes())
                scratch["lens"].write(np.diff(rows.indptr).astype(np.int64).tobytes())
                dense = _dense_part(rows)  # (b, 2r)
                scratch["dense"].write(dense.tobytes())
                used = (dense != 0).any(axis=0) if used is None else used | (dense != 0).any(axis=0)  # (2r,)
                counts += np.bincount(rows.indices, minlength=dim)
                ids += [str(i) for i in block_ids]
                labelled.add(block_labels is not None)
                labels += [str(s) for s in block_labels] if block_labels is not None else []
        finally:
            for f in scratch.values():
                f.close()
        if not ids:
            raise ValueError("cannot index zero rows")
        if len(labelled) > 1:
            raise ValueError("labels were given for some rows only")
        if len(set(ids)) != len(ids):
            raise ValueError("row ids must be unique")
        nnz = int(counts.sum())
        _transpose(tmp, counts, n_rows)
        row_block = _write_blocks(tmp, dim, n_rows)
        kept = _write_dense(tmp, n_rows, 2 * basis.shape[0], used)
        np.save(tmp / "basis.npy", basis)
        if window is not None:
            np.save(tmp / "owners.npy", np.fromfile(tmp / "_owners.bin", dtype=np.int64))  # (W,)
        for name in names:
            (tmp / f"_{name}.bin").unlink()
        rows_file = {"ids": np.array(ids, dtype=str)}
        if labelled == {True}:
            rows_file["labels"] = np.array(labels, dtype=str)
        with open(tmp / "rows.npz", "wb") as f:
            np.savez(f, **rows_file)
        meta = {"format": SPARSE_FORMAT, "kind": KIND, "dim": int(dim), "ntotal": len(ids), "nnz": nnz,
                "rank": int(basis.shape[0]), "dense_columns": kept.tolist(), "params": {}, "model": dict(model)}
        if row_block is not None:  # blocks.npy holds every list's bounds in blocks of this many rows
            meta["row_block"] = row_block
        if window is not None:  # ntotal: sequences; rows: their windows
            meta.update(kind=WINDOWS_KIND, rows=n_rows, params=dict(window))
        if finish is not None:
            meta.update(finish(tmp))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        write_checksums(tmp)  # last: the SHA-256 of every file (phylocl.retrieval.index_checks)
    return meta


def sparse_index_in_memory(rows: SparseRows, *, ids: Sequence[str], labels: Sequence[str] | None = None,
                           model: dict | None = None) -> SparseIndex:
    """A :class:`SparseIndex` over ``rows`` built in memory (``phylocl search --db``; about 3x the rows' size)."""
    if len(ids) != len(rows):
        raise ValueError(f"{len(ids)} ids for {len(rows)} rows")
    ptr, col_rows, values = csr_transpose(rows.indptr, rows.indices, rows.values, rows.dim)  # (D, N): column j's rows,
    # increasing (scipy's transpose routine, without importing scipy.sparse: ~0.08 s of a --db search's start)
    itype = _index_dtype(len(col_rows), len(rows))
    dense = _dense_part(rows)  # (N, 2r)
    kept = nonzero_columns(dense)  # (m,) what a bundle of these rows would keep
    return SparseIndex(ptr=ptr.astype(itype), rows=col_rows.astype(itype), values=values.astype(np.float32),
                       dense=np.ascontiguousarray(dense[:, kept]), basis=rows.basis, ids=ids, labels=labels,
                       model=model, dense_columns=kept)


def _index_dtype(nnz: int, n: int):
    """int32 posting pointers and row numbers while they fit (what scipy uses without copying), else int64."""
    return np.int32 if max(nnz, n) < 2**31 else np.int64


def _dense_part(rows: SparseRows) -> np.ndarray:
    """``[B s, c]`` of each row, ``(b, 2r)`` float32 (empty for ``r = 0``)."""
    if not rows.rank:
        return np.zeros((len(rows), 0), np.float32)
    a = csr_dense(rows.indptr, rows.indices, rows.values.astype(np.float64), rows.basis.T.astype(np.float64))  # (b, r)
    return np.hstack([a, rows.coeffs]).astype(np.float32)


def _write_blocks(tmp: Path, dim: int, n: int) -> int | None:
    """Write ``blocks.npy`` ``(dim, B + 1)`` int64: where each posting list enters each of the ``B`` blocks of
    :data:`~phylocl.retrieval.sparse_index.ROW_BLOCK` rows that a search scatters one at a time (list_bounds), so
    that a search need not find them by binary searches in lists it has never read (~60 us per list at 10^6 rows,
    ~0.1 s of a one-query search there). Returns the block size, ``None`` (no file) for an index of one block."""
    edges = row_block_edges(n)
    if len(edges) <= 2:
        return None
    ptr = np.load(tmp / "ptr.npy", allow_pickle=False)
    rows = np.load(tmp / "rows.npy", mmap_mode="r", allow_pickle=False)
    np.save(tmp / "blocks.npy", list_bounds(ptr, rows, np.arange(dim), edges))  # lists in order: rows read once
    del rows
    return int(sparse_index.ROW_BLOCK)  # read now: what row_block_edges used


def _write_dense(tmp: Path, n: int, width: int, used: np.ndarray) -> np.ndarray:
    """Write ``dense.npy`` ``(n, m)``: the ``m`` columns of the scratch ``_dense.bin`` ``(n, width)`` marked in
    ``used`` (not zero in some row), :data:`READ_VALUES` values at a time; returns those columns ``(m,)``."""
    kept = np.flatnonzero(used).astype(np.int64)  # (m,)
    offset = _npy(tmp / "dense.npy", np.float32, (n, len(kept)))
    step = max(1, READ_VALUES // max(width, 1))  # rows per read
    with open(tmp / "_dense.bin", "rb") as src, open(tmp / "dense.npy", "r+b") as out:
        out.seek(offset)
        for lo in range(0, n if len(kept) else 0, step):
            block = np.fromfile(src, dtype=np.float32, count=min(step, n - lo) * width).reshape(-1, width)
            out.write(np.ascontiguousarray(block[:, kept]).tobytes())
    return kept


def _transpose(tmp: Path, counts: np.ndarray, n: int) -> None:
    """Write ``ptr.npy``, ``rows.npy``, ``values.npy`` (column-major) from the row-major scratch files."""
    nnz = int(counts.sum())
    itype = _index_dtype(nnz, n)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(itype)  # (D + 1,)
    np.save(tmp / "ptr.npy", ptr)
    rows_off, vals_off = _npy(tmp / "rows.npy", itype, (nnz,)), _npy(tmp / "values.npy", np.float32, (nnz,))
    lens = np.fromfile(tmp / "_lens.bin", dtype=np.int64)  # (N,)
    row_end = np.cumsum(lens)  # (N,) end of each row in the scratch order
    free = ptr[:-1].astype(np.int64)  # (D,) next free position of each list
    isize = np.dtype(itype).itemsize
    with open(tmp / "_cols.bin", "rb") as cols_f, open(tmp / "_vals.bin", "rb") as vals_f, \
            open(tmp / "rows.npy", "r+b") as rows_out, open(tmp / "values.npy", "r+b") as vals_out:
        first_row, done = 0, 0
        while done < nnz:
            last_row = max(first_row + 1, int(np.searchsorted(row_end, done + READ_VALUES, side="right")))
            stop = int(row_end[last_row - 1])
            cols = np.fromfile(cols_f, dtype=np.int32, count=stop - done)  # (m,)
            vals = np.fromfile(vals_f, dtype=np.float32, count=stop - done)
            owner = np.repeat(np.arange(first_row, last_row, dtype=itype), lens[first_row:last_row])  # (m,)
            order = np.argsort(cols, kind="stable")
            cols, vals, owner = cols[order], vals[order], owner[order]
            bounds = np.flatnonzero(np.diff(cols)) + 1
            for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(cols)]])):
                c, at = int(cols[lo]), int(free[cols[lo]])
                os.pwrite(rows_out.fileno(), owner[lo:hi].tobytes(), rows_off + at * isize)
                os.pwrite(vals_out.fileno(), vals[lo:hi].tobytes(), vals_off + at * 4)
                free[c] += hi - lo
            first_row, done = last_row, stop

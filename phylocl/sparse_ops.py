"""Compiled sparse products for the search path, without importing ``scipy.sparse``.

A search multiplies sparse rows with dense matrices and scatters posting lists (:mod:`phylocl.retrieval.sparse_index`,
:mod:`phylocl.models.profile_numpy`) through scipy's compiled ``_sparsetools`` routines. Importing ``scipy.sparse``
to reach them costs a one-query search about 0.1 s (scipy 1.17 clones NumPy's namespace for its array API layer,
which imports ``numpy.testing`` and ``numpy.f2py``), a third of its start-up; the extension module itself loads in
under a millisecond. So :func:`sparsetools` loads that module from scipy's installation directly, and falls back to
``from scipy.sparse import _sparsetools`` where the file is not where scipy 1.x keeps it. The routines are the ones
``scipy.sparse`` calls, with the arguments it passes, so the numbers are the same bit for bit (tested against
``scipy.sparse``).

Shapes: a CSR matrix ``(m, k)`` is ``indptr`` ``(m + 1,)``, ``indices`` ``(nnz,)`` (same integer dtype, int32 or
int64), ``data`` ``(nnz,)``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os

import numpy as np

__all__ = ["csr_dense", "csr_from_sorted", "csr_transpose", "sparsetools"]

_MODULE = None


def sparsetools():
    """scipy's compiled ``_sparsetools`` module (``csr_matvecs``, ``csc_matvec``, ...), loaded once."""
    global _MODULE
    if _MODULE is None:
        _MODULE = _load_direct() or _import_scipy()
    return _MODULE


def _load_direct():
    """The extension module from scipy's directory without running ``scipy/sparse/__init__.py``; ``None`` if it
    is not there or does not load."""
    name = "scipy.sparse._sparsetools"
    try:
        spec = importlib.util.find_spec("scipy")
        if spec is None or spec.origin is None:
            return None
        folder = os.path.join(os.path.dirname(spec.origin), "sparse")
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, "_sparsetools" + suffix)
            if os.path.exists(path):
                loader = importlib.machinery.ExtensionFileLoader(name, path)
                module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(name, path,
                                                                                              loader=loader))
                loader.exec_module(module)
                return module if hasattr(module, "csr_matvecs") and hasattr(module, "csc_matvec") else None
    except (ImportError, OSError):  # pragma: no cover - a scipy laid out differently
        return None
    return None  # pragma: no cover


def _import_scipy():  # pragma: no cover - only where the direct load fails
    from scipy.sparse import _sparsetools

    return _sparsetools


def csr_dense(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, dense: np.ndarray) -> np.ndarray:
    """``A @ dense`` for the CSR matrix ``A`` ``(m, k)`` and ``dense`` ``(k, n)``: ``(m, n)`` in the wider of the two
    dtypes, as ``scipy.sparse.csr_matrix((data, indices, indptr), shape=(m, k)) @ dense`` computes it (per row, the
    entries in order, each ``data * dense[col]`` added to a zero row)."""
    dense = np.asarray(dense)
    m, n = len(indptr) - 1, dense.shape[1]
    dtype = np.result_type(data.dtype, dense.dtype)
    out = np.zeros((m, n), dtype=dtype)
    if m == 0 or n == 0 or not len(indices):
        return out
    itype = np.result_type(indptr.dtype, indices.dtype)
    sparsetools().csr_matvecs(m, dense.shape[0], n, np.asarray(indptr, dtype=itype), np.asarray(indices, dtype=itype),
                              np.asarray(data, dtype=dtype), np.ascontiguousarray(dense, dtype=dtype).ravel(),
                              out.ravel())
    return out


def csr_from_sorted(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr, indices, data)`` of entries ``(rows[e], cols[e]) = values[e]`` given in row order, no two at the
    same place: what ``scipy.sparse.csr_matrix((values, (rows, cols)))`` builds from such entries (its conversion
    keeps each row's entries in their order and has nothing to sum). int64 indices."""
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr, np.asarray(cols, dtype=np.int64), np.asarray(values)


def csr_transpose(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, n_cols: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr, indices, data)`` of the transpose ``(k, m)`` of the CSR matrix ``(m, k)`` (``n_cols = k``): what
    ``csr_matrix((data, indices, indptr), shape=(m, k)).T.tocsr()`` gives (each new row's entries in increasing
    column), through the routine it calls; int32 indices while ``nnz`` and ``m`` fit, as scipy chooses."""
    m, nnz = len(indptr) - 1, len(indices)
    itype = np.int32 if max(nnz, m, n_cols) < 2**31 else np.int64
    out_ptr = np.empty(n_cols + 1, dtype=itype)
    out_idx = np.empty(nnz, dtype=itype)
    out_data = np.empty(nnz, dtype=data.dtype)
    sparsetools().csr_tocsc(m, n_cols, np.asarray(indptr, dtype=itype), np.asarray(indices, dtype=itype),
                            np.asarray(data), out_ptr, out_idx, out_data)
    return out_ptr, out_idx, out_data

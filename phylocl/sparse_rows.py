"""SparseRows: embeddings that are a sparse vector plus a low-rank dense term (k-mer profile encoders).

A k-mer profile row is mostly zeros (a 300-residue protein holds ~290 of the 8,000 protein 3-mers), so a database
of such rows is stored and searched as an inverted index (:mod:`phylocl.retrieval.sparse_index`) instead of a
dense matrix. The learned profile encoder adds a composition term that is dense but lies in the span of a few
fixed vectors (its residue embeddings), so row ``b`` of the embedding is, exactly::

    x_b = sparse_b + coeffs[b] @ basis        # (D,) = (D,) + (r,) @ (r, D)

with ``sparse_b`` given in CSR form (``indptr``, ``indices``, ``values``) and ``basis`` shared by every row
(``r = 0`` for plain k-mer profiles). Both parts together are unit vectors like every other embedding here.
The type is numpy-only so the models (which produce it) and retrieval (which indexes it) can both use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SparseRows", "basis_gram", "concat_rows", "matmul_rows"]


SMALL_PRODUCT = 1 << 16  # k x n at most: products with a small right operand go through einsum (matmul_rows)


def matmul_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for ``a`` ``(m, k)`` and ``b`` ``(k, n)``, with each row of the result the same whatever other rows
    ``a`` holds. BLAS does not promise that: NumPy hands a one-row product to the matrix-vector routine, and
    OpenBLAS takes small products (``m k n`` up to about 64^3) through other kernels, both summing in other orders
    (up to 3e-5 in a search score; one float32 step in the low-rank transform of a block of 18 query windows against
    one of 19), so a query's scores would depend on the queries beside it. Small right operands (``k n`` up to
    :data:`SMALL_PRODUCT`, e.g. the ``(r, r)`` gram) go through ``np.einsum``, row by row in one order; large ones
    through BLAS's matrix-matrix routine with two rows at least (its rows do not depend on the others there;
    tested). ``(m, n)``."""
    if a.ndim == 2 and b.ndim == 2 and b.shape[0] * b.shape[1] <= SMALL_PRODUCT:
        return np.einsum("ij,jk->ik", a, b)
    if a.ndim == 2 and a.shape[0] == 1:
        return (np.concatenate([a, a]) @ b)[:1]
    return a @ b


@dataclass(frozen=True)
class SparseRows:
    """``B`` rows of width ``dim``: CSR sparse parts plus ``coeffs @ basis``.

    Attributes:
        indptr: ``(B + 1,)`` int64, row ``b``'s entries are ``indices[indptr[b]:indptr[b + 1]]``.
        indices: ``(nnz,)`` int32 columns, strictly increasing within a row.
        values: ``(nnz,)`` float32.
        coeffs: ``(B, r)`` float32 coefficients of the low-rank term (``r = 0``: none).
        basis: ``(r, dim)`` float32, shared by all rows.
        dim: row width ``D``.
    """

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    coeffs: np.ndarray
    basis: np.ndarray
    dim: int

    def __post_init__(self) -> None:
        n = len(self.indptr) - 1
        if n < 0 or self.indptr[0] != 0 or len(self.indices) != self.indptr[-1] or len(self.values) != len(self.indices):
            raise ValueError("indptr, indices and values do not describe a CSR matrix")
        if self.coeffs.shape[0] != n or self.coeffs.shape[1:] != self.basis.shape[:1]:
            raise ValueError(f"coeffs {self.coeffs.shape} do not match {n} rows and basis {self.basis.shape}")
        if self.basis.shape[1:] != (self.dim,):
            raise ValueError(f"basis {self.basis.shape} is not (r, {self.dim})")
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= self.dim):
            raise ValueError(f"column indices outside 0..{self.dim - 1}")

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def rank(self) -> int:
        return int(self.basis.shape[0])

    def slice(self, lo: int, hi: int) -> SparseRows:
        """Rows ``lo:hi`` (views of the arrays, indptr rebased)."""
        a, b = int(self.indptr[lo]), int(self.indptr[hi])
        return SparseRows(indptr=self.indptr[lo:hi + 1] - a, indices=self.indices[a:b], values=self.values[a:b],
                          coeffs=self.coeffs[lo:hi], basis=self.basis, dim=self.dim)

    def to_dense(self) -> np.ndarray:
        """``(B, dim)`` float32 (for tests and small sets; a database should stay sparse)."""
        out = matmul_rows(self.coeffs.astype(np.float64), self.basis.astype(np.float64))  # (B, D)
        rows = np.repeat(np.arange(len(self)), np.diff(self.indptr))  # (nnz,)
        np.add.at(out, (rows, self.indices), self.values)
        return out.astype(np.float32)


def concat_rows(parts: list[SparseRows]) -> SparseRows:
    """The rows of ``parts`` (same ``dim`` and ``basis``) one after the other."""
    if not parts:
        raise ValueError("nothing to concatenate")
    first = parts[0]
    if any(p.dim != first.dim or p.basis.shape != first.basis.shape for p in parts):
        raise ValueError("rows of different widths or bases")
    offsets = np.cumsum([0] + [int(p.indptr[-1]) for p in parts[:-1]])
    indptr = np.concatenate([[0]] + [p.indptr[1:] + o for p, o in zip(parts, offsets)]).astype(np.int64)
    return SparseRows(indptr=indptr, indices=np.concatenate([p.indices for p in parts]).astype(np.int32),
                      values=np.concatenate([p.values for p in parts]).astype(np.float32),
                      coeffs=np.concatenate([p.coeffs for p in parts]).astype(np.float32), basis=first.basis,
                      dim=first.dim)


def basis_gram(basis: np.ndarray) -> np.ndarray:
    """``basis @ basis.T`` ``(r, r)``, in ``basis``'s dtype, for a ``(r, D)`` basis of a few dense rows and many rows
    with at most one non-zero (the similar-word block's unit rows of the learned profile encoders).

    Only the dense rows go through a matrix product; every entry involving a one-entry row is read off directly,
    which is exact (the other terms of its sum are products with zero). At ``r = 120``, ``D = 24,096``
    (``default-protein``) this is ~10x faster than the full product, which cost a search's start-up ~50 ms twice.
    """
    b = np.asarray(basis)
    count = np.count_nonzero(b, axis=1)  # (r,)
    single = np.flatnonzero(count == 1)
    if len(single) == 0:
        return b @ b.T
    rest = np.flatnonzero(count != 1)
    out = np.zeros((len(b), len(b)), dtype=np.result_type(b.dtype, np.float32))  # (r, r)
    out[np.ix_(rest, rest)] = b[rest] @ b[rest].T
    cols = np.argmax(b[single] != 0, axis=1)  # (s,) the column of each one-entry row
    block = b[single, cols][:, None] * b[:, cols].T  # (s, r): row s_i against every row
    out[single, :] = block
    out[:, single] = block.T
    return out

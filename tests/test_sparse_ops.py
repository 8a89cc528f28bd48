"""phylocl.sparse_ops: scipy's compiled sparse products without importing scipy.sparse, bit for bit scipy's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from phylocl.sparse_ops import csr_dense, csr_from_sorted, sparsetools

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("data_dtype, dense_dtype, index_dtype",
                         [(np.float32, np.float32, np.int32), (np.float64, np.float32, np.int64),
                          (np.float32, np.float64, np.int32), (np.float64, np.float64, np.int64)])
def test_csr_dense_equals_scipy_bit_for_bit(data_dtype, dense_dtype, index_dtype):
    rng = np.random.default_rng(1)
    a = sp.random(40, 300, density=0.05, format="lil", random_state=2, dtype=data_dtype)
    a[7] = 0  # an empty row
    a = a.tocsr()
    a.indptr, a.indices = a.indptr.astype(index_dtype), a.indices.astype(index_dtype)
    dense = rng.standard_normal((9, 300)).astype(dense_dtype).T  # (300, 9), not C-contiguous (as basis.T)
    got = csr_dense(a.indptr, a.indices, a.data, dense)
    want = a @ dense
    assert got.dtype == want.dtype and got.shape == (40, 9)
    np.testing.assert_array_equal(got, want)
    assert not got[7].any()
    assert csr_dense(np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0), dense).shape == (0, 9)


def test_csr_from_sorted_equals_scipy_from_the_same_entries():
    rng = np.random.default_rng(3)
    keys = np.unique(rng.integers(0, 20 * 50, 300))  # unique, sorted by row then column
    rows, cols = keys // 50, keys % 50
    values = rng.standard_normal(len(keys))
    indptr, indices, data = csr_from_sorted(rows, cols, values, 25)  # rows 20..24 empty
    ref = sp.csr_matrix((values, (rows, cols)), shape=(25, 50))
    np.testing.assert_array_equal(indptr, ref.indptr)
    np.testing.assert_array_equal(indices, ref.indices)
    np.testing.assert_array_equal(data, ref.data)
    dense = rng.standard_normal((50, 4))
    np.testing.assert_array_equal(csr_dense(indptr, indices, data, dense), ref @ dense)


def test_the_routines_load_without_importing_scipy_sparse():
    code = ("import sys\nfrom phylocl.sparse_ops import sparsetools\nm = sparsetools()\n"
            "assert callable(m.csc_matvec) and callable(m.csr_matvecs)\n"
            "assert 'scipy.sparse' not in sys.modules, 'scipy.sparse imported'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert sparsetools() is sparsetools()  # loaded once

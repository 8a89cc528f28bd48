"""phylocl.sparse_ops: scipy's compiled sparse products without importing scipy.sparse, bit for bit scipy's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from phylocl.sparse_ops import csr_dense, csr_from_sorted, csr_transpose, sparsetools

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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_csr_transpose_equals_scipys(dtype):
    ref = sp.random(30, 70, density=0.1, format="csr", random_state=5, dtype=dtype)
    ref[7] = 0  # an empty row
    ref.eliminate_zeros()
    ptr, idx, data = csr_transpose(ref.indptr.astype(np.int64), ref.indices.astype(np.int64), ref.data, 70)
    want = ref.T.tocsr()
    assert ptr.dtype == want.indptr.dtype and idx.dtype == want.indices.dtype and data.dtype == dtype
    for a, b in ((ptr, want.indptr), (idx, want.indices), (data, want.data)):
        np.testing.assert_array_equal(a, b)
    assert (np.diff(idx[ptr[3]:ptr[4]]) > 0).all()


def test_a_db_search_imports_no_scipy_sparse(tmp_path):
    fasta = tmp_path / "s.fasta"
    fasta.write_text(">a\nMKVLAAGIWWKLLPPQRSTVAAGH\n>b\nMKVLAGGIWWKLLPPQRSTVAAGH\n>c\nMSTAPQRWHHKLLMNPQ\n")
    code = ("import sys\nfrom phylocl.cli import main\n"
            f"rc = main(['search', '--query', {str(fasta)!r}, '--db', {str(fasta)!r}, '-o', {str(tmp_path / 'h.tsv')!r},"
            " '--quiet', '--model', 'kmer:2'])\n"
            "assert rc == 0 and 'scipy.sparse' not in sys.modules, (rc, 'scipy.sparse imported')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "h.tsv").read_text().count("\n") >= 3  # the header and the hits of a and b on each other


def test_the_routines_load_without_importing_scipy_sparse():
    code = ("import sys\nfrom phylocl.sparse_ops import sparsetools\nm = sparsetools()\n"
            "assert callable(m.csc_matvec) and callable(m.csr_matvecs)\n"
            "assert 'scipy.sparse' not in sys.modules, 'scipy.sparse imported'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert sparsetools() is sparsetools()  # loaded once

"""NumpyProfileEncoder: a k-mer profile encoder's sparse rows without torch, against the torch paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import phylocl
from phylocl.errors import InputError
from phylocl.models.persistence import PRETRAINED_DIR
from phylocl.models.profile_numpy import NumpyProfileEncoder, is_profile_folder
from phylocl.models.windows import window_starts
from phylocl.models.sparse_embed import embed_sparse

from .helpers import make_encoder

AA = "ACDEFGHIKLMNPQRSTVWY"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A saved protein profile encoder with random weights (a quarter negative, as training may leave them), gains,
    and a large composition gain (every term counts), windows of 16 residues (so the sequences below are windowed)."""
    enc = make_encoder("kmerprofile-small", seed=0, alphabet="protein", depth=3, max_len=16).eval()
    with torch.no_grad():
        enc.backbone.weights.uniform_(-1.0, 3.0)
        enc.backbone.weights[0, :50] = 0  # words of weight 0 give no entry
        enc.backbone.gains.uniform_(0.3, 1.5)
        enc.backbone.composition_gain.fill_(-0.4)
    return enc, enc.save_pretrained(tmp_path_factory.mktemp("m") / "profile")


@pytest.fixture(scope="module")
def similar_folder(tmp_path_factory):
    """The same with a similar-word block of rank 4 (issue 24): word vectors, block gain and all else perturbed."""
    enc = make_encoder("kmerprofile-small", seed=0, alphabet="protein", depth=3, max_len=16, similar_rank=4).eval()
    with torch.no_grad():
        enc.backbone.weights.uniform_(0.2, 3.0)
        enc.backbone.weights[0, :50] = 0
        enc.backbone.gains.uniform_(0.3, 1.5)
        enc.backbone.composition_gain.fill_(-0.4)
        enc.backbone.similar_gain.fill_(0.8)
        enc.backbone.word_vectors.add_(0.3 * torch.randn_like(enc.backbone.word_vectors))
    return enc, enc.save_pretrained(tmp_path_factory.mktemp("m") / "similar")


def _sequences() -> list[str]:
    rng = np.random.default_rng(1)
    rand = ["".join(rng.choice(list(AA), n)) for n in (5, 40, 16, 17, 100, 3, 1)]
    return rand + ["MK", "XXXXX", "mkvlXXbzAGWUO", "ACD", "MKVLAXAGIWMKVLAXXXXXXXXXXXXXXXXXXXXWW"]


@pytest.mark.parametrize("model", ["folder", "similar_folder"])
@pytest.mark.parametrize(("batch_size", "overlap"), [(1, None), (3, 0.25), (1024, 0.0)])
def test_rows_equal_the_torch_sparse_and_dense_paths(request, model, batch_size, overlap):
    enc, path = request.getfixturevalue(model)
    seqs = _sequences()
    got = NumpyProfileEncoder(folder=path, overlap=overlap).embed_sparse(seqs, batch_size=batch_size)
    want = embed_sparse(enc, seqs, batch_size=4, overlap=overlap)
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.values, want.values, atol=1e-6, rtol=0)
    np.testing.assert_allclose(got.coeffs, want.coeffs, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(got.basis, want.basis)
    dense = enc.embed(seqs, overlap=overlap)  # (N, D)
    assert np.abs(got.to_dense() - dense).max() < 1e-5
    assert np.allclose(np.linalg.norm(got.to_dense(), axis=1), 1, atol=1e-5)
    if model == "similar_folder":  # the block is there and is computed, not left at 0
        assert got.rank == enc.embedding.weight.shape[0] + 12 and np.abs(dense[:, -12:]).max() > 0.05


def test_similar_block_against_a_slow_reference(similar_folder):
    """The block's coefficients from explicit loops over words (float64), one window per sequence."""
    enc, path = similar_folder
    npe = NumpyProfileEncoder(folder=path)
    seqs = ["MKVLAAGIWK", "ACDEFGHIKLMNPQ", "WWWW"]
    rows = npe.embed_sparse(seqs)
    e, w = npe.word_vectors, npe.weights
    for i, seq in enumerate(seqs):
        block = []
        for p, pattern in enumerate(npe.patterns):
            offs = [j for j, c in enumerate(pattern) if c == "1"]
            t = np.zeros(npe.similar_rank)
            counts: dict = {}
            for start in range(len(seq) - len(pattern) + 1):
                word = sum(AA.index(seq[start + o]) * 20 ** (npe.k - 1 - j) for j, o in enumerate(offs))
                counts[word] = counts.get(word, 0) + 1
            for word, c in counts.items():
                t += np.sqrt(c) * w[p, word] * e[word]
            block.append(npe.similar_gain / np.sqrt(len(npe.patterns)) * t / np.linalg.norm(t))
        want = np.concatenate(block)  # (P s,) before the row's norm
        got = rows.coeffs[i, npe.vocab:]  # the block's coefficients (the dense columns add the composition term)
        scale = got @ want / (want @ want)  # the row's norm divides it
        np.testing.assert_allclose(got, scale * want, atol=1e-6)
        assert 0.1 < 1 / scale < 10


@pytest.mark.parametrize("model", ["folder", "similar_folder"])
def test_model_info_and_fingerprint_equal_the_torch_encoder(request, model):
    enc, path = request.getfixturevalue(model)
    assert NumpyProfileEncoder(folder=path).model_info() == enc.model_info()
    enc2 = phylocl.load_encoder(path)
    with torch.no_grad():
        enc2.backbone.gains[0] += 1e-3
    assert NumpyProfileEncoder(folder=path).fingerprint() != enc2.fingerprint()  # the weights are hashed


def test_shipped_default_protein_equals_its_torch_rows():
    enc = phylocl.load_encoder("default-protein")
    npe = NumpyProfileEncoder(folder=PRETRAINED_DIR / "default-protein")
    rng = np.random.default_rng(3)
    seqs = ["".join(rng.choice(list(AA), n)) for n in (30, 300, 5000)] + ["MKVLXbzAGIV"]
    got, want = npe.embed_sparse(seqs), embed_sparse(enc, seqs)
    np.testing.assert_array_equal(got.indices, want.indices)
    assert np.abs(got.to_dense() - want.to_dense()).max() < 1e-5
    assert npe.model_info() == enc.model_info()


def test_bad_input_and_other_models(folder, tmp_path):
    _, path = folder
    npe = NumpyProfileEncoder(folder=path)
    with pytest.raises(InputError, match="sequence 2 is empty"):
        npe.embed_sparse(["MK", ""])
    with pytest.raises(InputError, match="sequence 1: letter"):
        npe.embed_sparse(["MK1"])
    assert len(npe.embed_sparse([])) == 0
    gmlp = make_encoder("gmlp-small", seed=0).save_pretrained(tmp_path / "gmlp")
    assert is_profile_folder(path) and not is_profile_folder(gmlp) and not is_profile_folder(tmp_path / "none")
    with pytest.raises(InputError, match="k-mer profile"):
        NumpyProfileEncoder(folder=gmlp)


def test_dna_similar_block_rows_equal_the_torch_sparse_rows(tmp_path):
    """A DNA profile encoder with a similar-word block (the K80 word kernel): NumPy rows equal torch's."""
    enc = make_encoder("kmerprofile-small", seed=0, alphabet="dna", depth=3, max_len=32, similar_rank=4).eval()
    with torch.no_grad():
        enc.backbone.weights.uniform_(0.2, 3.0)
        enc.backbone.similar_gain.fill_(0.8)
        enc.backbone.word_vectors.add_(0.3 * torch.randn_like(enc.backbone.word_vectors))
    path = enc.save_pretrained(tmp_path / "dna")
    rng = np.random.default_rng(2)
    seqs = ["".join(rng.choice(list("ACGT"), n)) for n in (12, 40, 33, 100, 8)] + ["ACGTNNNNACGT"]
    want = embed_sparse(enc, seqs, batch_size=4)
    got = NumpyProfileEncoder(folder=path).embed_sparse(seqs, batch_size=4)
    assert np.array_equal(got.indptr, want.indptr) and np.array_equal(got.indices, want.indices)
    assert np.allclose(got.values, want.values, atol=1e-6) and np.allclose(got.coeffs, want.coeffs, atol=1e-6)


def test_a_sequence_embedded_alone_gets_the_same_row_as_in_a_batch_bit_for_bit():
    """One window alone goes through one-row products (BLAS's matrix-vector routine unless avoided), which once
    moved its row in the last bits; the row must not depend on the sequences embedded beside it."""
    npe = NumpyProfileEncoder(folder=PRETRAINED_DIR / "default-protein")
    rng = np.random.default_rng(11)
    seqs = ["".join(rng.choice(list(AA), n)) for n in rng.integers(20, 400, 12)]
    batch = npe.embed_sparse(seqs)
    for i, s in enumerate(seqs):
        alone = npe.embed_sparse([s])
        mine = batch.slice(i, i + 1)
        for name in ("indptr", "indices", "values", "coeffs"):
            np.testing.assert_array_equal(getattr(alone, name), getattr(mine, name), err_msg=name)


@pytest.mark.parametrize("model", ["folder", "similar_folder"])
def test_batches_add_into_their_own_sequences_rows_only(request, model):
    """embed_sparse adds each batch's window coefficients into the rows of the batch's own (consecutive) sequences
    only: bit for bit the rows of the former loop, which added every batch into all N rows, with windows of one
    sequence in several batches and batches of several sequences."""
    from phylocl.models.profile_numpy import _sum_rows

    _, path = request.getfixturevalue(model)
    enc = NumpyProfileEncoder(folder=path)
    seqs = _sequences() * 3

    def former(batch_size):  # embed_sparse as it was, the coefficients summed over all N rows per batch
        arrays = enc._tokens(seqs)
        windows = [(i, s) for i, a in enumerate(arrays) for s in window_starts(len(a), enc.max_len, enc.stride)]
        rows, cols, vals, coeffs = [], [], [], np.zeros((len(arrays), len(enc.gram)))
        for lo in range(0, len(windows), batch_size):
            part = windows[lo:lo + batch_size]
            owners = np.array([i for i, _ in part], np.int64)
            win, col, val, c = enc._window_rows([arrays[i][s:s + enc.max_len] for i, s in part])
            rows.append(owners[win])
            cols.append(col)
            vals.append(val)
            coeffs += _sum_rows(owners, np.ones(len(owners)), c.T, len(arrays))
        row, col, val = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        key, inverse = np.unique(row * enc.embed_dim + col, return_inverse=True)
        val = np.bincount(inverse, weights=val, minlength=len(key))
        row, col = key // enc.embed_dim, key % enc.embed_dim
        z = enc._row_norms(row, col, val, coeffs)
        keep = val != 0
        return (val / z[row])[keep].astype(np.float32), (coeffs / z[:, None]).astype(np.float32)

    for batch_size in (1, 3, 64):
        rows = enc.embed_sparse(seqs, batch_size=batch_size)
        values, coeffs = former(batch_size)
        assert np.array_equal(rows.values, values) and np.array_equal(rows.coeffs, coeffs)


@pytest.mark.parametrize("model", ["folder", "similar_folder"])
def test_gram_by_blocks_equals_the_gram_of_the_dense_basis(request, model):
    """The encoder's ``B B^T`` is built by blocks (no float64 ``(r, D)`` basis): what
    :func:`~phylocl.sparse_rows.basis_gram` gives for the float64 basis it used to build, and the plain product, to
    1e-13 relative (bit for bit with OpenBLAS on 2 threads; on one thread BLAS takes other kernels for the blocks and the last
    bits differ, ~3e-14)."""
    from phylocl.sparse_rows import basis_gram

    npe = NumpyProfileEncoder(folder=request.getfixturevalue(model)[1])
    extra = npe.basis.shape[0] - npe.vocab
    dense = np.zeros((npe.basis.shape[0], npe.embed_dim))  # the former float64 basis
    dense[:npe.vocab] = npe.tokens
    dense[npe.vocab:, npe.embed_dim - extra:] = np.eye(extra)
    np.testing.assert_allclose(npe.gram, basis_gram(dense), rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(npe.gram, dense @ dense.T, rtol=1e-13, atol=1e-12)
    np.testing.assert_array_equal(npe.basis, dense.astype(np.float32))
    assert npe.basis.dtype == np.float32 and not npe.basis.flags.writeable

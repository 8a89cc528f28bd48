"""embed_sparse: the k-mer profile encoder's rows as sparse + low-rank, against the dense path and slow word counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import phylocl
from phylocl.errors import InputError
from phylocl.models.layers import ProjectionHead
from phylocl.models.sparse_embed import embed_sparse, supports_sparse
from phylocl.models.windows import overlap_stride, window_starts
from .helpers import make_encoder

AA = "ACDEFGHIKLMNPQRSTVWY"


def _profile_encoder(alphabet: str = "protein", max_len: int = 16) -> torch.nn.Module:
    """A k-mer profile encoder with random word weights, gains and a large composition gain (so every term counts)."""
    enc = make_encoder("kmerprofile-small", seed=0, alphabet=alphabet, depth=3, max_len=max_len).eval()
    with torch.no_grad():
        enc.backbone.weights.uniform_(0.2, 3.0)
        enc.backbone.gains.uniform_(0.3, 1.5)
        enc.backbone.composition_gain.fill_(-0.4)
    return enc


def _sequences(alphabet: str) -> list[str]:
    rng = np.random.default_rng(1)
    letters = AA if alphabet == "protein" else "ACGT"
    rand = ["".join(rng.choice(list(letters), n)) for n in (5, 40, 16, 17, 100, 3)]
    if alphabet == "protein":  # X, aliases read as X, lower case, no word at all (shorter than k, or only X)
        return rand + ["MK", "XXXXX", "mkvlXXbzAGWUO", "ACD", "MKVLAXAGIWMKVLAXXXXXXXXXXXXXXXXXXXXWW"]
    return rand + ["AC", "NNNNN", "acgtNNrygtACGU"]


def _distinct_words(seq: str, pattern: str) -> set[str]:
    """Slow reference: the words of ``pattern`` in ``seq`` made of standard amino acids only."""
    keep = [i for i, c in enumerate(pattern) if c == "1"]
    found = ("".join(seq[s + i] for i in keep) for s in range(len(seq) - len(pattern) + 1))
    return {w for w in found if set(w) <= set(AA)}


@pytest.mark.parametrize("alphabet", ["protein", "dna"])
@pytest.mark.parametrize("batch_size", [1, 3, 64])
@pytest.mark.parametrize("overlap", [None, 0.0, 0.25])
def test_sparse_rows_equal_the_dense_embeddings(alphabet, batch_size, overlap):
    enc = _profile_encoder(alphabet)
    seqs = _sequences(alphabet)
    rows = embed_sparse(enc, seqs, batch_size=batch_size, overlap=overlap)
    dense = enc.embed(seqs, batch_size=batch_size, overlap=overlap)  # (N, D)
    assert len(rows) == len(seqs) and rows.dim == enc.embed_dim
    assert np.abs(rows.to_dense() - dense).max() < 1e-5
    np.testing.assert_array_equal(rows.basis, enc.embedding.weight.detach().numpy())


def test_rows_are_unit_csr_with_increasing_columns():
    enc = _profile_encoder()
    rows = embed_sparse(enc, _sequences("protein"), batch_size=2)
    assert rows.indptr.dtype == np.int64 and rows.indices.dtype == np.int32 and rows.values.dtype == np.float32
    assert rows.coeffs.dtype == np.float32 and rows.basis.shape == (enc.alphabet.vocab_size, enc.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(rows.to_dense().astype(np.float64), axis=1), 1.0, atol=1e-6)
    for b in range(len(rows)):
        assert np.all(np.diff(rows.indices[rows.indptr[b]:rows.indptr[b + 1]]) > 0)


def test_one_entry_per_distinct_word_of_each_pattern():
    enc = _profile_encoder(max_len=16)
    seq = "MKVLAXAGIWMKVLAGGHHKLMWWMKVLA"  # 29 residues: windows 0, 8, 13
    rows = embed_sparse(enc, [seq, seq[:12], "MK"])
    patterns = enc.backbone.patterns
    stride = overlap_stride(16, 0.5)
    slices = [seq[s:s + 16] for s in window_starts(len(seq), 16, stride)]
    want_long = sum(len(set().union(*(_distinct_words(w, p) for w in slices))) for p in patterns)
    want_short = sum(len(_distinct_words(seq[:12], p)) for p in patterns)
    assert list(np.diff(rows.indptr)) == [want_long, want_short, 0]
    block = rows.indices[rows.indptr[1]:rows.indptr[2]] // 8000
    for p, pattern in enumerate(patterns):  # the words themselves, not just how many
        cols = rows.indices[rows.indptr[1]:rows.indptr[2]][block == p] % 8000
        words = {"".join(AA[c // 20 ** (2 - i) % 20] for i in range(3)) for c in cols}
        assert words == _distinct_words(seq[:12], pattern)


def test_a_zero_pattern_gain_drops_its_entries():
    enc = _profile_encoder()
    with torch.no_grad():
        enc.backbone.gains[1:] = 0.0
    rows = embed_sparse(enc, ["MKVLAGGHWW"])
    assert np.all(rows.indices < 8000) and len(rows.indices) == len(_distinct_words("MKVLAGGHWW", "111"))
    assert np.abs(rows.to_dense() - enc.embed(["MKVLAGGHWW"])).max() < 1e-5


def test_bad_input_and_unsupported_encoders_are_refused():
    enc = _profile_encoder()
    with pytest.raises(InputError, match="sequence 2"):
        embed_sparse(enc, ["MKV", "MK1V"])
    with pytest.raises(ValueError, match="batch_size"):
        embed_sparse(enc, ["MKV"], batch_size=0)
    assert len(embed_sparse(enc, [])) == 0 and supports_sparse(enc)
    gmlp = make_encoder("gmlp-tiny")
    assert not supports_sparse(gmlp)
    with pytest.raises(ValueError, match="kmerprofile encoder with head 'none'.*gmlp"):
        embed_sparse(gmlp, ["MKV"])
    enc.head = ProjectionHead(dim=enc.embed_dim, out_dim=8, kind="linear")
    assert not supports_sparse(enc) and not supports_sparse(torch.nn.Linear(2, 2))


def test_shipped_default_protein_model():
    enc = phylocl.load_encoder("default-protein")
    rng = np.random.default_rng(2)
    seqs = ["".join(rng.choice(list(AA), int(n))) for n in rng.integers(2, 120, size=20)] + ["MKXVLB"]
    rows = embed_sparse(enc, seqs, batch_size=8)
    assert np.abs(rows.to_dense() - enc.embed(seqs, batch_size=8)).max() < 1e-5


def _similar_encoder(max_len: int = 16) -> torch.nn.Module:
    """A protein k-mer profile encoder with a similar-word block of rank 4 (issue 24), every term perturbed."""
    enc = make_encoder("kmerprofile-small", seed=0, alphabet="protein", depth=3, max_len=max_len,
                       similar_rank=4).eval()
    with torch.no_grad():
        enc.backbone.weights.uniform_(0.2, 3.0)
        enc.backbone.gains.uniform_(0.3, 1.5)
        enc.backbone.composition_gain.fill_(-0.4)
        enc.backbone.similar_gain.fill_(0.8)
        enc.backbone.word_vectors.add_(0.1 * torch.randn_like(enc.backbone.word_vectors))
    return enc


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_similar_word_block_rows_equal_the_dense_embeddings_and_index_scores(batch_size):
    from phylocl.retrieval.sparse_build import sparse_index_in_memory

    enc = _similar_encoder()
    assert enc.embed_dim == 3 * (8000 + 4)
    seqs = [s for s in _sequences("protein")]
    rows = embed_sparse(enc, seqs, batch_size=batch_size, overlap=0.25)
    dense = enc.embed(seqs, batch_size=batch_size, overlap=0.25)  # (N, D)
    assert np.abs(rows.to_dense() - dense).max() < 1e-5
    assert rows.rank == enc.embedding.weight.shape[0] + 12  # tokens, then the 3 x 4 block columns
    assert np.abs(dense[:, -12:]).max() > 0.05  # the block is really there
    assert rows.indices.max() < 24000  # the sparse part stays in the profile columns
    index = sparse_index_in_memory(rows, ids=[str(i) for i in range(len(rows))])
    np.testing.assert_allclose(index.scores(rows), dense @ dense.T, atol=1e-5)


def test_similar_word_vectors_approximate_the_blosum_word_kernel():
    from Bio.Align import substitution_matrices

    from phylocl.models.kmerprofile import similar_word_vectors

    b = substitution_matrices.load("BLOSUM62")
    odds = np.array([[2.0 ** (b[x][y] / 2) for y in AA] for x in AA])  # (20, 20)
    odds /= np.sqrt(np.outer(np.diag(odds), np.diag(odds)))
    full = similar_word_vectors(2, 400).astype(np.float64)  # (400, 400): every eigenpair
    kernel = np.kron(odds, odds)  # words 'AA', 'AC', ... first letter most significant
    gram = full @ full.T
    scale = np.sum(gram * kernel) / np.sum(gram * gram)  # the vectors are rescaled to RMS 1
    lam = np.linalg.eigvalsh(odds)
    if lam.min() >= 0:  # then the full factor reproduces the kernel exactly
        np.testing.assert_allclose(gram * scale, kernel, rtol=1e-4, atol=1e-6)
    low = similar_word_vectors(2, 20).astype(np.float64)
    sims = low @ low.T
    word = {w: i for i, w in enumerate(x + y for x in AA for y in AA)}
    # 'IV' is a good BLOSUM neighbour of 'LV' (I/L +2), 'WV' is not (W/L -2)
    assert sims[word["LV"], word["IV"]] > sims[word["LV"], word["WV"]]


def test_dna_similar_word_block_kernel_and_sparse_rows():
    """The DNA similar-word block (K80 letter kernel): full rank reproduces the word kernel, a transition neighbour
    is closer than a transversion one, and sparse rows equal the dense embeddings."""
    from phylocl.models.kmerprofile import letter_odds, similar_word_vectors

    m = letter_odds("dna")  # (4, 4), ACGT
    assert np.allclose(np.diag(m), 1.0) and np.allclose(m, m.T)
    assert 0 < m[0, 1] < m[0, 2] < 1  # A-C transversion < A-G transition
    full = similar_word_vectors(2, 16, "dna").astype(np.float64)  # (16, 16): every eigenpair
    gram, kernel = full @ full.T, np.kron(m, m)
    np.testing.assert_allclose(gram * np.sum(gram * kernel) / np.sum(gram * gram), kernel, rtol=1e-4, atol=1e-6)
    low = similar_word_vectors(3, 8, "dna").astype(np.float64) @ similar_word_vectors(3, 8, "dna").T.astype(np.float64)
    word = {a + b + c: i for i, (a, b, c) in enumerate((a, b, c) for a in "ACGT" for b in "ACGT" for c in "ACGT")}
    assert low[word["AAA"], word["AAG"]] > low[word["AAA"], word["AAC"]]
    enc = make_encoder("kmerprofile-small", seed=0, alphabet="dna", depth=3, max_len=16, similar_rank=4).eval()
    with torch.no_grad():
        enc.backbone.weights.uniform_(0.2, 3.0)
        enc.backbone.similar_gain.fill_(0.8)
    assert enc.embed_dim == 3 * (64 + 4)
    seqs = _sequences("dna")
    rows = embed_sparse(enc, seqs, batch_size=3, overlap=0.25)
    dense = enc.embed(seqs, batch_size=3, overlap=0.25)  # (N, D)
    assert np.abs(rows.to_dense() - dense).max() < 1e-5 and np.abs(dense[:, -12:]).max() > 0.05

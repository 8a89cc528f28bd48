"""Every model follows the one Embedder protocol: the k-mer baseline, encoders and resolve_model's wrapper."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.models.embedder import MODEL_INFO_KEYS, Embedder, SparseEmbedder
from phylocl.models.kmer import KmerEmbedder
from phylocl.workflows.model_spec import ResolvedModel, resolve_model

SEQS = ["MKVLAAGIVGLLAW", "MSTAPQRW", "MKVLAEGIVGLLAWXX", "MY"]


def _models():
    from phylocl.models.registry import build_encoder

    profile = build_encoder("kmerprofile-small", alphabet="protein").eval()
    gmlp = build_encoder("gmlp-tiny", alphabet="protein", max_len=32).eval()
    return {"kmer:2": KmerEmbedder(k=2), "kmer:2:64": KmerEmbedder(k=2, dim=64), "kmerprofile": profile,
            "gmlp": gmlp}


@pytest.fixture(scope="module")
def models():
    return _models()


@pytest.mark.parametrize("name", ["kmer:2", "kmer:2:64", "kmerprofile", "gmlp"])
def test_models_and_their_wrapper_follow_the_protocol(models, name):
    model = models[name]
    wrapped = ResolvedModel(model=model, source=name)
    for m in (model, wrapped):
        assert isinstance(m, Embedder) and isinstance(m, SparseEmbedder)
        x = m.embed(SEQS, batch_size=2)
        assert x.shape == (len(SEQS), m.dim) and x.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
        assert set(MODEL_INFO_KEYS) <= set(m.model_info()) and m.model_info()["dim"] == m.dim
        assert m.alphabet.name == "protein"
    np.testing.assert_allclose(wrapped.embed(SEQS), model.embed(SEQS), atol=1e-6)  # the wrapper adds no maths
    assert wrapped.sparse == model.sparse == (name in ("kmer:2", "kmerprofile"))
    if model.sparse:
        np.testing.assert_allclose(wrapped.embed_sparse(SEQS).to_dense(), model.embed(SEQS), atol=1e-5)


def test_a_wrapped_encoder_at_bf16_is_not_sparse(models):
    assert not ResolvedModel(model=models["kmerprofile"], source="x", precision="bf16").sparse


def test_resolve_model_returns_the_protocol():
    emb = resolve_model("kmer:3", alphabet="protein")
    assert isinstance(emb, SparseEmbedder) and emb.sparse and emb.dim == 8000


def test_a_model_without_the_members_is_not_an_embedder():
    class Half:
        def embed(self, sequences, *, batch_size=1):
            return np.zeros((len(sequences), 1))

    assert not isinstance(Half(), Embedder)

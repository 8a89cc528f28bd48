"""K-mer baseline: counts against a per-k-mer loop, normalisation, batching, limits, spec parsing."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest

from phylocl.errors import InputError
from phylocl.models.kmer import KmerEmbedder, parse_model_spec



def _reference(seq: str, k: int, alphabet: str) -> np.ndarray:
    """Slow obvious k-mer profile: normalise letters by hand, loop over every window."""
    if alphabet == "protein":
        letters = "ACDEFGHIKLMNPQRSTVWY"
        seq = seq.upper().translate(str.maketrans("UOBZJ", "XXXXX"))
    else:
        letters = "ACGT"
        seq = seq.upper().replace("U", "T")
    columns = {"".join(p): i for i, p in enumerate(itertools.product(letters, repeat=k))}
    v = np.zeros(len(letters) ** k)
    for i in range(len(seq) - k + 1):
        kmer = seq[i:i + k]
        if kmer in columns:
            v[columns[kmer]] += 1
    n = np.linalg.norm(v)
    return v / n if n else v


def _random_seqs(rng, alphabet, n=7):
    pool = "ACDEFGHIKLMNPQRSTVWYXBZUOacdk" if alphabet == "protein" else "ACGTNRYUacgtn"
    return ["".join(rng.choice(list(pool), rng.integers(0, 40))) for _ in range(n)]


@pytest.mark.parametrize("alphabet, k", [("protein", 1), ("protein", 2), ("protein", 3), ("dna", 1), ("dna", 3),
                                         ("dna", 6)])
def test_matches_loop_reference(alphabet, k):
    rng = np.random.default_rng(k)
    seqs = _random_seqs(rng, alphabet)
    got = KmerEmbedder(k=k, alphabet=alphabet).embed(seqs, batch_size=3)
    assert got.dtype == np.float32 and got.shape == (len(seqs), (20 if alphabet == "protein" else 4) ** k)
    want = np.stack([_reference(s, k, alphabet) for s in seqs])
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_hand_counted_dna_and_no_kmer_across_sequences():
    e = KmerEmbedder(k=2, alphabet="dna")
    x = e.embed(["ACAC", "GT", "ANA", "A"])
    # ACAC: AC twice, CA once -> (2, 1) / sqrt(5)
    assert x[0, e.kmer_index("AC")] == pytest.approx(2 / np.sqrt(5))
    assert x[0, e.kmer_index("CA")] == pytest.approx(1 / np.sqrt(5))
    assert x[1, e.kmer_index("GT")] == pytest.approx(1.0)
    assert x[0, e.kmer_index("CG")] == 0 and x[1].sum() == pytest.approx(1.0)  # "AC"+"GT" never makes CG
    assert not x[2].any() and not x[3].any()  # only N-containing k-mers / shorter than k: zero vector
    assert e.kmer_index("ac") == 1 and e.kmer_index("TT") == 15


def test_unit_norm_and_batch_size_invariance():
    rng = np.random.default_rng(0)
    seqs = _random_seqs(rng, "protein", n=20)
    e = KmerEmbedder(k=2, alphabet="protein")
    a, b = e.embed(seqs, batch_size=1), e.embed(seqs, batch_size=64)
    np.testing.assert_array_equal(a, b)
    norms = np.linalg.norm(a, axis=1)
    assert np.allclose(norms[norms > 0], 1.0, atol=1e-6)


def test_identity_and_metadata():
    e = KmerEmbedder(k=3, alphabet="protein")
    assert e.name == "kmer:3" and e.embed_dim == 8000
    assert e.fingerprint() == KmerEmbedder(k=3, alphabet="prot").fingerprint()
    assert len({e.fingerprint(), KmerEmbedder(k=2).fingerprint(), KmerEmbedder(k=3, alphabet="dna").fingerprint()}) == 3
    info = e.model_info()
    assert info["name"] == "kmer:3" and info["dim"] == 8000 and info["alphabet"] == "protein"
    assert info["fingerprint"] == e.fingerprint()


@pytest.mark.parametrize("alphabet, k, match", [("protein", 4, "160000 dimensions.*k <= 3"),
                                                ("dna", 7, "16384 dimensions.*k <= 6"),
                                                ("dna", 0, "positive"), ("protein", 2.5, "positive")])
def test_rejects_bad_k(alphabet, k, match):
    with pytest.raises(ValueError, match=match):
        KmerEmbedder(k=k, alphabet=alphabet)


def test_bad_letters_name_the_sequence():
    with pytest.raises(ValueError, match="sequence 2"):
        KmerEmbedder(k=1, alphabet="dna").embed(["ACGT", "AC", "ACGQ"], batch_size=2)
    with pytest.raises(TypeError):
        KmerEmbedder(k=1, alphabet="dna").embed("ACGT")


@pytest.mark.parametrize("spec, want", [("kmer:3", ("kmer", 3, None)), ("KMER:2", ("kmer", 2, None)),
                                        ("kmer:3:512", ("kmer", 3, 512)),
                                        ("gmlp-small", None), ("runs/model.ckpt", None)])
def test_parse_model_spec(spec, want):
    assert parse_model_spec(spec) == want


@pytest.mark.parametrize("spec", ["kmer", "kmer:", "kmer:x", "kmer:0", "kmer:-1", "kmer:3:0", "kmer:3:4:5"])
def test_parse_model_spec_rejects_malformed(spec):
    with pytest.raises(InputError, match="kmer:K"):
        parse_model_spec(spec)


def test_kmer_profiles_retrieve_real_families():
    """On the bundled MIT example set, 2-mer profiles put a family member first for most queries (far above chance)."""
    folder = Path(__file__).resolve().parents[2] / "datasets" / "example-mini-mit" / "protein"
    from Bio import SeqIO

    from phylocl.retrieval.evaluation import evaluate_embeddings

    with open(folder / "labels.tsv") as f:
        family = {row["sequence_id"]: row["family_id"] for row in csv.DictReader(f, delimiter="\t")}
    records = list(SeqIO.parse(folder / "sequences.fasta", "fasta"))
    seqs = [str(r.seq).replace("-", "").replace("*", "") for r in records]
    x = KmerEmbedder(k=2, alphabet="protein").embed(seqs)
    m = evaluate_embeddings(x, [family[r.id] for r in records], ks=(1, 10))
    assert m["n_queries"] == len(records) == 180
    assert m["top1"] > 0.9 and m["map_r"] > 0.8  # 10 families: chance is about 0.1


def test_sketch_buckets_cover_every_column_and_stay_as_saved_indexes_hold_them():
    """kmer:3:512 spreads the 8,000 3-mers over all 512 columns, and its buckets and signs are fixed: an index built
    earlier holds rows of these very columns (the fingerprint names only the seed), so a change here would silently
    mismatch queries and saved rows."""
    import hashlib

    e = KmerEmbedder(k=3, alphabet="protein", dim=512)
    assert np.bincount(e._bucket, minlength=512).min() >= 1 and set(np.unique(e._sign)) == {-1.0, 1.0}
    digest = hashlib.sha256(e._bucket.astype("<i8").tobytes() + e._sign.astype("<f8").tobytes()).hexdigest()
    assert digest[:16] == "a6977e43be37cf88"


def test_sketch_is_the_signed_hash_of_the_full_profile():
    """Reference: project the full count vector column by column with the sketch's buckets and signs."""
    rng = np.random.default_rng(3)
    seqs = ["".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), size=int(n))) for n in (50, 3, 200, 1)]
    full, sk = KmerEmbedder(k=2, alphabet="protein"), KmerEmbedder(k=2, alphabet="protein", dim=64)
    counts = full._counts(seqs, 0)  # (4, 400)
    want = np.zeros((len(seqs), 64))
    for j in range(400):
        want[:, sk._bucket[j]] += sk._sign[j] * counts[:, j]
    norms = np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(sk.embed(seqs), want / np.where(norms > 0, norms, 1), atol=1e-6)
    assert sk.embed_dim == 64 and sk.name == "kmer:2:64" and sk.model_info()["sketch_dim"] == 64
    assert sk.fingerprint() != full.fingerprint() != KmerEmbedder(k=2, alphabet="protein", dim=32).fingerprint()
    # inner products are preserved on average: sketched cosines track the full ones
    x, y = full.embed(seqs[:3]), sk.embed(seqs[:3])
    assert np.abs(x @ x.T - y @ y.T).max() < 0.5
    with pytest.raises(ValueError, match="sketch"):
        KmerEmbedder(k=2, alphabet="protein", dim=400)

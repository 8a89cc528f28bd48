"""k-mer codes, Jaccard (exact and MinHash), Mash distances and the per-family cache, against plain Python sets."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.data.alphabet import DNA, PROTEIN
from phylocl.data.distances import (FamilyDistances, jaccard_matrix, kmer_codes, kmer_distance_matrix,
                                    mash_distance)


def kmer_set(seq, k, unknown):
    return {seq[i:i + k] for i in range(len(seq) - k + 1) if unknown not in seq[i:i + k]}


def random_seqs(rng, n, length, letters):
    base = rng.choice(list(letters), size=length)
    out = []
    for _ in range(n):
        s = base.copy()
        flip = rng.random(length) < rng.uniform(0.0, 0.4)
        s[flip] = rng.choice(list(letters), size=int(flip.sum()))
        out.append("".join(s))
    return out


def decode(code, k, letters):
    out = []
    for _ in range(k):
        code, r = divmod(int(code), len(letters))
        out.append(letters[r])
    return "".join(reversed(out))


def test_kmer_codes_are_one_code_per_distinct_kmer():
    for seq, alphabet, k in [("ACGTNACGTACGGTACNNA", DNA, 3), ("mkTAYIAKQRXMKTAYW", PROTEIN, 4)]:
        codes = kmer_codes(seq, alphabet, k)
        assert np.all(np.diff(codes) > 0)  # sorted, distinct
        decoded = {decode(c, k, alphabet.letters) for c in codes}
        assert decoded == kmer_set(alphabet.normalize(seq), k, alphabet.unknown)
    assert len(kmer_codes("MK", PROTEIN, 5)) == 0


def test_exact_jaccard_matches_python_sets():
    rng = np.random.default_rng(1)
    seqs = random_seqs(rng, 7, 60, "ACDEFGHIKLMNPQRSTVWY") + ["MKX", "XXXXXXXXX"]
    sets = [kmer_codes(s, PROTEIN, 3) for s in seqs]
    jac, union = jaccard_matrix(sets, method="exact")
    for i, a in enumerate(seqs):
        for j, b in enumerate(seqs):
            A, B = kmer_set(a, 3, "X"), kmer_set(b, 3, "X")
            ref = len(A & B) / len(A | B) if A | B else 0.0
            assert jac[i, j] == pytest.approx(ref)
            assert union[i, j] == len(A | B)


def test_minhash_estimates_exact_jaccard():
    rng = np.random.default_rng(2)
    seqs = random_seqs(rng, 12, 400, "ACGT")
    sets = [kmer_codes(s, DNA, 8) for s in seqs]
    exact, _ = jaccard_matrix(sets, method="exact")
    est, _ = jaccard_matrix(sets, method="minhash", sketch_size=2048, seed=0)
    assert np.abs(est - exact).max() < 0.05
    assert np.allclose(np.diag(est), 1.0)


def test_mash_formula_closed_forms():
    k = 5
    assert mash_distance(np.array(1.0), k) == pytest.approx(0.0)
    j = 0.25
    assert mash_distance(np.array(j), k) == pytest.approx(-np.log(2 * j / (1 + j)) / k)
    # no shared k-mer: floored at half a shared k-mer of the union, finite and growing with the union
    d_small = mash_distance(np.array(0.0), k, np.array(10.0))
    d_big = mash_distance(np.array(0.0), k, np.array(1000.0))
    assert np.isfinite(d_big) and d_big > d_small
    assert d_small == pytest.approx(mash_distance(np.array(0.05), k))


def test_distance_matrix_properties_and_monotone_in_divergence():
    rng = np.random.default_rng(3)
    base = rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), size=500)
    seqs = []
    for rate in (0.0, 0.02, 0.1, 0.3):
        s = base.copy()
        flip = rng.random(500) < rate
        s[flip] = rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), size=int(flip.sum()))
        seqs.append("".join(s))
    d = kmer_distance_matrix(seqs, PROTEIN)
    assert np.allclose(d, d.T) and np.all(np.diag(d) == 0) and d[0, 0] == 0
    assert d[0, 1] < d[0, 2] < d[0, 3]


def test_family_distances_use_tree_else_kmers_and_cache(tmp_path, make_dataset):
    tree = tmp_path / "A.nwk"
    tree.write_text("((A_0:0.1,A_1:0.2):0.3,A_2:0.4);")
    ds = make_dataset({"A": ["MKTAYIAKQR", "MKTAYIAKQK", "MRTAYIAKQR"], "B": ["GSHMLEDPVV", "GSHMLEDPAV"]},
                      trees={"A": tree})
    fd = FamilyDistances(dataset=ds, cache_dir=tmp_path / "cache")
    np.testing.assert_allclose(fd("A"), [[0, 0.3, 0.8], [0.3, 0, 0.9], [0.8, 0.9, 0]])
    assert fd.source("A") == "tree" and fd.source("B") == "kmer"
    np.testing.assert_allclose(fd("B"), kmer_distance_matrix(ds.sequences[3:], ds.alphabet))
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2
    again = FamilyDistances(dataset=ds, cache_dir=tmp_path / "cache")
    np.testing.assert_allclose(again("A"), fd("A"))
    assert FamilyDistances(dataset=ds, method="kmer").source("A") == "kmer"
    tree.write_text("((A_0:1,A_1:2):3,A_2:4);")  # the tree edited in place: the cache is keyed by its bytes too
    np.testing.assert_allclose(FamilyDistances(dataset=ds, cache_dir=tmp_path / "cache")("A"),
                               [[0, 3, 8], [3, 0, 9], [8, 9, 0]])  # was the stale 0.3 / 0.8 / 0.9
    with pytest.raises(ValueError, match="no tree"):
        FamilyDistances(dataset=ds, method="tree")("B")


def test_tree_distances_follow_the_members_order_not_the_ids_order(tmp_path):
    """A family whose members are listed in neither id nor tree order: d[i, j] is the tree distance between the
    i-th and j-th members as the dataset lists them."""
    from phylocl.data.alphabet import get_alphabet
    from phylocl.data.dataset import OrthologDataset

    tree = tmp_path / "F.nwk"
    tree.write_text("((m:0.1,a:0.2):0.3,(z:0.4,b:0.05):0.6);")
    ds = OrthologDataset(ids=["z", "a", "m", "b"], sequences=["MKTAYIAKQR", "MKTAYIAKQK", "MRTAYIAKQR", "MKTAWIAKQR"],
                         families=["F"] * 4, alphabet=get_alphabet("protein"), metadata={}, trees={"F": tree})
    d = FamilyDistances(dataset=ds)("F")
    want = {("z", "a"): 1.5, ("z", "m"): 1.4, ("z", "b"): 0.45, ("a", "m"): 0.3, ("a", "b"): 1.15,
            ("m", "b"): 1.05}
    for (x, y), value in want.items():
        i, j = ds.ids.index(x), ds.ids.index(y)
        assert d[i, j] == pytest.approx(value, abs=1e-12) and d[j, i] == pytest.approx(value, abs=1e-12), (x, y)

"""The k-mer backbones against slow references: word counts of spaced patterns, IDF weights, k-mer bag means."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from phylocl.models.kmerprofile import profile_dim, seed_patterns
from phylocl.models.registry import build_encoder
from phylocl.models.kmer import KmerEmbedder

AA = "ACDEFGHIKLMNPQRSTVWY"


def words(seq: str, pattern: str) -> Counter:
    """Slow reference: the letters at the pattern's 1-positions, for every start where all are standard letters."""
    keep = [i for i, c in enumerate(pattern) if c == "1"]
    out = Counter()
    for s in range(len(seq) - len(pattern) + 1):
        w = "".join(seq[s + i] for i in keep)
        if all(c in AA for c in w):
            out[w] += 1
    return out


def index(word: str) -> int:
    return sum(AA.index(c) * 20 ** (len(word) - 1 - i) for i, c in enumerate(word))


def test_patterns_and_width():
    assert seed_patterns(3) == ["111", "1101", "1011"] and seed_patterns(1) == ["1"]
    assert profile_dim("protein", 3) == 24_000 and profile_dim("dna", 5) == 3 * 4**5


def test_profile_counts_match_slow_reference_and_skip_padding_and_x():
    enc = build_encoder("kmerprofile-small", max_len=64).eval()
    seqs = ["MKVLAXAGIWMKVLA", "WWHHEERRTT", "MK"]
    batch = enc.tokenize(seqs)
    counts = enc.backbone.counts(batch["input_ids"], batch["attention_mask"])  # (3, 3, 8000)
    for r, seq in enumerate(seqs):
        for p, pattern in enumerate(enc.backbone.patterns):
            want = np.zeros(8000)
            for w, c in words(seq, pattern).items():
                want[index(w)] = c
            np.testing.assert_array_equal(counts[r, p].numpy(), want)


def test_untrained_contiguous_block_is_kmer3_on_sqrt_counts():
    torch.manual_seed(0)
    enc = build_encoder("kmerprofile-small", max_len=256).eval()
    with torch.no_grad():
        enc.backbone.gains[1:] = 0.0  # only the contiguous pattern
        enc.backbone.composition_gain.zero_()
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list(AA), size=n)) for n in (40, 90, 200)]
    ref = np.sqrt(KmerEmbedder(k=3, alphabet="protein")._counts(seqs, 0))
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    got = enc.embed(seqs)[:, :8000]
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_fit_statistics_sets_inverse_document_frequencies():
    enc = build_encoder("kmerprofile-small", max_len=64)
    seqs = ["MKVLA", "MKVWW", "AAAAA"]
    enc.backbone.fit_statistics([enc.alphabet.encode(s) for s in seqs])
    for p, pattern in enumerate(enc.backbone.patterns):
        df = Counter(w for s in seqs for w in words(s, pattern))  # each word once per sequence (Counter keys)
        for w, n in df.items():
            assert enc.backbone.weights[p, index(w)].item() == pytest.approx(np.log(4 / (n + 1)) + 1, rel=1e-6)
        assert enc.backbone.weights[p, index("YYY")].item() == pytest.approx(np.log(4) + 1, rel=1e-6)  # unseen


def test_kmerbag_is_the_gain_weighted_mean_of_kmer_embeddings():
    torch.manual_seed(1)
    enc = build_encoder("kmerbag-small", dim=16, embed_dim=8, max_len=64).eval()
    seq = "MKVLXAGW"
    batch = enc.tokenize([seq, "MKVLAGWWWWWWWW"])
    bag = enc.backbone
    with torch.no_grad():
        got = bag(batch["input_ids"], batch["attention_mask"], enc.embedding)[0]
        want = bag.gains[0] * enc.embedding(torch.as_tensor(enc.alphabet.encode(seq))).mean(0)
        for k, table in enumerate(bag.tables, start=2):
            kmers = [seq[s:s + k] for s in range(len(seq) - k + 1)]
            rows = [index(w) for w in kmers if all(c in AA for c in w)]
            want = want + bag.gains[k - 1] * table[rows].mean(0)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_kmer_backbones_refuse_cls_pooling_and_profile_needs_its_width():
    with pytest.raises(ValueError, match="pools k-mers itself"):
        build_encoder("kmerbag-small", pooling="cls")
    with pytest.raises(ValueError, match="dim = embed_dim = 24000"):
        build_encoder("kmerprofile-small", dim=512, embed_dim=512)
    with pytest.raises(ValueError, match="head 'none' needs"):
        build_encoder("gmlp-tiny", head="none", embed_dim=8)


def test_dna_seven_letter_profile_is_the_mean_of_spaced_sqrt_profile_cosines():
    """default-dna's representation (3 spaced 7-letter patterns) against a Counter reference built from scratch."""
    enc = build_encoder("kmerprofile-small", alphabet="dna", depth=7, dim=3 * 4**7, embed_dim=3 * 4**7,
                        max_len=512).eval()
    with torch.no_grad():
        enc.backbone.composition_gain.zero_()
    rng = np.random.default_rng(3)
    root = "".join(rng.choice(list("ACGT"), 300))
    seqs = [root, root[:150] + "N" + root[151:], "".join(rng.choice(list("ACGT"), 200)), "ACGUACGUAC"]
    patterns = ["1111111", "11111101", "10111111"]
    assert enc.backbone.patterns == patterns and enc.config.embed_dim == 49_152

    def profile(seq: str, pattern: str) -> dict:
        keep = [i for i, c in enumerate(pattern) if c == "1"]
        seq = seq.replace("U", "T")
        got = Counter("".join(seq[s + i] for i in keep) for s in range(len(seq) - len(pattern) + 1))
        return {w: np.sqrt(c) for w, c in got.items() if set(w) <= set("ACGT")}

    def cosine(a: dict, b: dict) -> float:
        dot = sum(v * b.get(w, 0.0) for w, v in a.items())
        norm = np.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))
        return dot / norm if norm else 0.0

    x = enc.embed(seqs)
    for i in range(len(seqs)):
        for j in range(len(seqs)):
            want = np.mean([cosine(profile(seqs[i], p), profile(seqs[j], p)) for p in patterns])
            assert float(x[i] @ x[j]) == pytest.approx(want, abs=1e-5)


def test_word_weights_option_is_checked_and_leaves_old_fingerprints_alone():
    default = build_encoder("kmerprofile-small", max_len=64)
    uniform = build_encoder("kmerprofile-small", max_len=64, word_weights="uniform")
    assert default.config.word_weights == "idf" and "word_weights" not in default.config.identity_dict()
    assert uniform.config.identity_dict()["word_weights"] == "uniform"
    uniform.load_state_dict(default.state_dict())
    assert uniform.fingerprint() != default.fingerprint()  # same weights, another recipe: told apart
    with pytest.raises(ValueError, match="word_weights must be one of"):
        build_encoder("kmerprofile-small", word_weights="tfidf")
    with pytest.raises(ValueError, match="word_weights applies to the kmerprofile backbone only"):
        build_encoder("gmlp-tiny", word_weights="uniform")

"""``benchmarks/dna_decoys.py``: word names of sparse columns, and the CM quarantine's scores (a removed decoy is a
``-inf`` column) equal scoring without that decoy."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def dna_decoys(benchmark_script):
    return benchmark_script("dna_decoys")


def test_word_names_decode_the_sparse_columns(dna_decoys):
    from phylocl.workflows.model_spec import resolve_model

    embedder = resolve_model("default-dna", alphabet="dna", device="cpu")
    _, name = dna_decoys.word_names("default-dna")
    rows = embedder.embed_sparse(["ACGTTGCA"])  # 2 contiguous 7-mers, one word of each 8-long spaced pattern
    names = sorted(name(int(c)) for c in rows.indices)
    assert names == sorted(["ACGTTGC", "CGTTGCA", "ACGTTG.A", "A.GTTGCA"])
    top = dna_decoys.shared_words(embedder, "default-dna", ["ACGTTGCA"], ["TTACGTTGCTT"], 5)["top_words"]
    assert [w for w, _ in top] == ["ACGTTGC"] and top[0][1] == pytest.approx(1.0)  # the one word they share


def test_quarantined_decoys_score_as_if_absent(dna_decoys, monkeypatch):
    monkeypatch.setattr(dna_decoys, "DEPTH", 4)
    rng = np.random.default_rng(0)
    fams = ["a"] * 4 + ["b"] * 3  # 7 dev rows, then 6 decoys
    s = rng.random((7, 13)).astype(np.float32)
    s[0, 9] = s[1, 9] = s[4, 9] = 5.0  # decoy 2 outranks every relative of three queries
    gone = s.copy()
    gone[:, 9] = -np.inf
    quarantined, _ = dna_decoys.recall_figures(gone, fams, 6)
    absent, _ = dna_decoys.recall_figures(np.delete(s, 9, axis=1), fams, 5)
    as_is, _ = dna_decoys.recall_figures(s, fams, 6)
    assert quarantined == absent
    assert quarantined["all"]["auc1"] > as_is["all"]["auc1"]  # the check can fail: the decoy did cost something

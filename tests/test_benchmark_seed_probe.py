"""``benchmarks/seed_probe.py``: the seed stage's best-diagonal counts equal a slow loop over all k-mer pairs, and
its recall figures count relatives as defined (self excluded, per family size)."""

from __future__ import annotations

import json

import numpy as np
import pytest

LETTERS = np.array(list("ACDEFGHIKLMNPQRSTVWYX"))


@pytest.fixture
def probe(benchmark_script):
    return benchmark_script("seed_probe")


def _slow_best_diagonals(probe, query, seqs, groups, k):
    """For each database sequence, the most k-mer matches (reduced alphabet) on one diagonal, by brute force."""
    table, size = probe.letter_table(groups)
    red = lambda s: [int(table[ord(c)]) for c in s]  # noqa: E731
    q = red(query)
    out = []
    for s in seqs:
        t = red(s)
        per_diag = {}
        for i in range(len(q) - k + 1):
            for j in range(len(t) - k + 1):
                if q[i:i + k] == t[j:j + k]:
                    per_diag[j - i] = per_diag.get(j - i, 0) + 1
        out.append(max(per_diag.values(), default=0))
    return np.array(out)


@pytest.mark.parametrize("k", [2, 3])
def test_candidates_rank_by_best_diagonal_like_brute_force(probe, k):
    rng = np.random.default_rng(k)
    seqs = ["".join(rng.choice(LETTERS[:8], int(rng.integers(3, 40)))) for _ in range(30)]
    groups = "AC,DE,FG"  # H and X fall in the rest group
    table, size = probe.letter_table(groups)
    index = probe.SeedIndex(seqs=seqs, table=table, size=size, k=k)
    for query in seqs[:5] + ["".join(rng.choice(LETTERS[:8], 25)), "A"]:
        best = _slow_best_diagonals(probe, query, seqs, groups, k)
        rows, read = index.candidates(query, 10)
        want = [r for r in np.lexsort((np.arange(len(seqs)), -best))[:10] if best[r] > 0]
        assert rows.tolist() == want
        codes = probe.kmer_codes(query, table, size, k)
        assert read == sum(int((probe.kmer_codes(s, table, size, k)[:, None] == codes[None, :]).sum()) for s in seqs)


def test_groups_merge_letters_and_the_rest_is_one_letter(probe):
    table, size = probe.letter_table("IV,LM")
    assert size == 3
    assert table[ord("I")] == table[ord("v")] == 0 and table[ord("L")] == table[ord("M")] == 1
    assert table[ord("A")] == table[ord("X")] == 2
    assert probe.kmer_codes("IVLA", table, size, 2).tolist() == [0 * 3 + 0, 0 * 3 + 1, 1 * 3 + 2]


def test_recall_counts_relatives_without_self(probe):
    ranked = {"f1_a": ["f1_a", "f1_b", "f2_a", "f1_c"], "f2_a": ["f1_a", "f2_b"]}
    r = probe.recall(ranked, {"f1_a": 2, "f2_a": 1})
    assert r["recall@10"] == pytest.approx((2 / 2 + 1 / 1) / 2)
    r = probe.recall({"f1_a": ["f1_b", "f2_a", "f1_c"]}, {"f1_a": 2})
    assert r["recall@10"] == 1.0
    r = probe.recall({"f1_a": ["f1_b", "f1_c"]}, {"f1_a": 2, "f2_a": 1, "f3_a": 0})  # f2_a: no list, counts 0
    assert r["recall@10"] == 0.5


def test_main_prints_seed_and_hits_figures(probe, tmp_path, capsys):
    db = tmp_path / "db.fasta"
    db.write_text(">f1_s0\nMKVLAAGHHW\n>f1_s1\nMKVLAAGHHY\n>f2_s0\nPPPPQQQQRR\n>f2_s1\nPPPPQQQQRK\n")
    q = tmp_path / "q.fasta"
    q.write_text(">f1_s0\nMKVLAAGHHW\n")
    hits = tmp_path / "h.tsv"
    hits.write_text("query\ttarget\tscore\trank\nf1_s0\tf2_s0\t0.9\t1\nf1_s0\tf1_s1\t0.8\t2\n")
    assert probe.main(["--db", str(db), "--queries", str(q), "--k", "3", "--hits", str(hits)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0]["recall@10"] == 1.0 and lines[0]["stage"] == str(hits)
    assert lines[1]["stage"] == "seed k=3" and lines[1]["recall@10"] == 1.0 and lines[1]["postings_per_query"] > 0


def test_labels_give_families(probe, tmp_path, capsys):
    db = tmp_path / "db.fasta"
    db.write_text(">a\nMKVLAAGHHW\n>b\nMKVLAAGHHY\n>c\nPPPPQQQQRR\n")
    labels = tmp_path / "labels.tsv"
    labels.write_text("sequence_id\tfamily_id\na\tF1\nb\tF1\nc\tF2\n")
    assert probe.main(["--db", str(db), "--queries", str(db), "--k", "3", "--labels", str(labels)]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[0])
    assert out["recall@10"] == 1.0  # a and b find each other; c has no relative and is not averaged
    assert probe.family("a") == "F1" and probe.family("zz_1") == "zz"


def test_union_joins_two_lists_without_repeats_or_self(probe):
    a = {"q": ["x", "y", "q"], "r": ["z"]}
    b = {"q": ["y", "w", "v"], "s": ["t"]}
    assert probe.joined(a, b, 3) == {"q": ["x", "y", "w"], "r": ["z"], "s": ["t"]}
    assert probe.joined(a, b, 10)["q"] == ["x", "y", "w", "v"]

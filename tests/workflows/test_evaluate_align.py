"""``phylocl evaluate``: prefilter recall@k and the aligned ranking's figures (--align), on toy cases by hand."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.cli import main
from phylocl.retrieval.hits import HitLists
from phylocl.workflows.evaluate import PREFILTER_KS, evaluate
from phylocl.workflows.evaluate_align import aligned_figures

A = "MKVLAAGIVGLLLAWPQRSTVVEEKKLLMNPQRSTWYACDEFGHIK"
B = "WWHHCCPPYYFFMMWWHHCCPPYYFFMMNNQQDDEERRKKSSTTGG"


def test_aligned_figures_by_hand():
    """Rows: a1, a2 (family a), b1, b2 (family b). The embedding ranks the wrong family first for every query."""
    seqs = [A, A[:40] + "QQ", B, B[2:]]
    labels = ["a", "a", "b", "b"]
    wrong = {0: [2, 3, 1], 1: [3, 2, 0], 2: [0, 1, 3], 3: [1, 0, 2]}  # other family, then the relative
    hits = HitLists.from_lists([(wrong[i], [0.9, 0.8, 0.7]) for i in range(4)])
    full = aligned_figures(hits, seqs, labels, labels, ks=(1, 2), candidates=3, alphabet="protein")
    # aligned: the relative scores far above the unrelated sequence (whose E-value exceeds 10 and is dropped)
    assert full["top1"] == 1.0 and full["auc1"] == 1.0 and full["map_r"] == 1.0 and full["recall@1"] == 1.0
    one = aligned_figures(hits, seqs, labels, labels, ks=(1, 2), candidates=1, alphabet="protein")
    # one candidate: only the unrelated sequence is aligned, so nothing relevant can be found (the prefilter bound)
    assert one["top1"] == 0.0 and one["auc1"] == 0.0 and one["recall@2"] == 0.0
    assert full["candidates"] == 3 and full["scoring"]["matrix"] == "BLOSUM62"


@pytest.fixture
def toy(tmp_path):
    rng = np.random.default_rng(0)
    aa = list("ACDEFGHIKLMNPQRSTVWY")
    lines, labels = [], ["sequence_id\tfamily_id"]
    for f in range(5):
        root = rng.choice(aa, size=60)
        for m in range(4):
            s = root.copy()
            hit = rng.random(60) < 0.35
            s[hit] = rng.choice(aa, size=int(hit.sum()))
            lines.append(f">f{f}_{m}\n{''.join(s)}\n")
            labels.append(f"f{f}_{m}\tf{f}")
    (tmp_path / "sequences.fasta").write_text("".join(lines))
    (tmp_path / "labels.tsv").write_text("\n".join(labels) + "\n")
    return tmp_path


def test_evaluate_reports_prefilter_recall_and_the_aligned_ranking(toy):
    plain = evaluate(data=toy, model="kmer:1", ks=[1, 10], progress=False)
    assert set(plain["prefilter_recall"]) == {f"recall@{k}" for k in PREFILTER_KS} and "aligned" not in plain
    assert plain["prefilter_recall"]["recall@10"] == plain["recall@10"]
    assert plain["prefilter_recall"]["recall@100"] == 1.0  # 19 others: every relative is among the top 100
    res = evaluate(data=toy, model="kmer:1", ks=[1, 10], progress=False, align=True, candidates=19)
    a = res["aligned"]
    assert a["n_queries"] == 20 and a["candidates"] == 19
    # composition alone (kmer:1) ranks families poorly; the alignment of the same candidates ranks them right
    assert plain["auc1"] < 0.9 and a["auc1"] == 1.0 and a["map_r"] == 1.0
    for k in ("top1", "recall@10", "map_r", "auc1"):
        assert res[k] == plain[k]  # the embedding figures are unchanged by --align
    assert a["filter_pvalue"] == 0.02  # search's default ungapped filter, recorded
    unfiltered = evaluate(data=toy, model="kmer:1", ks=[1, 10], progress=False, align=True, candidates=19,
                          filter_pvalue=1.0)["aligned"]
    assert unfiltered["filter_pvalue"] == 1.0 and unfiltered["auc1"] == 1.0
    few = evaluate(data=toy, model="kmer:1", ks=[1, 10], progress=False, align=True, candidates=2)
    assert few["aligned"]["recall@10"] <= 2 / 3 + 1e-9  # at most 2 of 3 relatives among 2 candidates


def test_cli_align_table_and_bad_candidates(toy, capsys):
    assert main(["evaluate", "--model", "kmer:1", "--data", str(toy), "--align", "--candidates", "19",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "embedding   aligned" in out and "prefilter  recall@10" in out
    assert main(["evaluate", "--model", "kmer:1", "--data", str(toy), "--align", "--candidates", "0",
                 "--quiet"]) == 2
    assert "--candidates must be >= 1" in capsys.readouterr().err
    for flags, message in ((["--filter-pvalue", "-1"], "--filter-pvalue must be > 0"),
                           (["--threads", "0"], "--threads must be >= 1"),  # was a ValueError traceback
                           (["--evalue", "0"], "--evalue must be > 0")):  # as search refuses them
        assert main(["evaluate", "--model", "kmer:1", "--data", str(toy), "--align", *flags, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1

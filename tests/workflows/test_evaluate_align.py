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


@pytest.mark.parametrize("flags, named", [(["--candidates", "1000"], "--candidates"), (["--evalue", "1e-5"], "--evalue"),
                                          (["--matrix", "PAM30", "--threads", "1"], "--matrix, --threads")])
def test_aligner_options_without_align_are_named_in_a_note(toy, capsys, flags, named):
    """They were silently ignored: the embedding figures alone came back, as if they had not been given."""
    assert main(["evaluate", "--model", "kmer:1", "--data", str(toy), *flags, "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"note: evaluate without --align (the embedding figures alone) does not use {named} (not applied)" in err
    assert main(["evaluate", "--model", "kmer:1", "--data", str(toy), "--quiet"]) == 0
    assert "does not use" not in capsys.readouterr().err


def test_minus_hits_are_the_reverse_complements_exact_neighbours_without_self():
    """Mutation audit: ``minus_hits`` against a brute-force reference over several buffers (row offsets advance
    from buffer to buffer) with a sequence that is its own reverse complement (its self match must be excluded)."""
    from phylocl.align.strands import reverse_complement
    from phylocl.workflows.embed_buffers import embed_buffers
    from phylocl.workflows.evaluate_align import minus_hits
    from phylocl.workflows.model_spec import resolve_model

    rng = np.random.default_rng(5)
    seqs = ["".join(rng.choice(list("ACGT"), size=int(rng.integers(60, 120)))) for _ in range(6)]
    seqs[3] = seqs[0][:50] + reverse_complement(seqs[0][:50])  # a palindrome: rc(s) == s
    seqs[5] = reverse_complement(seqs[1])
    emb = resolve_model("kmer:3", alphabet="dna")
    [(db_x, _, _)] = embed_buffers([(str(i), s, None) for i, s in enumerate(seqs)], emb, batch_size=4)
    [(rc_x, _, _)] = embed_buffers([(str(i), reverse_complement(s), None) for i, s in enumerate(seqs)], emb,
                                   batch_size=4)
    got = minus_hits(emb, seqs, db_x, 3, batch_size=2, buffer_size=2)
    assert got.n_queries == len(seqs)
    for i in range(len(seqs)):
        sims = (rc_x[i] @ db_x.T).astype(np.float64)
        sims[i] = -np.inf
        rows, scores = got.query(i)
        assert i not in rows.tolist() and len(rows) == 3
        assert np.allclose(scores, np.sort(sims)[::-1][:3], rtol=1e-5, atol=0)
    assert got.query(1)[0][0] == 5 and got.query(5)[0][0] == 1  # each other's reverse complement, first


def test_aligned_figures_short_merged_lists_align_no_padding_row():
    """Mutation audit: strands merged into fewer than ``candidates`` rows must not align the ``-1`` padding (which
    would index the last database row, here the query's only relative)."""
    rng = np.random.default_rng(2)
    q = "".join(rng.choice(list("ACGT"), size=200))
    rel = "".join(c if rng.random() > 0.05 else "A" for c in q)
    other = "".join(rng.choice(list("ACGT"), size=200))
    seqs, db_labels = [q, other, rel], ["a", None, "a"]
    plus = HitLists.from_lists([([1], [0.5])])
    minus = HitLists.from_lists([([1], [0.4])])
    res = aligned_figures(plus, seqs, ["a"], db_labels, ks=(1,), candidates=2, alphabet="dna", strand="both",
                          minus=minus)
    assert res["recall@1"] == 0.0 and res["top1"] == 0.0  # the relative was never a candidate
    found = aligned_figures(HitLists.from_lists([([1, 2], [0.5, 0.3])]), seqs, ["a"], db_labels, ks=(1,),
                            candidates=2, alphabet="dna", strand="both", minus=minus)
    assert found["recall@1"] == 1.0 and found["top1"] == 1.0


def _dna_families_with_codes(path, *, families=3, members=3, decoys=0, seed=3):
    """A dataset folder of DNA families whose members carry ~8% IUPAC ambiguity codes (``decoys``: a FASTA of
    unrelated sequences with codes beside it); returns the folder."""
    rng = np.random.default_rng(seed)

    def noisy(s, rate, letters):
        return "".join(str(rng.choice(list(letters))) if rng.random() < rate else c for c in s)

    fa, lab = [], ["sequence_id\tfamily_id"]
    for f in range(families):
        root = "".join(rng.choice(list("ACGT"), size=200))
        for m in range(members):
            fa.append(f">f{f}_{m}\n{noisy(noisy(root, 0.15, 'ACGT'), 0.08, 'RYSWKMBDHV')}\n")
            lab.append(f"f{f}_{m}\tf{f}")
    path.mkdir()
    (path / "sequences.fasta").write_text("".join(fa))
    (path / "labels.tsv").write_text("\n".join(lab) + "\n")
    if decoys:
        (path.parent / "decoys.fa").write_text("".join(
            f">d{i}\n{noisy(''.join(rng.choice(list('ACGT'), size=200)), 0.08, 'RYSWKMBDHV')}\n"
            for i in range(decoys)))
    return path


def test_align_scores_dna_ambiguity_codes_as_search_does(tmp_path, monkeypatch, capsys):
    """``evaluate --align`` read IUPAC codes as N where ``phylocl search`` keeps them for the aligner (blastn's
    scores: R against A -1, not N's -2): the aligned bit scores of the same pairs differed (22 of 24 here). Now
    each pair evaluate aligns scores what search writes for it, decoys included; the embedding still reads N."""
    import phylocl.align

    data = _dna_families_with_codes(tmp_path / "d", decoys=2)
    fa, decoys = data / "sequences.fasta", tmp_path / "decoys.fa"
    both = tmp_path / "both.fa"
    both.write_text(fa.read_text() + decoys.read_text())
    ids = [line[1:] for line in both.read_text().splitlines() if line.startswith(">")]
    seen, real = {}, phylocl.align.align_strands

    def spy(queries, targets, cands, **kw):
        res = real(queries, targets, cands, **kw)
        for i in range(len(queries)):
            t, _, bits, _ = res.query(i)
            seen.update({(ids[i], ids[j]): f"{b:.1f}" for j, b in zip(t.tolist(), bits.tolist())})
        return res

    monkeypatch.setattr(phylocl.align, "align_strands", spy)
    res = evaluate(data=data, db_extra=decoys, model="kmer:4", align=True, candidates=10, progress=False)
    plain = evaluate(data=data, db_extra=decoys, model="kmer:4", progress=False)
    assert all(res[k] == plain[k] for k in ("top1", "map_r", "auc1", "recall@1"))  # the embedding reads N
    assert main(["search", "--model", "kmer:4", "--query", str(fa), "--db", str(both), "--candidates", "10",
                 "-k", "10", "--quiet", "-o", str(tmp_path / "s.tsv")]) == 0
    rows = [line.split("\t") for line in (tmp_path / "s.tsv").read_text().splitlines()[1:]]
    wrote = {(q, t): b for q, t, _, _, b, _ in rows}
    assert len(wrote) >= 20 and seen == wrote
    assert any("by the embedding, scored as blastn scores them by the alignment" in n for n in res["notes"])


def test_align_candidates_beyond_the_default_depth_are_all_aligned(tmp_path, monkeypatch):
    """``--candidates`` above the 2,048 hits searched per query by default: evaluate aligned only 2,048 of them
    (``phylocl search`` aligns them all) and blamed the cap on the largest family in a note."""
    import phylocl.workflows.evaluate_align as evaluate_align

    rng = np.random.default_rng(0)
    n = 2060
    fa, labels = tmp_path / "s.fa", tmp_path / "l.tsv"
    fa.write_text("".join(f">s{i}\n{''.join(rng.choice(list('ACDEFGHIKLMNPQRSTVWY'), size=12))}\n"
                          for i in range(n)))
    labels.write_text("sequence_id\tfamily_id\n" + "".join(f"s{i}\tf{i // 4}\n" for i in range(n)))
    seen = {}

    def no_alignment(hits, sequences, rel, db, *, candidates, **kw):  # the candidates it would align
        seen["lengths"] = set(np.diff(hits.offsets).tolist())
        return {"candidates": candidates}

    monkeypatch.setattr(evaluate_align, "aligned_figures", no_alignment)
    res = evaluate(data=fa, labels=labels, model="kmer:1", ks=[1], progress=False, align=True, candidates=n - 1)
    assert seen["lengths"] == {n - 1} and res["notes"] == []


@pytest.mark.parametrize("windows", [0, 60])
def test_dna_candidates_of_both_strands_are_searchs_with_and_without_windows(tmp_path, monkeypatch, windows):
    """With --windows, evaluate took the DNA prefilter's candidates from the plus strand alone, where search also
    queries each reverse complement: relatives written on the other strand were never aligned (here 20 that
    search finds; aligned AUC1 0.44 against 1.0). Each query's aligned candidates are now search's hits."""
    import phylocl.align
    from phylocl.align.strands import reverse_complement

    rng = np.random.default_rng(4)

    def mutated(s):
        return "".join(str(rng.choice(list("ACGT"))) if rng.random() < 0.1 else c for c in s)

    recs = []
    for f in range(6):
        root = "".join(rng.choice(list("ACGT"), size=150))
        recs += [(f"f{f}_{m}", reverse_complement(mutated(root)) if m == 1 else mutated(root)) for m in range(3)]
    data = tmp_path / "d"
    data.mkdir()
    (data / "sequences.fasta").write_text("".join(f">{i}\n{s}\n" for i, s in recs))
    (data / "labels.tsv").write_text("sequence_id\tfamily_id\n" + "".join(f"{i}\t{i[:2]}\n" for i, _ in recs))
    decoys = [(f"d{i}", "".join(rng.choice(list("ACGT"), size=150))) for i in range(40)]
    (tmp_path / "decoys.fa").write_text("".join(f">{i}\n{s}\n" for i, s in decoys))
    (tmp_path / "db.fa").write_text((data / "sequences.fasta").read_text() + (tmp_path / "decoys.fa").read_text())
    names = [i for i, _ in recs + decoys]
    seen, real = {}, phylocl.align.align_strands

    def spy(queries, targets, cands, **kw):
        seen.update({names[i]: {names[j] for j in c} for i, c in enumerate(cands)})
        return real(queries, targets, cands, **kw)

    monkeypatch.setattr(phylocl.align, "align_strands", spy)
    res = evaluate(data=data, db_extra=tmp_path / "decoys.fa", model="kmer:4", align=True, candidates=5,
                   progress=False, windows=windows, filter_pvalue=1.0)
    flags = ["--candidates", "5", "-k", "10", "--evalue", "1e9", "--quiet", "--model", "kmer:4", "-o",
             str(tmp_path / "hits.tsv"), "--query", str(data / "sequences.fasta")]
    if windows:
        assert main(["index", "--fasta", str(tmp_path / "db.fa"), "--model", "kmer:4", "--windows", str(windows),
                     "-o", str(tmp_path / "ix"), "--quiet"]) == 0
        assert main(["search", "--index", str(tmp_path / "ix"), *flags]) == 0
    else:
        assert main(["search", "--db", str(tmp_path / "db.fa"), *flags]) == 0
    found = {}
    for line in (tmp_path / "hits.tsv").read_text().splitlines()[1:]:
        found.setdefault(line.split("\t")[0], set()).add(line.split("\t")[1])
    assert len(found) == 18 and found == seen  # every candidate aligns (evalue 1e9): the hits are the candidates
    assert res["aligned"]["auc1"] == 1.0

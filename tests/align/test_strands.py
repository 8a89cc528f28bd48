"""Both strands of DNA (phylocl.align.strands, phylocl.workflows.search_strands, ``--strand``): against a plain
reference (the plus-strand API on reverse-complemented targets), against ``blastn`` (E-values, bit scores and BLAST
tabular coordinates of minus-strand hits; skipped when BLAST+ is absent), thread counts, ``--strand plus`` as the
plus-strand API, the prefilter's reverse-complement query, and the refusals (protein, evaluate without --align)."""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest

from phylocl.align import align_candidates, describe_alignments, scoring_system
from phylocl.align.strands import align_strands, minus_coordinates, reverse_complement
from phylocl.cli import main
from phylocl.workflows.search import search
from phylocl.workflows.search_strands import merge_candidates

DNA = scoring_system("dna")
HAVE_BLASTN = shutil.which("blastn") is not None and shutil.which("makeblastdb") is not None


def _mutate(rng, s: str, rate: float) -> str:
    out = []
    for c in s:
        r = rng.random()
        out.append(str(rng.choice(list("ACGT"))) if r < rate else ("" if r < 1.1 * rate else c))
    return "".join(out)


def _family_set(seed=0, n_fam=4, members=3, flip_odd=True):
    """DNA families of mutated copies (150..400 nt); with ``flip_odd`` every other member is reverse-complemented."""
    rng = np.random.default_rng(seed)
    recs = []
    for f in range(n_fam):
        root = "".join(rng.choice(list("ACGT"), size=int(rng.integers(150, 400))))
        for m in range(members):
            s = _mutate(rng, root, 0.12)
            recs.append((f"f{f}_{m}", reverse_complement(s) if flip_odd and m % 2 else s))
    return recs


def _fasta(path, records):
    path.write_text("".join(f">{i}\n{s}\n" for i, s in records))
    return path


def test_reverse_complement():
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement(reverse_complement("GATTACAN")) == "GATTACAN"


def test_plus_is_align_candidates_and_both_takes_the_better_strand():
    recs = _family_set(1)
    seqs = [s for _, s in recs]
    cands = [[j for j in range(len(seqs)) if j != i] for i in range(len(seqs))]
    plus = align_candidates(seqs, seqs, cands, scoring=DNA, evalue=math.inf)
    sp = align_strands(seqs, seqs, cands, scoring=DNA, strand="plus", evalue=math.inf)
    for name in ("offsets", "targets", "raw", "bits", "evalues", "cand_rank"):
        assert np.array_equal(getattr(plus, name), getattr(sp, name))
    assert not sp.minus.any()
    both = align_strands(seqs, seqs, cands, scoring=DNA, evalue=math.inf)
    # reference: the plus-strand API against the reverse-complemented targets (q vs rc(t) = rc(q) vs t)
    rc = [reverse_complement(s) for s in seqs]
    ref_minus = align_candidates(seqs, rc, cands, scoring=DNA, evalue=math.inf)
    p = {(i, int(t)): int(r) for i in range(len(seqs)) for t, r, _, _ in zip(*plus.query(i))}
    m = {(i, int(t)): int(r) for i in range(len(seqs)) for t, r, _, _ in zip(*ref_minus.query(i))}
    n_minus = 0
    for i in range(len(seqs)):
        targets, raw, _, _ = both.query(i)
        mi = both.minus[both.offsets[i]:both.offsets[i + 1]]
        assert list(raw) == sorted(raw, reverse=True)
        for t, r, is_minus in zip(targets.tolist(), raw.tolist(), mi.tolist()):
            best = max(p.get((i, t), 0), m.get((i, t), 0))
            assert r == best and is_minus == (m.get((i, t), 0) > p.get((i, t), 0))
            n_minus += is_minus
        fam = recs[i][0].split("_")[0]
        relatives = {j for j, (name, _) in enumerate(recs) if name.split("_")[0] == fam and j != i}
        assert set(targets[:len(relatives)].tolist()) == relatives  # every relative first, on whichever strand
    assert n_minus >= 8  # the reverse-complemented members are minus-strand hits


def test_threads_and_pair_reuse_do_not_change_both_strands():
    recs = _family_set(2)
    seqs = [s for _, s in recs]
    cands = [list(np.random.default_rng(i).permutation(len(seqs))) for i in range(len(seqs))]
    a = align_strands(seqs, seqs, cands, scoring=DNA, threads=1, evalue=1.0)
    b = align_strands(seqs, seqs, cands, scoring=DNA, threads=2, evalue=1.0, query_rows=range(len(seqs)))
    for name in ("offsets", "targets", "raw", "bits", "evalues", "cand_rank", "minus"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_minus_strand_coordinates_follow_the_plus_strand_reference():
    rng = np.random.default_rng(3)
    q = "".join(rng.choice(list("ACGT"), size=300))
    t = "GGGCCC" + reverse_complement(_mutate(rng, q[40:260], 0.1)) + "TTTAAA"
    [s] = [minus_coordinates(a, len(q)) for a in describe_alignments(reverse_complement(q), [t], DNA)]  # rc(q) vs t
    [ref] = describe_alignments(q, [reverse_complement(t)], DNA)  # q against the target's minus strand
    n = len(t)
    assert s.sstart > s.send and s.qstart < s.qend
    assert (s.qstart, s.qend) == (ref.qstart, ref.qend)
    assert (s.sstart, s.send) == (n - ref.sstart + 1, n - ref.send + 1)
    assert (s.score, s.length, s.mismatch, s.gapopen) == (ref.score, ref.length, ref.mismatch, ref.gapopen)


def test_merge_candidates_keeps_each_row_at_its_best_score():
    s = np.array([[0.9, 0.5, 0.2, -np.inf]], dtype=np.float32)
    r = np.array([[3, 1, 7, -1]])
    ms = np.array([[0.95, 0.5, 0.4, 0.1]], dtype=np.float32)
    mr = np.array([[8, 3, 1, 2]])
    out_s, out_r = merge_candidates(s, r, ms, mr, 4)
    assert out_r.tolist() == [[8, 3, 1, 7]] and out_s.tolist()[0] == pytest.approx([0.95, 0.9, 0.5, 0.2])  # row 2 (0.1) drops out
    out_s, out_r = merge_candidates(s[:, :1], r[:, :1], np.full((1, 1), -np.inf), np.full((1, 1), -1), 2)
    assert out_r.tolist() == [[3, -1]]


def test_search_finds_reverse_complemented_relatives_and_plus_is_the_plus_api(tmp_path, capsys):
    recs = _family_set(4, n_fam=5)
    fa = _fasta(tmp_path / "d.fa", recs)
    ids, seqs = [i for i, _ in recs], [s for _, s in recs]
    assert main(["search", "--model", "kmer:4", "--query", str(fa), "--db", str(fa), "-k", "2", "--evalue", "1e-5",
                 "-o", str(tmp_path / "both.tsv"), "--candidates", "3"]) == 0
    assert "both strands" in capsys.readouterr().out
    rows = [line.split("\t") for line in (tmp_path / "both.tsv").read_text().splitlines()[1:]]
    assert len(rows) == 15 * 2 and all(q.split("_")[0] == t.split("_")[0] for q, t, *_ in rows)  # all relatives
    # --strand plus: the plus-strand API over the embedding's candidates (3 candidates: a k-mer embedding ranks a
    # reverse-complemented relative as unrelated, so a relative on the other strand is missed)
    res = search(query=fa, db=fa, out=tmp_path / "plus.tsv", model="kmer:4", k=2, evalue=1e-5, candidates=3,
                 strand="plus", progress=False)
    assert res.strand == "plus"
    prow = [line.split("\t") for line in (tmp_path / "plus.tsv").read_text().splitlines()[1:]]
    from phylocl.workflows.embed_buffers import embed_all
    from phylocl.workflows.model_spec import resolve_model

    x, _ = embed_all([(i, s, None) for i, s in recs], resolve_model("kmer:4", alphabet="dna"))
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    cands = [list(np.argsort(-sims[i], kind="stable")[:3]) for i in range(len(ids))]
    ref = align_candidates(seqs, seqs, cands, scoring=DNA, evalue=1e-5, max_hits=2)
    want = [(ids[i], ids[t], f"{b:.1f}") for i in range(len(ids)) for t, _, b, _ in zip(*ref.query(i))]
    assert sorted((q, t, b) for q, t, _, _, b, _ in prow) == sorted(want)
    assert len(prow) < len(rows)  # the plus strand alone misses relatives the both-strand search finds
    # an index bundle (sparse rows) gives the same both-strand hits, at 1 and 2 threads
    assert main(["index", "--fasta", str(fa), "--model", "kmer:4", "-o", str(tmp_path / "ix"), "--quiet"]) == 0
    for threads in ("1", "2"):
        assert main(["search", "--query", str(fa), "--index", str(tmp_path / "ix"), "-k", "2", "--evalue", "1e-5",
                     "-o", str(tmp_path / f"ix{threads}.tsv"), "--candidates", "3", "--quiet",
                     "--threads", threads]) == 0
        assert (tmp_path / f"ix{threads}.tsv").read_text() == (tmp_path / "both.tsv").read_text()


def test_no_align_both_strands_ranks_reverse_complemented_relatives_first(tmp_path):
    recs = _family_set(5, n_fam=4)
    fa = _fasta(tmp_path / "d.fa", recs)
    search(query=fa, db=fa, out=tmp_path / "p.tsv", model="kmer:4", k=2, align=False, progress=False)
    search(query=fa, db=fa, out=tmp_path / "b.tsv", model="kmer:4", k=2, align=False, strand="both", progress=False)

    def same_family(path):
        rows = [line.split("\t") for line in path.read_text().splitlines()[1:]]
        return sum(q.split("_")[0] == t.split("_")[0] for q, t, *_ in rows)

    assert same_family(tmp_path / "b.tsv") == 12 * 2 > same_family(tmp_path / "p.tsv")


@pytest.mark.parametrize("args, message", [
    (["--strand", "plus"], "--strand is for DNA searches"),
    (["--strand", "both"], "--strand is for DNA searches"),
])
def test_strand_is_refused_for_protein(tmp_path, capsys, args, message):
    fa = _fasta(tmp_path / "p.fa", [("a", "MKVLAAGIVGLLLAW"), ("b", "MKVLAAGIVGLLLAF")])
    out = tmp_path / "h.tsv"
    assert main(["search", "--model", "kmer:2", "--query", str(fa), "--db", str(fa), "-o", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not out.exists()


def test_evaluate_strand_needs_align(tmp_path, capsys):
    recs = _family_set(6)
    fa = _fasta(tmp_path / "d.fa", recs)
    labels = tmp_path / "l.tsv"
    labels.write_text("sequence_id\tfamily_id\n" + "".join(f"{i}\t{i.split('_')[0]}\n" for i, _ in recs))
    assert main(["evaluate", "--model", "kmer:4", "--data", str(fa), "--labels", str(labels), "--strand",
                 "plus"]) == 2
    assert "add --align" in capsys.readouterr().err
    from phylocl.workflows.evaluate import evaluate

    r = {s: evaluate(data=fa, labels=labels, model="kmer:4", ks=(1,), align=True, strand=s, candidates=2,
                     progress=False)["aligned"] for s in ("plus", "both")}
    assert r["both"]["strand"] == "both" and r["both"]["auc1"] == 1.0 > r["plus"]["auc1"]


# ----------------------------------------------------------------------------- against blastn
def _blastn(tmp_path, queries, db, *extra):
    qf, df = _fasta(tmp_path / "q.fa", queries), _fasta(tmp_path / "db.fa", db)
    subprocess.run(["makeblastdb", "-in", str(df), "-dbtype", "nucl", "-out", str(tmp_path / "db")],
                   capture_output=True, check=True)
    out = subprocess.run(["blastn", "-task", "blastn", "-dust", "no", "-query", str(qf), "-db", str(tmp_path / "db"),
                          "-evalue", "1000", "-max_hsps", "1", *extra,
                          "-outfmt", "6 qseqid sseqid score evalue bitscore qstart qend sstart send pident length mismatch gapopen "
                          "sstrand"],
                         capture_output=True, text=True, check=True).stdout
    return {(f[0], f[1]): f[2:] for f in (line.split("\t") for line in out.splitlines())}


def _bits_agree(ours: float, printed: str) -> bool:
    """blastn prints one decimal below 100 bits and the integer part (truncated) above."""
    return abs(ours - float(printed)) <= 0.05 if "." in printed else math.floor(ours) == int(printed)


@pytest.mark.skipif(not HAVE_BLASTN, reason="NCBI BLAST+ not installed (apt-get install ncbi-blast+)")
def test_evalues_bits_and_coordinates_match_blastn_on_both_strands(tmp_path):
    from Bio import SearchIO

    rng = np.random.default_rng(7)
    base = ["".join(rng.choice(list("ACGT"), size=int(rng.integers(200, 500)))) for _ in range(5)]
    queries = [(f"q{i}", _mutate(rng, b, 0.12)) for i, b in enumerate(base)]
    db = [(f"d{i}_{s}", reverse_complement(_mutate(rng, b, 0.15)) if s == "minus" else _mutate(rng, b, 0.15))
          for i, b in enumerate(base) for s in ("plus", "minus")]
    db += [(f"r{j}", "".join(rng.choice(list("ACGT"), size=300))) for j in range(10)]
    blast = _blastn(tmp_path, queries, db)
    assert _blastn(tmp_path, queries, db, "-strand", "plus").items() <= {
        k: v for k, v in blast.items() if v[-1] == "plus"}.items()  # searching both strands changes no E-value
    fq = tmp_path / "q.fa"
    out = tmp_path / "h.m8"
    assert main(["search", "--model", "kmer:4", "--query", str(fq), "--db", str(tmp_path / "db.fa"), "-k", "2",
                 "--format", "blast6", "--evalue", "1e-5", "-o", str(out), "--quiet"]) == 0
    hits = {(qr.id, h.id): h.hsps[0] for qr in SearchIO.parse(str(out), "blast-tab") for h in qr.hits}
    lines = {tuple(line.split("\t")[:2]): line.split("\t") for line in out.read_text().splitlines()}
    assert len(hits) == 10 and all(t.startswith(f"d{q[1:]}_") for q, t in hits)  # both relatives of each query
    checked_minus = 0
    for (q, t), hsp in hits.items():
        score, ev, bits, qs, qe, ss, se, pident, length, mismatch, gapopen, strand = blast[q, t]
        assert strand == t.split("_")[1]
        f = lines[q, t]
        assert f[2:6] == [pident, length, mismatch, gapopen]  # blast6's pident (3 decimals) and counts, as blastn's
        assert hsp.evalue == pytest.approx(float(ev), rel=0.01, abs=0) and _bits_agree(float(f[11]), bits)
        # Biopython reads the coordinates 0-based, each range ascending; the file keeps blastn's order
        assert (hsp.query_start, hsp.query_end) == (int(qs) - 1, int(qe))
        assert (int(f[8]), int(f[9])) == (int(ss), int(se))
        assert (int(f[8]) > int(f[9])) == (strand == "minus")
        checked_minus += strand == "minus"
    assert checked_minus == 5


@pytest.mark.skipif(not HAVE_BLASTN, reason="NCBI BLAST+ not installed (apt-get install ncbi-blast+)")
@pytest.mark.parametrize("gaps", [(4, 4), (2, 4), (0, 4), (3, 3), (6, 2), (4, 2), (2, 2)])
def test_evalues_match_blastn_for_each_gap_cost_it_accepts(tmp_path, gaps):
    """Each tabulated gap cost of +2/-3 gives blastn's E-values and bit scores (Lambda, K and the finite-size
    correction's alpha and beta all enter them) on pairs where both find the same alignment score."""
    from Bio import SearchIO

    go, ge = gaps
    rng = np.random.default_rng(11)
    base = ["".join(rng.choice(list("ACGT"), size=int(rng.integers(200, 500)))) for _ in range(6)]
    queries = [(f"q{i}", _mutate(rng, b, 0.15)) for i, b in enumerate(base)]
    db = [(f"d{i}", _mutate(rng, b, 0.2)) for i, b in enumerate(base)]
    db += [(f"r{j}", "".join(rng.choice(list("ACGT"), size=300))) for j in range(10)]
    blast = _blastn(tmp_path, queries, db, "-reward", "2", "-penalty", "-3", "-gapopen", str(go), "-gapextend",
                    str(ge), "-strand", "plus")
    out = tmp_path / "h.m8"
    assert main(["search", "--model", "kmer:4", "--query", str(tmp_path / "q.fa"), "--db", str(tmp_path / "db.fa"),
                 "-k", "1", "--format", "blast6", "--evalue", "1e-3", "--strand", "plus", "--gap-open", str(go),
                 "--gap-extend", str(ge), "-o", str(out), "--quiet"]) == 0
    checked = 0
    for qr in SearchIO.parse(str(out), "blast-tab"):
        for h in qr.hits:
            score, ev, bits = blast[qr.id, h.id][:3]
            assert h.id == f"d{qr.id[1:]}"
            line = next(f for f in (x.split("\t") for x in out.read_text().splitlines()) if f[:2] == [qr.id, h.id])
            if _bits_agree(float(line[11]), bits):  # the same raw score (blastn's extension may stop short)
                assert h.hsps[0].evalue == pytest.approx(float(ev), rel=0.01, abs=0)  # (approx: abs 1e-12 else)
                checked += 1
    assert checked >= 4


def test_all_against_all_blast6_equals_a_search_of_a_copy(tmp_path):
    # against itself, pairs of two queries are aligned and traced once (plus strand) and mirrored; minus-strand hits
    # are traced on their own: the lines must equal those of the same search against a copy of the file
    recs = _family_set(8, n_fam=3)
    fa = _fasta(tmp_path / "d.fa", recs)
    copy = _fasta(tmp_path / "copy.fa", recs)
    common = ["--model", "kmer:4", "-k", "3", "--format", "blast6", "--evalue", "1e-5", "--quiet", "--query", str(fa)]
    assert main(["search", *common, "--db", str(fa), "-o", str(tmp_path / "self.m8")]) == 0
    assert main(["search", *common, "--db", str(copy), "-o", str(tmp_path / "copy.m8")]) == 0
    lines = (tmp_path / "self.m8").read_text().splitlines()
    assert lines == (tmp_path / "copy.m8").read_text().splitlines()  # (self hits are left out by id in both)
    assert len(lines) == 9 * 2  # every relative, no other hit under 1e-5
    minus = [f for f in (line.split("\t") for line in lines) if int(f[8]) > int(f[9])]
    assert minus and all(int(f[6]) < int(f[7]) for f in minus)


def test_whole_pairs_traced_in_the_scoring_pass_write_the_same_lines(tmp_path, monkeypatch):
    # near-identical DNA genes on both strands, all-against-all in blast6 with -k over the candidates: the scoring
    # pass traces the whole pairs and the tracebacks skip them; the lines are those written without that shortcut
    import phylocl.align.traceback as traceback
    import phylocl.workflows.search_align as search_align

    rng = np.random.default_rng(4)
    recs = []
    for f in range(3):
        root = "".join(rng.choice(list("ACGT"), size=int(rng.integers(300, 500))))
        recs += [(f"f{f}_{m}", reverse_complement(s) if m % 2 else s)
                 for m, s in enumerate(_mutate(rng, root, 0.02) for _ in range(3))]
    fa = _fasta(tmp_path / "d.fa", recs)
    traced = []
    real = search_align.trace_tables
    monkeypatch.setattr(search_align, "trace_tables",
                        lambda groups, s, **kw: traced.append(sum(len(g[1]) for g in groups)) or real(groups, s, **kw))
    args = ["search", "--model", "kmer:4", "-k", "50", "--format", "blast6", "--quiet", "--query", str(fa),
            "--db", str(fa), "--threads", "2"]
    assert main([*args, "-o", str(tmp_path / "fast.m8")]) == 0
    n_fast = sum(traced)
    traced.clear()
    monkeypatch.setattr(traceback, "_whole_likely", lambda *a: False)
    assert main([*args, "-o", str(tmp_path / "plain.m8")]) == 0
    lines = (tmp_path / "fast.m8").read_text().splitlines()
    assert lines == (tmp_path / "plain.m8").read_text().splitlines()
    assert sum(int(f[8]) > int(f[9]) for f in (line.split("\t") for line in lines)) >= 6  # minus-strand hits
    assert n_fast + 9 <= sum(traced)  # the 9 pairs of relatives (each traced once) were traced while scored


def test_both_strands_count_each_strands_candidate_pairs():
    """n_aligned / n_candidates is the share of candidate pairs aligned: with both strands each strand's pairs
    count, so it stays <= 1 (evaluate --align reported aligned_fraction 2.0 for DNA)."""
    recs = _family_set(seed=3)
    seqs = [s for _, s in recs]
    cands = [[j for j in range(len(seqs)) if j != i] for i in range(len(seqs))]
    plus = align_strands(seqs, seqs, cands, scoring=DNA, strand="plus", evalue=math.inf, filter_pvalue=1.0)
    both = align_strands(seqs, seqs, cands, scoring=DNA, strand="both", evalue=math.inf, filter_pvalue=1.0)
    assert plus.n_candidates == sum(map(len, cands)) and both.n_candidates == 2 * plus.n_candidates
    assert both.n_aligned == both.n_candidates and plus.n_aligned == plus.n_candidates


def test_both_strands_ties_follow_candidate_order_and_the_evalue_threshold_is_inclusive():
    """Mutation audit: equal raw scores are ranked by candidate order (not reversed), on either strand, and a hit
    whose E-value equals ``evalue`` is kept (BLAST drops only hits with E > threshold)."""
    rng = np.random.default_rng(11)
    q = "".join(rng.choice(list("ACGT"), size=240))
    rel = _mutate(rng, q, 0.1)
    far = "".join(rng.choice(list("ACGT"), size=240))
    for targets in ([rel, rel, far], [reverse_complement(rel)] * 2 + [far]):
        for cands in ([1, 0, 2], [0, 1, 2], [2, 0, 1]):
            hits = align_strands([q], targets, [cands], scoring=DNA, evalue=math.inf)
            t, raw, _, ev = hits.query(0)
            assert raw[0] == raw[1] > raw[2]
            assert t[:2].tolist() == [c for c in cands if c != 2]  # the tie in candidate order
            kept = align_strands([q], targets, [cands], scoring=DNA, evalue=float(ev[0]))
            assert kept.query(0)[0].tolist() == t[:2].tolist()  # E == threshold: kept
            dropped = align_strands([q], targets, [cands], scoring=DNA, evalue=float(np.nextafter(ev[0], 0)))
            assert dropped.query(0)[0].tolist() == []

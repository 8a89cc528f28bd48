"""The letter columns of ``--format "6 ..."`` (``positive ppos qseq sseq btop``, phylocl.align.aligned_letters): equal to
blastp's and blastn's (both strands) where the optimal alignment is unique; on random pairs, without BLAST, the
letters describe the alignment the count columns describe (slices, length, nident, mismatch, gapopen, score,
positive, btop), mirrored pairs of an all-against-all search swap qseq and sseq, and the other columns are the
bytes the search writes without the letters."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from phylocl.align.aligned_letters import aligned_letters, expand_btop
from phylocl.align.scoring import scoring_system
from phylocl.align.strands import reverse_complement
from phylocl.align.traceback import mirror_ops, trace_tables
from phylocl.cli import main

from .test_blast6_columns import AA, HAVE_BLAST, _blast, _fasta, _search_lines

COUNTS = "qseqid sseqid score length nident mismatch gapopen qstart qend sstart send"
LETTERS = "positive ppos qseq sseq btop"
FMT = f"6 {COUNTS} {LETTERS}"


def _rows(path):
    names = FMT.split()[1:]
    return [dict(zip(names, line.split("\t"))) for line in path.read_text().splitlines()]


def _check_letters(r, query, subject, scoring):
    """The letter columns of one hit describe the alignment of its count columns."""
    q, s, n = r["qseq"], r["sseq"], int(r["length"])
    qstart, qend, sstart, send = (int(r[c]) for c in ("qstart", "qend", "sstart", "send"))
    if sstart > send:  # minus strand: the subject reverse-complemented
        subject, sstart, send = reverse_complement(subject), len(subject) - sstart + 1, len(subject) - send + 1
    assert len(q) == len(s) == n and qstart <= qend
    assert q.replace("-", "") == query[qstart - 1:qend] and s.replace("-", "") == subject[sstart - 1:send]
    pairs = [(a, b) for a, b in zip(q, s) if a != "-" and b != "-"]
    assert sum(a == b for a, b in pairs) == int(r["nident"])
    assert sum(a != b for a, b in pairs) == int(r["mismatch"])
    gap_runs = re.findall(r"-+", q) + re.findall(r"-+", s)
    assert len(gap_runs) == int(r["gapopen"])
    score = sum(scoring.score_of(a, b) for a, b in pairs) - sum(scoring.gap_open + scoring.gap_extend * len(g)
                                                                for g in gap_runs)
    assert score == int(r["score"])
    positive = sum(a == b or scoring.score_of(a, b) > 0 for a, b in pairs)
    assert int(r["positive"]) == positive and r["ppos"] == f"{100 * positive / n:.2f}"
    assert expand_btop(r["btop"], q.replace("-", ""), s.replace("-", "")) == (q, s)


def test_ops_give_the_rows_alignments():
    """trace_tables(ops=True): the same rows, and letters that re-score to them (mirrored pairs included)."""
    sc = scoring_system("protein")
    rng = random.Random(0)

    def mutate(x):
        return "".join(rng.choice(AA) if rng.random() < 0.2 else c + (rng.choice(AA) if rng.random() < 0.03 else "")
                       for c in x if rng.random() > 0.03)

    firsts = ["".join(rng.choice(AA) for _ in range(rng.randint(20, 200))) for _ in range(6)]
    groups = [(f, [mutate(f[rng.randint(0, 10):]) for _ in range(4)] + ["".join(rng.choice(AA) for _ in range(50)),
                                                                         ""], None, None) for f in firsts]
    rows, ops, counts = trace_tables(groups, sc, ops=True)
    assert np.array_equal(rows, trace_tables(groups, sc)) and counts.sum() == len(ops)
    strings = [x for f, others, _, _ in groups for o in others for x in (f, o)]
    at = np.arange(0, len(strings), 2)
    got = aligned_letters(strings, at, at + 1, rows[:, 5] - 1, rows[:, 7] - 1, ops, counts, sc)
    flips = 0
    for i, row in enumerate(rows.tolist()):
        if row[1] == 0:
            assert got.qseq[i] == got.sseq[i] == got.btop[i] == "" and got.positive[i] == 0
            continue
        r = dict(zip(COUNTS.split()[2:], map(str, row)), positive=str(got.positive[i]), qseq=got.qseq[i],
                 sseq=got.sseq[i], btop=got.btop[i], ppos=f"{100 * got.positive[i] / row[1]:.2f}")
        _check_letters(r, strings[2 * i], strings[2 * i + 1], sc)
        flips += strings[2 * i] > strings[2 * i + 1]  # traced the other way round and mirrored
    assert flips > 3
    assert np.array_equal(mirror_ops(mirror_ops(ops)), ops)


def test_btop_and_positive_by_hand():
    sc = scoring_system("protein")
    strings = ["MKVXAW", "MKIXAW", "MKAW"]
    # MKVXAW / MKIXAW: 2 identities, V-I (BLOSUM62 3, positive), X-X (identity, scores -1), 2 identities
    ops = np.array([2 << 4 | 7, 1 << 4 | 8, 3 << 4 | 7, 2 << 4 | 7, 2 << 4 | 1, 2 << 4 | 7], dtype=np.uint32)
    got = aligned_letters(strings, np.array([0, 0]), np.array([1, 2]), np.array([0, 0]), np.array([0, 0]), ops,
                          np.array([3, 3]), sc)
    assert got.qseq == ["MKVXAW", "MKVXAW"] and got.sseq == ["MKIXAW", "MK--AW"]
    assert got.btop == ["2VI3", "2V-X-2"] and got.positive.tolist() == [6, 4]
    long = aligned_letters(["A" * 1234], np.array([0]), np.array([0]), np.array([0]), np.array([0]),
                           np.array([1234 << 4 | 7], dtype=np.uint32), np.array([1]), sc)
    assert long.btop == ["1234"]


def _unique_pairs(rng, alphabet, n, sub_rate, flank):
    """``n`` query/database pairs whose optimal alignment is unique (as far as construction can make it): a shared
    core with substitutions, one insertion and one deletion, no substitution within 4 letters of an indel, and the
    letters at each gap's ends unlike those a shifted gap would align them with (a shift would trade an identity,
    the best score of its matrix row, for a lower score), random flanks."""
    queries, db = [], []
    pick = lambda avoid: rng.choice([c for c in alphabet if c not in avoid])  # noqa: E731
    for i in range(n):
        core = [rng.choice(alphabet) for _ in range(rng.randint(120, 240))]
        a, b = len(core) // 3, 2 * len(core) // 3  # insertion site in the subject, deleted letters' start
        core[b + 3], core[b - 1] = pick(core[b]), pick(core[b + 2])  # the gap cannot slide over the deletion
        other = [pick(c) if rng.random() < sub_rate and min(abs(k - a), abs(k - b)) > 4 else c
                 for k, c in enumerate(core)]
        insert = [pick(core[a]), rng.choice(alphabet), pick(core[a - 1])]  # nor over the insertion
        other = other[:a] + insert + other[a:b] + other[b + 3:]
        queries.append((f"q{i}", flank(rng.randint(5, 80)) + "".join(core)))
        db.append((f"d{i}", "".join(other) + flank(rng.randint(5, 60))))
    return queries, db


@pytest.mark.skipif(not HAVE_BLAST, reason="NCBI BLAST+ not installed (apt-get install ncbi-blast+)")
def test_protein_letters_equal_blastps(tmp_path):
    rng = random.Random(3)
    queries, db = _unique_pairs(rng, AA, 6, 0.25, lambda n: "".join(rng.choice(AA) for _ in range(n)))
    db += [(f"r{j}", "".join(rng.choice(AA) for _ in range(150))) for j in range(10)]
    qf, df = _fasta(tmp_path / "q.fa", queries), _fasta(tmp_path / "d.fa", db)
    blast = _blast("blastp", qf, df, tmp_path, FMT, "-comp_based_stats", "0", "-seg", "no")
    lines = _search_lines(qf, df, tmp_path, "kmer:3", FMT, "1e-3")
    assert sorted(tuple(f[:2]) for f in lines) == [(f"q{i}", f"d{i}") for i in range(6)]
    sc, seqs = scoring_system("protein"), dict(queries + db)
    for f in lines:
        assert f == blast[f[0], f[1]], f  # every column, as blastp writes it
        r = dict(zip(FMT.split()[1:], f))
        _check_letters(r, seqs[r["qseqid"]], seqs[r["sseqid"]], sc)
    assert any("-" in f[-2] for f in lines) and any("-" in f[-3] for f in lines)  # gaps on both sides
    assert any(int(r[-5]) > int(r[4]) for r in lines)  # positives beyond the identities


@pytest.mark.skipif(not HAVE_BLAST, reason="NCBI BLAST+ not installed (apt-get install ncbi-blast+)")
def test_dna_letters_equal_blastns_on_both_strands(tmp_path):
    rng = random.Random(2)
    flank = lambda n: "".join(rng.choice("ACGT") for _ in range(n))  # noqa: E731
    queries, db = _unique_pairs(rng, "ACGT", 6, 0.1, flank)
    db = [(i, reverse_complement(s) if k % 2 else s) for k, (i, s) in enumerate(db)]
    db += [(f"r{j}", flank(300)) for j in range(6)]
    qf, df = _fasta(tmp_path / "q.fa", queries), _fasta(tmp_path / "d.fa", db)
    blast = _blast("blastn", qf, df, tmp_path, FMT, "-task", "blastn", "-dust", "no")
    lines = _search_lines(qf, df, tmp_path, "kmer:4", FMT, "1e-10")
    assert sorted(tuple(f[:2]) for f in lines) == [(f"q{i}", f"d{i}") for i in range(6)]
    sc, seqs = scoring_system("dna"), dict(queries + db)
    for f in lines:
        assert f == blast[f[0], f[1]], f
        r = dict(zip(FMT.split()[1:], f))
        _check_letters(r, seqs[r["qseqid"]], seqs[r["sseqid"]], sc)
        assert r["positive"] == r["nident"]
    assert sum(int(f[9]) > int(f[10]) for f in lines) == 3  # minus-strand hits: sstart > send
    assert any("-" in f[-2] for f in lines) and any("-" in f[-3] for f in lines)


@pytest.mark.skipif(not HAVE_BLAST, reason="NCBI BLAST+ not installed (apt-get install ncbi-blast+)")
def test_x_and_lower_case_letters_as_blastp_writes_them(tmp_path):
    """X against X is an identity (in nident, positive and btop's counts) though BLOSUM62 scores it -1; lower-case
    letters are written in upper case."""
    rng = random.Random(4)
    q = [rng.choice(AA) for _ in range(120)]
    q[50] = "X"
    d = list(q)
    d[20], d[80] = ("W" if q[20] != "W" else "A"), ("V" if q[80] != "V" else "I")
    query = "".join(q[:30]).lower() + "".join(q[30:])
    qf, df = _fasta(tmp_path / "q.fa", [("q", query)]), _fasta(tmp_path / "d.fa", [("d", "".join(d))])
    blast = _blast("blastp", qf, df, tmp_path, FMT, "-comp_based_stats", "0", "-seg", "no")
    (f,) = _search_lines(qf, df, tmp_path, "kmer:3", FMT, "10")  # one hit, at the default E-value threshold
    assert f == blast["q", "d"]
    assert f[-3] == "".join(q) and f[-1] == "20KW59VI39" and (f[4], f[-5]) == ("118", "119")  # X-X: identity; V-I: +3


def _related(rng, alphabet, n, length):
    """``n`` sequences in families of three (substitutions, insertions, deletions), plus an unrelated one."""
    out = []
    for f in range(n // 3):
        root = "".join(rng.choice(alphabet) for _ in range(rng.randint(length // 2, length)))
        for m in range(3):
            s = "".join(rng.choice(alphabet) if rng.random() < 0.25 else
                        c + ("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))) if rng.random() < 0.02
                             else "") for c in root if rng.random() > 0.02)
            out.append((f"f{f}m{m}", s))
    out.append(("u", "".join(rng.choice(alphabet) for _ in range(length))))
    return out


@pytest.mark.parametrize("alphabet", ["protein", "dna"])
def test_letters_describe_the_written_alignments(tmp_path, alphabet):
    """All against all (pairs traced once and mirrored; DNA on both strands): every line's letters agree with its
    counts, a plus-strand pair's two lines swap qseq and sseq, and the other columns are what the search writes without the
    letters (the default blast6 bytes too)."""
    rng = random.Random(11)
    letters = AA if alphabet == "protein" else "ACGT"
    seqs = _related(rng, letters, 12, 150 if alphabet == "protein" else 400)
    if alphabet == "dna":
        seqs = [(i, reverse_complement(s) if k % 2 else s) for k, (i, s) in enumerate(seqs)]
    df = _fasta(tmp_path / "s.fa", seqs)
    common = ["search", "--model", "kmer:3" if alphabet == "protein" else "kmer:4", "--query", str(df), "--db",
              str(df), "-k", "13", "--evalue", "10", "--threads", "2", "--quiet"]
    assert main([*common, "--format", FMT, "-o", str(tmp_path / "l.m8")]) == 0
    assert main([*common, "--format", "6 " + COUNTS, "-o", str(tmp_path / "c.m8")]) == 0
    assert main([*common, "--format", "blast6", "-o", str(tmp_path / "b.m8")]) == 0
    assert main([*common, "--format", "6 qseqid sseqid pident length mismatch gapopen qstart qend sstart send evalue "
                 "bitscore qseq", "-o", str(tmp_path / "bl.m8")]) == 0
    written = tmp_path / "l.m8"
    n_counts = len(COUNTS.split())
    lines = written.read_text().splitlines()
    assert ["\t".join(line.split("\t")[:n_counts]) for line in lines] == (tmp_path / "c.m8").read_text().splitlines()
    assert (tmp_path / "b.m8").read_text().splitlines() == [
        line.rsplit("\t", 1)[0] for line in (tmp_path / "bl.m8").read_text().splitlines()]
    sc, by_id = scoring_system(alphabet), dict(seqs)
    rows = {(r["qseqid"], r["sseqid"]): r for r in _rows(written)}
    mirrored = minus = 0
    for (a, b), r in rows.items():
        _check_letters(r, by_id[a], by_id[b], sc)
        minus += int(r["sstart"]) > int(r["send"])
        back = rows.get((b, a))
        if a != b and back is not None and int(r["sstart"]) <= int(r["send"]):  # one traceback, mirrored
            assert (back["qseq"], back["sseq"], back["score"]) == (r["sseq"], r["qseq"], r["score"])
            mirrored += 1
    # (a minus-strand pair is traced twice, rc(a) with b and rc(b) with a: co-optimal gaps may differ)
    assert mirrored >= 10 and len(rows) > 30
    assert minus >= (8 if alphabet == "dna" else 0)


def test_searcher_rows_have_typed_letter_columns(tmp_path):
    from phylocl import Searcher

    rng = random.Random(8)
    queries, db = _unique_pairs(rng, AA, 2, 0.2, lambda n: "".join(rng.choice(AA) for _ in range(n)))
    df = _fasta(tmp_path / "d.fa", db)
    assert main(["index", "--fasta", str(df), "--model", "kmer:3", "-o", str(tmp_path / "idx"), "--quiet"]) == 0
    with Searcher(index=tmp_path / "idx", k=1, out_format="6 sseqid length nident positive ppos qseq sseq btop") as s:
        rows = s.search([queries[0]])
    r = rows[0]
    assert r["sseqid"] == "d0" and isinstance(r["positive"], int) and isinstance(r["ppos"], float)
    sc = scoring_system("protein")
    assert r["positive"] == sum(a == b or (a != "-" != b and sc.score_of(a, b) > 0) for a, b in zip(r["qseq"],
                                                                                                   r["sseq"]))
    assert r["ppos"] == round(100 * r["positive"] / r["length"], 2) and r["nident"] > 0
    assert r["length"] == len(r["qseq"]) == len(r["sseq"])
    assert r["qseq"].replace("-", "") in queries[0][1] and r["sseq"].replace("-", "") in db[0][1]
    assert expand_btop(r["btop"], r["qseq"].replace("-", ""), r["sseq"].replace("-", "")) == (r["qseq"], r["sseq"])

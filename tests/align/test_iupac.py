"""DNA IUPAC ambiguity codes in the alignment stage, scored as ``blastn`` scores them: the matrix against the table
measured with blastn and against a slow reference of its rule, the reverse complement of each code, raw scores
equal to blastn's on both strands, and ``phylocl search`` (``--db``, ``--index``) keeping the codes for the aligner
while the embedding reads them as ``N``."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from phylocl.align import align_candidates
from phylocl.align.strands import align_strands, reverse_complement
from phylocl.align.traceback import trace_alignment
from phylocl.cli import main
from .test_strands import DNA, HAVE_BLASTN, _blastn, _fasta, _mutate

LETTERS = "ACGTRYSWKMBDHVN"
# measured with blastn 2.12: `blastn -task blastn -dust no -soft_masking false -evalue 1000 -max_hsps 1
# -outfmt '6 qseqid sseqid score'` on 81-nt pairs (40 random bases, the letter, 40 more), query letter (row)
# against subject letter (column), score minus the 80 matches' 160; the same with -db and -subject, gapped and
# -ungapped, and with the subject reverse-complemented (a minus-strand hit of the same score)
BLASTN = """
    A  C  G  T  R  Y  S  W  K  M  B  D  H  V  N
A   2 -3 -3 -3 -1 -3 -3 -1 -3 -1 -3 -1 -1 -1 -2
C  -3  2 -3 -3 -3 -1 -1 -3 -3 -1 -1 -3 -1 -1 -2
G  -3 -3  2 -3 -1 -3 -1 -3 -1 -3 -1 -1 -3 -1 -2
T  -3 -3 -3  2 -3 -1 -3 -1 -1 -3 -1 -1 -1 -3 -2
R  -1 -3 -1 -3 -1 -3 -1 -1 -1 -1 -1 -1 -1 -1 -2
Y  -3 -1 -3 -1 -3 -1 -1 -1 -1 -1 -1 -1 -1 -1 -2
S  -3 -1 -1 -3 -1 -1 -1 -3 -1 -1 -1 -1 -1 -1 -2
W  -1 -3 -3 -1 -1 -1 -3 -1 -1 -1 -1 -1 -1 -1 -2
K  -3 -3 -1 -1 -1 -1 -1 -1 -1 -3 -1 -1 -1 -1 -2
M  -1 -1 -3 -3 -1 -1 -1 -1 -3 -1 -1 -1 -1 -1 -2
B  -3 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -2
D  -1 -3 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -2
H  -1 -1 -3 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -2
V  -1 -1 -1 -3 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -2
N  -2 -2 -2 -2 -2 -2 -2 -2 -2 -2 -2 -2 -2 -2 -2
"""
# IUPAC: the bases each letter stands for (written out here, apart from the package's table)
BASES = {"A": "A", "C": "C", "G": "G", "T": "T", "R": "GA", "Y": "TC", "S": "GC", "W": "AT", "K": "GT", "M": "AC",
         "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT"}


def _measured() -> dict[tuple[str, str], int]:
    head, *rows = BLASTN.strip().splitlines()
    cols = head.split()
    return {(row.split()[0], c): int(v) for row in rows for c, v in zip(cols, row.split()[1:])}


def _rule(a: str, b: str) -> int:
    """Slow reference of blastn's rule: letters with no base in common score the mismatch (-3); otherwise one base
    they share is scored against each base of the more ambiguous letter (+2 match, -3 mismatch) and the mean is
    rounded half away from zero."""
    shared = [x for x in "ACGT" if x in BASES[a] and x in BASES[b]]
    if not shared:
        return -3
    wider = BASES[a] if len(BASES[a]) >= len(BASES[b]) else BASES[b]
    mean = Fraction(sum(2 if y == shared[0] else -3 for y in wider), len(wider))
    rounded = math.floor(abs(mean) + Fraction(1, 2))
    return rounded if mean >= 0 else -rounded


def test_dna_matrix_is_the_one_blastn_scores_with():
    measured = _measured()
    assert len(measured) == 15 * 15
    assert {p: DNA.score_of(*p) for p in measured} == measured
    assert set(DNA.letters) == set(LETTERS) and DNA.letters[-1] == "N"


def test_dna_matrix_follows_blastns_rule():
    assert {(a, b): DNA.score_of(a, b) for a in LETTERS for b in LETTERS} == {
        (a, b): _rule(a, b) for a in LETTERS for b in LETTERS}
    assert _rule("A", "R") == -1 and _rule("A", "D") == -1 and _rule("A", "B") == -3 and _rule("N", "N") == -2


def test_reverse_complement_of_each_code():
    pairs = {"A": "T", "C": "G", "G": "C", "T": "A", "R": "Y", "Y": "R", "K": "M", "M": "K", "B": "V", "V": "B",
             "D": "H", "H": "D", "S": "S", "W": "W", "N": "N"}
    for letter, comp in pairs.items():
        assert reverse_complement(letter) == comp
        # the complement stands for the complementary bases
        assert sorted(BASES[comp]) == sorted(BASES[letter].translate(str.maketrans("ACGT", "TGCA")))
    assert reverse_complement("AACRYSWKMBDHVN") == "NBDHVKMWSRYGTT"
    assert reverse_complement(reverse_complement(LETTERS)) == LETTERS
    # what align_strands relies on: scoring rc(q) against t is scoring q against rc(t)
    for a in LETTERS:
        for b in LETTERS:
            assert DNA.score_of(a, b) == DNA.score_of(pairs[a], pairs[b]) == DNA.score_of(b, a)


def _one_letter_pairs(seed=0):
    """Queries with one ambiguity code between 40-base flanks; targets with each letter there, on the plus strand
    and reverse-complemented."""
    rng = np.random.default_rng(seed)
    left, right = ("".join(rng.choice(list("ACGT"), size=40)) for _ in range(2))
    queries = [(f"q{c}", left + c + right) for c in "RYSWKMBDHV"]
    targets = [(f"t{c}_{s}", reverse_complement(left + c + right) if s == "minus" else left + c + right)
               for c in LETTERS for s in ("plus", "minus")]
    return queries, targets


def test_both_strands_score_each_code_by_the_matrix():
    queries, targets = _one_letter_pairs()
    hits = align_strands([s for _, s in queries], [s for _, s in targets], [list(range(len(targets)))] * 10,
                         scoring=DNA, evalue=math.inf)
    for i, (q, _) in enumerate(queries):
        t, raw, _, _ = hits.query(i)
        minus = hits.minus[hits.offsets[i]:hits.offsets[i + 1]]
        got = {targets[j][0]: (r, m) for j, r, m in zip(t.tolist(), raw.tolist(), minus.tolist())}
        for name, _ in targets:
            letter, strand = name[1], name.split("_")[1]
            assert got[name] == (160 + _rule(q[1], letter), strand == "minus"), (q, name)


def _sprinkle(rng, s: str, rate: float) -> str:
    return "".join(str(rng.choice(list("RYSWKMBDHVN"))) if rng.random() < rate else c for c in s)


@pytest.mark.skipif(not HAVE_BLASTN, reason="NCBI BLAST+ not installed (apt-get install ncbi-blast+)")
def test_raw_scores_equal_blastns_with_each_code_on_both_strands(tmp_path):
    queries, targets = _one_letter_pairs(1)
    blast = _blastn(tmp_path, queries, targets)
    hits = align_strands([s for _, s in queries], [s for _, s in targets], [list(range(len(targets)))] * 10,
                         scoring=DNA, evalue=math.inf)
    checked = 0
    for i, (q, _) in enumerate(queries):
        t, raw, _, _ = hits.query(i)
        minus = hits.minus[hits.offsets[i]:hits.offsets[i + 1]]
        for j, r, m in zip(t.tolist(), raw.tolist(), minus.tolist()):
            name = targets[j][0]
            score, *_, strand = blast[q, name]
            assert (r, "minus" if m else "plus") == (int(score), name.split("_")[1]), (q, name)
            checked += 1
    assert checked == 10 * 30
    # identities are equal letters, as blastn counts them (R-R identical, R-A and R-Y mismatches)
    for q, qs in queries:
        for name, ts in targets[::2]:  # the plus-strand targets
            a = trace_alignment(qs, ts, DNA)
            assert [f"{a.pident:.3f}", str(a.length), str(a.mismatch)] == blast[q, name][7:10], (q, name)
    # phylocl search writes blastn's columns for every pair, on both strands (the files _blastn searched)
    out = tmp_path / "h.m8"
    assert main(["search", "--model", "kmer:4", "--query", str(tmp_path / "q.fa"), "--db", str(tmp_path / "db.fa"),
                 "-k", "30", "--candidates", "30", "--evalue", "1000", "--quiet", "-o", str(out),
                 "--format", "6 qseqid sseqid score pident length mismatch sstrand"]) == 0
    lines = [line.split("\t") for line in out.read_text().splitlines()]
    assert len(lines) == 10 * 30
    for q, t, *columns in lines:
        score, *_, pident, length, mismatch, _, strand = blast[q, t]
        assert columns == [score, pident, length, mismatch, strand], (q, t)
    # related genes with 5% ambiguity codes in query and target, half of the targets on the other strand
    rng = np.random.default_rng(5)
    base = ["".join(rng.choice(list("ACGT"), size=int(rng.integers(200, 400)))) for _ in range(5)]
    queries = [(f"q{i}", _sprinkle(rng, _mutate(rng, b, 0.1), 0.05)) for i, b in enumerate(base)]
    targets = [(f"d{i}_{s}", reverse_complement(x) if s == "minus" else x)
               for i, b in enumerate(base) for s in ("plus", "minus") for x in [_sprinkle(rng, _mutate(rng, b, 0.1),
                                                                                          0.05)]]
    blast = _blastn(tmp_path, queries, targets)
    cands = [[j for j, (name, _) in enumerate(targets) if name.startswith(f"d{i}_")] for i in range(len(base))]
    hits = align_strands([s for _, s in queries], [s for _, s in targets], cands, scoring=DNA, evalue=math.inf)
    got = {(queries[i][0], targets[j][0]): (r, "minus" if m else "plus")
           for i in range(len(base)) for j, r, m in zip(hits.query(i)[0].tolist(), hits.query(i)[1].tolist(),
                                                        hits.minus[hits.offsets[i]:hits.offsets[i + 1]].tolist())}
    assert len(got) == 10 and got == {p: (int(blast[p][0]), blast[p][-1]) for p in got}
    # the codes count: read as N, these pairs would score differently
    as_n = str.maketrans("RYSWKMBDHV", "N" * 10)
    plus = align_candidates([s.translate(as_n) for _, s in queries], [s.translate(as_n) for _, s in targets], cands,
                            scoring=DNA, evalue=math.inf)
    assert any(got[queries[i][0], targets[j][0]][0] != r for i in range(len(base))
               for j, r in zip(plus.query(i)[0].tolist(), plus.query(i)[1].tolist()) if j % 2 == 0)


def test_search_keeps_the_codes_for_the_aligner_and_the_embedding_reads_n(tmp_path, capsys):
    rng = np.random.default_rng(9)
    base = ["".join(rng.choice(list("ACGT"), size=int(rng.integers(200, 300)))) for _ in range(3)]
    recs = [(f"f{i}_{m}", (reverse_complement(x) if m % 2 else x).lower() if m == 2 else
             (reverse_complement(x) if m % 2 else x))
            for i, b in enumerate(base) for m in range(3) for x in [_sprinkle(rng, _mutate(rng, b, 0.1), 0.05)]]
    fa = _fasta(tmp_path / "d.fa", recs)
    as_n = _fasta(tmp_path / "n.fa", [(i, s.upper().translate(str.maketrans("RYSWKMBDHV", "N" * 10)))
                                      for i, s in recs])
    common = ["--model", "kmer:4", "-k", "2", "--quiet", "--evalue", "1e-5"]
    # the embedding reads the codes as N: the same ranking as the file with N in their place
    for f, name in ((fa, "codes.tsv"), (as_n, "n.tsv")):
        assert main(["search", *common, "--query", str(f), "--db", str(f), "--no-align", "--strand", "both",
                     "-o", str(tmp_path / name)]) == 0
    assert (tmp_path / "codes.tsv").read_text() == (tmp_path / "n.tsv").read_text()
    # the aligner scores them: bit scores of align_strands on the sequences as written (upper case)
    assert main(["search", *common, "--query", str(fa), "--db", str(fa), "--candidates", "8",
                 "-o", str(tmp_path / "db.tsv")]) == 0
    assert "read as N by the embedding, scored as blastn scores them by the alignment" in capsys.readouterr().err
    seqs = [s.upper() for _, s in recs]
    ref = align_strands(seqs, seqs, [[j for j in range(9) if j != i] for i in range(9)], scoring=DNA, evalue=1e-5,
                        max_hits=2)
    want = sorted((recs[i][0], recs[t][0], f"{b:.1f}") for i in range(9) for t, _, b, _ in zip(*ref.query(i)))
    rows = [line.split("\t") for line in (tmp_path / "db.tsv").read_text().splitlines()[1:]]
    assert sorted((q, t, b) for q, t, _, _, b, _ in rows) == want and len(want) == 18
    copy = _fasta(tmp_path / "copy.fa", recs)  # a database file of its own (self hits left out by id)
    assert main(["search", *common, "--query", str(fa), "--db", str(copy), "--candidates", "8",
                 "-o", str(tmp_path / "copy.tsv")]) == 0
    assert (tmp_path / "copy.tsv").read_text() == (tmp_path / "db.tsv").read_text()
    # an index stores the codes (index --verify accepts them) and gives the same hits
    assert main(["index", "--fasta", str(fa), "--model", "kmer:4", "-o", str(tmp_path / "ix"), "--quiet"]) == 0
    assert set((tmp_path / "ix" / "sequences.bin").read_bytes()) == set(b"ACGTRYSWKMBDHVN")
    assert main(["index", "--verify", str(tmp_path / "ix")]) == 0
    assert main(["search", *common, "--query", str(fa), "--index", str(tmp_path / "ix"), "--candidates", "8",
                 "-o", str(tmp_path / "ix.tsv")]) == 0
    assert (tmp_path / "ix.tsv").read_text() == (tmp_path / "db.tsv").read_text()
    from phylocl.workflows.searcher import Searcher  # the Python API reads its queries the same way

    with Searcher(index=tmp_path / "ix", k=3, candidates=9, evalue=1e-5) as searcher:
        got = searcher.search([("q", recs[0][1])])  # an id of its own: the record itself is a hit too
    [ref] = [align_strands(seqs[:1], seqs, [list(range(9))], scoring=DNA, evalue=1e-5, max_hits=3)]
    assert [(h["target"], f"{h['bitscore']:.1f}") for h in got] == [(recs[t][0], f"{b:.1f}")
                                                                   for t, _, b, _ in zip(*ref.query(0))]
    assert got[0]["target"] == recs[0][0] and sorted((h["target"], f"{h['bitscore']:.1f}") for h in got[1:]) == [
        (t, b) for q, t, b in want if q == recs[0][0]]


def test_notes_and_strict_refusals_say_where_the_codes_are_aligned(tmp_path, capsys):
    """Without alignment the note said the codes are 'scored as blastn scores them by the alignment' (there is
    none); --strict said 'without --strict they read as N' where search aligns them as written."""
    from phylocl.errors import InputError
    from phylocl.workflows.searcher import Searcher

    fa = _fasta(tmp_path / "d.fa", [("a", "ACGTACGTRACGTACGTACGTAAC"), ("b", "ACGTACGTAACGTACGTACGTAAC")])
    common = ["search", "--model", "kmer:4", "--query", str(fa), "--db", str(fa), "-k", "1"]
    assert main([*common, "--no-align", "-o", str(tmp_path / "n.tsv")]) == 0
    err = capsys.readouterr().err
    assert "1 ambiguity code (R) in 1 record read as N; first at" in err and "alignment" not in err
    assert main([*common, "-o", str(tmp_path / "a.tsv")]) == 0
    assert "read as N by the embedding, scored as blastn scores them by the alignment" in capsys.readouterr().err
    assert main([*common, "--strict", "-o", str(tmp_path / "s.tsv")]) == 2
    assert ("refused by --strict (first at position 9); without --strict they read as N by the embedding and are "
            "scored as blastn scores them by the alignment") in capsys.readouterr().err
    assert main(["index", "--fasta", str(fa), "--model", "kmer:4", "-o", str(tmp_path / "ix"), "--quiet"]) == 0
    with pytest.raises(InputError, match="refused by strict=True .*; without strict=True they read as N by the "
                                         "embedding and are scored"):
        Searcher(index=tmp_path / "ix", strict=True).search([("q", "ACGTACGTRACGTACGTACG")])
    with pytest.raises(InputError, match=r"refused by strict=True \(first at position 9\); without strict=True "
                                         r"they read as N$"):
        Searcher(index=tmp_path / "ix", strict=True, align=False).search([("q", "ACGTACGTRACGTACGTACG")])

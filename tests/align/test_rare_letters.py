"""Protein ``B J Z U O`` in the alignment stage, scored as ``blastp`` 2.12 scores them: the tables against the scores
measured with blastp and against NCBI's matrix files, raw scores and the letter columns of ``--format "6 ..."``
equal to blastp's for two matrices, the MSV filter's reading, and ``phylocl search`` (``--db``, ``--index``, the
Searcher) keeping the letters for the aligner while the embedding reads them as ``X``."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from phylocl.align import align_candidates
from phylocl.align.ncbi_matrices import NCBI_MATRICES, ncbi_scores
from phylocl.align.scoring import PROTEIN_LETTERS, PROTEIN_PARAMS, scoring_system
from phylocl.cli import main

from .test_blast6_columns import AA, HAVE_BLAST, _blast, _fasta

RARE = "BJZUO"
# measured with blastp 2.12: `blastp -comp_based_stats 0 -seg no -max_hsps 1 -outfmt '6 qseqid sseqid score'`
# (-db and -subject alike) on 401-residue pairs (200 random residues, the letter, the same 200 residues), query
# letter (row) against subject letter (column), score minus the flanks' (X-A + 1). phylocl reads * as X.
BLASTP = {"BLOSUM62": """
       A   C   D   E   F   G   H   I   K   L   M   N   P   Q   R   S   T   V   W   Y   B   J   Z   U   O   X   *
B     -2  -3   4   1  -3  -1   0  -3   0  -4  -3   4  -2   0  -1   0  -1  -3  -4  -3   4  -3   0  -3  -1  -1  -4
J     -1  -1  -3  -3   0  -4  -3   3  -3   3   2  -3  -3  -2  -2  -2  -1   2  -2  -1  -3   3  -3  -1  -1  -1  -4
Z     -1  -3   1   4  -3  -2   0  -3   1  -3  -1   0  -1   4   0   0  -1  -2  -2  -2   0  -3   4  -3  -1  -1  -4
U      0   9  -3  -4  -2  -3  -3  -1  -3  -1  -1  -3  -3  -3  -3  -1  -1  -1  -2  -2  -3  -1  -3   9  -1  -1  -4
O     -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -4
X     -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -4
""", "PAM30": """
       A   C   D   E   F   G   H   I   K   L   M   N   P   Q   R   S   T   V   W   Y   B   J   Z   U   O   X   *
B     -3 -12   6   1 -10  -3  -1  -6  -2  -9 -10   6  -7  -3  -7  -1  -3  -8 -10  -6   6  -8   0 -12  -1  -1 -17
J     -6  -9 -10  -7  -2 -10  -7   5  -7   6   0  -6  -7  -5  -7  -8  -5   0  -7  -7  -8   6  -6  -9  -1  -1 -17
Z     -3 -14   1   6 -13  -5  -1  -6  -4  -7  -5  -3  -4   6  -4  -5  -6  -6 -14  -9   0  -6   6 -14  -1  -1 -17
U     -6  10 -14 -14 -13  -9  -7  -6 -14 -15 -13 -11  -8 -14  -8  -3  -8  -6 -15  -4 -12  -9 -14  10  -1  -1 -17
O     -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1 -17
X     -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1  -1 -17
"""}
SYSTEMS = sorted({m: (m, o, e) for m, o, e in PROTEIN_PARAMS}.values())  # one gap cost of each matrix
NCBI_DATA = Path("/usr/share/ncbi/data")


def _measured(matrix: str) -> dict[tuple[str, str], int]:
    head, *rows = BLASTP[matrix].strip().splitlines()
    cols = head.split()
    return {(row.split()[0], c): int(v) for row in rows for c, v in zip(cols, row.split()[1:]) if c != "*"}


@pytest.mark.parametrize("matrix", sorted(BLASTP))
def test_scores_are_the_ones_blastp_scores_with(matrix):
    go, ge = next((o, e) for m, o, e in PROTEIN_PARAMS if m == matrix)
    sc = scoring_system(matrix=matrix, gap_open=go, gap_extend=ge)
    measured = _measured(matrix)
    assert len(measured) == 6 * 26 and set(sc.letters) == set(AA + RARE + "X") and sc.letters[-1] == "X"
    assert {p: sc.score_of(*p) for p in measured} == measured
    assert {p: sc.score_of(p[1], p[0]) for p in measured} == measured  # symmetric: the same as subject letters


@pytest.mark.parametrize("matrix", [m for m, _, _ in SYSTEMS])
def test_every_matrix_reads_u_as_c_and_o_as_x_and_bjz_by_ncbis_rows(matrix):
    table = ncbi_scores(matrix)
    go, ge = next((o, e) for m, o, e in PROTEIN_PARAMS if m == matrix)
    sc = scoring_system(matrix=matrix, gap_open=go, gap_extend=ge)
    as_read = {"U": "C", "O": "X"}
    for a in PROTEIN_LETTERS:
        for b in PROTEIN_LETTERS:
            assert sc.score_of(a, b) == table[as_read.get(a, a), as_read.get(b, b)], (a, b)
    assert sc.score_of("U", "U") == sc.score_of("C", "C") > 0 and sc.score_of("O", "O") == -1
    if matrix == "BLOSUM62":  # the brief's measured figures (and Biopython's B-N 3, not NCBI's 4)
        assert [sc.score_of(*p) for p in ("BN", "BD", "BB", "ZE", "JL", "JI", "UK", "UX", "UJ")] == [
            4, 4, 4, 4, 3, 3, -3, -1, -1]


@pytest.mark.parametrize("matrix", sorted(NCBI_MATRICES))
def test_baked_tables_equal_ncbis_files(matrix):
    path = NCBI_DATA / matrix
    if not path.is_file():
        pytest.skip(f"{path} absent (Debian/Ubuntu: apt-get install ncbi-data)")
    rows = [line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert ncbi_scores(matrix) == {(r[0], c): int(v) for r in rows[1:] for c, v in zip(rows[0], r[1:])}


def _pairs(seed: int) -> tuple[list, list]:
    """Queries with rare letters at 8 sites; each query's homolog (85% identical, no indels, so blastp's extension
    finds the optimum) with the same letter, a related one or another rare letter there, and random decoys."""
    rng = random.Random(seed)
    partner = {"U": "UCUK", "O": "OKOX", "B": "BNDB", "Z": "ZEQZ", "J": "JLIJ"}
    queries, db = [], []
    for i in range(8):
        q = [rng.choice(AA) for _ in range(rng.randint(120, 200))]
        t = [rng.choice(AA) if rng.random() < 0.15 else c for c in q]
        for at in rng.sample(range(len(q)), 8):
            q[at] = rng.choice(RARE)
            t[at] = rng.choice(partner[q[at]] + RARE)
        for at in rng.sample(range(len(q)), 3):  # rare letters of the subject against standard ones
            t[at] = rng.choice(RARE)
        queries.append((f"q{i}", "".join(q)))
        db.append((f"d{i}", "".join(t)))
    db += [(f"r{j}", "".join(rng.choice(AA + RARE) for _ in range(150))) for j in range(6)]
    return queries, db


LETTER_FMT = "6 qseqid sseqid score length nident mismatch pident positive ppos qseq sseq btop qlen slen"


@pytest.mark.skipif(not HAVE_BLAST, reason="NCBI BLAST+ not installed (apt-get install ncbi-blast+)")
@pytest.mark.parametrize("matrix,go,ge", [("BLOSUM62", 11, 1), ("PAM70", 10, 1), ("BLOSUM80", 10, 1), ("BLOSUM45", 15, 2)])
def test_raw_scores_and_letter_columns_equal_blastps(tmp_path, matrix, go, ge):
    queries, db = _pairs({"BLOSUM62": 1, "PAM70": 2, "BLOSUM80": 3, "BLOSUM45": 4}[matrix])
    qf, df = _fasta(tmp_path / "q.fa", queries), _fasta(tmp_path / "d.fa", db)
    blast = _blast("blastp", qf, df, tmp_path, LETTER_FMT, "-comp_based_stats", "0", "-seg", "no", "-matrix", matrix,
                   "-gapopen", str(go), "-gapextend", str(ge))
    out = tmp_path / "h.m8"
    assert main(["search", "--model", "kmer:3", "--query", str(qf), "--db", str(df), "-k", "1", "--quiet",
                 "--matrix", matrix, "--gap-open", str(go), "--gap-extend", str(ge), "--format", LETTER_FMT,
                 "-o", str(out)]) == 0
    lines = [line.split("\t") for line in out.read_text().splitlines()]
    assert sorted(tuple(f[:2]) for f in lines) == [(f"q{i}", f"d{i}") for i in range(8)]
    for f in lines:
        assert f == blast[f[0], f[1]], f  # every column as blastp writes it: the letters as given
    assert {c for f in lines for c in f[9] + f[10]} >= set(RARE)  # qseq, sseq hold every rare letter
    # the letters count: read as X (phylocl before), these pairs scored otherwise (higher or lower)
    sc = scoring_system(matrix=matrix, gap_open=go, gap_extend=ge)
    as_x = str.maketrans(RARE, "X" * 5)
    seqs = dict(queries + db)
    for f in lines:
        old = align_candidates([seqs[f[0]].translate(as_x)], [seqs[f[1]].translate(as_x)], [[0]], scoring=sc,
                               evalue=math.inf)
        assert int(old.raw[0]) != int(f[2]), f[:3]


def test_msv_filter_reads_u_as_c_and_o_as_k():
    """Easel's amino alphabet (pyhmmer) reads U as C and O as K, and B J Z as their residues' mixtures: a pair with
    U-U sites has the P-value of the pair with C-C there; O-O that of K-K; the letters as written keep more related
    pairs than X in their place (the aligner scores them higher too)."""
    from phylocl.align.msv import MsvFilter

    rng = random.Random(4)
    f = MsvFilter(scoring=scoring_system())
    q = "".join(rng.choice(AA) for _ in range(150))
    t = "".join(rng.choice(AA) for _ in range(150))  # unrelated

    def put(s: str, letter: str) -> str:
        return "".join(letter if i % 6 == 0 else c for i, c in enumerate(s))

    for rare, standard in (("U", "C"), ("O", "K")):
        assert f.pvalues(put(q, rare), [put(t, rare)])[0] == f.pvalues(put(q, standard), [put(t, standard)])[0]
    for letter in "BJZ":
        assert f.pvalues(put(q, letter), [put(t, letter)])[0] < f.pvalues(put(q, "X"), [put(t, "X")])[0]


def _as_x(text: str) -> str:
    return text.upper().translate(str.maketrans(RARE + "*", "X" * 6))


def test_search_keeps_the_letters_for_the_aligner_and_the_embedding_reads_x(tmp_path, capsys):
    queries, db = _pairs(5)
    recs = [(i, s.lower() if n % 3 == 0 else s) for n, (i, s) in enumerate(queries + db)]  # lower case too
    recs[1] = (recs[1][0], recs[1][1][:60] + "*" + recs[1][1][61:])  # an internal stop: still X
    fa = _fasta(tmp_path / "d.fa", recs)
    as_x = _fasta(tmp_path / "x.fa", [(i, _as_x(s)) for i, s in recs])
    common = ["--model", "kmer:3", "-k", "2", "--quiet", "--evalue", "1e-5"]
    # the embedding reads the letters as X: --no-align gives the file with X in their place byte for byte
    for f, name in ((fa, "letters.tsv"), (as_x, "x.tsv")):
        assert main(["search", *common, "--query", str(f), "--db", str(f), "--no-align", "-o",
                     str(tmp_path / name)]) == 0
    assert (tmp_path / "letters.tsv").read_text() == (tmp_path / "x.tsv").read_text()
    # the aligner scores them: bit scores of align_candidates on the sequences as written (upper case, * as X)
    assert main(["search", *common, "--query", str(fa), "--db", str(fa), "--candidates", "12",
                 "-o", str(tmp_path / "db.tsv")]) == 0
    err = capsys.readouterr().err
    assert "read as X by the embedding, scored as blastp scores them by the alignment" in err
    assert "internal stop (*) in 1 record read as X; first at" in err
    seqs = [s.upper().replace("*", "X") for _, s in recs]
    n = len(seqs)
    ref = align_candidates(seqs, seqs, [[j for j in range(n) if j != i] for i in range(n)], scoring=scoring_system(),
                           evalue=1e-5, max_hits=2)
    want = sorted((recs[i][0], recs[t][0], f"{b:.1f}") for i in range(n) for t, _, b, _ in zip(*ref.query(i)))
    rows = [line.split("\t") for line in (tmp_path / "db.tsv").read_text().splitlines()[1:]]
    assert sorted((q, t, b) for q, t, _, _, b, _ in rows) == want and len(want) == 16
    # an index stores the letters (index --verify accepts them) and gives the same hits
    assert main(["index", "--fasta", str(fa), "--model", "kmer:3", "-o", str(tmp_path / "ix"), "--quiet"]) == 0
    assert set((tmp_path / "ix" / "sequences.bin").read_bytes()) >= set(b"BJZUOX") and b"*" not in (
        tmp_path / "ix" / "sequences.bin").read_bytes()
    assert main(["index", "--verify", str(tmp_path / "ix")]) == 0
    from phylocl.data.alphabet import PROTEIN
    from phylocl.errors import InputError
    from phylocl.retrieval.sequence_store import open_store

    old_reader = open_store(tmp_path / "ix", ntotal=n, letters=PROTEIN.letters)  # 0.5.0's letter check: refused
    with pytest.raises(InputError, match="damaged index: stored sequence 0 holds bytes that are not its alphabet's "
                                         "letters .*; rebuild the index"):
        old_reader[0]
    assert main(["search", *common, "--query", str(fa), "--index", str(tmp_path / "ix"), "--candidates", "12",
                 "-o", str(tmp_path / "ix.tsv")]) == 0
    assert (tmp_path / "ix.tsv").read_text() == (tmp_path / "db.tsv").read_text()
    # an index built before (its sequences.bin holds X there) still verifies and searches, scoring X
    assert main(["index", "--fasta", str(as_x), "--model", "kmer:3", "-o", str(tmp_path / "old"), "--quiet"]) == 0
    assert main(["index", "--verify", str(tmp_path / "old")]) == 0
    assert main(["search", *common, "--query", str(as_x), "--index", str(tmp_path / "old"), "--candidates", "12",
                 "-o", str(tmp_path / "old.tsv")]) == 0
    assert main(["search", *common, "--query", str(as_x), "--db", str(as_x), "--candidates", "12",
                 "-o", str(tmp_path / "oldref.tsv")]) == 0
    assert (tmp_path / "old.tsv").read_text() == (tmp_path / "oldref.tsv").read_text() != (tmp_path / "db.tsv"
                                                                                          ).read_text()
    from phylocl.workflows.searcher import Searcher  # the Python API reads its queries the same way

    with Searcher(index=tmp_path / "ix", k=3, candidates=n, evalue=1e-5) as searcher:
        got = searcher.search([("q", recs[0][1])])  # an id of its own: the record itself is a hit too
    [ref] = [align_candidates(seqs[:1], seqs, [list(range(n))], scoring=scoring_system(), evalue=1e-5, max_hits=3)]
    assert [(h["target"], f"{h['bitscore']:.1f}") for h in got] == [(recs[t][0], f"{b:.1f}")
                                                                   for t, _, b, _ in zip(*ref.query(0))]


def test_notes_and_strict_refusals_say_where_the_letters_are_aligned(tmp_path, capsys):
    fa = _fasta(tmp_path / "p.fa", [("a", "MKVLUAGHWEDKLLIRPQ"), ("b", "MKVLCAGHWEDKLLIRPQ")])
    common = ["search", "--model", "kmer:3", "--query", str(fa), "--db", str(fa), "-k", "1"]
    assert main([*common, "--no-align", "-o", str(tmp_path / "n.tsv")]) == 0
    err = capsys.readouterr().err
    assert "1 rare residue (U) in 1 record read as X; first at" in err and "alignment" not in err
    assert main([*common, "-o", str(tmp_path / "a.tsv")]) == 0
    assert "1 rare residue (U) in 1 record read as X by the embedding, scored as blastp scores them by the " \
           "alignment" in capsys.readouterr().err
    assert main([*common, "--strict", "-o", str(tmp_path / "s.tsv")]) == 2
    assert ("refused by --strict (first at position 5); without --strict they read as X by the embedding and are "
            "scored as blastp scores them by the alignment") in capsys.readouterr().err

"""phylocl.align against NCBI BLAST+ (skipped when blastp/blastn are not installed; CI: apt-get install ncbi-blast+).

Tolerances: raw scores exact; lambda, K, H as printed by blastp (3 significant digits); E-values within 4%
(blastp prints 2-3 significant digits: 1.3 for 1.265) with composition-based statistics and SEG filtering off, which BLASTP
applies by default and phylocl does not; bit scores within 0.1 (blastp prints one decimal; above 100 none, so within 1).
"""

from __future__ import annotations

import math
import random
import re
import shutil
import subprocess

import pytest

from phylocl.align import align_candidates, scoring_system
from phylocl.align.scoring import DNA_PARAMS, PROTEIN_PARAMS

pytestmark = pytest.mark.skipif(shutil.which("blastp") is None or shutil.which("blastn") is None,
                                reason="NCBI BLAST+ not installed (apt-get install ncbi-blast+)")
AA = "ACDEFGHIKLMNPQRSTVWY"


def _fasta(path, seqs):
    path.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)))
    return path


def _gapped_params(out: str) -> tuple[float, float, float]:
    block = out[out.index("\nGapped\n") + 1:]
    lam, k, h = block.splitlines()[2].split()[:3]
    return float(lam), float(k), float(h)


@pytest.mark.parametrize("key", [k for k in PROTEIN_PARAMS if k[0] == "BLOSUM62" or k[1:] in ((10, 1), (9, 1),
                                                                                                 (14, 2))])
def test_tabulated_parameters_are_blastps(tmp_path, key):
    matrix, go, ge = key
    q = _fasta(tmp_path / "q.fa", ["MKVLAAGIVGLLLAWPQRSTVVEEKKLLMNPQRSTWYACDEFGHIKLMNPQ"])
    out = subprocess.run(["blastp", "-query", str(q), "-subject", str(q), "-matrix", matrix, "-gapopen", str(go),
                          "-gapextend", str(ge), "-comp_based_stats", "0", "-seg", "no"],
                         capture_output=True, text=True, check=True).stdout
    lam, k, h = _gapped_params(out)
    want = PROTEIN_PARAMS[key]
    assert (lam, k, h) == pytest.approx(want[:3], rel=0.02)


@pytest.mark.parametrize("key", sorted(DNA_PARAMS))
def test_dna_parameters_are_blastns(tmp_path, key):
    _, go, ge = key
    q = _fasta(tmp_path / "q.fa", ["ACGTTGCAAGCTTGACCGTAGGCTAGCTAGGATCGATCGGATCGATTTAGCGGCG"])
    out = subprocess.run(["blastn", "-task", "blastn", "-query", str(q), "-subject", str(q), "-reward", "2",
                          "-penalty", "-3", "-gapopen", str(go), "-gapextend", str(ge)],
                         capture_output=True, text=True, check=True).stdout
    assert _gapped_params(out) == pytest.approx(DNA_PARAMS[key][:3], rel=0.005)
    assert DNA_PARAMS[key][3] == pytest.approx(DNA_PARAMS[key][0] / DNA_PARAMS[key][2], abs=0.015)  # alpha ~ L / H (2 digits)


def _search_spaces(cmd: list[str], queries: list[str], db: list[str], tmp_path, dbtype: str):
    """blast's printed "Effective search space used" of each query, and its last gapped and ungapped rows."""
    q, d = _fasta(tmp_path / "q.fa", queries), _fasta(tmp_path / "d.fa", db)
    if not (tmp_path / "db.done").exists():
        subprocess.run(["makeblastdb", "-in", str(d), "-dbtype", dbtype, "-out", str(tmp_path / "db")],
                       capture_output=True, check=True)
        (tmp_path / "db.done").write_text("")
    out = subprocess.run([*cmd, "-query", str(q), "-db", str(tmp_path / "db"), "-max_target_seqs", "1"],
                         capture_output=True, text=True, check=True).stdout
    spaces = [int(v) for v in re.findall(r"Effective search space used: (\d+)", out)]
    at = out.rindex("\nGapped\n")
    ungapped = out[out.rindex("\nLambda", 0, at) + 1:].splitlines()[1].split()
    gapped = out[at + 1:].splitlines()[2].split()
    return spaces, [float(v) for v in ungapped], [float(v) for v in gapped]


def test_length_adjustment_alpha_beta_and_gumbel_parameters_are_blastps(tmp_path):
    """For every tabulated protein system, the effective search space blastp prints (its length adjustment: lambda,
    K, alpha and beta all enter it) equals phylocl's exactly on a database of 300 short sequences (N l is a large part
    of n there); the printed gapped ``a`` is alpha, and for BLOSUM62 the printed ``alpha sigma`` (and the ungapped
    ``a alpha``) are the finite-size correction's parameters. (Queries of >= 1/K residues: below, phylocl keeps
    m' >= 1/K, blastp m.)"""
    from phylocl.align.statistics import search_space

    rng = random.Random(3)
    db = ["".join(rng.choice(AA) for _ in range(rng.randint(40, 200))) for _ in range(300)]
    queries = ["".join(rng.choice(AA) for _ in range(n)) for n in (120, 250, 600)]
    n, big_n = sum(map(len, db)), len(db)
    for matrix, go, ge in PROTEIN_PARAMS:
        spaces, ungapped, gapped = _search_spaces(
            ["blastp", "-comp_based_stats", "0", "-seg", "no", "-matrix", matrix, "-gapopen", str(go), "-gapextend",
             str(ge)], queries, db, tmp_path, "prot")
        st = scoring_system("protein", matrix=matrix, gap_open=go, gap_extend=ge).stats
        assert [search_space(len(q), n, big_n, st) for q in queries] == spaces, (matrix, go, ge)
        assert gapped[3] == pytest.approx(st.alpha, rel=0.006, abs=0), (matrix, go, ge)  # 3 significant digits
        if st.gumbel is not None:
            alpha_v, sigma, a_un, alpha_un, g = st.gumbel
            assert gapped[4:6] == pytest.approx([alpha_v, sigma], rel=0.006, abs=0), (matrix, go, ge)
            assert ungapped[3:5] == pytest.approx([a_un, alpha_un], rel=0.006, abs=0) and g == go + ge
        else:
            assert matrix != "BLOSUM62"


def test_dna_length_adjustment_is_blastns(tmp_path):
    """The effective search space blastn prints equals phylocl's for every tabulated gap cost (queries of 8 to 600
    nt, >= 1/K, against 300 short sequences)."""
    from phylocl.align.statistics import search_space

    rng = random.Random(3)
    db = ["".join(rng.choice("ACGT") for _ in range(rng.randint(40, 200))) for _ in range(300)]
    queries = ["".join(rng.choice("ACGT") for _ in range(n)) for n in (8, 12, 30, 250, 600)]
    n, big_n = sum(map(len, db)), len(db)
    for _, go, ge in DNA_PARAMS:
        spaces, _, _ = _search_spaces(
            ["blastn", "-task", "blastn", "-dust", "no", "-strand", "plus", "-reward", "2", "-penalty", "-3",
             "-gapopen", str(go), "-gapextend", str(ge)], queries, db, tmp_path, "nucl")
        st = scoring_system("dna", gap_open=go, gap_extend=ge).stats
        assert [search_space(len(q), n, big_n, st) for q in queries] == spaces, (go, ge)


def _blastp_raw(tmp_path, q: str, t: str, matrix: str, go: int, ge: int) -> int:
    a, b = _fasta(tmp_path / "a.fa", [q]), _fasta(tmp_path / "b.fa", [t])
    out = subprocess.run(["blastp", "-query", str(a), "-subject", str(b), "-comp_based_stats", "0", "-seg", "no",
                          "-matrix", matrix, "-gapopen", str(go), "-gapextend", str(ge), "-max_hsps", "1",
                          "-outfmt", "6 score"], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


@pytest.mark.parametrize("matrix,go,ge", [("BLOSUM62", 11, 1), ("BLOSUM80", 10, 1),
                                          ("BLOSUM90", 10, 1), ("PAM30", 9, 1), ("PAM70", 10, 1), ("PAM250", 14, 2)])
def test_raw_scores_equal_blastps_for_each_matrix(tmp_path, matrix, go, ge):
    """The matrix phylocl scores with is the one blastp scores with (the one its statistics belong to): 85%
    identical pairs without indels, which blastp's extension aligns optimally, get blastp's raw score exactly."""
    rng = random.Random(0)
    scoring = scoring_system(matrix=matrix, gap_open=go, gap_extend=ge)
    for _ in range(4):
        q = "".join(rng.choice(AA) for _ in range(120))
        t = "".join(rng.choice(AA) if rng.random() < 0.15 else c for c in q)
        hits = align_candidates([q], [t], [[0]], scoring=scoring, evalue=math.inf)
        assert int(hits.raw[0]) == _blastp_raw(tmp_path, q, t, matrix, go, ge)


def test_x_scores_as_blastp_scores_it(tmp_path):
    """blastp scores X -1 against every letter (NCBI's matrix files); phylocl read Biopython's older X row before
    (BLOSUM62: A-X 0, C-X and W-X -2)."""
    scoring = scoring_system()
    for other in "ACWX":
        q, t = "W" * 10 + "X" + "W" * 10, "W" * 10 + other + "W" * 10
        hits = align_candidates([q], [t], [[0]], scoring=scoring, evalue=math.inf)
        assert int(hits.raw[0]) == _blastp_raw(tmp_path, q, t, "BLOSUM62", 11, 1), other


def test_blast6_lines_equal_blastps_columns(tmp_path):
    """phylocl's ``-outfmt 6`` lines against blastp's on a real database, column by column: pident as blastp writes
    it (3 decimals), length, mismatch, gapopen and the four coordinates exactly, the E-value to blastp's printed
    digits and the bit score to its decimal (pairs of 85% identity with an insertion and a deletion, where the
    optimal alignment is unique and blastp finds it)."""
    from phylocl.align.blast6 import blast6_line
    from phylocl.align.traceback import trace_alignment

    rng = random.Random(12)
    queries, db = [], []
    for i in range(6):
        core = "".join(rng.choice(AA) for _ in range(rng.randint(90, 200)))
        other = "".join(rng.choice(AA) if rng.random() < 0.15 else c for c in core)
        cut = len(other) // 3
        other = other[:cut] + "GSG" + other[cut:2 * cut] + other[2 * cut + 4:]  # an insertion, a deletion
        queries.append("".join(rng.choice(AA) for _ in range(rng.randint(0, 20))) + core)
        db.append(other + "".join(rng.choice(AA) for _ in range(rng.randint(0, 20))))
    db += ["".join(rng.choice(AA) for _ in range(150)) for _ in range(10)]
    qf, df = _fasta(tmp_path / "q.fa", queries), _fasta(tmp_path / "d.fa", db)
    subprocess.run(["makeblastdb", "-in", str(df), "-dbtype", "prot", "-out", str(tmp_path / "db")],
                   capture_output=True, check=True)
    out = subprocess.run(["blastp", "-query", str(qf), "-db", str(tmp_path / "db"), "-comp_based_stats", "0", "-seg",
                          "no", "-max_hsps", "1", "-max_target_seqs", "1", "-outfmt", "6"],
                         capture_output=True, text=True, check=True).stdout
    blast = {tuple(f[:2]): f for f in (line.split("\t") for line in out.splitlines())}
    scoring = scoring_system()
    hits = align_candidates(queries, db, [[i] for i in range(len(queries))], scoring=scoring, evalue=math.inf)
    gaps = 0
    for i, q in enumerate(queries):
        _, raw, bits, ev = (v[0] for v in hits.query(i))
        ours = blast6_line(f"s{i}", f"s{i}", trace_alignment(q, db[i], scoring, int(raw)), ev, bits)
        assert ours.endswith("\n")
        got, want = ours[:-1].split("\t"), blast[f"s{i}", f"s{i}"]
        assert got[:10] == want[:10], i  # ids, pident, length, mismatch, gapopen, qstart, qend, sstart, send
        assert float(got[10]) == pytest.approx(float(want[10]), rel=0.01, abs=0)
        assert abs(float(got[11]) - float(want[11])) <= (0.05 if "." in want[11] else 1.0)
        assert re.fullmatch(r"\d+\.\d", got[11]) and re.fullmatch(r"\d+\.\d{3}", got[2])  # 1 and 3 decimals
        gaps += int(got[5])
    assert gaps >= 6  # every pair has its insertion and deletion


def test_blast6_evalue_text():
    from phylocl.align.blast6 import format_evalue

    assert [format_evalue(e) for e in (14.04, 0.06412, 3.35e-06, 2.5e-250, 1e-299)] == [
        "14", "0.0641", "3.35e-06", "2.5e-250", "1e-299"]
    assert format_evalue(0.0) == "0" and format_evalue(9e-301) == "0" and format_evalue(1e-320) == "0"


def _mutate(rng, s, rate):
    out = []
    for c in s:
        r = rng.random()
        out.append(rng.choice(AA) if r < rate else ("" if r < 1.15 * rate else c))
    return "".join(out)


def _same_printed_evalue(ours: float, printed: str, rel: float = 0.01) -> bool:
    """``ours`` within ``rel`` of blastp's printed E-value plus half a unit of its last printed digit (blastp
    writes weak E-values with one or two digits: ``0.004``, ``12``, ``1e-05``)."""
    want = float(printed)
    mantissa = printed.split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(printed.split("e")[1]) if "e" in printed else 0
    unit = 10.0 ** (exponent - decimals)
    return abs(ours - want) <= rel * want + 0.5 * unit


@pytest.mark.parametrize("matrix,go,ge", [("BLOSUM62", 11, 1), ("BLOSUM90", 10, 1), ("PAM30", 9, 1), ("BLOSUM45", 15, 2),
                                          ("BLOSUM50", 13, 2),
                                          ("BLOSUM80", 10, 1), ("PAM70", 10, 1), ("PAM250", 14, 2)])
def test_scores_and_evalues_match_blastp(tmp_path, matrix, go, ge):
    rng = random.Random(5)
    base = ["".join(rng.choice(AA) for _ in range(rng.randint(60, 300))) for _ in range(6)]
    queries = [_mutate(rng, b, 0.4) for b in base]
    db = [_mutate(rng, b, r) for b in base for r in (0.3, 0.5)] + \
         ["".join(rng.choice(AA) for _ in range(200)) for _ in range(20)]
    qf, df = _fasta(tmp_path / "q.fa", queries), _fasta(tmp_path / "d.fa", db)
    # a real database (with -subject BLAST gives every subject its own search space)
    subprocess.run(["makeblastdb", "-in", str(df), "-dbtype", "prot", "-out", str(tmp_path / "db")],
                   capture_output=True, check=True)
    out = subprocess.run(["blastp", "-query", str(qf), "-db", str(tmp_path / "db"), "-comp_based_stats", "0", "-seg", "no",
                          "-matrix", matrix, "-gapopen", str(go), "-gapextend", str(ge), "-evalue", "1000",
                          "-max_hsps", "1", "-outfmt", "6 qseqid sseqid score evalue bitscore"],
                         capture_output=True, text=True, check=True).stdout
    blast = {}
    for line in out.splitlines():
        q, s, score, ev, bits = line.split("\t")
        blast[(int(q[1:]), int(s[1:]))] = (int(score), ev, float(bits))
    hits = align_candidates(queries, db, [list(range(len(db)))] * len(queries),
                            scoring=scoring_system(matrix=matrix, gap_open=go, gap_extend=ge), evalue=math.inf)
    checked = 0
    for qi in range(len(queries)):
        for t, raw, bits, ev in zip(*hits.query(qi)):
            if (qi, int(t)) not in blast or ev > 100:
                continue  # BLAST's heuristic seeds miss some weak pairs; the Smith-Waterman score bounds its
            b_score, b_ev, b_bits = blast[(qi, int(t))]
            assert raw >= b_score  # an exhaustive local alignment scores at least BLAST's gapped extension
            if raw == b_score:
                # every system's finite-size parameters are BLAST+'s own tables (scoring.PRINTED_GUMBEL)
                assert _same_printed_evalue(ev, b_ev, 0.001), (qi, int(t), ev, b_ev)
                assert bits == pytest.approx(b_bits, abs=0.1 if b_bits < 100 else 1.0)  # "121" above 100
                checked += 1
    assert checked >= 12

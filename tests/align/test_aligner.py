"""Smith-Waterman scores, statistics and tracebacks of phylocl.align against slow references."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from Bio.Align import PairwiseAligner, substitution_matrices

from phylocl.align import (
    align_candidates,
    bit_scores,
    clean_sequence,
    describe_alignments,
    evalues,
    length_adjustment,
    scoring_system,
)
from phylocl.align.statistics import search_space
from phylocl.errors import InputError

AA = "ACDEFGHIKLMNPQRSTVWY"


def _mutate(rng, seq: str, rate: float) -> str:
    out = []
    for c in seq:
        r = rng.random()
        if r < rate:
            out.append(rng.choice(AA))  # substitution
        elif r < rate * 1.2:
            continue  # deletion
        elif r < rate * 1.4:
            out.append(c + "".join(rng.choice(AA) for _ in range(rng.randint(1, 4))))  # insertion
        else:
            out.append(c)
    return "".join(out)


def _pairs(n: int, seed: int = 0):
    """Related pairs with unrelated flanks on both ends (end gaps), X letters and lowercase mixed in."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        core = "".join(rng.choice(AA + "X") for _ in range(rng.randint(5, 120)))
        other = _mutate(rng, core, rng.choice([0.05, 0.3, 0.7]))
        def flank():
            return "".join(rng.choice(AA) for _ in range(rng.randint(0, 30)))

        q, t = flank() + core + flank(), flank() + other + flank()
        if i % 3 == 0:
            q = q.lower()
        if i % 5 == 0:
            t = "".join(c.lower() if rng.random() < 0.5 else c for c in t)
        pairs.append((q, t))
    return pairs


def ncbi_matrix(name: str):
    """Biopython's matrix ``name`` with X at -1 against every letter (NCBI's matrix files and blastp 2.12; Biopython
    keeps an older X row: BLOSUM62 A-X 0, C-X -2)."""
    m = substitution_matrices.load(name)
    letters = m.alphabet
    data = np.array([[-1.0 if "X" in (a, b) else float(m[a][b]) for b in letters] for a in letters])
    return substitution_matrices.Array(alphabet=letters, dims=2, data=data)


def _reference(scoring, q: str, t: str) -> int:
    m = ncbi_matrix(scoring.matrix_name)
    a = PairwiseAligner(mode="local", substitution_matrix=m, open_gap_score=-(scoring.gap_open + scoring.gap_extend),
                        extend_gap_score=-scoring.gap_extend)
    return int(a.score(q.upper(), t.upper()))


@pytest.mark.parametrize("matrix,gaps", [("BLOSUM62", (11, 1)), ("BLOSUM62", (9, 2)), ("PAM30", (9, 1))])
def test_scores_equal_biopython_local_alignment(matrix, gaps):
    scoring = scoring_system("protein", matrix=matrix, gap_open=gaps[0], gap_extend=gaps[1])
    pairs = _pairs(60, seed=len(matrix) + gaps[0])
    queries = [q for q, _ in pairs]
    targets = [t for _, t in pairs]
    hits = align_candidates(queries, targets, [[i] for i in range(len(pairs))], scoring=scoring,
                            evalue=math.inf, threads=2)
    for i, (q, t) in enumerate(pairs):
        _, raw, _, _ = hits.query(i)
        want = _reference(scoring, q, t)
        assert (raw[0] if len(raw) else 0) == want, (i, q, t)


def test_dna_scores_equal_biopython_with_blastn_scheme():
    rng = random.Random(3)
    scoring = scoring_system("dna")
    m = substitution_matrices.Array(alphabet="ACGTN", dims=2,
                                    data=np.array([[scoring.score_of(a, b) for b in "ACGTN"] for a in "ACGTN"],
                                                  dtype=float))
    ref = PairwiseAligner(mode="local", substitution_matrix=m, open_gap_score=-7, extend_gap_score=-2)
    for _ in range(30):
        a = "".join(rng.choice("ACGTN") for _ in range(rng.randint(10, 80)))
        b = "".join(c if rng.random() > 0.2 else rng.choice("ACGT") for c in a)
        b = "ACGT"[:rng.randint(0, 4)] + b[:len(b) // 2] + b[len(b) // 2 + rng.randint(0, 3):]
        raw = align_candidates([a.lower()], [b], [[0]], scoring=scoring, evalue=math.inf).raw
        assert (int(raw[0]) if len(raw) else 0) == int(ref.score(a, b))
    assert scoring.score_of("N", "A") == -2 and scoring.score_of("A", "A") == 2 and scoring.score_of("A", "C") == -3


def test_ranking_filter_and_threads_do_not_change_output():
    pairs = _pairs(40, seed=7)
    queries = [q for q, _ in pairs[:10]]
    targets = [t for _, t in pairs]
    rng = np.random.default_rng(0)
    cands = [rng.permutation(len(targets))[:25].tolist() + [-1, 3, 3] for _ in queries]
    scoring = scoring_system()
    one = align_candidates(queries, targets, cands, scoring=scoring, threads=1, evalue=5.0)
    two = align_candidates(queries, targets, cands, scoring=scoring, threads=2, evalue=5.0)
    for field in ("offsets", "targets", "raw", "bits", "evalues", "cand_rank"):
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field))
    for i in range(len(queries)):
        tg, _, bits, ev = one.query(i)
        assert len(set(tg.tolist())) == len(tg)  # repeats aligned once, -1 skipped
        assert np.all(np.diff(bits) <= 0) and np.all(ev <= 5.0)
        assert set(tg.tolist()) <= set(cands[i]) - {-1}
    capped = align_candidates(queries, targets, cands, scoring=scoring, evalue=5.0, max_hits=2)
    assert np.diff(capped.offsets).max() <= 2


@pytest.mark.parametrize("threads, processes", [(1, False), (2, False), (2, True)])
def test_progress_counts_every_query_and_pair_and_changes_nothing(monkeypatch, threads, processes):
    """``progress(phase, done, total)``: the filter's queries, then the pairs Smith-Waterman scores, rising to their
    totals, in this thread, in threads and in worker processes; the hits are those of a call without it."""
    import phylocl.align.aligner as aligner

    monkeypatch.setattr(aligner, "use_processes", lambda workers, items: processes and workers > 1)
    pairs = _pairs(40, seed=7)
    queries = [q for q, _ in pairs[:10]]
    targets = [t for _, t in pairs]
    rng = np.random.default_rng(0)
    cands = [rng.permutation(len(targets))[:25].tolist() for _ in queries]
    scoring = scoring_system()
    calls = []
    seen = align_candidates(queries, targets, cands, scoring=scoring, threads=threads, evalue=5.0,
                            filter_pvalue=0.5, progress=lambda *a: calls.append(a))
    plain = align_candidates(queries, targets, cands, scoring=scoring, threads=threads, evalue=5.0,
                             filter_pvalue=0.5)
    for field in ("offsets", "targets", "raw", "bits", "evalues", "cand_rank"):
        np.testing.assert_array_equal(getattr(seen, field), getattr(plain, field))
    phases = [c[0] for c in calls]
    assert phases == sorted(phases, key=["filtering", "aligning"].index) and set(phases) == {"filtering", "aligning"}
    for phase, total in (("filtering", len(queries)), ("aligning", None)):
        mine = [(d, t) for p, d, t in calls if p == phase]
        dones = [d for d, _ in mine]
        assert dones[0] == 0 and dones == sorted(dones) and len({t for _, t in mine}) == 1
        assert dones[-1] == mine[0][1] and (total is None or mine[0][1] == total)
    assert 0 < calls[-1][2] <= seen.n_aligned  # pairs scored: a pair of two queries is scored once


def test_bit_scores_and_evalues_closed_form():
    scoring = scoring_system()
    st = scoring.stats
    assert (st.lam, st.K) == (0.267, 0.041)
    assert bit_scores(np.array([100]), st)[0] == pytest.approx((0.267 * 100 - math.log(0.041)) / math.log(2))
    m, n, big_n = 250, 1_000_000, 3_000
    ell = length_adjustment(m, n, big_n, st)
    # slow reference: the largest integer l with l <= alpha/lambda (ln K + ln((m - l)(n - N l))) + beta
    ok = [j for j in range(m) if (m - j) * (n - big_n * j) > 0
          and j <= st.alpha / st.lam * (math.log(st.K) + math.log((m - j) * (n - big_n * j))) + st.beta]
    assert ell == max(ok) and ell > 0
    e = evalues(np.array([60]), query_length=m, db_residues=n, db_sequences=big_n, stats=st)[0]
    assert e == pytest.approx(st.K * (m - ell) * (n - big_n * ell) * math.exp(-st.lam * 60))
    assert search_space(m, n, big_n, st) == pytest.approx((m - ell) * (n - big_n * ell))
    assert length_adjustment(5, 20, 1, st) == 0  # a search space too small for any adjustment


def test_traceback_columns_by_hand():
    scoring = scoring_system()
    q = "MKVLAAGIVGLLLAWPQRSTVV"
    t = "KKMKVLWAGIVGAWPQRSTVVEE"  # one substitution (A->W), the query's LLL deleted, flanks on the target
    [a] = describe_alignments(q, [t], scoring)
    assert (a.qstart, a.qend, a.sstart, a.send) == (1, 22, 3, 21)
    assert (a.length, a.mismatch, a.gapopen) == (22, 1, 1)
    assert a.pident == pytest.approx(100 * 18 / 22)
    assert a.score == _reference(scoring, q, t)
    [none] = describe_alignments("WWW", ["PPP"], scoring)
    assert none.length == 0 and none.score == 0


def test_traceback_is_consistent_with_scores():
    scoring = scoring_system()
    pairs = _pairs(30, seed=11)
    for q, t in pairs:
        qc, tc = clean_sequence(q, scoring), clean_sequence(t, scoring)
        [a] = describe_alignments(qc, [tc], scoring)
        assert a.score == _reference(scoring, q, t)
        if a.length:
            assert 1 <= a.qstart <= a.qend <= len(qc) and 1 <= a.sstart <= a.send <= len(tc)
            # re-score the reported regions globally: the local optimum lies inside them
            m = ncbi_matrix("BLOSUM62")
            g = PairwiseAligner(mode="global", substitution_matrix=m, open_gap_score=-12, extend_gap_score=-1)
            assert int(g.score(qc[a.qstart - 1:a.qend], tc[a.sstart - 1:a.send])) == a.score


def test_letters_are_read_as_the_data_layer_reads_them():
    scoring = scoring_system()
    assert clean_sequence("mkb*zuoj", scoring) == "MKBXZUOJ"  # blastp's rare letters kept (test_rare_letters.py)
    with pytest.raises(ValueError, match="letter '1'"):
        clean_sequence("MK1V", scoring, what="query q1")
    with pytest.raises(ValueError, match="query 0"):
        align_candidates(["MK-V"], ["MKV"], [[0]], scoring=scoring)
    assert clean_sequence("acgunryx", scoring_system("dna")) == "ACGTNRYN"  # IUPAC codes kept (test_iupac.py)


def test_scoring_system_refusals():
    with pytest.raises(InputError, match="no Karlin-Altschul statistics for BLOSUM62 with gaps 5/1.*11/1"):
        scoring_system("protein", gap_open=5, gap_extend=1)
    with pytest.raises(InputError, match="unknown substitution matrix 'NOPE'; matrices with statistics: BLOSUM45, "
                                         "BLOSUM50, BLOSUM62, BLOSUM80, BLOSUM90, PAM250, PAM30, PAM70$"):
        scoring_system("protein", matrix="NOPE")  # not Biopython's 30 names, most of which have no statistics
    with pytest.raises(InputError, match="lacks the letter"):
        scoring_system("protein", matrix="NUC.4.4")
    with pytest.raises(InputError, match="for protein"):
        scoring_system("dna", matrix="BLOSUM62")
    with pytest.raises(InputError, match="gap costs"):
        scoring_system("protein", gap_extend=0)
    assert scoring_system("protein", matrix="blosum80", gap_open=10, gap_extend=1).stats.lam == 0.299


def test_finite_size_corrected_evalues_equal_blastps_printed_ones():
    """Values blastp 2.x printed for one 207-residue query against a 32-sequence, 6,133-residue database
    (``-comp_based_stats 0 -seg no``): raw score, target length -> E-value."""
    st = scoring_system().stats
    printed = [(232, 211, 3.55e-27), (64, 196, 6.41e-4), (16, 196, 705), (47, 161, 0.085), (22, 161, 124)]
    for raw, n_t, want in printed:
        got = evalues(np.array([raw]), query_length=207, db_residues=6133, db_sequences=32, stats=st,
                      target_lengths=np.array([n_t]))[0]
        assert got == pytest.approx(want, rel=0.01, abs=0)  # (approx's default abs 1e-12 would pass any 3.55e-27)


def _blast_length_adjustment(K: float, alpha_d_lambda: float, beta: float, m: int, n: int,
                             big_n: int) -> tuple[int, bool]:
    """NCBI BLAST+'s ``BLAST_ComputeLengthAdjustment`` (blast_stat.c) transcribed line for line: the reference
    (its fixed-point iteration, not phylocl's bisection); ``(l, converged)``."""
    m, n, big_n = float(m), float(n), float(big_n)
    log_k = math.log(K)
    a, mb, c = big_n, m * big_n + n, n * m - max(m, n) / K
    if c < 0:
        return 0, True
    ell_max = 2 * c / (mb + math.sqrt(mb * mb - 4 * a * c))
    ell_min, ell_next, converged = 0.0, 0.0, False
    for i in range(1, 21):
        ell = ell_next
        ell_bar = alpha_d_lambda * (log_k + math.log((m - ell) * (n - big_n * ell))) + beta
        if ell_bar >= ell:
            ell_min = ell
            if ell_bar - ell_min <= 1.0:
                converged = True
                break
            if ell_min == ell_max:
                break
        else:
            ell_max = ell
        if ell_min <= ell_bar <= ell_max:
            ell_next = ell_bar
        else:
            ell_next = ell_max if i == 1 else (ell_min + ell_max) / 2
    result = int(ell_min)
    if converged:
        ell = math.ceil(ell_min)
        if ell <= ell_max and alpha_d_lambda * (log_k + math.log((m - ell) * (n - big_n * ell))) + beta >= ell:
            result = int(ell)
    return result, converged


def _all_stats():
    from phylocl.align.scoring import DNA_PARAMS, PROTEIN_PARAMS

    return ([scoring_system("protein", matrix=mt, gap_open=o, gap_extend=e).stats for mt, o, e in PROTEIN_PARAMS]
            + [scoring_system("dna", gap_open=o, gap_extend=e).stats for _, o, e in DNA_PARAMS])


def test_length_adjustment_and_search_space_equal_blasts_routine_on_a_grid():
    """Every tabulated system, queries of 1 to 20,000 residues, databases of one short sequence to 3 million
    sequences: l equals BLAST+'s own routine where that converges, and everywhere the largest integer
    l <= alpha/lambda (ln K + ln((m - l)(n - N l))) + beta with K (m - l)(n - N l) >= max(m, n) (a slow scan); the
    search space is BLAST's (m - l)(n - N l) (n - N l >= 1) wherever m >= 1/K (below, phylocl keeps m' >= 1/K:
    documented; blastp keeps m). Where BLAST's 20 iterations do not converge (f' < -1: databases of sequences
    hardly longer than l) blastp keeps a smaller l than the fixed point's floor; phylocl takes the floor."""
    checked = 0
    for st in _all_stats():
        for m in (1, 7, 20, 60, 150, 400, 1500, 20_000):
            for n, big_n in ((100, 1), (3_000, 2), (6_133, 32), (60_000, 400), (2_000_000, 15_000),
                             (40_000, 390), (10**9, 3 * 10**6)):
                want, converged = _blast_length_adjustment(st.K, st.alpha / st.lam, st.beta, m, n, big_n)
                got = length_adjustment(m, n, big_n, st)
                if converged:
                    assert got == want, (st, m, n, big_n)
                # slow scan from above (the condition holds up to the fixed point and fails after it)
                fits = [j for j in range(min(m, n // big_n) + 1)
                        if st.K * (m - j) * (n - big_n * j) >= max(m, n)]
                scan = next((j for j in reversed(fits)
                             if j <= st.alpha / st.lam * (st.log_k + math.log((m - j) * (n - big_n * j))) + st.beta),
                            0)
                assert got == scan, (st, m, n, big_n)
                if m >= 1 / st.K:
                    assert search_space(m, n, big_n, st) == (m - got) * max(n - big_n * got, 1), (st, m, n, big_n)
                checked += got > 0
    assert checked > 500  # most cases have a positive adjustment


def _blast_spouge_evalue(y: int, st, m: int, n: int, db_length: int) -> float:
    """NCBI BLAST+'s ``BLAST_SpougeStoE`` (blast_stat.c) transcribed line for line (unscaled scores, a symmetric
    matrix), with ``gbp`` filled as ``Blast_GumbelBlkLoadFromTables`` fills it: the reference."""
    alpha_v, sigma, a_un, alpha_un, g = st.gumbel
    lam, k, a = st.lam, st.K, st.alpha
    b, beta, tau = 2.0 * g * (a_un - a), 2.0 * g * (alpha_un - alpha_v), 2.0 * g * (alpha_un - sigma)
    const_val = 0.39894228040143267793994605993438

    def side(length):
        li_y = length - (a * y + b)
        v_y = max(2.0 * alpha_v / lam, alpha_v * y + beta)
        f = li_y / math.sqrt(v_y)
        p_f = math.erfc(-f / math.sqrt(2.0)) / 2.0
        return li_y * p_f + math.sqrt(v_y) * const_val * math.exp(-0.5 * f * f), p_f

    p1, p_m = side(m)
    p2, p_n = side(n)
    c_y = max(2.0 * sigma / lam, sigma * y + tau)
    area = p1 * p2 + c_y * p_m * p_n
    return area * k * math.exp(-lam * y) * (db_length / n)


@pytest.mark.parametrize("gaps", [(11, 1), (11, 2), (9, 1), (6, 2)])
def test_finite_size_correction_equals_blasts_routine_on_a_grid(gaps):
    """The Spouge E-values of scores 1 to 400 for queries and targets of 10 to 3,000 residues (short ones, where
    the variance floor and the overlap term count) equal BLAST+'s routine to 1e-9."""
    st = scoring_system("protein", gap_open=gaps[0], gap_extend=gaps[1]).stats
    raw = np.array([1, 5, 12, 20, 28, 35, 50, 80, 120, 200, 400])
    for m in (10, 30, 75, 207, 1000, 3000):
        for n_t in (10, 25, 60, 211, 800, 3000):
            got = evalues(raw, query_length=m, db_residues=1_000_000, db_sequences=3_000, stats=st,
                          target_lengths=np.full(len(raw), n_t))
            want = [_blast_spouge_evalue(int(y), st, m, n_t, 1_000_000) for y in raw]
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=0, err_msg=f"m={m} n_t={n_t}")
            # several queries at once: the same values
            many = evalues(raw, query_length=np.full(len(raw), m), db_residues=1_000_000, db_sequences=3_000,
                           stats=st, target_lengths=np.full(len(raw), n_t))
            np.testing.assert_array_equal(many, got)


def test_dna_evalues_round_odd_scores_down_and_use_the_length_adjusted_form():
    """blastn's E-value of an odd raw score is that of the even score below it; bit scores are not rounded; the
    form is K m' n' exp(-lambda S) with BLAST's length adjustment (no finite-size correction for DNA)."""
    st = scoring_system("dna").stats
    m, n, big_n = 300, 50_000, 200
    ell, _ = _blast_length_adjustment(st.K, st.alpha / st.lam, st.beta, m, n, big_n)
    space = (m - ell) * (n - big_n * ell)
    raw = np.array([40, 41, 42, 101])
    got = evalues(raw, query_length=m, db_residues=n, db_sequences=big_n, stats=st, target_lengths=np.full(4, 300))
    want = [st.K * space * math.exp(-st.lam * s) for s in (40, 40, 42, 100)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    np.testing.assert_allclose(bit_scores(raw, st), (0.625 * raw - math.log(0.41)) / math.log(2), rtol=1e-12, atol=0)


def test_blosum80_is_the_matrix_its_statistics_belong_to():
    """NCBI BLAST's BLOSUM80 (scale ln(2)/2): A-A 5, C-C 9, W-W 11, A-R -2; Biopython's is the 1/3-bit one (A-A 7),
    which phylocl read before: raw scores ~1.5x blastp's under statistics made for the half-bit matrix."""
    s = scoring_system(matrix="BLOSUM80", gap_open=10, gap_extend=1)
    assert [s.score_of("A", "A"), s.score_of("C", "C"), s.score_of("W", "W"), s.score_of("A", "R")] == [5, 9, 11, -2]


def test_pairs_of_queries_aligned_once_give_the_same_hits(monkeypatch):
    """All-against-all: with query_rows each pair of two queries is aligned once; results equal the plain run."""
    import phylocl.align.aligner as mod

    aligned = []
    real = mod.score_pairs
    monkeypatch.setattr(mod, "score_pairs", lambda x, ys, s: aligned.append(len(ys)) or real(x, ys, s))
    pairs = _pairs(30, seed=13)
    seqs = [t for _, t in pairs] + [q for q, _ in pairs]
    rng = np.random.default_rng(1)
    cands = [[j for j in rng.permutation(len(seqs))[:40] if j != i] for i in range(len(seqs))]
    scoring = scoring_system()
    plain = align_candidates(seqs, seqs, cands, scoring=scoring, evalue=math.inf, threads=2)
    n_plain = sum(aligned)
    aligned.clear()
    once = align_candidates(seqs, seqs, cands, scoring=scoring, evalue=math.inf, threads=1,
                            query_rows=list(range(len(seqs))))
    mutual = sum(i in cands[j] for i in range(len(seqs)) for j in cands[i]) // 2
    assert sum(aligned) == n_plain - mutual  # each mutual pair aligned once
    for field in ("offsets", "targets", "raw", "bits", "evalues", "cand_rank", "ends"):
        np.testing.assert_array_equal(getattr(plain, field), getattr(once, field))


def test_erfc_of_the_finite_size_correction_equals_scipys():
    """statistics._erfc (the standard library's, to keep scipy.special out of a search's start-up) is scipy's erfc."""
    from scipy.special import erfc

    from phylocl.align.statistics import _erfc

    x = np.concatenate([np.linspace(-26, 26, 2001), np.random.default_rng(0).normal(scale=4, size=200)])  # normal numbers
    assert np.allclose(_erfc(x), erfc(x), rtol=1e-9, atol=0)
    assert _erfc(np.zeros((2, 3))).shape == (2, 3) and _erfc(np.zeros(0)).shape == (0,)


@pytest.mark.parametrize("name", ["BLOSUM62", "blosum62"])
def test_default_matrix_table_equals_biopythons(name):
    """BLOSUM62 is kept as a table (Bio.Align's import costs a one-query search ~30 ms): its 20 amino acids score as
    Biopython's, X -1 (NCBI's; the rare letters: test_rare_letters.py), and a matrix phylocl has no table of still
    comes from Biopython."""
    from Bio.Align import substitution_matrices

    from phylocl.align.scoring import PROTEIN_LETTERS, STANDARD_LETTERS, _protein_matrix

    m = substitution_matrices.load("BLOSUM62")
    key, rows = _protein_matrix(name)
    assert key == "BLOSUM62" and PROTEIN_LETTERS[-1] == "X"
    at = [PROTEIN_LETTERS.index(c) for c in STANDARD_LETTERS]
    assert tuple(tuple(rows[i][j] for j in at) for i in at) == tuple(
        tuple(-1 if "X" in (a, b) else int(m[a][b]) for b in STANDARD_LETTERS) for a in STANDARD_LETTERS)
    assert rows[PROTEIN_LETTERS.index("A")][-1] == rows[-1][-1] == -1 != int(m["A"]["X"])  # NCBI's X, not Bio's
    pam = substitution_matrices.load("PAM30")
    assert _protein_matrix("pam30")[1][0][1] == int(pam["A"]["C"]) and _protein_matrix("pam30")[1][0][-1] == -1
    b45 = substitution_matrices.load("BLOSUM45")  # no table here (and no statistics): Biopython's
    assert _protein_matrix("blosum45")[1][0][2] == int(b45["A"]["D"]) == -2


@pytest.mark.parametrize("matrix", ["BLOSUM62", "PAM30"])
def test_hits_equal_a_per_query_reference(matrix):
    """align_candidates (all queries' candidates in one flat layout, a pair of two queries scored once) gives, field
    for field, what one query at a time gives: Biopython's scores, E-values of that query alone, hits with E-value <=
    the threshold sorted by score then candidate order, at most max_hits; query_rows with a row listed twice, -1 and
    rows of no query."""
    scoring = scoring_system("protein", matrix=matrix, gap_open=9 if matrix == "PAM30" else None)
    pairs = _pairs(16, seed=43)
    seqs = [clean_sequence(s, scoring) for p in pairs for s in p]
    n_db = len(seqs)
    queries = seqs[:12] + [seqs[3], clean_sequence(pairs[0][0][::-1], scoring)]  # row 3 twice; one not a row
    rows = list(range(12)) + [3, -1]
    rng = np.random.default_rng(5)
    cands = [rng.permutation(n_db)[:20].tolist() + [-1, 7] for _ in queries]
    db_res = sum(map(len, seqs))
    for query_rows, max_hits in ((None, None), (rows, None), (rows, 4)):
        got = align_candidates(queries, seqs, cands, scoring=scoring, evalue=2.0, max_hits=max_hits, threads=1,
                               clean=False, query_rows=query_rows)
        for i, q in enumerate(queries):
            listed = list(dict.fromkeys(t for t in cands[i] if t >= 0))
            raw = np.array([_reference(scoring, q, seqs[t]) for t in listed])
            ev = evalues(raw, query_length=len(q), db_residues=db_res, db_sequences=n_db, stats=scoring.stats,
                         target_lengths=np.array([len(seqs[t]) for t in listed]))
            keep = [j for j in sorted(range(len(listed)), key=lambda j: (-raw[j], j)) if raw[j] > 0 and ev[j] <= 2.0]
            keep = keep[:max_hits]
            targets, r, bits, e = got.query(i)
            assert targets.tolist() == [listed[j] for j in keep] and r.tolist() == raw[keep].tolist()
            np.testing.assert_array_equal(e, ev[keep])
            np.testing.assert_array_equal(bits, bit_scores(raw[keep], scoring.stats))
            assert got.cand_rank[got.offsets[i]:got.offsets[i + 1]].tolist() == keep
        assert got.n_candidates == sum(len(set(c) - {-1}) for c in cands) == got.n_aligned


@pytest.mark.parametrize("query_rows", [None, [0, -1, 2]])
def test_queries_without_candidates_or_hits(query_rows):
    """No queries, queries whose candidates are all -1 or score nothing, and an empty query: empty hit lists in the
    flat layout (offsets still one per query), and the other queries' hits as when aligned alone."""
    scoring = scoring_system()
    targets = ["MKVLAAGIW", "PPPPPPPP", "MKVLAAGIWKE"]
    empty = align_candidates([], targets, [], scoring=scoring, query_rows=[] if query_rows else None)
    assert empty.offsets.tolist() == [0] and len(empty.targets) == 0 and empty.ends.shape == (0, 2)
    queries = ["MKVLAAGIW", "WWWW", "MKVLAAGIWKE"]
    cands = [[-1, -1], [1], [0, 2, 0]]
    hits = align_candidates(queries, targets, cands, scoring=scoring, evalue=1e6, query_rows=query_rows)
    assert hits.offsets.tolist()[:2] == [0, 0] and hits.query(1)[0].tolist() == []
    alone = align_candidates(queries[2:], targets, cands[2:], scoring=scoring, evalue=1e6)
    for field in ("targets", "raw", "bits", "evalues", "cand_rank", "ends"):
        np.testing.assert_array_equal(getattr(hits, field)[hits.offsets[2]:], getattr(alone, field))
    assert align_candidates([""], targets, [[0]], scoring=scoring).offsets.tolist() == [0, 0]


def test_candidates_outside_the_targets_are_a_value_error_naming_the_query():
    """-1 entries are skipped as documented; any other number outside the targets was an IndexError (too large) or
    silently skipped (other negatives)."""
    from phylocl.align import align_candidates, scoring_system

    sp = scoring_system("protein")
    db = ["MKVLLAAGGW", "MKVLLAAG"]
    assert align_candidates([db[0]], db, [[-1, 1]], scoring=sp).query(0)[0].tolist() == [1]
    for bad in (2, 999, -5):
        with pytest.raises(ValueError, match=f"query 1: candidate {bad} is not a target number"):
            align_candidates([db[0], db[1]], db, [[0], [1, bad]], scoring=sp, threads=2)

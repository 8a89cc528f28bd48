"""The fast traceback (parasail on the aligned rectangle) against the reference (pyopal's full mode) and Biopython."""

from __future__ import annotations

import random

import numpy as np
import pytest
from Bio.Align import PairwiseAligner, substitution_matrices

from phylocl.align import clean_sequence, describe_alignments, scoring_system
from phylocl.align.traceback import EMPTY, canonical_first, mirror, trace_alignment, trace_alignments
from .test_aligner import _pairs, _reference


def _global(scoring, q: str, t: str) -> int:
    """Biopython's global alignment score with the scoring system's own matrix (N, X included)."""
    m = substitution_matrices.Array(alphabet=scoring.letters, dims=2, data=np.array(scoring.scores, dtype=float))
    g = PairwiseAligner(mode="global", substitution_matrix=m, open_gap_score=-(scoring.gap_open + scoring.gap_extend),
                        extend_gap_score=-scoring.gap_extend)
    return int(g.score(q, t))


def _valid(a, q: str, t: str, scoring) -> None:
    """``a`` describes an optimal local alignment of q and t: its rectangle re-scores globally to the optimum, and the
    counts are those of one alignment (columns = query span + target span - aligned pairs)."""
    if not a.length:
        return
    assert 1 <= a.qstart <= a.qend <= len(q) and 1 <= a.sstart <= a.send <= len(t)
    assert _global(scoring, q[a.qstart - 1:a.qend], t[a.sstart - 1:a.send]) == a.score
    pairs = round(a.pident * a.length / 100) + a.mismatch
    assert a.length == (a.qend - a.qstart + 1) + (a.send - a.sstart + 1) - pairs
    assert a.gapopen <= a.length - pairs and (a.gapopen > 0) == (a.length > pairs)


def test_fast_path_equals_the_reference_up_to_co_optimal_ties():
    """Random related pairs with unrelated flanks on both ends (end gaps), X and lowercase: the same optimal score as
    pyopal's full mode and Biopython, a valid alignment, and the very same columns wherever the two libraries' tie
    breaking does not differ (almost always on these pairs)."""
    scoring = scoring_system()
    same = 0
    pairs = _pairs(200, seed=21)
    for q, t in pairs:
        qc, tc = clean_sequence(q, scoring), clean_sequence(t, scoring)
        [ref] = describe_alignments(qc, [tc], scoring)
        fast = trace_alignment(qc, tc, scoring)
        assert fast.score == ref.score == _reference(scoring, q, t)
        _valid(fast, qc, tc, scoring)
        same += fast == ref
    assert same >= 0.9 * len(pairs)


def test_both_orders_give_one_alignment_mirrored():
    scoring = scoring_system()
    for q, t in _pairs(60, seed=3):
        qc, tc = clean_sequence(q, scoring), clean_sequence(t, scoring)
        a, b = trace_alignment(qc, tc, scoring), trace_alignment(tc, qc, scoring)
        assert b == mirror(a) and mirror(mirror(a)) == a
        assert canonical_first(qc, tc, scoring) != canonical_first(tc, qc, scoring) or qc == tc
    assert trace_alignment("WWW", "PPP", scoring) == EMPTY
    assert trace_alignment("", "PPP", scoring) == EMPTY


def test_alignments_longer_than_the_first_window():
    """Low score per column (A-A 4, then 15 zero-scoring T-A columns): the alignment spans more than the first start
    window (2 S + 20), so the window grows; and a long gapped pair."""
    scoring = scoring_system()
    q, t = ("A" + "T" * 15) * 30, "A" * 480
    a = trace_alignment(q, t, scoring)
    assert a.score == _reference(scoring, q, t) == 120
    assert a.qend - a.qstart + 1 > 2 * a.score + 20
    _valid(a, q, t, scoring)
    rng = random.Random(4)
    core = "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(900))
    other = "".join(c if rng.random() > 0.5 else rng.choice("ACDEFGHIKLMNPQRSTVWY") for c in core)
    other = other[:300] + "GGGGGGGG" + other[300:600] + other[640:]  # an insertion and a deletion
    for x, y in ((core, other), (other, core)):
        b = trace_alignment(x, y, scoring)
        assert b.score == _reference(scoring, x, y) and b.gapopen >= 2
        _valid(b, x, y, scoring)


def test_dna_and_other_matrices():
    rng = random.Random(8)
    dna = scoring_system("dna")
    for _ in range(40):
        core = "".join(rng.choice("ACGT") for _ in range(rng.randint(10, 150)))
        other = "".join(c if rng.random() > 0.2 else rng.choice("ACGTN") for c in core)
        q = "".join(rng.choice("ACGT") for _ in range(rng.randint(0, 30))) + core
        t = other + "".join(rng.choice("ACGT") for _ in range(rng.randint(0, 30)))
        [ref] = describe_alignments(q, [t], dna)
        fast = trace_alignment(q, t, dna)
        assert fast.score == ref.score
        _valid(fast, q, t, dna)
    pam = scoring_system(matrix="PAM30", gap_open=9, gap_extend=1)
    for q, t in _pairs(30, seed=5):
        qc, tc = clean_sequence(q, pam), clean_sequence(t, pam)
        assert trace_alignment(qc, tc, pam).score == _reference(pam, q, t)


@pytest.mark.parametrize("threads", [1, 2])
def test_stage_traces_each_pair_of_two_queries_once(monkeypatch, threads):
    """All-against-all (query_rows): the tracebacks equal those of the plain run (no rows), each pair of two queries
    is traced once, and the summaries are trace_alignment's in the query's own orientation."""
    import phylocl.workflows.search_align as sa
    from phylocl.workflows.search_align import AlignStage

    scoring = scoring_system()
    seqs = [clean_sequence(s, scoring) for p in _pairs(12, seed=9) for s in p]
    n = len(seqs)
    stage = AlignStage(scoring=scoring, fetch=seqs.__getitem__, db_ids=[f"s{i}" for i in range(n)],
                       db_residues=sum(map(len, seqs)), db_sequences=n, k=n, evalue=1e9, out_format="blast6",
                       threads=threads, filter_pvalue=None)
    from phylocl.align import align_candidates

    cands = [[j for j in range(n) if j != i] for i in range(n)]
    hits = align_candidates(seqs, seqs, cands, scoring=scoring, evalue=1e9, threads=1)
    calls = []
    real = sa.trace_tables
    monkeypatch.setattr(sa, "trace_tables", lambda groups, s, **kw: [calls.extend(g[1]) for g in groups] and real(groups, s, **kw))
    plain = stage._tracebacks([f"s{i}" for i in range(n)], seqs, hits)
    n_plain = len(calls)
    calls.clear()
    rows = stage._tracebacks([f"s{i}" for i in range(n)], seqs, hits, query_rows=range(n))
    assert rows == plain
    pairs = {frozenset((i, int(t))) for i in range(n) for t in hits.query(i)[0]}
    assert n_plain == int(hits.offsets[-1]) and len(calls) == len(pairs) < n_plain
    for i in range(n):
        for t, a in zip(hits.query(i)[0].tolist(), rows[i]):
            assert a == trace_alignment(seqs[i], seqs[t], scoring)
    assert np.all(np.diff(hits.offsets) > 0)


def test_one_first_sequence_against_many_equals_pair_by_pair():
    """trace_alignments (score profiles built once) gives trace_alignment's summaries, with and without scores, in
    both orders of each pair (so some pairs are traced the other way round and mirrored)."""
    scoring = scoring_system()
    pairs = [(clean_sequence(q, scoring), clean_sequence(t, scoring)) for q, t in _pairs(40, seed=23)]
    first = pairs[0][0]
    others = [t for _, t in pairs] + [q for q, _ in pairs[1:]] + ["W" * 400, first]
    want = [trace_alignment(first, y, scoring) for y in others]
    assert trace_alignments(first, others, scoring) == want
    assert trace_alignments(first, others, scoring, [a.score for a in want]) == want
    assert trace_alignments("", ["MKV"], scoring) == [EMPTY]


def test_a_known_score_changes_nothing_and_wide_scores_fall_back():
    """The score hint only skips 8-bit passes that would overflow: the same summaries with and without it, at low
    scores, above the 8-bit limits (128, 255) and above 16 bits (a self-alignment scoring 34,100)."""
    scoring = scoring_system()
    seen = set()
    for q, t in _pairs(80, seed=17):
        qc, tc = clean_sequence(q, scoring), clean_sequence(t, scoring)
        a = trace_alignment(qc, tc, scoring)
        assert trace_alignment(qc, tc, scoring, a.score) == a
        seen.add(min(a.score // 128, 2))
    assert seen == {0, 1, 2}
    w = "W" * 3100
    big = trace_alignment(w, w, scoring, 34_100)
    assert big == trace_alignment(w, w, scoring) and big.score == 34_100 and big.length == 3100 == big.qend


def test_pairs_traced_whole_and_by_rectangle():
    """Close homologs (the alignment covers the pair) take the one-pass whole-pair traceback, short local hits in long
    sequences the three passes; both give the reference score, a valid alignment, the same result with or without
    the known score, and mirror in the other order."""
    from phylocl.align.traceback import _whole

    scoring = scoring_system()
    rng = random.Random(12)
    aa = "ACDEFGHIKLMNPQRSTVWY"
    core = "".join(rng.choice(aa) for _ in range(250))
    close = "".join(c if rng.random() > 0.05 else rng.choice(aa) for c in core)
    flank = "".join(rng.choice(aa) for _ in range(600))
    cases = [(core, close, True), (flank + core[:40], close[:40] + flank[::-1], False)]
    for x, y, whole in cases:
        a = trace_alignment(x, y, scoring)
        assert _whole(a.score, len(x), len(y)) == whole
        assert a.score == _reference(scoring, x, y)
        _valid(a, x, y, scoring)
        assert trace_alignment(x, y, scoring, a.score) == a and trace_alignment(y, x, scoring) == mirror(a)


def test_first_tracebacks_of_many_threads_at_once():
    """Threads that trace their first pairs of a fresh scoring system at the same moment each hold a live parasail
    matrix (a matrix dropped from the scoring system's cache was once freed under another thread's pointer and
    crashed a 2-thread search); run in a child process so that a crash fails the test instead of the run."""
    import subprocess
    import sys

    code = (
        "import threading\n"
        "from phylocl.align import clean_sequence, scoring_system\n"
        "from phylocl.align.traceback import trace_alignment, trace_alignments\n"
        "from tests.align.test_aligner import _pairs\n"
        "pairs = _pairs(16, seed=41)\n"
        "want = [trace_alignment(q, t, scoring_system()) for q, t in ((clean_sequence(q, scoring_system()),\n"
        "        clean_sequence(t, scoring_system())) for q, t in pairs)]\n"
        "for _ in range(40):\n"
        "    scoring = scoring_system()  # a fresh cache: every thread builds its parasail calls at once\n"
        "    clean = [(clean_sequence(q, scoring), clean_sequence(t, scoring)) for q, t in pairs]\n"
        "    gate, got = threading.Barrier(8), {}\n"
        "    def run(k):\n"
        "        gate.wait()\n"
        "        got[k] = [trace_alignments(q, [t], scoring)[0] for q, t in clean]\n"
        "    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]\n"
        "    [t.start() for t in threads]; [t.join() for t in threads]\n"
        "    assert all(v == want for v in got.values())\n")
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("alphabet", ["protein", "dna"])
def test_score_pairs_gives_the_reference_scores_and_the_traces_end_cells(alphabet):
    """score_pairs (the stage's Smith-Waterman since it replaced pyopal's score mode): pyopal's scores (and
    Biopython's for protein) on related pairs with end gaps, X / N and lowercase; 8-, 16- and 32-bit scores; empty
    sequences score 0 with no end; and a trace given those ends (its score pass skipped) is the trace without them."""
    import pyopal

    from phylocl.align.traceback import score_pairs

    scoring = scoring_system(alphabet)
    if alphabet == "dna":
        rng = random.Random(5)
        pairs = [("".join(rng.choice("ACGTN") for _ in range(rng.randint(20, 300))),
                  "".join(rng.choice("acgt") for _ in range(rng.randint(20, 300)))) for _ in range(20)]
        pairs += [(q, q[::-1] + q[5:]) for q, _ in pairs[:10]]
    else:
        pairs = _pairs(60, seed=29)
    pairs = [(clean_sequence(q, scoring), clean_sequence(t, scoring)) for q, t in pairs]
    first = pairs[0][0]
    others = [t for _, t in pairs] + ([first * 2] if alphabet == "protein" else []) + [""]
    got = score_pairs(first, others, scoring)
    assert got.shape == (len(others), 3) and got.dtype == np.int64
    aligner = scoring.aligner()
    want = [r.score for r in aligner.align(first, pyopal.Database(others[:-1], alphabet=aligner.alphabet),
                                           mode="score", algorithm="sw")]
    assert got[:-1, 0].tolist() == want and got[-1].tolist() == [0, -1, -1]
    if alphabet == "protein":
        assert got[:-1, 0].tolist() == [_reference(scoring, first, y) for y in others[:-1]]
        assert got[len(pairs), 0] > 255  # a 16-bit pass
        w = "W" * 3100
        assert score_pairs(w, [w], scoring).tolist() == [[34_100, 3099, 3099]]  # a 32-bit pass
    assert np.all((got[:-1, 1] >= 0) & (got[:-1, 1] < len(first)))
    assert np.all(got[:-1, 2] < np.array([len(y) for y in others[:-1]]))
    assert score_pairs("", others, scoring)[:, 0].tolist() == [0] * len(others)
    # the ends of the pairs traced with `first` first are the trace's own: same summaries with and without them
    mine = [j for j, y in enumerate(others) if canonical_first(first, y, scoring)]
    ys, scores = [others[j] for j in mine], got[mine, 0].tolist()
    ends = [tuple(e) for e in got[mine, 1:].tolist()]
    assert trace_alignments(first, ys, scoring, scores, ends) == trace_alignments(first, ys, scoring, scores)
    # the other pairs are traced (y, first): their ends come from score_pairs(y, [first])
    theirs = [j for j in range(len(others)) if j not in mine]
    assert len(mine) > 5 and len(theirs) > 5
    ends = [tuple(score_pairs(others[j], [first], scoring)[0, 1:].tolist()) for j in theirs]
    ys, scores = [others[j] for j in theirs], got[theirs, 0].tolist()
    assert trace_alignments(first, ys, scoring, scores, ends) == trace_alignments(first, ys, scoring, scores)


def test_stage_ends_are_the_traced_orientations_score_pass():
    """align_candidates' ends: for every hit, the end cell score_pairs gives in the pair's traced orientation, also
    for a pair of two queries scored once (query_rows); unknown (-1) only where no query is its row's sequence."""
    from phylocl.align import align_candidates
    from phylocl.align.traceback import score_pairs

    scoring = scoring_system()
    seqs = [clean_sequence(s, scoring) for p in _pairs(15, seed=31) for s in p]
    n = len(seqs)
    cands = [[j for j in range(n) if j != i] for i in range(n)]
    for rows in (None, list(range(n))):
        hits = align_candidates(seqs, seqs, cands, scoring=scoring, evalue=1e9, threads=1, query_rows=rows)
        for i in range(n):
            a, b = hits.offsets[i], hits.offsets[i + 1]
            for t, end in zip(hits.targets[a:b].tolist(), hits.ends[a:b].tolist()):
                x, y = (seqs[i], seqs[t]) if canonical_first(seqs[i], seqs[t], scoring) else (seqs[t], seqs[i])
                assert end == score_pairs(x, [y], scoring)[0, 1:].tolist()
    # queries that are not their rows' sequences (reverse complements, as the minus strand aligns them): no copies' ends
    dna = scoring_system("dna")
    rng = random.Random(3)
    seqs = ["".join(rng.choice("ACGT") for _ in range(80)) for _ in range(6)]
    seqs = [s + seqs[(i + 1) % 6][:40] for i, s in enumerate(seqs)]
    other = [s[::-1] for s in seqs]
    cands = [[j for j in range(6) if j != i] for i in range(6)]
    hits = align_candidates(other, seqs, cands, scoring=dna, evalue=1e9, threads=1, query_rows=list(range(6)))
    plain = align_candidates(other, seqs, cands, scoring=dna, evalue=1e9, threads=1)
    np.testing.assert_array_equal(hits.raw, plain.raw)
    known = hits.ends[:, 0] >= 0
    np.testing.assert_array_equal(hits.ends[known], plain.ends[known])
    assert not known.all()


def _summary_reference(traced) -> list[int]:
    """The CIGAR of one traceback read operation by operation (the per-pair reading _summaries replaced)."""
    (score, end_query, end_ref, beg_query, beg_ref, raw), best, qs, ts = traced
    ops = [int.from_bytes(raw[k:k + 4], "little") for k in range(0, len(raw), 4)]
    lead = {1: 0, 2: 0}  # leading I / D runs: the traced rectangle's unaligned start
    while ops and ops[0] & 0xF in lead:
        lead[ops[0] & 0xF] += ops.pop(0) >> 4
    cols = {k: sum(o >> 4 for o in ops if o & 0xF == k) for k in (1, 2, 7, 8)}
    runs = sum(1 for o in ops if o & 0xF in (1, 2))
    return [best, sum(cols.values()), cols[7], cols[8], runs, qs + beg_query + lead[1] + 1, qs + end_query + 1,
            ts + beg_ref + lead[2] + 1, ts + end_ref + 1]


def test_summaries_of_many_tracebacks_equal_the_per_pair_reading():
    """_summaries reads all CIGARs of a batch in one NumPy pass: row for row the per-pair reading, on tracebacks
    with leading I / D runs (rectangles and whole pairs), none (score 0) in between, and gaps of both kinds."""
    from phylocl.align.traceback import _summaries, _trace

    scoring = scoring_system()
    pairs = [(clean_sequence(q, scoring), clean_sequence(t, scoring)) for q, t in _pairs(80, seed=37)]
    traced = [_trace(q, t, scoring) for q, t in pairs] + [None, _trace("WWW", "PPP", scoring)]
    traced.insert(5, None)
    got = _summaries(traced)
    want = [_summary_reference(t) if t is not None else [0] * 9 for t in traced]
    assert got.tolist() == want
    leads = [w for w, t in zip(want, traced) if t is not None and t[0][5][:4] and t[0][5][0] & 0xF in (1, 2)]
    assert len(leads) >= 3 and sum(w[4] > 0 for w in want) > 20  # leading runs and gapped alignments were read


@pytest.mark.parametrize("alphabet", ["dna", "protein"])
def test_score_pairs_traces_whole_pairs_as_the_traceback_does(alphabet):
    """score_pairs(trace_whole=True): the same scores and ends as without it; a DNA pair whose 8-bit pass saturates
    and whose alignment covers the pair comes with trace_table's own row for it (the stage then skips its trace);
    a saturating pair that is not traced whole (a short core in long flanks) and unsaturated pairs are scored as
    before, rows of zeros; protein pairs are never traced there."""
    from phylocl.align.traceback import TABLE_COLUMNS, score_pairs, trace_table

    scoring = scoring_system(alphabet)
    rng = random.Random(3)
    letters = "ACGT" if alphabet == "dna" else "ACDEFGHIKLMNPQRSTVWY"

    def rand(n):
        return "".join(rng.choice(letters) for _ in range(n))

    def mutate(s, rate):
        return "".join(rng.choice(letters) if rng.random() < rate else c for c in s)

    first = "A" + rand(399)  # every other sequence starts with C: first is traced first (canonical_first)
    others = ["C" + mutate(first[1:], 0.03) for _ in range(4)]  # saturate 8 bits, traced whole
    others += ["C" + rand(900) + first[100:250] + rand(900)]  # saturates (score 300), far from whole
    others += ["C" + rand(300) for _ in range(3)] + [""]  # unrelated, and empty
    assert all(canonical_first(first, y, scoring) for y in others if y)
    plain = score_pairs(first, others, scoring)
    got = score_pairs(first, others, scoring, trace_whole=True)
    assert got.shape == (len(others), 3 + len(TABLE_COLUMNS)) and got.dtype == np.int64
    assert got[:, 0].tolist() == plain[:, 0].tolist()
    traced = got[:, 4] > 0  # length > 0
    assert (got[~traced, :3] == plain[~traced, :3]).all() and (got[~traced, 3:] == 0).all()
    if alphabet == "protein":
        assert not traced.any()
        return
    assert traced[:4].all() and not traced[4:].any() and plain[4, 0] >= 255
    for j in np.flatnonzero(traced):
        assert got[j, 3:].tolist() == trace_table(first, [others[j]], scoring, [int(plain[j, 0])])[0].tolist()


def test_trace_tables_stacks_the_groups_trace_tables():
    """trace_tables (one CIGAR summary pass for several first sequences) equals trace_table group by group, with
    and without scores, an empty first sequence giving rows of zeros."""
    from phylocl.align.traceback import TABLE_COLUMNS, trace_table, trace_tables

    scoring = scoring_system()
    pairs = [(clean_sequence(q, scoring), clean_sequence(t, scoring)) for q, t in _pairs(12, seed=41)]
    groups = [(pairs[0][0], [t for _, t in pairs[:6]], None, None), ("", [pairs[1][1]], None, None),
              (pairs[2][1], [q for q, _ in pairs[3:]], [trace_alignment(pairs[2][1], q, scoring).score
                                                         for q, _ in pairs[3:]], None)]
    got = trace_tables(groups, scoring)
    want = np.concatenate([trace_table(*g[:2], scoring, g[2], g[3]) for g in groups])
    assert got.shape == (6 + 1 + 9, len(TABLE_COLUMNS)) and (got == want).all()
    assert (got[6] == 0).all() and (got[:6, 1] > 0).all()


def test_the_traceback_limit_is_on_the_aligned_rectangle_not_the_pair(monkeypatch):
    """With a limit of 20,000 cells: a short local hit between two 1,500-residue sequences (2.25 M cells as a pair)
    is traced in its rectangle, the same as without the limit; a close pair whose rectangle is over the limit is
    traced in pieces (phylocl.align.split_trace; it was refused with TracebackTooLarge): the same score, a valid
    alignment (tests/align/test_split_trace.py has the rest)."""
    import phylocl.align.traceback as tb

    scoring = scoring_system()
    rng = random.Random(5)
    aa = "ACDEFGHIKLMNPQRSTVWY"
    hit = "".join(rng.choice(aa) for _ in range(60))
    x = "".join(rng.choice(aa) for _ in range(700)) + hit + "".join(rng.choice(aa) for _ in range(740))
    y = "".join(rng.choice(aa) for _ in range(900)) + hit + "".join(rng.choice(aa) for _ in range(540))
    close = "".join(c if rng.random() > 0.05 else rng.choice(aa) for c in x[:400])
    want = trace_alignment(x, y, scoring)
    want_close = trace_alignment(close, x[:400], scoring)
    monkeypatch.setattr(tb, "TRACE_CELLS", 20_000)
    got = trace_alignment(x, y, scoring)
    assert got == want and got.qend - got.qstart < 100 and len(x) * len(y) > 100 * tb.TRACE_CELLS
    rows = tb.trace_tables([(x, [y, y], None, None), (close, [x[:400]], None, None)], scoring)
    got_close = tb.summary_of(rows[2].tolist())
    assert got_close.score == want_close.score and (got_close.qend - got_close.qstart + 1) ** 2 > tb.TRACE_CELLS
    _valid(got_close, close, x[:400], scoring)

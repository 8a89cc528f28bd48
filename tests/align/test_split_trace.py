"""Tracebacks over the cell limit, traced in pieces (phylocl.align.split_trace): optimal, valid, the same in both
orders, checked against Biopython's global scores and the one-pass traceback's score."""

from __future__ import annotations

import random

import numpy as np
import pytest

import phylocl.align.split_trace as st
import phylocl.align.traceback as tb
from phylocl.align import clean_sequence, scoring_system
from phylocl.align.traceback import mirror, trace_alignment

from .test_aligner import AA, _mutate, _pairs
from .test_traceback import _global, _valid


def _ops_score(ops: np.ndarray, x: str, y: str, scoring) -> int:
    """The score of CIGAR ``ops`` read over ``x`` and ``y`` from their first letters (a slow reference)."""
    total, i, j = 0, 0, 0
    for op in ops.tolist():
        n, code = op >> 4, op & 0xF
        if code in (7, 8):  # = X
            total += sum(scoring.score_of(x[i + k], y[j + k]) for k in range(n))
            i, j = i + n, j + n
        else:
            total -= scoring.gap_open + n * scoring.gap_extend
            i, j = (i + n, j) if code == 1 else (i, j + n)
    assert (i, j) == (len(x), len(y))  # the whole rectangle
    return total


@pytest.mark.parametrize("cells", [400, 3_000])
def test_pieces_give_an_optimal_valid_alignment_in_both_orders(monkeypatch, cells):
    """With a limit of a few hundred cells every pair is cut several times: the same score as without the limit,
    an alignment whose rectangle re-scores globally to it (Biopython), and the same alignment mirrored in the other
    order."""
    scoring = scoring_system()
    pairs = [(q, t) for q, t in _pairs(120, seed=4) if len(q) > 20 and len(t) > 20]
    want = [trace_alignment(clean_sequence(q, scoring), clean_sequence(t, scoring), scoring) for q, t in pairs]
    monkeypatch.setattr(tb, "TRACE_CELLS", cells)
    cut = 0
    for (q, t), w in zip(pairs, want):
        qc, tc = clean_sequence(q, scoring), clean_sequence(t, scoring)
        got = trace_alignment(qc, tc, scoring)
        assert got.score == w.score
        _valid(got, qc, tc, scoring)
        assert trace_alignment(tc, qc, scoring) == mirror(got)
        cut += (got.qend - got.qstart + 1) * (got.send - got.sstart + 1) > cells
    assert cut >= len(pairs) // 3  # many pairs went through the pieces (at 400 cells: most)


def test_a_long_gap_across_the_middle_row_is_cut_at_another_row():
    """The target lacks 150 residues around the query's middle: every optimal path crosses the middle rows inside
    that gap, so rows further out are tried; the operations re-score to the global optimum (Biopython)."""
    scoring = scoring_system()
    rng = random.Random(8)
    x = "".join(rng.choice(AA) for _ in range(400))
    y = _mutate(rng, x[:125], 0.1) + _mutate(rng, x[275:], 0.1)
    best = _global(scoring, x, y)
    parasail_matrix, gap_open, gap_extend = scoring.parasail()
    ops = st.global_ops(x.encode(), y.encode(), best, matrix=parasail_matrix.address, gap_open=gap_open,
                        gap_extend=gap_extend, cells=2_000)
    assert _ops_score(ops, x, y, scoring) == best
    assert any((op & 0xF) == 1 and (op >> 4) >= 140 for op in ops.tolist())  # the gap, in one run


def test_search_writes_the_hit_of_a_pair_over_the_limit(monkeypatch, tmp_path):
    """``search --format blast6`` of a pair whose alignment is over the limit wrote nothing and exited 2 ("too many
    for a traceback"); it now writes the hit, with the score, E-value and bit score of a run without the limit and
    valid columns."""
    from phylocl.cli import main

    rng = random.Random(3)
    x = "".join(rng.choice(AA) for _ in range(600))
    y = _mutate(rng, x, 0.2)
    (tmp_path / "q.fa").write_text(f">q\n{x}\n")
    (tmp_path / "d.fa").write_text(f">d\n{y}\n>e\n{''.join(rng.choice(AA) for _ in range(300))}\n")
    args = ["search", "--model", "kmer:3", "--query", str(tmp_path / "q.fa"), "--db", str(tmp_path / "d.fa"),
            "--format", "blast6", "-k", "1", "--threads", "1", "--quiet"]
    assert main([*args, "-o", str(tmp_path / "a.m8")]) == 0
    monkeypatch.setattr(tb, "TRACE_CELLS", 10_000)
    assert main([*args, "-o", str(tmp_path / "b.m8")]) == 0
    a = (tmp_path / "a.m8").read_text().split("\t")
    b = (tmp_path / "b.m8").read_text().split("\t")
    assert a[0:2] == b[0:2] == ["q", "d"] and a[10:] == b[10:]  # E-value and bit score
    length, mismatch, qs, qe, ss, se = int(b[3]), int(b[4]), int(b[6]), int(b[7]), int(b[8]), int(b[9])
    assert (qe - qs + 1) * (se - ss + 1) > 10_000 and length >= max(qe - qs + 1, se - ss + 1) > mismatch
    scoring = scoring_system()
    assert _global(scoring, x[qs - 1:qe], y[ss - 1:se]) == round((float(b[11]) * np.log(2) + scoring.stats.log_k)
                                                                   / scoring.stats.lam)


def test_no_row_cutting_the_alignment_is_still_one_line(monkeypatch):
    """Where no row cuts an optimal path (none found here: forced), the pair is refused as before, with its row."""
    import pickle

    def refuse(*args, **kwargs):
        raise ValueError("no row cuts")

    scoring = scoring_system()
    rng = random.Random(5)
    x = "".join(rng.choice(AA) for _ in range(300))
    monkeypatch.setattr(tb, "TRACE_CELLS", 5_000)
    monkeypatch.setattr(st, "global_ops", refuse)
    with pytest.raises(tb.TracebackTooLarge) as info:
        tb.trace_tables([(x, [x], None, None)], scoring)
    err = info.value
    assert err.at == 0 and err.cells == 300 * 300 and pickle.loads(pickle.dumps(err)).at == 0

"""The ungapped (MSV) filter before Smith-Waterman: calibrated P-values, homologs kept, the same hits otherwise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from phylocl.align import align_candidates, scoring_system
from phylocl.align.msv import MsvFilter

AA = "ACDEFGHIKLMNPQRSTVWY"


def _background(rng, n: int) -> str:
    from pyhmmer.easel import Alphabet
    from pyhmmer.plan7 import Background

    f = np.array(list(Background(Alphabet.amino()).residue_frequencies))[:20]
    return "".join(rng.choice(list(AA), n, p=f / f.sum()))


def _mutate(rng, s: str, rate: float) -> str:
    return "".join(rng.choice(list(AA)) if rng.random() < rate else c for c in s)


def test_pvalues_of_unrelated_sequences_are_calibrated():
    """Random sequences of HMMER's background composition: the fraction with P <= p is about p (the Gumbel fit
    of the query's profile and the per-length null model; a wrong null model shifts every score by bits)."""
    rng = np.random.default_rng(0)
    msv = MsvFilter(scoring=scoring_system("protein"))
    for qlen in (120, 400):
        p = msv.pvalues(_background(rng, qlen), [_background(rng, int(rng.integers(150, 450))) for _ in range(800)])
        assert 0.03 <= (p <= 0.1).mean() <= 0.2, qlen
        assert 0.35 <= (p <= 0.5).mean() <= 0.65, qlen


def test_homologs_pass_and_the_pvalue_is_hmmer_null_and_gumbel():
    from pyhmmer.easel import Alphabet, TextSequence
    from pyhmmer.plan7 import Background
    from scipy.stats import gumbel_r

    rng = np.random.default_rng(1)
    msv = MsvFilter(scoring=scoring_system("protein"))
    q = _background(rng, 250)
    targets = [_mutate(rng, q, 0.5), _background(rng, 80) + q[40:160] + _background(rng, 60), _background(rng, 300)]
    p = msv.pvalues(q, targets)
    assert p[0] < 1e-6 and p[1] < 1e-6 and p[2] > 1e-3
    assert msv.keep(q, targets).tolist() == [True, True, p[2] <= 0.02]
    # the same P-value written with pyhmmer's null model and scipy's Gumbel, from the profile's own parameters
    alphabet, background, builder = msv._tools()[:3]
    _, _, profile = builder.build(TextSequence(name=b"query", sequence=q).digitize(alphabet), background)
    mu, lam = list(profile.evalue_parameters.as_vector())[:2]
    t = TextSequence(sequence=targets[2]).digitize(alphabet)
    profile.L = len(targets[2])
    bg = Background(Alphabet.amino())
    bg.L = len(targets[2])
    bits = (profile.msv_filter(t) - bg.null1(t)) / math.log(2)
    assert p[2] == pytest.approx(gumbel_r.sf(bits, loc=mu, scale=1 / lam), rel=1e-6)


def test_filtered_alignment_keeps_the_unfiltered_scores_of_the_pairs_it_aligns():
    rng = np.random.default_rng(2)
    fams = [_background(rng, int(rng.integers(80, 200))) for _ in range(4)]
    seqs = [_mutate(rng, fams[i % 4], 0.35) for i in range(16)] + [_background(rng, 150) for _ in range(24)]
    cands = [[j for j in range(len(seqs)) if j != i] for i in range(16)]
    scoring = scoring_system("protein")
    full = align_candidates(seqs[:16], seqs, cands, scoring=scoring, evalue=math.inf)
    none = align_candidates(seqs[:16], seqs, cands, scoring=scoring, evalue=math.inf, filter_pvalue=1.0)
    assert np.array_equal(full.targets, none.targets) and np.array_equal(full.raw, none.raw)
    msv = MsvFilter(scoring=scoring, pvalue=0.02)
    runs = [align_candidates(seqs[:16], seqs, cands, scoring=scoring, evalue=math.inf, filter_pvalue=0.02,
                             threads=t, query_rows=rows) for t, rows in ((1, None), (2, range(16)))]
    for got in runs:  # the same with 1 or 2 threads, and when pairs of two queries are scored once
        assert np.array_equal(got.targets, runs[0].targets) and np.array_equal(got.raw, runs[0].raw)
    filtered = runs[0]
    assert full.n_candidates == filtered.n_candidates == 16 * 39 and full.n_aligned == full.n_candidates
    assert filtered.n_aligned == sum(int(msv.keep(seqs[i], [seqs[j] for j in cands[i]]).sum()) for i in range(16))
    for i in range(16):
        ref = dict(zip(full.query(i)[0].tolist(), full.query(i)[1].tolist()))
        kept = np.array(cands[i])[msv.keep(seqs[i], [seqs[j] for j in cands[i]])]
        t, raw, _, _ = filtered.query(i)
        assert set(t.tolist()) == {j for j in kept.tolist() if ref.get(j, 0) > 0}  # aligned = what the filter kept
        assert all(ref[a] == b for a, b in zip(t.tolist(), raw.tolist()))  # with the unfiltered scores
        assert {j for j in range(16) if j != i and j % 4 == i % 4} <= set(t.tolist())  # relatives all kept
    assert len(filtered.targets) < 0.5 * len(full.targets)  # and most unrelated candidates were not aligned


def test_filter_thresholds_are_checked():
    with pytest.raises(ValueError, match="> 0"):
        MsvFilter(scoring=scoring_system("protein"), pvalue=0)
    assert not MsvFilter(scoring=scoring_system("protein"), pvalue=1).enabled


def test_dna_searches_align_every_candidate_by_default(tmp_path):
    """DNA: the filter is off unless asked for (no gain on the DNA dev sets); protein: on at 0.02."""
    from phylocl.align.msv import DEFAULT_FILTER_PVALUE, default_filter_pvalue
    from phylocl.workflows.search import search

    assert default_filter_pvalue("dna") >= 1 and default_filter_pvalue("protein") == DEFAULT_FILTER_PVALUE < 1
    rng = np.random.default_rng(3)
    base = ["".join(rng.choice(list("ACGT"), 120)) for _ in range(3)]
    db = tmp_path / "db.fasta"
    db.write_text("".join(f">s{i}\n{_mutate_dna(rng, base[i % 3])}\n" for i in range(12))
                  + "".join(f">r{i}\n{''.join(rng.choice(list('ACGT'), 150))}\n" for i in range(12)))
    outs = {}
    for name, fp in (("default", None), ("off", 1.0), ("on", 0.02)):
        search(query=db, db=db, out=tmp_path / name, model="kmer:3", k=30, progress=False, filter_pvalue=fp,
               evalue=1e6)
        outs[name] = (tmp_path / name).read_text()
    assert outs["default"] == outs["off"] != outs["on"]  # the filter, when asked for, drops random pairs


@pytest.mark.parametrize("alphabet, unknown", [("protein", "X"), ("dna", "N")])
def test_a_query_of_unknown_residues_only_is_aligned_not_a_traceback(tmp_path, alphabet, unknown, capsys):
    """A query of 1 to 19 X (N) overflowed MSV's calibration (OverflowError from `phylocl search`: its profile's
    relative entropy is 0, so lambda is infinite); any such query now gets P = 0 (aligned, as an empty one), and the
    search writes its hits (none: X scores -1) with exit 0."""
    from phylocl.cli import main

    letters = AA if alphabet == "protein" else "ACGT"
    targets = ["".join(np.random.default_rng(1).choice(list(letters), 40)), letters[0], unknown * 3]
    f = MsvFilter(scoring=scoring_system(alphabet), pvalue=0.02)
    for n in (1, 3, 19, 20, 60):
        assert f.pvalues(unknown * n, targets, keys=[0, 1, 2]).tolist() == [0.0, 0.0, 0.0]
    assert f.pvalues(unknown * 4 + letters[1], targets, keys=[0, 1, 2]).max() > 0  # one known residue: scored
    q, db, out = tmp_path / "q.fa", tmp_path / "db.fa", tmp_path / "h.m8"
    q.write_text(f">allx\n{unknown * 3}\n>other\n{targets[0][:20]}\n")
    db.write_text("".join(f">t{i}\n{t}\n" for i, t in enumerate(targets)))
    assert main(["search", "--model", "kmer:3", "--query", str(q), "--db", str(db), "--format", "blast6",
                 "--filter-pvalue", "0.02", "-o", str(out), "--quiet"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert [line.split("\t")[:2] for line in out.read_text().splitlines()] == [["other", "t0"]]


def _mutate_dna(rng, s: str) -> str:
    return "".join(rng.choice(list("ACGT")) if rng.random() < 0.2 else c for c in s)


def test_pvalues_do_not_depend_on_what_the_thread_built_before():
    """The calibration is reseeded for every profile (fixed seed), so a query's P-values are the same whatever the
    worker thread filtered before it: the filter's decisions cannot depend on how queries fall on threads."""
    rng = np.random.default_rng(4)
    q, other = _background(rng, 150), _background(rng, 90)
    targets = [_mutate(rng, q, 0.6)] + [_background(rng, 200) for _ in range(20)]
    first = MsvFilter(scoring=scoring_system("protein")).pvalues(q, targets)
    busy = MsvFilter(scoring=scoring_system("protein"))
    busy.pvalues(other, targets)
    busy.pvalues(other[::-1], targets[::-1])
    assert np.array_equal(busy.pvalues(q, targets), first)


def test_the_quick_builder_gives_the_documented_profiles_msv_pvalues():
    """The quick builder (short Viterbi / Forward calibrations) changes nothing the filter reads: the P-values are
    those of profiles built with the documented settings, over query lengths from 1 residue (where the quick
    fits may fail and the documented build takes over) to 600."""
    from phylocl.align.msv import msv_pvalues

    rng = np.random.default_rng(5)
    msv = MsvFilter(scoring=scoring_system("protein"))
    tools = msv._tools()
    assert len(tools) == 5
    targets = [_background(rng, int(n)) for n in rng.integers(1, 500, 60)]
    for n in (1, 2, 3, 5, 8, 13, 30, 75, 160, 350, 600):
        for _ in range(3):
            q = _background(rng, n)
            targets[0] = _mutate(rng, q, 0.3)
            assert np.array_equal(msv_pvalues(q, targets, tools=tools), msv_pvalues(q, targets, tools=tools[:3])), n

    class Failing:  # a quick calibration whose Gumbel fit fails: the documented build takes over
        def build(self, *args):
            raise ValueError("Could not build HMM: failed to determine vit mu")

    assert np.array_equal(msv_pvalues(q, targets, tools=(*tools[:3], Failing(), tools[4])),
                          msv_pvalues(q, targets, tools=tools))


@pytest.mark.parametrize("alphabet,matrix", [("protein", None), ("protein", "PAM30"), ("dna", None)])
def test_msv_gumbel_is_the_calibration_hmmer_stores(alphabet, matrix):
    """msv_gumbel (MSV's mu and lambda computed here from a profile whose own MSV calibration was cut short) equals,
    as floats, the parameters HMMER's documented calibration stores, over query lengths 1 to 600, for BLOSUM62,
    PAM30 and DNA; and the quick profile's own (cut) calibration does not."""
    from pyhmmer.easel import TextSequence

    from phylocl.align.msv import msv_gumbel

    gap = {"gap_open": 9, "gap_extend": 1} if matrix == "PAM30" else {}
    tools = MsvFilter(scoring=scoring_system(alphabet, matrix=matrix, **gap))._tools()
    alphabet_, background, builder, quick, calibration = tools
    rng = np.random.default_rng(6)
    letters = "ACGT" if alphabet == "dna" else "ACDEFGHIKLMNPQRSTVWY"
    differs = 0
    for n in (1, 4, 30, 160, 600):
        q = TextSequence(name=b"q", sequence="".join(rng.choice(list(letters), size=n))).digitize(alphabet_)
        want = list(builder.build(q, background)[2].evalue_parameters.as_vector())[:2]
        try:
            hmm, _, profile = quick.build(q, background)
        except Exception:  # noqa: BLE001 (the stage builds as documented then)
            continue
        differs += list(profile.evalue_parameters.as_vector())[:2] != want
        assert msv_gumbel(hmm, profile, background, calibration) == tuple(want), n
    assert differs >= 3


def test_calibration_residues_are_drawn_once_per_background(monkeypatch):
    """Every thread's filter calibrates with the same residues, drawn once per background (a held-open Searcher
    aligns in new threads for every search): equal to a fresh draw, as new objects per call, and not drawn again."""
    import threading

    from pyhmmer.easel import Alphabet
    from pyhmmer.plan7 import Background

    from phylocl.align import msv

    for alphabet in (Alphabet.amino(), Alphabet.dna()):
        fresh, null = msv._calibration_set(Background(alphabet))
        first = msv.calibration_set(Background(alphabet))
        drawn = []
        monkeypatch.setattr(msv, "_calibration_set", lambda bg: drawn.append(bg))  # a second draw would be seen
        again = []
        t = threading.Thread(target=lambda: again.append(msv.calibration_set(Background(alphabet))))
        t.start()
        t.join()
        monkeypatch.undo()
        assert not drawn
        for got in (first, again[0]):
            assert got[1] == null and len(got[0]) == len(fresh) == msv.MSV_EMN
            assert [bytes(s.sequence) for s in got[0]] == [bytes(s.sequence) for s in fresh]
        assert all(a is not b for a, b in zip(first[0], again[0][0]))

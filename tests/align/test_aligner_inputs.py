"""align_candidates called as a user of the Python API would: one string where a list belongs, fractional target
numbers, out-of-range options and a wrong scoring argument are refused naming them, instead of silently aligning
something else or keeping nothing."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.align import align_candidates, scoring_system

SCORING = scoring_system("protein")
QUERIES = ["MKVLAAGIWK", "MKLLAAGIWR"]
TARGETS = ["MKVLAAGIWK", "MSSTQPLEDA", "MKVLAAGIWKW"]


def _align(queries=QUERIES, targets=TARGETS, candidates=None, **kwargs):
    candidates = [[0, 2], [0, 1, 2]] if candidates is None else candidates
    return align_candidates(queries, targets, candidates, **{"scoring": SCORING, "threads": 1, **kwargs})


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(queries="MKV", candidates=[[0]] * 3), TypeError, r"queries must be a list, not one str.*\['MKV'\]"),
    (dict(targets="MKVL"), TypeError, "targets must be a list, not one str"),
    (dict(queries=["MKV"], candidates="0"), TypeError, "candidates must be a list, not one str"),
    (dict(candidates=[0, 1]), TypeError, r"candidates\[0\] must be a list or an array of target numbers"),
    (dict(candidates=[[0.5], [1.7]]), ValueError, "query 0: candidates must be whole target numbers"),
    (dict(evalue=-1), ValueError, "evalue must be a number > 0"),  # kept nothing, silently
    (dict(evalue=float("nan")), ValueError, "evalue must be a number > 0"),
    (dict(evalue=True), ValueError, "evalue must be a number > 0"),  # was read as evalue=1, as k=True is refused
    (dict(max_hits=-1), ValueError, "max_hits must be >= 0"),
    (dict(max_hits=2.5), ValueError, "max_hits must be a whole number"),
    # counts: phylocl.arguments.positive_int's words, naming the argument and the value
    (dict(threads=2.5), ValueError, r"^threads must be an int >= 1 or None, got 2\.5$"),  # was int(2.5)
    (dict(threads="x"), ValueError, r"^threads must be an int >= 1 or None, got 'x'$"),
    (dict(threads=0), ValueError, r"^threads must be an int >= 1 or None, got 0$"),
    (dict(threads=True), ValueError, r"^threads must be an int >= 1 or None, got True$"),  # not one thread
    (dict(db_residues=0), ValueError, r"^db_residues must be an int >= 1 or None, got 0$"),  # E-values of 0
    (dict(db_residues=2.5), ValueError, r"^db_residues must be an int >= 1 or None, got 2\.5$"),
    (dict(db_sequences=0), ValueError, r"^db_sequences must be an int >= 1 or None, got 0$"),
    (dict(db_sequences=np.bool_(True)), ValueError, r"^db_sequences must be an int >= 1 or None, got "),
    (dict(query_rows=[0]), ValueError, r"query_rows must hold one row per query \(2\), got 1"),  # IndexError
    (dict(scoring="protein"), TypeError, "scoring must be a ScoringSystem"),  # AttributeError: no .alphabet
    (dict(queries=[None, "MKV"]), TypeError, "query 0: expected a str, got NoneType"),
    (dict(targets={0: "MKV", 1: "MSS", 2: "MKK"}), ValueError, "give db_residues and db_sequences with a targets "
                                                              "mapping"),
])
def test_arguments_of_the_wrong_kind_are_refused_naming_them(kwargs, error, message):
    with pytest.raises(error, match=message):
        _align(**kwargs)


def test_numpy_inputs_work_and_a_mapping_works_with_the_database_size():
    want = _align()
    got = _align(targets=np.array(TARGETS), candidates=[np.array([0, 2], np.int32), np.array([0, 1, 2])],
                 threads=np.int64(1), max_hits=np.int64(5))
    assert np.array_equal(got.targets, want.targets) and np.array_equal(got.raw, want.raw)
    mapped = _align(targets=dict(enumerate(TARGETS)), db_residues=sum(map(len, TARGETS)), db_sequences=3)
    assert np.array_equal(mapped.evalues, want.evalues)
    assert _align(candidates=[[], [-1]]).query(0)[0].size == 0  # no candidates: no hits


def test_query_indexes_like_a_list_and_names_the_range():
    hits = _align()
    assert all(np.array_equal(a, b) for a, b in zip(hits.query(-1), hits.query(1)))  # was query(1)..query(0): []
    with pytest.raises(IndexError, match="query 2 out of range: 2 queries, numbered 0 to 1"):
        hits.query(2)
    with pytest.raises(IndexError, match="out of range"):
        hits.query(-3)


def test_the_module_docstring_example_runs():
    hits = align_candidates(["MKVLAAGIWK"], ["MKLLAAGIWR", "MSSTQPLE"], [[0, 1]], scoring=scoring_system("protein"))
    targets, raw, bits, evalues = hits.query(0)
    assert targets.tolist() == [0] and raw[0] > 0 and bits[0] > 0 and 0 < evalues[0] < 1

"""Family-retrieval metrics: hand-computed toy cases (ties, decoys, singletons, missing hits, self hits) and a
randomized comparison with a slow reference written from the definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from phylocl.retrieval.hits import HitLists
from phylocl.retrieval.metrics import check_ks, score_hits

# database rows 0..5: three A, two B, one decoy (no label)
DB_LABELS = ["A", "A", "A", "B", "B", None]
DB_IDS = ["a0", "a1", "a2", "b3", "b4", "decoy5"]


def _score(lists, qlabels, qids=None, ks=(1, 2, 4), **kw):
    return score_hits(HitLists.from_lists(lists), qlabels, DB_LABELS, ks=ks, query_ids=qids,
                      db_ids=DB_IDS if qids is not None else None, **kw)


def test_fp_tp_decoy_ranking_by_hand():
    # query a0 (R = 2: a1, a2): ranks b3 (FP), a1 (TP), decoy (FP), a2 (TP)
    m = _score([([3, 1, 5, 2], [0.9, 0.8, 0.7, 0.6])], ["A"], ["a0"])
    assert m["n_queries"] == 1 and m["n_singleton_queries"] == 0
    assert m["top1"] == 0.0
    assert m["recall@1"] == 0.0 and m["recall@2"] == 0.5 and m["recall@4"] == 1.0
    assert m["map_r"] == pytest.approx(0.5 * (1 / 2))  # only rank 2 of the first R=2 is relevant, P(2) = 1/2
    assert m["auc1"] == 0.0  # first hit is a false positive


def test_input_order_is_ignored_scores_rank():
    a = _score([([3, 1, 5, 2], [0.9, 0.8, 0.7, 0.6])], ["A"], ["a0"])
    b = _score([([2, 5, 1, 3], [0.6, 0.7, 0.8, 0.9])], ["A"], ["a0"])
    assert {k: v for k, v in a.items()} == {k: v for k, v in b.items()}


@pytest.mark.parametrize("targets", [[2, 3, 0], [3, 2, 0]])
def test_ties_are_broken_pessimistically(targets):
    # query a1: a2 (TP) and b3 (FP) tie at 0.5, whatever order the tool printed them in -> FP ranks first
    scores = {2: 0.5, 3: 0.5, 0: 0.4}
    m = _score([(targets, [scores[t] for t in targets])], ["A"], ["a1"])
    assert m["top1"] == 0.0
    assert m["auc1"] == 0.0
    assert m["recall@1"] == 0.0 and m["recall@2"] == 0.5 and m["recall@4"] == 1.0
    assert m["map_r"] == pytest.approx(0.25)  # rel = [0, 1, 1]; (1/2) * P(2) = (1/2)(1/2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equal_scores_computed_in_another_order_still_tie(dtype):
    """The same cosine summed in two orders differs in its last bits; the tie rule must still see a tie (before,
    the TP that rounded 1 ULP higher ranked first: top1 1.0). Scores further apart still rank by score."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(64).astype(dtype)
    y = rng.standard_normal(64).astype(dtype)
    x, y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    forward, backward = dtype(0), dtype(0)
    for a, b in zip(x, y):
        forward = dtype(forward + a * b)
    for a, b in zip(x[::-1], y[::-1]):
        backward = dtype(backward + a * b)
    hi, lo = max(forward, backward), min(forward, backward)
    if hi == lo:  # this seed rounds both orders alike: make the last-bit difference by hand
        hi = np.nextafter(lo, dtype(1))
    assert 0 < hi - lo < 1e-6
    # query a1: a2 (TP) got the higher rounding, b3 (FP) the lower
    tied = _score([([2, 3, 0], [hi, lo, lo - 0.1])], ["A"], ["a1"])
    assert tied["top1"] == 0.0 and tied["auc1"] == 0.0
    apart = _score([([2, 3, 0], [hi, hi - 1e-4, lo - 0.1])], ["A"], ["a1"])
    assert apart["top1"] == 1.0 and apart["auc1"] == 0.5


def test_tie_between_two_true_positives_costs_nothing():
    m = _score([([2, 0], [0.5, 0.5])], ["A"], ["a1"])
    assert m["top1"] == 1.0 and m["map_r"] == 1.0 and m["auc1"] == 1.0


def test_self_hit_and_duplicate_targets_are_dropped():
    # query a2: its own row first, a0 twice (best score kept), a1
    m = _score([([2, 0, 0, 1], [1.0, 0.9, 0.3, 0.8])], ["A"], ["a2"])
    assert m["top1"] == 1.0 and m["recall@1"] == 0.5 and m["recall@2"] == 1.0
    assert m["map_r"] == 1.0 and m["auc1"] == 1.0


def test_without_ids_a_query_in_the_database_counts_itself():
    # no ids: row 2 is just another A row, so R = 3 for an A query and the self hit is a true positive
    m = _score([([2, 0], [1.0, 0.9])], ["A"], None)
    assert m["top1"] == 1.0
    assert m["recall@2"] == pytest.approx(2 / 3)
    assert m["map_r"] == pytest.approx(2 / 3)  # (1/3)(P(1) + P(2)) = (1/3)(1 + 1)


def test_missing_hits_count_as_not_found():
    # b3 (R = 1: b4): empty list; b4 (R = 1: b3) finds b3 after one decoy
    m = _score([([], []), ([5, 3], [0.9, 0.2])], ["B", "B"], ["b3", "b4"])
    assert m["n_queries"] == 2
    assert m["top1"] == 0.0
    assert m["recall@1"] == 0.0 and m["recall@2"] == pytest.approx(0.5)  # (0 + 1) / 2
    assert m["map_r"] == 0.0  # R = 1: only rank 1 matters, a decoy there
    assert m["auc1"] == 0.0
    fam = {row["family"]: row for row in m["per_family"]}
    assert fam["B"]["n_queries"] == 2 and fam["B"]["recall@4"] == 0.5


def test_list_without_false_positive_counts_all_its_true_positives():
    m = _score([([1], [0.3])], ["A"], ["a0"])  # finds a1, never reaches a2, no FP
    assert m["auc1"] == 0.5 and m["top1"] == 1.0 and m["map_r"] == 0.5


def test_singleton_queries_are_excluded_and_counted():
    # a query labelled C has no C row in the database; an external query of family A is scored normally
    m = _score([([0, 1], [0.9, 0.8]), ([0, 3], [0.9, 0.8])], ["C", "A"], ["c_ext", "a_ext"])
    assert m["n_queries"] == 1 and m["n_singleton_queries"] == 1
    assert m["top1"] == 1.0 and m["recall@4"] == pytest.approx(1 / 3)  # R = 3, the query is not in the db
    assert [row["family"] for row in m["per_family"]] == ["A"]


def test_only_singletons_give_nan():
    m = _score([([0], [1.0])], ["C"], ["c"])
    assert m["n_queries"] == 0 and math.isnan(m["top1"]) and m["per_family"] == []


def test_per_family_means_and_per_query_rows():
    lists = [([1, 2], [0.9, 0.8]), ([3, 0], [0.9, 0.8]), ([4], [0.5])]
    m = _score(lists, ["A", "A", "B"], ["a0", "a1", "b3"], per_query=True)
    fam = {row["family"]: row for row in m["per_family"]}
    assert fam["A"]["n_queries"] == 2 and fam["A"]["top1"] == 0.5 and fam["B"]["top1"] == 1.0
    assert m["top1"] == pytest.approx(2 / 3)
    assert [r["r"] for r in m["per_query"]] == [2, 2, 1]
    assert m["per_query"][1]["top1"] == 0.0 and m["per_query"][1]["map_r"] == pytest.approx(0.25)


def test_report_labels_group_rows_differently_from_relevance():
    m = _score([([1], [0.9]), ([3], [0.9])], ["A", "A"], ["a0", "a2"], report_labels=["fam1", "fam2"])
    assert [row["family"] for row in m["per_family"]] == ["fam1", "fam2"]
    assert [row["top1"] for row in m["per_family"]] == [1.0, 0.0]


def test_input_validation():
    with pytest.raises(ValueError, match="query labels"):
        _score([([1], [0.9])], ["A", "B"], None)
    with pytest.raises(ValueError, match="row 9"):
        _score([([9], [0.9])], ["A"], None)
    with pytest.raises(ValueError, match="positive"):
        check_ks([0, 5])
    with pytest.raises(ValueError, match="finite"):
        HitLists.from_lists([([1], [float("nan")])])
    assert check_ks([10, 1, 10]) == (1, 10)


# ---- randomized comparison with a slow reference -------------------------------------------------------------

def _reference(lists, qlabels, dblabels, self_rows, ks):
    """The module docstring's definitions, with explicit loops."""
    per_query, singletons = [], 0
    for (targets, scores), lab, me in zip(lists, qlabels, self_rows):
        r = sum(1 for j, dl in enumerate(dblabels) if dl == lab and j != me)
        if r == 0:
            singletons += 1
            continue
        best = {}
        for t, s in zip(targets, scores):
            if t != me:
                best[t] = max(best.get(t, -np.inf), s)
        ranked = sorted(best.items(), key=lambda ts: (-ts[1], dblabels[ts[0]] == lab))  # FP first on ties
        rel = [dblabels[t] == lab for t, _ in ranked]
        row = {"top1": float(bool(rel) and rel[0])}
        for k in ks:
            row[f"recall@{k}"] = sum(rel[:k]) / r
        ap = 0.0
        for i in range(min(r, len(rel))):
            if rel[i]:
                ap += sum(rel[: i + 1]) / (i + 1)
        row["map_r"] = ap / r
        tp_before_fp = 0
        for x in rel:
            if not x:
                break
            tp_before_fp += 1
        row["auc1"] = tp_before_fp / r
        per_query.append(row)
    means = {k: float(np.mean([row[k] for row in per_query])) for k in per_query[0]}
    return means, len(per_query), singletons


@pytest.mark.parametrize("seed", range(5))
def test_matches_slow_reference_on_random_hits(seed):
    rng = np.random.default_rng(seed)
    m = 40
    dblabels = [None if rng.random() < 0.2 else f"f{rng.integers(6)}" for _ in range(m)]
    db_ids = [f"s{j}" for j in range(m)]
    # queries: labelled database rows (self hits possible) plus external queries with an id not in the db
    in_db = [j for j in range(m) if dblabels[j] is not None][:15]
    qids = [db_ids[j] for j in in_db] + [f"ext{i}" for i in range(6)]
    qlabels = [dblabels[j] for j in in_db] + [f"f{rng.integers(7)}" for _ in range(6)]
    self_rows = in_db + [-1] * 6
    lists = []
    for _ in qids:
        n = rng.integers(0, 25)
        lists.append((rng.integers(0, m, n), rng.choice([0.1, 0.2, 0.3, 0.5, 0.9], n)))  # many ties, repeats
    ks = (1, 3, 10)
    got = score_hits(HitLists.from_lists(lists), qlabels, dblabels, ks=ks, query_ids=qids, db_ids=db_ids)
    want, n_scored, n_single = _reference(lists, qlabels, dblabels, self_rows, ks)
    assert got["n_queries"] == n_scored and got["n_singleton_queries"] == n_single
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


def test_query_rows_equal_ids():
    lists = [([2, 0, 0, 1], [1.0, 0.9, 0.3, 0.8]), ([3, 1], [0.9, 0.8])]
    by_ids = _score(lists, ["A", "A"], ["a2", "a_ext"])
    by_rows = score_hits(HitLists.from_lists(lists), ["A", "A"], DB_LABELS, ks=(1, 2, 4), query_rows=[2, -1])
    assert by_ids == by_rows
    with pytest.raises(ValueError, match="query_rows"):
        score_hits(HitLists.from_lists(lists), ["A", "A"], DB_LABELS, query_rows=[2, 6])

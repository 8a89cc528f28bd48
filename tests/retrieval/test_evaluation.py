"""evaluate_embeddings against a brute-force reference (full cosine ranking + the metric definitions)."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.retrieval.evaluation import evaluate_embeddings


def _families(n=120, d=8, fams=9, noise=1.2, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((fams, d))
    lab = rng.integers(0, fams, n)
    return (centres[lab] + noise * rng.standard_normal((n, d))).astype(np.float32), [f"F{v}" for v in lab]


def _brute_force(x, labels, decoys, ks):
    """Rank the whole database by cosine for each query with numpy, then apply the definitions in loops."""
    db = x if decoys is None else np.concatenate([x, decoys])
    dbl = list(labels) + [None] * (len(db) - len(x))
    u = db / np.linalg.norm(db, axis=1, keepdims=True)
    sims = u[: len(x)] @ u.T  # (N, M)
    rows = []
    for q in range(len(x)):
        order = [j for j in np.argsort(-sims[q], kind="stable") if j != q]
        rel = [dbl[j] == labels[q] for j in order]
        r = sum(rel)
        if r == 0:
            continue
        row = {"top1": float(rel[0]), "map_r": sum(sum(rel[: i + 1]) / (i + 1) for i in range(r) if rel[i]) / r}
        for k in ks:
            row[f"recall@{k}"] = sum(rel[:k]) / r
        row["auc1"] = (rel.index(False) if False in rel else len(rel)) / r
        rows.append(row)
    return {k: float(np.mean([row[k] for row in rows])) for k in rows[0]}, len(rows)


@pytest.mark.parametrize("ks", [(1, 5, 20), (1,)])  # (1,): the depth is the largest family's R
@pytest.mark.parametrize("with_decoys", [False, True])
def test_matches_brute_force(with_decoys, ks):
    x, labels = _families()
    decoys = np.random.default_rng(5).standard_normal((40, 8)).astype(np.float32) if with_decoys else None
    got = evaluate_embeddings(x, labels, decoy_embeddings=decoys, ks=ks)
    want, n = _brute_force(x, labels, decoys, ks)
    assert got["n_queries"] == n and got["n_decoys"] == (40 if with_decoys else 0)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    # deep enough to be exact, and no deeper: max(ks) or the largest family's R (its other members)
    assert got["depth"] == max(ks[-1], max(np.unique(labels, return_counts=True)[1]) - 1)


def test_hand_case_with_decoy_and_singleton():
    # family A: rows 0 and 1 (6.3 degrees apart); B: row 2 alone (a singleton query); a decoy 0.6 degrees
    # from row 0, on the side away from row 1
    x = np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32)
    m = evaluate_embeddings(x, ["A", "A", "B"], ks=(1,))
    assert m["n_queries"] == 2 and m["n_singleton_queries"] == 1 and m["top1"] == 1.0 and m["auc1"] == 1.0
    m = evaluate_embeddings(x, ["A", "A", "B"], decoy_embeddings=np.array([[1, -0.01]]), ks=(1,))
    # query 0: decoy (cos ~1) beats row 1 -> top1 0, auc1 0, map_r 0;  query 1: row 0 still first
    assert m["top1"] == 0.5 and m["auc1"] == 0.5 and m["map_r"] == 0.5 and m["recall@1"] == 0.5


def test_group_labels_judge_relevance_and_rows_stay_per_family():
    x, fams = _families(n=90, fams=6, seed=3)
    groups = [{"F0": "G0", "F1": "G0", "F2": "G0"}.get(f, "G1") for f in fams]
    by_group = evaluate_embeddings(x, fams, group_labels=groups, ks=(1, 10))
    plain = evaluate_embeddings(x, groups, ks=(1, 10))
    for key in ("top1", "recall@10", "map_r", "auc1", "n_queries"):
        assert by_group[key] == pytest.approx(plain[key]), key
    rows = {row["family"]: row for row in by_group["per_family"]}
    assert set(rows) == set(fams) and rows["F1"]["group"] == "G0" and rows["F4"]["group"] == "G1"


def test_per_query_rows_and_ids():
    x, labels = _families(n=30, fams=3)
    ids = [f"seq{i}" for i in range(30)]
    m = evaluate_embeddings(x, labels, ids=ids, ks=(1,), per_query=True)
    assert [row["id"] for row in m["per_query"]] == ids
    assert np.mean([row["top1"] for row in m["per_query"]]) == pytest.approx(m["top1"])
    with pytest.raises(ValueError, match="unique"):
        evaluate_embeddings(x, labels, ids=["a"] * 30)


def test_depth_cap_warns():
    x, labels = _families(n=60, fams=2)
    with pytest.warns(UserWarning, match="max_depth=5"):
        m = evaluate_embeddings(x, labels, ks=(1, 3), max_depth=5)
    assert m["depth"] == 5


def test_input_validation():
    x, labels = _families(n=20)
    with pytest.raises(ValueError, match="labels"):
        evaluate_embeddings(x, labels[:-1])
    with pytest.raises(ValueError, match="decoys"):
        evaluate_embeddings(x, labels, decoy_embeddings=np.zeros((3, 5)))
    with pytest.raises(ValueError, match="group labels"):
        evaluate_embeddings(x, labels, group_labels=["g"])


def test_torch_tensor_input():
    torch = pytest.importorskip("torch")
    x, labels = _families(n=40)
    a = evaluate_embeddings(torch.from_numpy(x), labels, ks=(1,))
    b = evaluate_embeddings(x, labels, ks=(1,))
    assert a["top1"] == b["top1"] and a["map_r"] == b["map_r"]


def test_a_decoy_tied_beyond_the_search_depth_still_counts_pessimistically():
    """FAISS returns tied rows in row order, so a decoy tied with the last kept hit sat outside the list; the list
    is widened over the tie and the pessimistic rule (false positives first among equal scores) applies."""
    x = np.array([[1, 0], [1, 0], [1, 0]], dtype=np.float32)  # one family of three identical members
    decoys = np.array([[1, 0]], dtype=np.float32)  # a decoy identical to them
    m = evaluate_embeddings(x, ["f", "f", "f"], decoy_embeddings=decoys, ks=(1, 2))
    # each query ranks: decoy, member, member (all tied)
    assert m["top1"] == 0.0 and m["auc1"] == 0.0
    assert m["recall@1"] == 0.0 and m["recall@2"] == 0.5
    assert m["map_r"] == pytest.approx(0.25)  # R = 2: (0 + 1/2) / 2


def test_one_sequence_has_nothing_to_find():
    """A set of one sequence was an IndexError (its own row, dropped, left a list of no columns)."""
    x, labels = _families(n=3)
    m = evaluate_embeddings(x[:1], labels[:1])
    assert m["n_queries"] == 0 and m["n_singleton_queries"] == 1 and np.isnan(m["map_r"])
    with_decoys = evaluate_embeddings(x[:1], labels[:1], decoy_embeddings=x[1:])
    assert with_decoys["n_queries"] == 0 and with_decoys["n_decoys"] == 2

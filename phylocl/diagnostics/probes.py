"""How much family information the embeddings carry: leave-one-out kNN top-1 and a linear probe (scikit-learn).

Family *classification* needs every family on both sides of a split, so family-disjoint folds (as used for
retrieval on held-out families) cannot apply here: the probe uses folds stratified by family over the *members*
of each family. Families with a single member are left out of both measures (there is nothing to find or to
train on); the probe uses ``min(folds, smallest family size)`` folds so that every fold trains on every family.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Sequence

import numpy as np

__all__ = ["knn_top1", "linear_probe"]


def knn_top1(z, labels: Sequence, *, chunk: int = 2048) -> dict:
    """Leave-one-out 1-nearest-neighbour family accuracy under cosine similarity.

    Each sequence whose family has another member queries all other sequences; it scores 1 when its most similar
    one (ties: the lowest row index) is of its family. Returns ``{"knn_top1": float or None, "n_queries": int}``.
    """
    z = np.asarray(z, dtype=np.float32)
    labels = np.asarray([str(v) for v in labels])
    if z.ndim != 2 or len(z) != len(labels):
        raise ValueError(f"expected (N, D) embeddings and N labels, got {z.shape} and {len(labels)}")
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    counts = Counter(labels.tolist())
    queries = np.flatnonzero([counts[v] > 1 for v in labels])
    if len(queries) == 0:
        return {"knn_top1": None, "n_queries": 0}
    hits = 0
    for lo in range(0, len(queries), chunk):
        q = queries[lo:lo + chunk]
        s = z[q] @ z.T  # (q, N)
        s[np.arange(len(q)), q] = -np.inf  # never oneself
        hits += int((labels[s.argmax(axis=1)] == labels[q]).sum())
    return {"knn_top1": hits / len(queries), "n_queries": int(len(queries))}


def linear_probe(z, labels: Sequence, *, folds: int = 5, seed: int = 0, C: float = 1.0, max_iter: int = 1000) -> dict:
    """Cross-validated accuracy of a multinomial logistic regression predicting the family from the embedding.

    Families with fewer than 2 members are dropped; folds are stratified by family (``StratifiedKFold``, shuffled
    with ``seed``), ``min(folds, smallest remaining family)`` of them. Returns ``{"linear_probe_accuracy"`` (mean
    over folds, or None when fewer than 2 families remain), ``"probe_folds"``, ``"probe_families"``,
    ``"probe_sequences"}``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    z = np.asarray(z, dtype=np.float64)
    labels = np.asarray([str(v) for v in labels])
    counts = Counter(labels.tolist())
    keep = np.flatnonzero([counts[v] > 1 for v in labels])
    kept = {labels[i] for i in keep}
    empty = {"linear_probe_accuracy": None, "probe_folds": 0, "probe_families": len(kept),
             "probe_sequences": int(len(keep))}
    if len(kept) < 2:
        return empty
    x, y = z[keep], labels[keep]
    n_splits = min(folds, min(counts[v] for v in kept))
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    scores = []
    for train, test in splitter.split(x, y):
        clf = LogisticRegression(C=C, max_iter=max_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(x[train], y[train])
        scores.append(float((clf.predict(x[test]) == y[test]).mean()))
    return {**empty, "linear_probe_accuracy": float(np.mean(scores)), "probe_folds": n_splits}

"""kNN top-1 and the linear probe on toy sets with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.diagnostics.probes import knn_top1, linear_probe


def _clusters(n_fam=4, members=6, noise=0.05, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_fam, dim))
    z = np.concatenate([c + noise * rng.normal(size=(members, dim)) for c in centres])
    labels = [f"f{k}" for k in range(n_fam) for _ in range(members)]
    return z, labels


def test_knn_by_hand_excludes_self_and_singletons():
    z = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.7, 0.7]])
    labels = ["a", "b", "b", "a", "lonely"]
    # 0 -> 1 (b, wrong); 1 -> 0 (a, wrong); 2 -> 3 (a, wrong); 3 -> 2 (b, wrong)
    assert knn_top1(z, labels) == {"knn_top1": 0.0, "n_queries": 4}
    assert knn_top1(z, ["a", "a", "b", "b", "c"]) == {"knn_top1": 1.0, "n_queries": 4}
    assert knn_top1(z, list("abcde")) == {"knn_top1": None, "n_queries": 0}


def test_probe_separates_clean_clusters_and_is_at_chance_on_noise():
    z, labels = _clusters()
    r = linear_probe(z, labels + [], folds=3)
    assert r["linear_probe_accuracy"] == 1.0 and r["probe_folds"] == 3 and r["probe_families"] == 4
    noise = np.random.default_rng(1).normal(size=z.shape)
    assert linear_probe(noise, labels, folds=3)["linear_probe_accuracy"] < 0.6  # chance is 0.25


def test_probe_drops_singletons_and_uses_at_most_the_smallest_family_folds():
    z, labels = _clusters(n_fam=3, members=4)
    z = np.concatenate([z[:10], z[11:], [[9.0] * 8]])
    labels = labels[:10] + labels[11:] + ["single"]  # family f2 now has 3 members
    r = linear_probe(z, labels, folds=5)
    assert r["probe_folds"] == 3 and r["probe_families"] == 3 and r["probe_sequences"] == 11
    assert linear_probe(z[:2], ["a", "b"])["linear_probe_accuracy"] is None
    with pytest.raises(ValueError):
        linear_probe(z, labels, folds=1)

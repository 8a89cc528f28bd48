"""Hard-negative batches: distinct families, full coverage, harder than random, refreshable, deterministic, ranks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from phylocl.data.hardbatches import HardNegativeBatchSampler
from phylocl.data.neighbours import centroids_from_rows, nearest_families


def fams(batch):
    return [k for k, _, _ in batch]


def clustered(n_clusters=8, per=24, dim=16, seed=0):
    """Unit centroids in tight clusters: ``(F, D)`` and the cluster of each family."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    x = np.repeat(centres, per, axis=0) + 0.1 * rng.normal(size=(n_clusters * per, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat(np.arange(n_clusters), per)


def within_similarity(batches, x):
    """Mean centroid cosine between distinct families of the same batch."""
    sims = []
    for b in batches:
        s = x[b] @ x[b].T
        sims.append((s.sum() - np.trace(s)) / (len(b) * (len(b) - 1)))
    return float(np.mean(sims))


def test_nearest_families_matches_brute_force():
    x, _ = clustered(n_clusters=3, per=10)
    table = nearest_families(x, pool=5)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    for f in range(len(x)):
        assert f not in table[f]
        assert np.allclose(np.sort(sims[f, table[f]])[::-1], np.sort(sims[f])[::-1][:5], atol=1e-5)
    assert nearest_families(x[:3], pool=10).shape == (3, 2)


def test_centroids_are_normalised_means_of_unit_rows():
    rows = np.array([[3.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    c = centroids_from_rows(rows, np.array([0, 0, 1]), 2)
    assert np.allclose(c, [[2 ** -0.5, 2 ** -0.5], [2 ** -0.5, 2 ** -0.5]], atol=1e-6)


def test_every_family_once_per_round_never_twice_in_a_batch():
    x, _ = clustered()
    s = HardNegativeBatchSampler(num_families=len(x), batch_size=16, neighbours=nearest_families(x, pool=32),
                                 rounds=3, seed=1)
    batches = [fams(b) for b in s]
    assert len(batches) == len(s) == 3 * (len(x) // 16)
    assert all(len(b) == 16 == len(set(b)) for b in batches)
    per_round = len(x) // 16
    for r in range(3):
        flat = [k for b in batches[r * per_round:(r + 1) * per_round] for k in b]
        assert len(flat) == len(set(flat))  # a family once per round
    assert {d for b in s for _, _, d in b} == {0, 1, 2}


def test_batches_are_harder_than_random():
    x, cluster = clustered()
    hard = [fams(b) for b in HardNegativeBatchSampler(num_families=len(x), batch_size=16,
                                                      neighbours=nearest_families(x, pool=32), seed=0)]
    rng = np.random.default_rng(0)
    random = [rng.permutation(len(x))[:16] for _ in range(len(hard))]
    assert within_similarity(hard, x) > within_similarity(random, x) + 0.3
    # many batches are one cluster (24 families per cluster, 16 per batch; random batches never are)
    assert np.mean([len(set(cluster[b])) == 1 for b in hard]) > 0.3


def test_group_batches_stay_within_groups():
    x, cluster = clustered(n_clusters=4, per=32)
    groups = cluster.copy()
    groups[:8] = -1  # families without a group value
    s = HardNegativeBatchSampler(num_families=len(x), batch_size=16, neighbours=np.zeros((len(x), 0)),
                                 groups=groups, seed=2)
    batches = [np.array(fams(b)) for b in s]
    pure = [len(set(groups[b][groups[b] >= 0])) == 1 for b in batches]
    assert np.mean(pure) >= 0.6  # random batches of 16 from 4 groups are never pure
    assert all(len(set(b)) == len(b) for b in batches)


def test_refreshed_neighbours_change_the_next_batches():
    x, _ = clustered(seed=0)
    y, _ = clustered(seed=5)  # "the encoder changed": other centroids
    s = HardNegativeBatchSampler(num_families=len(x), batch_size=16, neighbours=nearest_families(x, pool=32),
                                 rounds=2, seed=3)
    before = [fams(b) for b in s]
    it = iter(s)
    first = fams(next(it))
    s.set_neighbours(nearest_families(y, pool=32))  # mid-epoch: batches are drawn lazily
    rest = [fams(b) for b in it]
    assert first == before[0] and rest != before[1:]
    assert within_similarity(rest, y) > within_similarity(rest, x)
    with pytest.raises(ValueError, match="neighbours must be"):
        s.set_neighbours(np.zeros((3, 2)))


@pytest.mark.parametrize("trained, ahead, kw", [(5, 2, {}), (0, 3, {}), (11, 1, dict(num_replicas=2, rank=1)),
                                               (7, 5, dict(groups=np.arange(192) % 5))])
def test_a_saved_draw_continues_with_the_batches_of_the_uninterrupted_sampler(trained, ahead, kw):
    """Refreshed tables mid-epoch (lazily drawn batches): a new sampler given the state after ``trained`` batches (a
    loader having drawn ``ahead`` more) and the table in force yields what the first one yields after them."""
    x, _ = clustered(per=24)  # 192 families
    y, _ = clustered(per=24, seed=5)
    table, later = nearest_families(x, pool=32), nearest_families(y, pool=32)
    make = dict(num_families=len(x), batch_size=8, rounds=2, seed=3, **kw)
    a = HardNegativeBatchSampler(neighbours=table, **make)
    a.set_epoch(1)
    it = iter(a)
    drawn = [next(it) for _ in range(3)]
    a.set_neighbours(later)  # a refresh while 3 batches are drawn
    drawn += [next(it) for _ in range(trained + ahead - 3)]
    state = a.state_dict(epoch=1, keep_from=trained)
    assert len(state["kept"]) == ahead and state["order"].dtype == torch.int64
    rest = list(it)
    b = HardNegativeBatchSampler(neighbours=later, **make)
    b.load_state_dict(state)
    b.set_epoch(1)
    resumed = list(b)
    assert resumed[:trained] == [[]] * trained  # placeholders, skipped by ResumableBatches
    assert resumed[trained:] == drawn[trained:] + rest
    fresh = HardNegativeBatchSampler(neighbours=later, **make)
    fresh.set_epoch(1)
    assert [fams(u) for u in b] == [fams(u) for u in fresh]  # the saved draw is used once
    assert a.state_dict(epoch=2, keep_from=0) == {}  # another epoch: starts afresh


def test_a_loader_far_ahead_still_saves_and_later_saves_still_work():
    """A loader with many workers draws num_workers x prefetch_factor batches ahead (300 here: 150 workers); the
    save used to fail beyond 256. Later saves of the same epoch (after more training) still hold what they need."""
    x, _ = clustered(per=8)  # 64 families
    make = dict(num_families=len(x), batch_size=2, rounds=12, seed=1, neighbours=nearest_families(x, pool=16))
    a = HardNegativeBatchSampler(**make)
    a.set_epoch(0)
    it = iter(a)
    drawn = [next(it) for _ in range(310)]
    first = a.state_dict(epoch=0, keep_from=10)
    assert len(first["kept"]) == 300
    drawn += [next(it) for _ in range(20)]
    second = a.state_dict(epoch=0, keep_from=40)  # 30 more batches trained on
    assert len(second["kept"]) == 290 and len(a._drawn) == 290
    rest = list(it)
    b = HardNegativeBatchSampler(**make)
    b.load_state_dict(second)
    b.set_epoch(0)
    assert list(b)[40:] == drawn[40:] + rest


def test_deterministic_by_seed_and_epoch():
    x, _ = clustered()
    table = nearest_families(x, pool=32)
    kw = dict(num_families=len(x), batch_size=16, neighbours=table, num_batches=20, seed=4)
    a, b = HardNegativeBatchSampler(**kw), HardNegativeBatchSampler(**kw)
    assert [fams(u) for u in a] == [fams(v) for v in b] and len(list(a)) == 20
    b.sampler.set_epoch(1)  # where Lightning sets it
    assert [fams(u) for u in a] != [fams(v) for v in b]
    assert [fams(u) for u in HardNegativeBatchSampler(**{**kw, "seed": 5})] != [fams(u) for u in a]


def test_ranks_get_disjoint_equal_slices():
    x, _ = clustered()
    kw = dict(num_families=len(x), batch_size=8, neighbours=nearest_families(x, pool=32), seed=6, num_replicas=2)
    per_rank = [list(HardNegativeBatchSampler(**kw, rank=r)) for r in range(2)]
    assert len(per_rank[0]) == len(per_rank[1]) == len(x) // 16
    for a, b in zip(*per_rank):
        assert len(fams(a)) == len(fams(b)) == 8 and not set(fams(a)) & set(fams(b))


def test_bad_arguments():
    with pytest.raises(ValueError, match="groups must have one entry"):
        HardNegativeBatchSampler(num_families=10, batch_size=2, neighbours=np.zeros((10, 0)), groups=np.zeros(3))
    with pytest.raises(ValueError, match="out of range"):
        HardNegativeBatchSampler(num_families=10, batch_size=2, neighbours=np.full((10, 1), 11))


def test_kmer_centroids_match_the_kmer_baseline_and_groups(tmp_path):
    from phylocl.data.dataset import OrthologDataset
    from phylocl.data.alphabet import get_alphabet
    from phylocl.data.neighbours import group_ids, kmer_centroids
    from phylocl.models.kmer import KmerEmbedder

    seqs = ["ACGTACGTTA", "ACGTTCGTAA", "GGGCCCGGGA", "TTTTAAAACC", "TTTAAAACCN"]
    ds = OrthologDataset(ids=list("abcde"), sequences=seqs, families=["f", "f", "g", "h", "h"],
                         alphabet=get_alphabet("dna"), metadata={"clan": ["c1", "c1", "c1", "", ""]})
    c = kmer_centroids(ds, ["f", "g", "h"], k=2, members=5)
    x = KmerEmbedder(k=2, alphabet="dna").embed(seqs)  # reference: unit k-mer profiles, averaged per family
    ref = np.stack([x[:2].mean(0), x[2], x[3:].mean(0)])
    assert np.allclose(c, ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=1e-6)
    assert group_ids(ds, ["f", "g", "h"], "clan").tolist() == [0, 0, -1]
    with pytest.raises(ValueError, match="no labels column 'fold'"):
        group_ids(ds, ["f"], "fold")


@pytest.mark.parametrize("replicas, batch_size, num_batches", [(1, 8, None), (2, 4, None), (2, 4, 3)])
def test_fewer_families_than_a_batch_make_one_batch_of_them_all(replicas, batch_size, num_batches):
    """6 families, global batches of 8: one batch of all 6, as the random batches do. There were none (a run
    trained 0 steps and exported its untrained model), or, with num_batches, an IndexError."""
    table = np.array([[(f + 1) % 6, (f + 2) % 6] for f in range(6)])
    per_rank = [list(HardNegativeBatchSampler(num_families=6, batch_size=batch_size, neighbours=table, seed=1,
                                              num_replicas=replicas, rank=r, num_batches=num_batches))
                for r in range(replicas)]
    assert all(len(b) == (num_batches or 1) for b in per_rank)
    for step in zip(*per_rank):  # the ranks' parts of one global batch: all 6 families, each once
        assert sorted(k for part in step for k, _, _ in part) == list(range(6))

"""Batch samplers: distinct families per batch, token budgets, epochs, ranks, length-sorted embedding batches."""

from __future__ import annotations

import numpy as np
import pytest

from phylocl.data.samplers import FamilyBatchSampler, LengthSortedBatchSampler, ResumableBatches, pack_by_length


def fams(batch):
    return [k for k, _, _ in batch]


def test_one_pass_covers_every_family_once_in_distinct_batches():
    s = FamilyBatchSampler(num_families=23, batch_size=5, seed=1)
    batches = list(s)
    flat = [k for b in batches for k in fams(b)]
    assert sorted(flat) == list(range(23))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3] and len(s) == 5
    assert all(e == 0 and d == 0 for b in batches for _, e, d in b)
    dropped = FamilyBatchSampler(num_families=23, batch_size=5, seed=1, drop_last=True)
    assert [len(b) for b in dropped] == [5, 5, 5, 5]


def test_rounds_and_fixed_steps_never_repeat_a_family_within_a_batch():
    s = FamilyBatchSampler(num_families=7, batch_size=3, rounds=4, seed=0)
    batches = list(s)
    assert all(len(set(fams(b))) == len(b) for b in batches)
    counts = np.bincount([k for b in batches for k in fams(b)], minlength=7)
    assert np.all(counts == 4)
    assert sorted({d for b in batches for _, _, d in b}) == [0, 1, 2, 3]
    steps = FamilyBatchSampler(num_families=7, batch_size=3, num_batches=10, seed=0, drop_last=True)
    assert len(list(steps)) == 10 == len(steps)
    assert all(len(set(fams(b))) == 3 for b in steps)


def test_epochs_reshuffle_deterministically():
    s = FamilyBatchSampler(num_families=50, batch_size=8, seed=3)
    e0 = [fams(b) for b in s]
    s.set_epoch(1)
    e1 = list(s)
    assert [fams(b) for b in e1] != e0 and all(e == 1 for b in e1 for _, e, _ in b)
    s.set_epoch(0)
    assert [fams(b) for b in s] == e0
    again = FamilyBatchSampler(num_families=50, batch_size=8, seed=3)
    assert [fams(b) for b in again] == e0
    again.sampler.set_epoch(1)  # where Lightning sets it: dataloader.batch_sampler.sampler.set_epoch
    assert [fams(b) for b in again] == [fams(b) for b in e1]
    assert list(again.sampler) == [k for b in e1 for k in b]


def test_token_budget_is_respected_and_groups_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 500, size=300)
    s = FamilyBatchSampler(num_families=300, batch_size=32, lengths=lengths, token_budget=2000, seed=2)
    batches = [fams(b) for b in s]
    assert sorted(k for b in batches for k in b) == list(range(300))
    for b in batches:
        assert len(b) <= 32 and len(b) * lengths[b].max() <= 2000
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 100  # length-sorted: far less than random batches (~ 400)
    with pytest.raises(ValueError, match="smaller than the longest view"):
        FamilyBatchSampler(num_families=300, batch_size=32, lengths=lengths, token_budget=100)


@pytest.mark.parametrize("budget", [None, 1500])
def test_ranks_get_disjoint_equal_slices_of_each_global_batch(budget):
    lengths = np.random.default_rng(1).integers(10, 300, size=61)
    kw = dict(num_families=61, batch_size=4, lengths=lengths, token_budget=budget, seed=5)
    per_rank = [list(FamilyBatchSampler(**kw, num_replicas=3, rank=r)) for r in range(3)]
    assert len({len(b) for b in per_rank}) == 1
    for step in zip(*per_rank):
        ks = [fams(b) for b in step]
        assert len({len(k) for k in ks}) == 1  # equal slice sizes on every rank
        flat = [k for part in ks for k in part]
        assert len(flat) == len(set(flat))  # no family on two ranks in the same step
        for part in ks:
            assert len(part) <= 4 and (budget is None or len(part) * lengths[part].max() <= budget)


def test_each_rank_fills_its_own_token_budget():
    """The global batch holds R x token_budget tokens (module doc), so each rank's slice uses its whole budget:
    100-residue views, 1,000 tokens per rank -> 10 rows on each of 3 ranks (not 10 over all of them)."""
    lengths = np.full(90, 100)
    for r in range(3):
        batches = list(FamilyBatchSampler(num_families=90, batch_size=64, lengths=lengths, token_budget=1000, seed=1,
                                          num_replicas=3, rank=r))
        assert [len(b) for b in batches] == [10, 10, 10], r


def test_pack_by_length_and_length_sorted_sampler():
    lengths = np.array([5, 50, 7, 40, 6, 60])
    order = np.argsort(lengths)
    batches = pack_by_length(order, lengths, batch_size=3, token_budget=100)
    assert [list(b) for b in batches] == [[0, 4, 2], [3, 1], [5]]
    s = LengthSortedBatchSampler(lengths=lengths, batch_size=2)
    assert list(s) == [[5, 1], [3, 2], [4, 0]] and len(s) == 3
    t = LengthSortedBatchSampler(lengths=lengths, batch_size=10, token_budget=120)
    assert all(len(b) * lengths[b].max() <= 120 for b in t)
    assert sorted(i for b in t for i in b) == list(range(6))
    with pytest.raises(ValueError, match="length 60 exceeds token_budget 55"):  # training crops: an error
        pack_by_length(order, lengths, batch_size=3, token_budget=55)
    u = LengthSortedBatchSampler(lengths=lengths, batch_size=10, token_budget=55)  # whole sequences: alone
    assert list(u)[:2] == [[5], [1]] and all(len(b) * lengths[b].max() <= 55 for b in list(u)[2:])
    assert sorted(i for b in u for i in b) == list(range(6))


def _padding(batches, lengths):
    """Padding fraction of batches padded to their longest member (reference: direct count)."""
    padded = sum(len(b) * lengths[b].max() for b in batches)
    return 1.0 - sum(lengths[b].sum() for b in batches) / padded


def test_bucketed_batches_keep_size_and_families_distinct_and_cut_padding():
    lengths = np.random.default_rng(4).integers(20, 600, size=400)
    kw = dict(num_families=400, batch_size=16, lengths=lengths, seed=7, rounds=3, drop_last=True)
    plain = [fams(b) for b in FamilyBatchSampler(**kw)]
    bucketed = FamilyBatchSampler(**kw, bucket=True, sort_window=8)
    batches = [fams(b) for b in bucketed]
    assert all(len(b) == 16 and len(set(b)) == 16 for b in batches)  # one pair per family per batch
    assert len(batches) == len(plain)  # same number of steps per epoch
    counts = np.bincount([k for b in batches for k in b], minlength=400)
    assert counts.max() == 3  # a family once per round
    assert _padding([np.array(b) for b in batches], lengths) < 0.5 * _padding([np.array(b) for b in plain], lengths)
    bucketed.set_epoch(1)
    other = [fams(b) for b in bucketed]
    assert {frozenset(b) for b in other} != {frozenset(b) for b in batches}  # compositions change with the epoch
    bucketed.set_epoch(0)
    assert [fams(b) for b in bucketed] == batches  # deterministic by seed and epoch
    with pytest.raises(ValueError, match="bucket needs one length per family"):
        FamilyBatchSampler(num_families=400, batch_size=16, bucket=True)


def test_bucketing_varies_batch_mates_across_epochs():
    lengths = np.full(64, 100)  # all ties: buckets must not freeze the partition
    s = FamilyBatchSampler(num_families=64, batch_size=8, lengths=lengths, bucket=True, sort_window=8, seed=0)
    mates = []
    for epoch in range(3):
        s.set_epoch(epoch)
        mates.append({k: frozenset(fams(b)) for b in s for k in fams(b)})
    assert mates[0][0] != mates[1][0] or mates[1][0] != mates[2][0]


@pytest.mark.parametrize("bucket", [False, True])
def test_bucketed_ranks_get_disjoint_slices(bucket):
    lengths = np.random.default_rng(1).integers(10, 300, size=61)
    per_rank = [list(FamilyBatchSampler(num_families=61, batch_size=4, lengths=lengths, seed=5, bucket=bucket,
                                        num_replicas=2, rank=r)) for r in range(2)]
    for step in zip(*per_rank):
        flat = [k for part in step for k in fams(part)]
        assert len(flat) == len(set(flat)) and len(fams(step[0])) == len(fams(step[1]))


@pytest.mark.parametrize("epoch, done", [(0, 2), (3, 1), (2, 5)])
def test_resumable_batches_continue_an_epoch_where_the_checkpoint_left_it(epoch, done):
    """A resumed run gets the rest of the epoch an uninterrupted run got, then the next epochs unchanged; ``done``
    equal to the epoch's length (a checkpoint at its last batch) continues with the next epoch."""
    def make(steps):
        return ResumableBatches(FamilyBatchSampler(num_families=20, batch_size=4, seed=1), steps=lambda: steps[0])

    full = make([0])
    batches = {}
    for e in range(epoch, epoch + 2):
        full.sampler.set_epoch(e)
        batches[e] = list(full)
    assert len(batches[epoch]) == 5
    steps = [100]
    resumed = make(steps)
    resumed.resume_at(epoch=epoch, batches=done)  # before Lightning sets the epoch (a loader with workers)
    first = epoch + 1 if done == 5 else epoch
    assert list(resumed) == (batches[epoch][done:] if done < 5 else batches[epoch + 1])
    assert resumed.position() == {"epoch": first, "batches": 0 if done == 5 else done}  # no step taken yet
    steps[0] += 1
    assert resumed.position()["batches"] == (1 if done == 5 else done + 1)
    if first == epoch:
        resumed.sampler.set_epoch(epoch + 1)
        assert list(resumed) == batches[epoch + 1]  # skipped once only

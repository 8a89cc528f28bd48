"""Pair and sequence datasets, and collation into the batch format encoders read."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from phylocl.data.collate import PairCollator, SequenceCollator
from phylocl.data.families import FamilyPairDataset, SequenceDataset, family_label_map
from phylocl.data.pairs import HardestPairs, UniformPairs
from phylocl.data.samplers import FamilyBatchSampler
from phylocl.data.views import SequenceView

FAMS = {
    "B": ["MKTAYIAKQRQISFVKSHFS", "MKTAYIAKQRQISFVKSHFA", "MKTAYIAKQRQISFVKSHWW"],
    "A": ["GSHMLEDPVVAAAAKKLLLE", "GSHMLEDPAV"],
    "C": ["WWPPCCHHEE"],
    "D": ["MLSRAVCGTSRQLAPVLGYL", "MLSRAVCGTSRQLAPVLGYK", "MLSRAV"],
}


def make_pairs(make_dataset, strategy=UniformPairs(), seed=0, max_len=8):
    ds = make_dataset(FAMS)
    view = SequenceView(alphabet=ds.alphabet, max_len=max_len)
    return ds, FamilyPairDataset(dataset=ds, strategy=strategy, view=view, seed=seed)


def test_items_are_two_different_members_of_one_family(make_dataset):
    ds, pairs = make_pairs(make_dataset, max_len=100)
    assert pairs.families == ["B", "A", "D"] and len(pairs) == 3  # C has one member: not an item
    labels = family_label_map(ds)
    assert labels == {"A": 0, "B": 1, "C": 2, "D": 3}
    for k, fam in enumerate(pairs.families):
        members = {ds.sequences[i] for i in ds.family_index[fam]}
        for epoch in range(5):
            a, b, label = pairs[(k, epoch, 0)]
            sa, sb = ds.alphabet.decode(a), ds.alphabet.decode(b)
            assert sa in members and sb in members and sa != sb and label == labels[fam]


def test_items_depend_only_on_seed_epoch_draw_and_family(make_dataset):
    _, p1 = make_pairs(make_dataset, seed=3)
    _, p2 = make_pairs(make_dataset, seed=3)
    _, p3 = make_pairs(make_dataset, seed=4)
    same = all(np.array_equal(x, y) for x, y in zip(p1[(2, 1, 0)][:2], p2[(2, 1, 0)][:2]))
    assert same
    varied = [tuple(p1[(2, e, 0)][0]) for e in range(10)]
    assert len(set(varied)) > 1  # crops differ across epochs
    other = [tuple(p3[(2, e, 0)][0]) for e in range(10)]
    assert other != varied
    p1.set_epoch(1)
    assert np.array_equal(p1[2][0], p2[(2, 1, 0)][0])
    assert np.array_equal(p1[np.int64(2)][0], p1[(2,)][0]) and np.array_equal(p1[(2, 1)][0], p1[2][0])


def test_hardest_pairs_use_family_distances(make_dataset):
    ds, pairs = make_pairs(make_dataset, strategy=HardestPairs(), max_len=100)
    a, b, _ = pairs[(0, 0, 0)]  # family B: member 2 is the odd one out
    assert FAMS["B"][2] in {ds.alphabet.decode(a), ds.alphabet.decode(b)}
    # each family its own distances: the odd one out at another position in each family
    fams = {"P": ["MKTAYIAKQRQISFVKSHFS", "MKTAYIAKQRQISFVKSHFA", "GGGGGGGGGGWWWWWWWWWW"],
            "Q": ["WWPPCCHHEEWWPPCCHHEE", "MLSRAVCGTSRQLAPVLGYL", "MLSRAVCGTSRQLAPVLGYK"]}
    ds = make_dataset(fams)
    pairs = FamilyPairDataset(dataset=ds, strategy=HardestPairs(), view=SequenceView(alphabet=ds.alphabet, max_len=100))
    for k, odd in ((0, fams["P"][2]), (1, fams["Q"][0])):
        for epoch in range(4):
            a, b, _ = pairs[(k, epoch, 0)]
            got = {ds.alphabet.decode(a), ds.alphabet.decode(b)}
            assert odd in got and len(got) == 2, (k, epoch)


def test_rounds_of_one_epoch_draw_different_pairs(make_dataset):
    """The draw (a family's round within the epoch) enters the item's seed: rounds do not repeat one pair."""
    _, pairs = make_pairs(make_dataset, seed=3)
    draws = [tuple(np.concatenate(pairs[(2, 0, d)][:2]).tolist()) for d in range(10)]
    assert len(set(draws)) > 1


def test_collation_formats_and_loader_with_workers_is_reproducible(make_dataset):
    ds, pairs = make_pairs(make_dataset, max_len=12)
    sampler = FamilyBatchSampler(num_families=len(pairs), batch_size=2, seed=0)
    batches = []
    for workers in (0, 2):
        loader = DataLoader(pairs, batch_sampler=sampler, collate_fn=PairCollator(pad_to_multiple_of=8),
                            num_workers=workers)
        batches.append(list(loader))
    for x, y in zip(*batches):
        assert torch.equal(x["a"]["input_ids"], y["a"]["input_ids"]) and torch.equal(x["labels"], y["labels"])
    batch = batches[0][0]
    assert set(batch) == {"a", "b", "labels"} and batch["labels"].dtype == torch.long
    for view in ("a", "b"):
        ids, mask = batch[view]["input_ids"], batch[view]["attention_mask"]
        assert ids.dtype == torch.long and mask.dtype == torch.bool and ids.shape[1] % 8 == 0
        assert torch.all(ids[~mask] == 0) and torch.all(ids[mask] >= 3)  # pad 0, no CLS/mask tokens
    assert len(set(batch["labels"].tolist())) == len(batch["labels"])


def test_sequence_dataset_deterministic_crop(make_dataset):
    ds = make_dataset(FAMS)
    seqs = SequenceDataset(dataset=ds, view=SequenceView(alphabet=ds.alphabet, max_len=5))
    assert len(seqs) == len(ds) and list(seqs.lengths()[:4]) == [5, 5, 5, 5]
    tokens, label, index = seqs[3]
    assert ds.alphabet.decode(tokens) == FAMS["A"][0][:5] and label == 0 and index == 3
    batch = SequenceCollator()([seqs[i] for i in (5, 0)])
    assert batch["index"].tolist() == [5, 0] and batch["labels"].tolist() == [2, 1]
    assert batch["tokens"]["input_ids"].shape == (2, 5)


def test_matched_crop_pairs_start_at_the_same_fraction(make_dataset):
    ds = make_dataset({"F": ["ACDEFGHIKLMNPQRSTVWY", "YWVTSRQPNMLKIHGFEDCA"]})  # equal lengths: equal starts
    view = SequenceView(alphabet=ds.alphabet, max_len=6, crop="matched")
    pairs = FamilyPairDataset(dataset=ds, strategy=UniformPairs(), view=view, seed=0)
    starts = set()
    for epoch in range(30):
        a, b, _ = pairs[(0, epoch, 0)]
        sa, sb = ds.alphabet.decode(a), ds.alphabet.decode(b)
        ia = "ACDEFGHIKLMNPQRSTVWY".find(sa)
        ib = "YWVTSRQPNMLKIHGFEDCA".find(sb)
        if ia < 0:  # the pair came out the other way round
            ia, ib = "YWVTSRQPNMLKIHGFEDCA".find(sa), "ACDEFGHIKLMNPQRSTVWY".find(sb)
        assert ia == ib >= 0
        starts.add(ia)
    assert len(starts) > 5


def test_collators_keep_each_view_and_pad_every_view_to_the_multiple():
    """Hand-built items: view ``b`` is ``b``'s tokens (not ``a``'s), each row right-padded with 0 and masked past its
    length, and ``pad_to_multiple_of`` rounds both pair views and the sequence batch up."""
    a1, b1, a2, b2 = np.array([3, 4, 5]), np.array([6, 7]), np.array([8]), np.array([9, 10, 11, 12])
    batch = PairCollator(pad_to_multiple_of=4)([(a1, b1, 7), (a2, b2, 2)])
    assert batch["a"]["input_ids"].tolist() == [[3, 4, 5, 0], [8, 0, 0, 0]]
    assert batch["b"]["input_ids"].tolist() == [[6, 7, 0, 0], [9, 10, 11, 12]]
    assert batch["a"]["attention_mask"].tolist() == [[True, True, True, False], [True, False, False, False]]
    assert batch["b"]["attention_mask"].tolist() == [[True, True, False, False], [True, True, True, True]]
    assert batch["labels"].tolist() == [7, 2]
    seq = SequenceCollator(pad_to_multiple_of=4)([(b2, 1, 9), (np.array([3, 4, 5, 6, 7]), 0, 4)])
    assert seq["tokens"]["input_ids"].tolist() == [[9, 10, 11, 12, 0, 0, 0, 0], [3, 4, 5, 6, 7, 0, 0, 0]]
    assert seq["tokens"]["attention_mask"].sum(dim=1).tolist() == [4, 5]
    assert seq["labels"].tolist() == [1, 0] and seq["index"].tolist() == [9, 4]

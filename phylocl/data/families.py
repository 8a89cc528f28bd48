"""Torch datasets over an :class:`~phylocl.data.dataset.OrthologDataset`.

- :class:`FamilyPairDataset`: item ``k`` = a positive pair of the ``k``-th family with at least two members,
  ``(tokens_a, tokens_b, family_label)``: two views (token-id arrays) of two different members chosen by the pair
  strategy. Randomness comes from ``numpy.random.default_rng([seed, epoch, draw, k])``, so an item depends only on
  the seed, the epoch, the draw number and the family — not on worker count or on which worker fetches it.
- :class:`SequenceDataset`: item ``i`` = ``(tokens, family_label, i)`` for every sequence (deterministic crop), for
  embedding and retrieval evaluation.

Family labels are integers from a ``family -> int`` map shared by all splits (see :func:`family_label_map`).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from torch.utils.data import Dataset

from phylocl.data.dataset import OrthologDataset
from phylocl.data.distances import FamilyDistances
from phylocl.data.views import SequenceView

__all__ = ["FamilyPairDataset", "SequenceDataset", "family_label_map"]


def family_label_map(*datasets: OrthologDataset) -> dict[str, int]:
    """Stable integer labels: the sorted union of the family ids of ``datasets`` numbered from 0."""
    names = sorted({f for ds in datasets for f in ds.family_names})
    return {f: i for i, f in enumerate(names)}


class FamilyPairDataset(Dataset):
    """Positive pairs, one family per item (see module doc).

    Args:
        dataset: the training families; those with fewer than two members are not items.
        strategy: a pair strategy from :mod:`phylocl.data.pairs`.
        view: turns a sequence into token ids (crop + noise).
        labels: family → integer label (default :func:`family_label_map` of ``dataset``).
        distances: needed when ``strategy.needs_distances`` (default: a :class:`FamilyDistances` on ``dataset``).
        seed: base seed.

    An index is ``k``, ``(k, epoch)`` or ``(k, epoch, draw)``; a bare ``k`` uses :attr:`epoch` (see
    :meth:`set_epoch`) and draw 0. :class:`~phylocl.data.samplers.FamilyBatchSampler` yields the full form.
    """

    def __init__(self, *, dataset: OrthologDataset, strategy, view: SequenceView,
                 labels: Mapping[str, int] | None = None, distances: FamilyDistances | None = None,
                 seed: int = 0) -> None:
        self.dataset, self.strategy, self.view, self.seed = dataset, strategy, view, int(seed)
        self.families = dataset.pair_families
        self.labels = dict(labels) if labels is not None else family_label_map(dataset)
        missing = [f for f in self.families if f not in self.labels]
        if missing:
            raise ValueError(f"no label for {len(missing)} families, e.g. {missing[:3]}")
        if strategy.needs_distances and distances is None:
            distances = FamilyDistances(dataset=dataset)
        self.distances = distances
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.families)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def family_lengths(self, *, typical: bool = False) -> np.ndarray:
        """Longest view each family can give, ``min(longest member, max_len)``, ``(len(self),)`` int64; with
        ``typical``, the median member's view length instead (the key of length-bucketed batches)."""
        idx = self.dataset.family_index
        seqs = self.dataset.sequences
        stat = np.median if typical else np.max
        return np.array([min(int(stat([len(seqs[i]) for i in idx[f]])), self.view.max_len) for f in self.families],
                        dtype=np.int64)

    def __getitem__(self, key) -> tuple[np.ndarray, np.ndarray, int]:
        key = (key,) if np.isscalar(key) else tuple(key)
        k, epoch, draw = key[0], key[1] if len(key) > 1 else self.epoch, key[2] if len(key) > 2 else 0
        fam = self.families[k]
        members = self.dataset.family_index[fam]
        rng = np.random.default_rng([self.seed, int(epoch), int(draw), int(k)])
        dist = self.distances(fam) if self.strategy.needs_distances else None
        i, j = self.strategy.sample(len(members), rng, dist)
        seqs = self.dataset.sequences
        a, b = self.view.pair(seqs[members[i]], seqs[members[j]], rng)
        return a, b, self.labels[fam]


class SequenceDataset(Dataset):
    """Every sequence of ``dataset`` as ``(tokens, family_label, index)``.

    ``crop=True``: the deterministic crop of ``view.eval`` (first ``max_len`` residues). ``crop=False``: the whole
    sequence, which the encoder embeds as windows of ``max_len`` (as ``embed``/``evaluate``/``search`` do); the
    validation inside ``phylocl train`` uses this, so its figures are those of ``phylocl evaluate``.
    """

    def __init__(self, *, dataset: OrthologDataset, view: SequenceView,
                 labels: Mapping[str, int] | None = None, crop: bool = True) -> None:
        self.dataset, self.view, self.crop = dataset, view, bool(crop)
        self.labels = dict(labels) if labels is not None else family_label_map(dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    def lengths(self) -> np.ndarray:
        """Token count of each item, ``(N,)`` int64."""
        full = self.dataset.lengths()
        return np.minimum(full, self.view.max_len) if self.crop else np.asarray(full, dtype=np.int64)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int, int]:
        i = int(i)
        seq = self.dataset.sequences[i]
        tokens = self.view.eval(seq) if self.crop else self.view.alphabet.encode(seq)
        return tokens, self.labels[self.dataset.families[i]], i

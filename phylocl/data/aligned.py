"""Alignment-guided positives: cross-family pairs with a significant Smith-Waterman E-value as training signal.

The pairs are found before training by :func:`phylocl.workflows.aligned_positives.mine_aligned_pairs` (the
alignment stage sits above the data layer); here they become training signal in two ways (``data.aligned_mode``):

- ``merge``: the families joined by a pair (transitively: connected components, :func:`merged_labels`) share one
  loss label, so the InfoNCE never uses one as the other's negative (same-label rows are masked out of the
  negatives) — homologs the family labels split are no longer pushed apart;
- ``pairs``: ``merge``, and every pair is also an extra item of the pair dataset (:class:`AlignedPairs`): its two
  sequences are a positive pair under the merged label, drawn by the batch sampler like a family.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from torch.utils.data import Dataset

__all__ = ["AlignedPairs", "merged_labels"]


def merged_labels(labels: Mapping[str, int], links: Sequence[tuple[str, str]]) -> dict[str, int]:
    """``labels`` with every connected component of the family ``links`` relabelled to its smallest label.

    Families absent from ``links`` keep their label; a link to a family without a label is an error.
    """
    parent = {f: f for f in labels}

    def root(f: str) -> str:
        while parent[f] != f:
            parent[f] = parent[parent[f]]
            f = parent[f]
        return f

    for a, b in links:
        if a not in parent or b not in parent:
            raise ValueError(f"link between unlabelled families: {a!r}, {b!r}")
        ra, rb = root(a), root(b)
        if ra != rb:
            keep, drop = (ra, rb) if labels[ra] <= labels[rb] else (rb, ra)
            parent[drop] = keep
    return {f: labels[root(f)] for f in labels}


class AlignedPairs(Dataset):
    """A family pair dataset plus one item per aligned cross-family pair (``data.aligned_mode=pairs``).

    Args:
        real: a :class:`~phylocl.data.families.FamilyPairDataset` (built with merged labels).
        pairs: ``(P, 2)`` sequence indices into ``real.dataset``, the two ends of each aligned pair (different
            families).

    Items ``0 .. len(real) - 1`` are the real families' items; item ``len(real) + p`` is pair ``p``: its two
    sequences in random order as ``(view_a, view_b, label)`` with the (merged) label of the first end's family.
    Keys are ``k``, ``(k, epoch)`` or ``(k, epoch, draw)`` as for the real dataset.
    """

    def __init__(self, *, real, pairs: np.ndarray) -> None:
        self.real = real
        self.pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        fams = real.dataset.families
        same = [int(i) for i, (a, b) in enumerate(self.pairs) if fams[a] == fams[b]]
        if same:
            raise ValueError(f"aligned pair {same[0]} joins two members of one family")
        ends = [real.labels[fams[a]] != real.labels[fams[b]] for a, b in self.pairs]
        if any(ends):
            raise ValueError("the pair dataset's labels are not merged over the aligned pairs")
        self.families = list(real.families) + [f"aligned:{a}:{b}" for a, b in self.pairs]
        self.dataset, self.view, self.labels, self.seed = real.dataset, real.view, real.labels, real.seed

    def __len__(self) -> int:
        return len(self.real) + len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        self.real.set_epoch(epoch)

    def family_lengths(self, *, typical: bool = False) -> np.ndarray:
        """As the real dataset's, with each pair's longer end (``typical``: the shorter) capped at ``max_len``."""
        lens = np.asarray([len(s) for s in self.dataset.sequences], dtype=np.int64)
        ends = lens[self.pairs] if len(self.pairs) else np.zeros((0, 2), dtype=np.int64)
        extra = np.minimum((ends.min(axis=1) if typical else ends.max(axis=1)), self.view.max_len)
        return np.concatenate([self.real.family_lengths(typical=typical), extra]).astype(np.int64)

    def __getitem__(self, key) -> tuple[np.ndarray, np.ndarray, int]:
        key = (key,) if np.isscalar(key) else tuple(key)
        k = int(key[0])
        if k < len(self.real):
            return self.real[key]
        epoch, draw = (key[1] if len(key) > 1 else self.real.epoch), (key[2] if len(key) > 2 else 0)
        rng = np.random.default_rng([self.seed, int(epoch), int(draw), k, 0xA1])
        a, b = (int(v) for v in rng.permutation(self.pairs[k - len(self.real)]))
        seqs = self.dataset.sequences
        va, vb = self.view.pair(seqs[a], seqs[b], rng)
        return va, vb, self.labels[self.dataset.families[a]]

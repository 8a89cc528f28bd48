"""Hard-negative training batches: each step holds families that are close to each other.

:class:`HardNegativeBatchSampler` builds every global batch (``batch_size x num_replicas`` families) around a
random *anchor* family not yet used in the current round:

1. ``groups`` given (e.g. SCOPe superfamilies from a labels column): unused families of the anchor's group, in
   random order;
2. then neighbours: unused families among the ``P`` nearest of the anchor, nearest first, and breadth first
   those of the families just added (batches vary between rounds through the random anchors and what earlier
   batches of the round have used up); the neighbour table
   (:func:`~phylocl.data.neighbours.nearest_families` of family centroids) can be replaced at any time with
   :meth:`set_neighbours`, and batches drawn after that use it (ANCE-style refresh; batches are drawn lazily);
3. then random unused families, when the neighbourhood is used up.

A family is used once per round (one pass over the families), so it never appears twice in a batch and every
family is trained on as often as with random batches. Rounds, ``num_batches``, ``drop_last``, epochs (``set_epoch``
through the ``sampler`` attribute, as Lightning calls it) and rank slicing follow
:class:`~phylocl.data.samplers.FamilyBatchSampler`; randomness is ``default_rng([seed, epoch])``, so the batches
are a deterministic function of the seed, the epoch and the neighbour tables in force when each batch is drawn.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Sampler

from phylocl.data.samplers import EpochSampler

__all__ = ["HardNegativeBatchSampler"]


class HardNegativeBatchSampler(Sampler):
    """Batches of distinct, mutually close families (see module doc).

    Args:
        num_families: number of families (items of the pair dataset).
        batch_size: families per batch and rank.
        neighbours: ``(F, P)`` indices of each family's nearest other families, nearest first (``P`` may be 0).
        groups: optional ``(F,)`` group id per family, ``-1`` for none.
        rounds, num_batches, drop_last, seed, num_replicas, rank: as :class:`FamilyBatchSampler`.
    """

    def __init__(self, *, num_families: int, batch_size: int, neighbours: np.ndarray,
                 groups: np.ndarray | None = None, rounds: int = 1, num_batches: int | None = None,
                 drop_last: bool = True, seed: int = 0, num_replicas: int = 1, rank: int = 0) -> None:
        if batch_size < 1 or rounds < 1 or num_replicas < 1:
            raise ValueError("batch_size, rounds and num_replicas must be >= 1")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        if num_batches is not None and num_batches < 1:
            raise ValueError(f"num_batches must be >= 1, got {num_batches}")
        if num_families < max(2, num_replicas):
            raise ValueError(f"{num_families} families cannot form batches for {num_replicas} process(es)")
        if groups is not None and len(groups) != num_families:
            raise ValueError(f"groups must have one entry per family ({num_families}), got {len(groups)}")
        self.num_families, self.batch_size, self.rounds, self.num_batches = num_families, batch_size, rounds, num_batches
        self.drop_last, self.seed, self.num_replicas, self.rank = drop_last, seed, num_replicas, rank
        self.groups = None if groups is None else np.asarray(groups, dtype=np.int64)
        self._members = {}
        if self.groups is not None:
            for g in np.unique(self.groups[self.groups >= 0]):
                self._members[int(g)] = np.flatnonzero(self.groups == g)
        self.set_neighbours(neighbours)
        self.sampler = EpochSampler(self)

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def set_neighbours(self, neighbours: np.ndarray) -> None:
        """Replace the ``(F, P)`` neighbour table; batches drawn from now on use it."""
        table = np.asarray(neighbours, dtype=np.int64)
        if table.ndim != 2 or table.shape[0] != self.num_families:
            raise ValueError(f"neighbours must be ({self.num_families}, P), got {table.shape}")
        if table.size and (table.min() < 0 or table.max() >= self.num_families):
            raise ValueError("neighbour indices out of range")
        self.neighbours = table

    def _per_round(self) -> int:
        size = self.batch_size * self.num_replicas
        full, rest = divmod(self.num_families, size)
        return full + int(not self.drop_last and rest >= self.num_replicas)

    def __len__(self) -> int:
        return self.num_batches if self.num_batches is not None else self.rounds * self._per_round()

    def _fill(self, batch: list[int], used: np.ndarray, candidates: np.ndarray, size: int,
              rng: np.random.Generator | None) -> list[int]:
        """Add unused ``candidates`` (shuffled with ``rng``, else in their order) until ``size``; returns them."""
        free = candidates[~used[candidates]]
        take = (free if rng is None else rng.permutation(free))[: size - len(batch)].tolist()
        used[take] = True
        batch += take
        return take

    def _batch(self, anchor: int, used: np.ndarray, order: np.ndarray, rng: np.random.Generator) -> list[int]:
        size = self.batch_size * self.num_replicas
        batch = [anchor]
        used[anchor] = True
        if self.groups is not None and self.groups[anchor] >= 0:
            self._fill(batch, used, self._members[int(self.groups[anchor])], size, rng)
        frontier = list(batch)
        while len(batch) < size and frontier:
            frontier += self._fill(batch, used, self.neighbours[frontier.pop(0)], size, None)  # nearest first
        if len(batch) < size:  # neighbourhood used up: random unused families, in the round's order
            rest = order[~used[order]][: size - len(batch)].tolist()
            used[rest] = True
            batch += rest
        return batch

    def _global_batches(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        draw = 0
        while True:
            order = rng.permutation(self.num_families)
            used = np.zeros(self.num_families, dtype=bool)
            for _ in range(self._per_round()):
                anchor = int(order[~used[order]][0])
                batch = np.array(self._batch(anchor, used, order, rng))
                yield batch[: len(batch) - len(batch) % self.num_replicas], draw
            draw += 1

    def __iter__(self):
        for n, (batch, draw) in enumerate(self._global_batches()):
            if n == len(self):
                return
            mine = np.array_split(batch, self.num_replicas)[self.rank]
            yield [(int(k), self.epoch, draw) for k in mine]


class HardNegatives:
    """The hard-negative state of a training run: neighbour table, sampler, refresh sample.

    Args:
        config: the :class:`~phylocl.data.dataconfig.DataConfig` (``batching`` not ``random``).
        dataset: the training set; families: the pair dataset's families (its item order).

    The table starts from k-mer profile centroids; :meth:`refresh` replaces it with the neighbours of new centroids
    (rows of :meth:`sample`'s sequences embedded by the current encoder) and hands it to the live sampler.
    """

    def __init__(self, *, config, dataset, families: list[str]) -> None:
        from phylocl.data.neighbours import centroid_sample, group_ids, kmer_centroids, nearest_families

        self.config, self.dataset, self.families = config, dataset, list(families)
        self.pool = config.hard_pool or 2 * config.batch_size
        self.groups = None if config.group_by is None else group_ids(dataset, self.families, config.group_by)
        centroids = kmer_centroids(dataset, self.families, k=config.centroid_kmer, members=config.refresh_members,
                                   seed=config.seed)
        self.neighbours = nearest_families(centroids, pool=self.pool)
        self.rows, self.owner = centroid_sample(dataset, self.families, members=config.refresh_members,
                                                seed=config.seed)
        self.sampler: HardNegativeBatchSampler | None = None
        self.refreshes = 0

    def make_sampler(self, *, num_replicas: int = 1, rank: int = 0,
                     batch_size: int | None = None) -> HardNegativeBatchSampler:
        """A new sampler over the current table (kept: :meth:`refresh` updates it); ``batch_size``: real families
        per batch and rank (default ``data.batch_size``; fewer when evolved rows fill the rest)."""
        c = self.config
        self.sampler = HardNegativeBatchSampler(
            num_families=len(self.families), batch_size=c.batch_size if batch_size is None else int(batch_size), neighbours=self.neighbours, groups=self.groups,
            rounds=c.pairs_per_family_per_epoch, num_batches=c.steps_per_epoch, drop_last=c.drop_last, seed=c.seed,
            num_replicas=num_replicas, rank=rank)
        return self.sampler

    def refresh(self, x: np.ndarray) -> float:
        """New centroids from ``x (len(self.rows), D)`` (embeddings of :attr:`rows`); returns the fraction of
        neighbour-list entries that changed."""
        from phylocl.data.neighbours import centroids_from_rows, nearest_families

        if len(x) != len(self.rows):
            raise ValueError(f"expected {len(self.rows)} embedded rows, got {len(x)}")
        table = nearest_families(centroids_from_rows(x, self.owner, len(self.families)), pool=self.pool)
        changed = float(np.mean([len(set(a) - set(b)) / max(len(a), 1) for a, b in zip(table, self.neighbours)]))
        self.neighbours = table
        self.refreshes += 1
        if self.sampler is not None:
            self.sampler.set_neighbours(table)
        return changed

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

Resuming (:meth:`HardNegativeBatchSampler.state_dict`): the draw of an epoch depends on every table in force since
its start, so a resumed run cannot replay it from the first batch. The state holds the draw where it stands (its
generator's state, the round's order and used families: ``F`` int64 + ``F`` bools) and the global batches drawn but
not trained on yet (those a loader draws ahead of training); a sampler given it yields empty placeholders for the
batches trained on (skipped by :class:`~phylocl.data.samplers.ResumableBatches`), then the kept batches, then
draws on. :meth:`HardNegatives.state_dict` adds the neighbour table in force (``F x P`` int32).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
from torch.utils.data import Sampler

from phylocl.data.samplers import EpochSampler

__all__ = ["HardNegativeBatchSampler", "HardNegatives"]

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
        self._draw: dict | None = None  # the current epoch's draw (_start)
        self._drawn: deque = deque()  # (position, global batch, round) drawn in that epoch and not known trained on
        # (state_dict drops the trained ones: at most the checkpoint interval plus what the loader drew ahead, which
        # is num_workers x prefetch_factor batches: a fixed 256 failed a save with more than 128 workers)
        self._restore: dict | None = None  # a draw to continue (load_state_dict), for its epoch's iteration

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
        # fewer families than a global batch: one batch of them all, as FamilyBatchSampler (it was none: 0 steps)
        size = min(self.batch_size * self.num_replicas, self.num_families)
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

    def _start(self) -> dict:
        """A new draw of the current epoch: ``rng`` (``default_rng([seed, epoch])``), the round's ``order`` and
        ``used`` families (``None`` until its first batch), batches drawn in the ``round`` (``in_round``), global
        batches drawn in the epoch (``position``)."""
        return {"epoch": self.epoch, "rng": np.random.default_rng([self.seed, self.epoch]), "order": None,
                "used": None, "round": -1, "in_round": 0, "position": 0}

    def _next_global(self, d: dict) -> tuple[np.ndarray, int]:
        """The next global batch of the draw ``d`` and its round (a new round starts with a new random order)."""
        if d["order"] is None or d["in_round"] == self._per_round():
            d["order"] = d["rng"].permutation(self.num_families)
            d["used"] = np.zeros(self.num_families, dtype=bool)
            d["round"], d["in_round"] = d["round"] + 1, 0
        order, used = d["order"], d["used"]
        anchor = int(order[~used[order]][0])
        batch = np.array(self._batch(anchor, used, order, d["rng"]))
        batch = batch[: len(batch) - len(batch) % self.num_replicas]
        self._drawn.append((d["position"], batch, d["round"]))
        d["in_round"] += 1
        d["position"] += 1
        return batch, d["round"]

    def __iter__(self):
        restore, self._restore = self._restore, None
        d, kept, start = self._start(), [], 0
        self._drawn.clear()
        if restore is not None and restore["epoch"] == self.epoch:
            d, kept, start = restore["draw"], restore["kept"], restore["keep_from"]
            self._drawn.extend((start + i, b, r) for i, (b, r) in enumerate(kept))
        self._draw = d
        for n in range(len(self)):
            if n < start:  # trained on before the checkpoint: ResumableBatches skips these
                yield []
                continue
            batch, draw = kept[n - start] if n - start < len(kept) else self._next_global(d)
            mine = np.array_split(batch, self.num_replicas)[self.rank]
            yield [(int(k), self.epoch, draw) for k in mine]

    def state_dict(self, *, epoch: int, keep_from: int) -> dict:
        """Where the draw of epoch ``epoch`` stands, to continue it after its first ``keep_from`` batches (those
        trained on): plain data and tensors (see the module doc); ``{}`` when that epoch has not begun drawing."""
        d = self._draw
        if d is None or d["epoch"] != epoch:
            return {}
        while self._drawn and self._drawn[0][0] < keep_from:  # trained on: never needed again this epoch
            self._drawn.popleft()
        kept = [(b, r) for _, b, r in self._drawn]
        if len(kept) != d["position"] - min(keep_from, d["position"]):
            raise RuntimeError(f"batches {keep_from}..{d['position'] - 1} of the epoch are no longer kept")
        return {"epoch": int(d["epoch"]), "keep_from": int(keep_from), "rng": d["rng"].bit_generator.state,
                "order": None if d["order"] is None else torch.from_numpy(d["order"].astype(np.int64)),
                "used": None if d["used"] is None else torch.from_numpy(d["used"].copy()),
                "round": int(d["round"]), "in_round": int(d["in_round"]), "position": int(d["position"]),
                "kept": [torch.from_numpy(b.astype(np.int64)) for b, _ in kept],
                "kept_rounds": [int(r) for _, r in kept]}

    def load_state_dict(self, state: dict) -> None:
        """Continue the draw of :meth:`state_dict` when its epoch is iterated next (another epoch starts afresh)."""
        if not state:
            return
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng"]
        order = None if state["order"] is None else np.asarray(state["order"], dtype=np.int64)
        if order is not None and len(order) != self.num_families:
            raise ValueError(f"the saved draw is over {len(order)} families, not {self.num_families}")
        draw = {"epoch": int(state["epoch"]), "rng": rng, "order": order,
                "used": None if state["used"] is None else np.asarray(state["used"], dtype=bool).copy(),
                "round": int(state["round"]), "in_round": int(state["in_round"]), "position": int(state["position"])}
        kept = [(np.asarray(b, dtype=np.int64), int(r)) for b, r in zip(state["kept"], state["kept_rounds"])]
        self._restore = {"epoch": draw["epoch"], "draw": draw, "kept": kept, "keep_from": int(state["keep_from"])}


class HardNegatives:
    """The hard-negative state of a training run: neighbour table, sampler, refresh sample.

    Args:
        config: the :class:`~phylocl.data.dataconfig.DataConfig` (``batching`` not ``random``).
        dataset: the training set; families: the pair dataset's families (its item order).

    The table starts from k-mer profile centroids; :meth:`refresh` replaces it with the neighbours of new centroids
    (rows of :meth:`sample`'s sequences embedded by the current encoder) and hands it to the live sampler.
    :meth:`state_dict` / :meth:`load_state_dict`: the table and the sampler's draw, for an exact resume.
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
        self.refreshed_at = -1  # the optimizer step of the latest refresh (-1: none)
        self._before: np.ndarray | None = None  # the table that refresh replaced
        self._sampler_state: dict = {}  # a saved draw for the next sampler (load_state_dict)

    def make_sampler(self, *, num_replicas: int = 1, rank: int = 0,
                     batch_size: int | None = None) -> HardNegativeBatchSampler:
        """A new sampler over the current table (kept: :meth:`refresh` updates it); ``batch_size``: real families
        per batch and rank (default ``data.batch_size``; fewer when evolved rows fill the rest)."""
        c = self.config
        self.sampler = HardNegativeBatchSampler(
            num_families=len(self.families), batch_size=c.batch_size if batch_size is None else int(batch_size), neighbours=self.neighbours, groups=self.groups,
            rounds=c.pairs_per_family_per_epoch, num_batches=c.steps_per_epoch, drop_last=c.drop_last, seed=c.seed,
            num_replicas=num_replicas, rank=rank)
        self.sampler.load_state_dict(self._sampler_state)
        self._sampler_state = {}
        return self.sampler

    def refresh(self, x: np.ndarray, *, step: int = -1) -> float:
        """New centroids from ``x (len(self.rows), D)`` (embeddings of :attr:`rows`), made at optimizer step
        ``step``; returns the fraction of neighbour-list entries that changed."""
        from phylocl.data.neighbours import centroids_from_rows, nearest_families

        if len(x) != len(self.rows):
            raise ValueError(f"expected {len(self.rows)} embedded rows, got {len(x)}")
        table = nearest_families(centroids_from_rows(x, self.owner, len(self.families)), pool=self.pool)
        changed = float(np.mean([len(set(a) - set(b)) / max(len(a), 1) for a, b in zip(table, self.neighbours)]))
        self._before, self.neighbours = self.neighbours, table
        self.refreshes += 1
        self.refreshed_at = int(step)
        if self.sampler is not None:
            self.sampler.set_neighbours(table)
        return changed

    def state_dict(self, *, step: int, epoch: int, keep_from: int) -> dict:
        """What a run resumed at optimizer step ``step`` needs to draw the batches an uninterrupted run draws:
        ``neighbours``, the ``(F, P)`` int32 table in force at that step's start (``None`` while it is the k-mer
        table, which is recomputed from the data), ``refreshes`` made before it, and ``sampler``, the draw of the
        epoch ``epoch`` after its first ``keep_from`` batches (:meth:`HardNegativeBatchSampler.state_dict`).

        A refresh made at ``step`` itself (in that step's start, before the checkpoint) is left out: the resumed run
        redoes it, with the same weights, and logs what it changed against the table before it."""
        redo = self.refreshed_at >= step and self._before is not None
        table, done = (self._before, self.refreshes - 1) if redo else (self.neighbours, self.refreshes)
        draw = self.sampler.state_dict(epoch=epoch, keep_from=keep_from) if self.sampler is not None else {}
        return {"neighbours": torch.from_numpy(table.astype(np.int32)) if done else None, "refreshes": done,
                "sampler": draw}

    def load_state_dict(self, state: dict) -> None:
        """Take the table and the draw of :meth:`state_dict` (before :meth:`make_sampler`)."""
        if state.get("neighbours") is not None:
            table = np.asarray(state["neighbours"], dtype=np.int64)
            if table.shape != self.neighbours.shape:
                raise ValueError(f"the saved neighbour table is {tuple(table.shape)}, this run's "
                                 f"{tuple(self.neighbours.shape)}")
            self.neighbours = table
            if self.sampler is not None:
                self.sampler.set_neighbours(table)
        self.refreshes = int(state.get("refreshes", 0))
        self._sampler_state = dict(state.get("sampler") or {})

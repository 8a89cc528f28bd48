"""Batch samplers.

:class:`FamilyBatchSampler` (training): every batch holds distinct families, one pair each, so no in-batch
negative is a hidden positive. An epoch is ``rounds`` passes over the families, each pass a fresh permutation cut
into batches (a family can appear once per round, never twice in a batch). With ``token_budget`` the cut is
length-aware: within windows of ``sort_window`` batches' worth of shuffled families, families are sorted by
length and packed greedily so that ``rows x longest view <= token_budget`` for every batch (per view; ``a`` and
``b`` are each within budget), then the batch order is shuffled. All shuffling uses
``numpy.random.default_rng([seed, epoch])``; call :meth:`set_epoch` every epoch. With ``bucket`` (and no token
budget) batches keep their size but are cut from the same length-sorted windows, so each batch holds families of
similar length (less padding); which families share a window changes every round, and ties in length are broken
by the round's permutation, so batch composition still varies across epochs. Lightning does that through
``batch_sampler.sampler.set_epoch``: the epoch is held by that inner :class:`EpochSampler`.

Multi-process: with ``num_replicas = R``, global batches of up to ``R * batch_size`` families (and ``R *
token_budget`` tokens) are cut and rank ``r`` takes the ``r``-th of ``R`` equal slices, so the families of one
step are distinct across all ranks (labels can be all-gathered without false negatives).

Each yielded index is ``(family_position, epoch, draw)`` as read by
:class:`~phylocl.data.families.FamilyPairDataset`.

:class:`LengthSortedBatchSampler` (embedding): sequence indices sorted by length, cut into batches of at most
``batch_size`` rows and (optionally) ``token_budget`` padded tokens; deterministic.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Sampler

__all__ = ["FamilyBatchSampler", "EpochSampler", "LengthSortedBatchSampler", "ResumableBatches", "pack_by_length"]


def pack_by_length(order: np.ndarray, lengths: np.ndarray, *, batch_size: int,
                   token_budget: int | None, multiple: int = 1, oversize_alone: bool = False) -> list[np.ndarray]:
    """Cut ``order`` (indices, already arranged) into consecutive batches.

    A batch ends when adding the next index would exceed ``batch_size`` rows or ``rows * max_length`` would exceed
    ``token_budget``. Every batch size is a multiple of ``multiple`` except possibly the last one. A row longer than
    the budget raises ``ValueError``, or with ``oversize_alone`` is a batch of its own (whole sequences that the
    encoder embeds as windows).
    """
    batches, start, n = [], 0, len(order)
    while start < n:
        end, longest = start, 0
        while end < n and end - start < batch_size:
            new_longest = max(longest, int(lengths[order[end]]))
            if token_budget is not None and (end - start + 1) * new_longest > token_budget:
                break
            longest, end = new_longest, end + 1
        if end == start and oversize_alone:
            end = start + 1
        elif end == start:
            raise ValueError(f"length {int(lengths[order[start]])} exceeds token_budget {token_budget}")
        size = end - start
        if multiple > 1 and end < n and size >= multiple:
            size -= size % multiple
        batches.append(order[start:start + size])
        start += size
    return batches


class EpochSampler(Sampler):
    """Holds the epoch of a :class:`FamilyBatchSampler` (its ``sampler`` attribute, where Lightning calls
    ``set_epoch``); iterating yields the families of the epoch's batches in order."""

    def __init__(self, owner: "FamilyBatchSampler") -> None:
        self.owner = owner
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        for batch in self.owner:
            yield from batch

    def __len__(self) -> int:
        return sum(len(b) for b in self.owner)


class FamilyBatchSampler(Sampler):
    """Batches of distinct families (see module doc).

    Args:
        num_families: number of families (items of the pair dataset).
        batch_size: families per batch (per rank).
        lengths: longest view per family ``(num_families,)``; needed with ``token_budget``.
        token_budget: max ``rows x longest view`` per batch and view (per rank), or ``None``.
        shuffle: permute families (else dataset order).
        drop_last: drop a round's last, smaller batch (without ``token_budget``; with it, batch sizes vary by
            design and only a remainder too small to split across ranks is dropped).
        rounds: passes over the families per epoch (pairs per family per epoch).
        num_batches: fixed number of batches per epoch instead (rounds are added until reached); overrides rounds.
        seed: base seed; epoch ``e`` uses ``default_rng([seed, e])``.
        sort_window: how many batches' worth of families are length-sorted together (token budget or bucket).
        bucket: length-bucketed batches of fixed size (needs ``lengths``; ignored with ``token_budget``, which
            already sorts).
        num_replicas, rank: multi-process slicing (see module doc).
    """

    def __init__(self, *, num_families: int, batch_size: int, lengths: np.ndarray | None = None,
                 token_budget: int | None = None, shuffle: bool = True, drop_last: bool = False, rounds: int = 1,
                 num_batches: int | None = None, seed: int = 0, sort_window: int = 50, num_replicas: int = 1,
                 rank: int = 0, bucket: bool = False) -> None:
        if num_families < 1:
            raise ValueError(f"need at least one family, got {num_families}")
        if batch_size < 1 or rounds < 1 or sort_window < 1 or num_replicas < 1:
            raise ValueError("batch_size, rounds, sort_window and num_replicas must be >= 1")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        if num_batches is not None and num_batches < 1:
            raise ValueError(f"num_batches must be >= 1, got {num_batches}")
        if token_budget is not None:
            if lengths is None or len(lengths) != num_families:
                raise ValueError("token_budget needs one length per family")
            if int(np.max(lengths)) > token_budget:
                raise ValueError(f"token_budget {token_budget} is smaller than the longest view {int(np.max(lengths))}")
        if bucket and (lengths is None or len(lengths) != num_families):
            raise ValueError("bucket needs one length per family")
        if num_families < num_replicas:
            raise ValueError(f"{num_families} families cannot feed {num_replicas} processes")
        self.num_families, self.batch_size, self.token_budget = num_families, batch_size, token_budget
        self.lengths = None if lengths is None else np.asarray(lengths, dtype=np.int64)
        self.shuffle, self.drop_last, self.rounds, self.num_batches = shuffle, drop_last, rounds, num_batches
        self.seed, self.sort_window, self.num_replicas, self.rank = seed, sort_window, num_replicas, rank
        self.bucket = bool(bucket)
        self.sampler = EpochSampler(self)
        self._cache: tuple[int, list] | None = None

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def _round(self, rng: np.random.Generator) -> list[np.ndarray]:
        """One pass over all families as global batches (each ``R`` slices long)."""
        order = rng.permutation(self.num_families) if self.shuffle else np.arange(self.num_families)
        size, budget = self.batch_size * self.num_replicas, None
        if self.token_budget is None and self.bucket:
            window = size * self.sort_window  # a multiple of size: only the round's last batch can be short
            batches = []
            for w in range(0, len(order), window):
                chunk = order[w:w + window]
                chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]  # ties: the round's random order
                batches += [chunk[i:i + size] for i in range(0, len(chunk), size)]
            if self.shuffle:
                batches = [batches[i] for i in rng.permutation(len(batches))]
        elif self.token_budget is None:
            batches = [order[i:i + size] for i in range(0, len(order), size)]
        else:
            budget = self.token_budget * self.num_replicas
            window = size * self.sort_window
            batches = []
            for w in range(0, len(order), window):
                chunk = order[w:w + window]
                chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
                batches += pack_by_length(chunk, self.lengths, batch_size=size, token_budget=budget,
                                          multiple=self.num_replicas)
            if self.shuffle:
                batches = [batches[i] for i in rng.permutation(len(batches))]
        full = min(size, self.num_families)
        keep = []
        for b in batches:
            short = len(b) < self.num_replicas or (self.token_budget is None and len(b) < full)
            if self.drop_last and short:
                continue
            if len(b) >= self.num_replicas:
                keep.append(b[: len(b) - len(b) % self.num_replicas])
        return keep

    def _epoch_batches(self) -> list[list[tuple[int, int, int]]]:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, self.epoch])
        out, draw = [], 0
        target = self.num_batches
        while (target is None and draw < self.rounds) or (target is not None and len(out) < target):
            batches = self._round(rng)
            if not batches:
                raise ValueError(f"no batch can be formed from {self.num_families} families "
                                 f"(batch_size {self.batch_size}, drop_last {self.drop_last})")
            for b in batches:
                mine = np.array_split(b, self.num_replicas)[self.rank]
                out.append([(int(k), self.epoch, draw) for k in mine])
            draw += 1
        if target is not None:
            out = out[:target]
        self._cache = (self.epoch, out)
        return out

    def __iter__(self):
        yield from self._epoch_batches()

    def __len__(self) -> int:
        return len(self._epoch_batches())


class ResumableBatches(Sampler):
    """A training batch sampler that can continue an epoch part-way, for a resumed run.

    Every batch sampler here yields batches that depend only on ``(seed, epoch, position)``, so a run resumed
    after ``k`` optimizer steps of epoch ``e`` gets the batches an uninterrupted run got by skipping the first
    ``k`` of that epoch (index lists only: no data is read for them). Hard-negative batches also depend on the
    neighbour tables in force when each was drawn: their sampler continues its own saved draw and yields empty
    placeholders for the ``k`` skipped here (:mod:`phylocl.data.hardbatches`). Without it the resumed epoch started again
    from its first batch and, Lightning counting the batches already done, ended ``k`` batches early: the resumed
    run trained on other batches than the uninterrupted one.

    Args:
        inner: the batch sampler (its ``sampler`` attribute, where Lightning calls ``set_epoch``, is passed on).
        steps: returns the optimizer steps done so far (``trainer.global_step``; one step per batch).
    """

    def __init__(self, inner, *, steps) -> None:
        self.inner = inner
        self.sampler = inner.sampler  # Lightning calls batch_sampler.sampler.set_epoch
        self._steps = steps
        self._resume: tuple[int, int] | None = None  # (epoch, batches done in it) of a resumed run
        self._epoch_start: int | None = None  # optimizer steps done when the current epoch began

    @property
    def epoch(self) -> int:
        return int(self.sampler.epoch)

    def __getattr__(self, name: str):
        if name == "inner":  # not set yet (a copy being built)
            raise AttributeError(name)
        return getattr(self.inner, name)  # the wrapped sampler's settings (bucket, batch_size ...)

    def resume_at(self, *, epoch: int, batches: int) -> None:
        """Continue epoch ``epoch`` after its first ``batches`` batches (the next epoch when they were all done): the
        epoch is set now, since a loader with workers starts drawing batches before Lightning sets it."""
        self.sampler.set_epoch(int(epoch))
        if int(batches) >= len(self.inner):
            self.sampler.set_epoch(int(epoch) + 1)
        self._resume = (self.epoch, int(batches) if self.epoch == int(epoch) else 0)

    def position(self) -> dict[str, int]:
        """``{"epoch", "batches"}``: the epoch and the batches of it done (optimizer steps taken) so far; ``{}``
        before the first batch."""
        if self._epoch_start is None:
            return {}
        return {"epoch": self.epoch, "batches": int(self._steps()) - self._epoch_start}

    def __iter__(self):
        skip = 0
        if self._resume is not None and self._resume[0] == self.epoch and 0 < self._resume[1] < len(self.inner):
            skip = self._resume[1]
        self._resume = None
        self._epoch_start = int(self._steps()) - skip
        it = iter(self.inner)
        for _ in range(skip):
            next(it, None)
        yield from it

    def __len__(self) -> int:
        return len(self.inner)


class LengthSortedBatchSampler(Sampler):
    """Indices sorted by length (longest first), in batches of ``<= batch_size`` rows and ``<= token_budget``
    padded tokens; a row longer than the budget is a batch of its own (whole sequences, which the encoder embeds as
    windows: validation of a run with ``data.token_budget`` below its longest sequence raised before). Sorting keeps
    padding small when embedding many sequences; the order is deterministic."""

    def __init__(self, *, lengths: np.ndarray, batch_size: int, token_budget: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        order = np.argsort(-self.lengths, kind="stable")
        self.batches = pack_by_length(order, self.lengths, batch_size=batch_size, token_budget=token_budget,
                                      oversize_alone=True)

    def __iter__(self):
        for b in self.batches:
            yield [int(i) for i in b]

    def __len__(self) -> int:
        return len(self.batches)

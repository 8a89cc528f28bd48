"""Unlimited evolved families as a training source, mixed into the real pair batches at a configured ratio.

:class:`EvolvedPairs` is a map-style dataset of unlimited size: item ``(epoch, step, j)`` is a fresh family,
evolved from a root (a real sequence or a random one) along a random Yule tree whose diameter is drawn
log-uniformly from ``divergence`` (:class:`~phylocl.data.simulator.evolved_config.EvolvedConfig`), under the
:class:`~phylocl.data.simulator.evolution.EvolutionModel`; it returns two different leaves as ``(view_a, view_b, label)``
like :class:`~phylocl.data.families.FamilyPairDataset`. Everything is drawn from
``numpy.random.default_rng([seed, EVOLVED_STREAM, epoch, step, j])``, so an item depends only on its key.
Labels are ``label_offset + j``: above every real family's label and distinct within a step (``j`` counts the
evolved rows of a step across all ranks), so an evolved family is never another row's positive.

:class:`MixedBatchSampler` wraps the real :class:`~phylocl.data.samplers.FamilyBatchSampler` (built with
``batch_size - evolved_per_batch`` rows) and appends ``evolved_per_batch`` evolved keys to each batch;
:class:`MixedPairs` sends each key to the right dataset. :func:`evolved_rows` is the split of a batch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from torch.utils.data import Dataset, Sampler

from phylocl.data.simulator.evolution import EvolutionModel
from phylocl.data.simulator.evolved_config import EvolvedConfig
from phylocl.data.simulator.simulate import yule_tree
from phylocl.data.views import SequenceView

__all__ = ["EvolvedPairs", "MixedPairs", "MixedBatchSampler", "evolved_rows", "EVOLVED_KEY"]

EVOLVED_KEY = "evolved"  # first element of an evolved item's key
EVOLVED_STREAM = 0xE7  # separates the evolved items' random streams from the real pairs'


def evolved_rows(config: EvolvedConfig, batch_size: int) -> int:
    """Evolved rows per batch (per rank): ``round(fraction * batch_size)``, at least 1 when ``fraction > 0``."""
    if config.fraction <= 0:
        return 0
    return min(batch_size, max(1, round(config.fraction * batch_size)))


class EvolvedPairs(Dataset):
    """Pairs of leaves of freshly evolved families (see module doc).

    Args:
        config: the evolution and root settings.
        alphabet: ``"protein"`` or ``"dna"``.
        view: crops (and noise) applied to both leaves, as for real pairs.
        roots: real root sequences (``config.roots`` resolved by the caller); empty = random roots only.
        label_offset: first label of evolved families (above every real label).
        seed: base seed.
        steps_per_epoch: batches per epoch, so that key ``(epoch, step, j)`` is global optimizer step
            ``epoch * steps_per_epoch + step`` for the divergence curriculum (``config.curriculum_steps``); needed
            only with a curriculum.
    """

    def __init__(self, *, config: EvolvedConfig, alphabet: str, view: SequenceView, roots: Sequence[str] = (),
                 label_offset: int = 0, seed: int = 0, steps_per_epoch: int | None = None) -> None:
        if config.curriculum_steps and not steps_per_epoch:
            raise ValueError("a divergence curriculum needs steps_per_epoch")
        self.steps_per_epoch = steps_per_epoch
        self.config, self.view, self.roots = config, view, list(roots)
        self.label_offset, self.seed = int(label_offset), int(seed)
        self.model = EvolutionModel(alphabet=alphabet, gamma_shape=config.gamma_shape,
                                    gamma_categories=config.gamma_categories, indels=config.indel_model(),
                                    kappa=config.kappa)
        self.names = [f"leaf{i}" for i in range(config.members)]

    def root(self, rng: np.random.Generator) -> np.ndarray:
        """Root states: a real sequence (cropped to the view's ``max_len``) or a random one."""
        c = self.config
        if self.roots and rng.random() >= c.random_root_fraction:
            seq = self.roots[int(rng.integers(len(self.roots)))]
            if len(seq) > self.view.max_len:
                start = int(rng.integers(len(seq) - self.view.max_len + 1))
                seq = seq[start:start + self.view.max_len]
            return self.model.encode(seq, rng)
        lo, hi = c.random_root_length
        return self.model.random_root(int(rng.integers(lo, hi + 1)), rng)

    def global_step(self, key: Sequence[int]) -> int:
        """The optimizer step of item ``key = (epoch, step, j)``: ``epoch * steps_per_epoch + step``."""
        return int(key[0]) * int(self.steps_per_epoch or 0) + int(key[1])

    def family(self, key: Sequence[int]) -> tuple[list[str], float]:
        """The leaf sequences of family ``key`` and its tree diameter (substitutions per site)."""
        rng = np.random.default_rng([self.seed, EVOLVED_STREAM, *(int(k) for k in key)])
        lo, hi = self.config.divergence_at(self.global_step(key)) if len(key) == 3 else self.config.divergence
        diameter = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        tree = yule_tree(self.names, rng, height=diameter / 2)
        leaves = self.model.evolve(self.root(rng), tree, rng)
        return [self.model.decode(leaves[n]) for n in self.names], diameter

    def __getitem__(self, key: Sequence[int]) -> tuple[np.ndarray, np.ndarray, int]:
        """``key = (epoch, step, j)``: ``(view_a, view_b, label_offset + j)``."""
        leaves, _ = self.family(key)
        rng = np.random.default_rng([self.seed, EVOLVED_STREAM, *(int(k) for k in key), 1])
        i, k = rng.choice(len(leaves), size=2, replace=False)
        a, b = self.view.pair(leaves[i], leaves[k], rng)
        return a, b, self.label_offset + int(key[-1])


class MixedPairs(Dataset):
    """Real pairs for real keys, evolved pairs for keys ``(EVOLVED_KEY, epoch, step, j)``."""

    def __init__(self, real: Dataset, evolved: EvolvedPairs) -> None:
        self.real, self.evolved = real, evolved

    def __len__(self) -> int:
        return len(self.real)

    def __getitem__(self, key):
        if isinstance(key, tuple) and key and key[0] == EVOLVED_KEY:
            return self.evolved[key[1:]]
        return self.real[key]


class MixedBatchSampler(Sampler):
    """Each batch of ``real`` plus ``evolved_per_batch`` evolved keys (``0`` real rows when ``keep_real`` is
    False: evolved pairs only, the real sampler only sets the number of steps per epoch).

    ``real`` must expose ``sampler.set_epoch`` / ``epoch`` (as :class:`FamilyBatchSampler` does); rank ``r`` of
    ``num_replicas`` takes evolved rows ``j = r * evolved_per_batch + 0 .. evolved_per_batch - 1``.
    """

    def __init__(self, real, *, evolved_per_batch: int, keep_real: bool = True, rank: int = 0) -> None:
        if evolved_per_batch < 0 or (evolved_per_batch == 0 and not keep_real):
            raise ValueError(f"need evolved_per_batch >= 1 without real rows, got {evolved_per_batch}")
        self.real, self.n, self.keep_real, self.rank = real, int(evolved_per_batch), keep_real, int(rank)
        self.sampler = real.sampler  # Lightning calls batch_sampler.sampler.set_epoch

    def __iter__(self):
        epoch = self.real.epoch
        for step, batch in enumerate(self.real):
            extra = [(EVOLVED_KEY, epoch, step, self.rank * self.n + j) for j in range(self.n)]
            yield (list(batch) if self.keep_real else []) + extra

    def __len__(self) -> int:
        return len(self.real)

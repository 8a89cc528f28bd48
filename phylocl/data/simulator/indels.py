"""Insertions and deletions along a branch, with a configured length distribution.

On a branch of length ``t`` (substitutions per site) a sequence of ``n`` sites undergoes
``Poisson(rate * t * (n + 1))`` indel events (``rate`` = indel events per substitution per site; ``n + 1``
positions where an insertion can start). Each event is an insertion or a deletion with probability 1/2, at a
uniform position, of a length drawn from:

- ``geometric``: ``P(l) = p (1 - p)^(l - 1)``, ``l >= 1``, ``p = 1 / mean``;
- ``zipf``: ``P(l) ∝ l^(-a)`` for ``1 <= l <= max_length`` (the power law fitted to indel lengths in real
  alignments; INDELible's default), with the exponent ``a`` solved so that the mean is ``mean``.

Inserted residues come from the substitution model's stationary frequencies and get fresh site-rate categories;
a deletion never removes the last residue (it is shortened to leave one).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["IndelModel", "LENGTH_DISTRIBUTIONS"]

LENGTH_DISTRIBUTIONS = ("geometric", "zipf")


def _zipf_mean(a: float, max_length: int) -> float:
    lengths = np.arange(1, max_length + 1, dtype=np.float64)
    w = lengths**-a
    return float((lengths * w).sum() / w.sum())


@dataclass(frozen=True)
class IndelModel:
    """Indel events per branch (see module doc); ``rate = 0`` disables them."""

    rate: float = 0.0
    mean: float = 2.0
    distribution: str = "geometric"
    max_length: int = 50

    def __post_init__(self) -> None:
        if not self.rate >= 0:
            raise ValueError(f"indel rate must be >= 0, got {self.rate}")
        if self.distribution not in LENGTH_DISTRIBUTIONS:
            raise ValueError(f"indel length distribution must be one of {list(LENGTH_DISTRIBUTIONS)}, "
                             f"got {self.distribution!r}")
        if self.max_length < 1:
            raise ValueError(f"indel max_length must be >= 1, got {self.max_length}")
        upper = (self.max_length + 1) / 2 if self.distribution == "zipf" else np.inf  # zipf: a = 0 is uniform
        if not 1.0 <= self.mean < upper:
            raise ValueError(f"{self.distribution} indel mean length must be in [1, {upper}), got {self.mean}")

    @cached_property
    def length_probs(self) -> np.ndarray:
        """Zipf: ``P(l)`` for ``l = 1..max_length`` ``(max_length,)``; geometric: not tabulated (empty)."""
        if self.distribution != "zipf":
            return np.zeros(0)
        lo, hi = 0.0, 20.0  # the truncated mean falls monotonically in a: bisect for the configured mean
        for _ in range(80):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if _zipf_mean(mid, self.max_length) > self.mean else (lo, mid)
        w = np.arange(1, self.max_length + 1, dtype=np.float64) ** -((lo + hi) / 2)
        return w / w.sum()

    def lengths(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` indel lengths ``(n,)`` int64, each ``>= 1``."""
        if self.distribution == "geometric":
            return rng.geometric(1.0 / self.mean, size=n).astype(np.int64)
        return 1 + np.searchsorted(self.length_cdf, rng.random(n), side="right").clip(max=self.max_length - 1)

    @cached_property
    def length_cdf(self) -> np.ndarray:
        """Cumulative ``P(l <= 1..max_length)`` of the zipf lengths ``(max_length,)``."""
        return np.cumsum(self.length_probs)

    def apply(self, states: np.ndarray, cats: np.ndarray, t: float, *, pi: np.ndarray, n_categories: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Indels on a branch of length ``t``: new ``(states, categories)``, each ``(n',)`` int64."""
        if self.rate == 0 or t <= 0:
            return states, cats
        events = int(rng.poisson(self.rate * t * (len(states) + 1)))
        for size in self.lengths(events, rng):
            pos = int(rng.integers(len(states) + 1))
            if rng.random() < 0.5:
                states = np.concatenate([states[:pos], rng.choice(len(pi), size=size, p=pi), states[pos:]])
                cats = np.concatenate([cats[:pos], rng.integers(n_categories, size=size), cats[pos:]])
            else:
                pos = min(pos, len(states) - 1)
                end = min(pos + int(size), len(states))
                if end - pos >= len(states):
                    end -= 1  # keep one residue
                states = np.concatenate([states[:pos], states[end:]])
                cats = np.concatenate([cats[:pos], cats[end:]])
        return states, cats

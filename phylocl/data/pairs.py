"""Positive-pair strategies: which two members of a family form a positive pair.

Selected by name (``data.pair_strategy``):

- ``uniform``: two different members, uniformly at random (every unordered pair equally likely).
- ``distant``: a pair ``{i, j}`` with probability proportional to ``d_ij ** alpha`` (``alpha >= 0``, default 1):
  evolutionarily distant members are paired more often, so the encoder must see through more divergence.
  ``alpha = 0`` is uniform; when every distance is 0 it falls back to uniform.
- ``hardest``: anchor uniform, partner = the anchor's farthest family member (``argmax_j d[anchor, j]``;
  ties go to the lowest index).

Distances (``d``, ``(n, n)``) come from :class:`phylocl.data.distances.FamilyDistances`. Every strategy is a pure
function of the family size, the distances and the ``numpy.random.Generator`` it is given: same generator state,
same pair. The order within a pair is random for ``uniform`` and ``distant`` (anchor first for ``hardest``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["UniformPairs", "DistantPairs", "HardestPairs", "PAIR_STRATEGIES", "get_pair_strategy"]


def _check(n: int) -> None:
    if n < 2:
        raise ValueError(f"a positive pair needs a family of at least 2 members, got {n}")


@dataclass(frozen=True)
class UniformPairs:
    """Two different members, uniformly at random."""

    name = "uniform"
    needs_distances = False

    def sample(self, n: int, rng: np.random.Generator, distances: np.ndarray | None = None) -> tuple[int, int]:
        _check(n)
        i = int(rng.integers(n))
        j = int(rng.integers(n - 1))
        return i, j + (j >= i)


@dataclass(frozen=True)
class DistantPairs:
    """A pair with probability ∝ ``distance ** alpha``."""

    alpha: float = 1.0
    name = "distant"
    needs_distances = True

    def __post_init__(self) -> None:
        if not np.isfinite(self.alpha) or self.alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0, got {self.alpha}")

    def weights(self, distances: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Upper-triangle pair indices ``(iu, ju)`` and their sampling probabilities (each ``(n*(n-1)/2,)``)."""
        iu, ju = np.triu_indices(len(distances), k=1)
        d = np.maximum(np.asarray(distances, dtype=np.float64)[iu, ju], 0.0)
        with np.errstate(over="ignore", under="ignore"):
            w = np.ones_like(d) if self.alpha == 0 else d ** self.alpha
        total = w.sum()
        if not (0 < total < np.inf) and d.max() > 0:  # d ** alpha overflowed (or underflowed) for a large alpha:
            with np.errstate(divide="ignore"):  # the same ratios from the largest, in logs (d = 0 gives weight 0)
                log_w = self.alpha * np.log(d)
            w = np.exp(log_w - log_w.max())
            total = w.sum()
        p = w / total if total > 0 else np.full(len(d), 1.0 / len(d))
        return iu, ju, p

    def sample(self, n: int, rng: np.random.Generator, distances: np.ndarray | None = None) -> tuple[int, int]:
        _check(n)
        if distances is None or distances.shape != (n, n):
            raise ValueError(f"distant pairs need an ({n}, {n}) distance matrix")
        iu, ju, p = self.weights(distances)
        k = int(rng.choice(len(p), p=p))
        i, j = int(iu[k]), int(ju[k])
        return (i, j) if rng.random() < 0.5 else (j, i)


@dataclass(frozen=True)
class HardestPairs:
    """Anchor uniform; partner = the anchor's farthest member."""

    name = "hardest"
    needs_distances = True

    def sample(self, n: int, rng: np.random.Generator, distances: np.ndarray | None = None) -> tuple[int, int]:
        _check(n)
        if distances is None or distances.shape != (n, n):
            raise ValueError(f"hardest pairs need an ({n}, {n}) distance matrix")
        i = int(rng.integers(n))
        row = np.asarray(distances[i], dtype=np.float64).copy()
        row[i] = -np.inf
        return i, int(np.argmax(row))


PAIR_STRATEGIES = {"uniform": UniformPairs, "distant": DistantPairs, "hardest": HardestPairs}


def get_pair_strategy(name: str, *, alpha: float = 1.0):
    """The strategy called ``name`` (``alpha`` is used by ``distant`` only)."""
    if name not in PAIR_STRATEGIES:
        raise ValueError(f"unknown pair strategy {name!r}; choose one of {sorted(PAIR_STRATEGIES)}")
    return DistantPairs(alpha=alpha) if name == "distant" else PAIR_STRATEGIES[name]()

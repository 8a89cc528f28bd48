"""Sequence evolution along a tree: empirical substitutions, gamma rate heterogeneity, indels.

:class:`EvolutionModel` evolves a root sequence down every branch of a tree (Bio.Phylo, branch lengths in expected
substitutions per site):

1. every root site draws a rate category of the discrete gamma (:mod:`phylocl.data.simulator.rates`; shape
   ``gamma_shape``, ``None`` = equal rates); sites keep their category down the tree;
2. on a branch of length ``t`` a site of rate ``r`` changes state by ``P(r t) = expm(Q r t)``, where ``Q`` is the
   BLOSUM62-derived reversible chain for protein or K80 (``kappa``; 1 = JC69) for DNA
   (:mod:`phylocl.data.simulator.substitution`);
3. then indels (:class:`~phylocl.data.simulator.indels.IndelModel`); inserted sites draw states from the stationary
   frequencies and fresh rate categories.

Without indels, two leaves at patristic distance ``d`` share a site's state with probability
``sum_k 1/K sum_a pi_a P(r_k d)_aa`` (:meth:`EvolutionModel.expected_identity`). A root can be a real sequence
(:meth:`EvolutionModel.encode`; letters outside the model's states, such as ``X``, draw a state from the
stationary frequencies) or random (:meth:`EvolutionModel.random_root`).
"""

from __future__ import annotations

import numpy as np
from Bio.Phylo.BaseTree import Tree

from phylocl.data.simulator.indels import IndelModel
from phylocl.data.simulator.rates import discrete_gamma_rates
from phylocl.data.simulator.substitution import AMINO_ACIDS, NUCLEOTIDES, k80_transition_matrix, protein_rate_matrix

__all__ = ["EvolutionModel"]


class EvolutionModel:
    """Substitutions + gamma rates + indels for one alphabet (see module doc).

    Args:
        alphabet: ``"protein"`` (BLOSUM62 chain) or ``"dna"`` (K80).
        gamma_shape: shape ``alpha`` of the discrete gamma, ``> 0``; ``None`` = every site at rate 1.
        gamma_categories: number of rate categories.
        indels: the indel process (default: none).
        kappa: DNA transition/transversion rate ratio.
    """

    def __init__(self, *, alphabet: str = "protein", gamma_shape: float | None = None, gamma_categories: int = 4,
                 indels: IndelModel | None = None, kappa: float = 2.0) -> None:
        if alphabet not in ("protein", "dna"):
            raise ValueError(f"alphabet must be protein or dna, got {alphabet!r}")
        if not kappa > 0:
            raise ValueError(f"kappa must be > 0, got {kappa}")
        self.alphabet, self.kappa = alphabet, float(kappa)
        self.rates = discrete_gamma_rates(gamma_shape, gamma_categories)  # (K,)
        self.indels = indels if indels is not None else IndelModel()
        self.letters = AMINO_ACIDS if alphabet == "protein" else NUCLEOTIDES
        self._lookup = np.full(256, -1, dtype=np.int64)
        for i, ch in enumerate(self.letters):
            self._lookup[ord(ch)] = self._lookup[ord(ch.lower())] = i
        if alphabet == "protein":
            self.pi, q = protein_rate_matrix()
            root = np.sqrt(self.pi)
            sym = root[:, None] * q / root[None, :]  # Pi^1/2 Q Pi^-1/2, symmetric
            self._evals, self._evecs = np.linalg.eigh((sym + sym.T) / 2.0)
            self._root = root
        else:
            self.pi = np.full(4, 0.25)

    def transition(self, t: float) -> np.ndarray:
        """``P(t)`` at rate 1, ``(S, S)``, rows summing to 1."""
        if self.alphabet == "dna":
            return k80_transition_matrix(t, self.kappa)
        pt = (self._evecs * np.exp(self._evals * t)) @ self._evecs.T
        pt = np.clip(pt / self._root[:, None] * self._root[None, :], 0.0, None)
        return pt / pt.sum(axis=1, keepdims=True)

    def expected_identity(self, d: float) -> float:
        """Expected fraction of identical sites between two sequences ``d`` substitutions/site apart (no indels)."""
        return float(np.mean([self.pi @ np.diag(self.transition(r * d)) for r in self.rates]))

    # ----------------------------------------------------------------- roots
    def encode(self, seq: str, rng: np.random.Generator) -> np.ndarray:
        """States ``(L,)`` of a real sequence; letters outside the states draw one from ``pi``."""
        states = self._lookup[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]
        bad = states < 0
        if bad.any():
            states[bad] = rng.choice(len(self.pi), size=int(bad.sum()), p=self.pi)
        return states

    def decode(self, states: np.ndarray) -> str:
        return "".join(np.array(list(self.letters))[states])

    def random_root(self, length: int, rng: np.random.Generator) -> np.ndarray:
        """``length`` states drawn from the stationary frequencies, ``(length,)``."""
        return rng.choice(len(self.pi), size=length, p=self.pi)

    # ----------------------------------------------------------------- evolution
    def branch(self, states: np.ndarray, cats: np.ndarray, t: float,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Evolve ``(states, categories)`` along one branch of length ``t``; returns the new pair."""
        new = states.copy()
        u = rng.random(len(states))
        for k, r in enumerate(self.rates):
            sites = np.flatnonzero(cats == k)
            if sites.size:
                cdf = np.cumsum(self.transition(r * t), axis=1)[states[sites]]  # (n_k, S)
                new[sites] = np.minimum((u[sites, None] > cdf).sum(axis=1), len(self.pi) - 1)
        return self.indels.apply(new, cats, t, pi=self.pi, n_categories=len(self.rates), rng=rng)

    def evolve(self, root: np.ndarray, tree: Tree, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """States of every named leaf of ``tree`` after evolving ``root`` (states ``(L,)``) down its branches."""
        cats = rng.integers(len(self.rates), size=len(root))
        leaves: dict[str, np.ndarray] = {}
        stack = [(tree.root, np.asarray(root, dtype=np.int64), cats)]
        while stack:
            clade, states, cats = stack.pop()
            for child in clade.clades:
                s, c = self.branch(states, cats, float(child.branch_length or 0.0), rng)
                if child.is_terminal():
                    leaves[child.name] = s
                else:
                    stack.append((child, s, c))
        return leaves

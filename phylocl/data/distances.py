"""Within-family pairwise distances: patristic from a Newick tree, else alignment-free Mash distances.

Mash distance (Ondov et al. 2016) from the Jaccard index ``J`` of two k-mer sets::

    d = -1/k * ln(2J / (1 + J))          # ≈ substitutions per site; 0 for identical k-mer sets

Default ``k``: 5 for protein (21 letters: 4e6 possible 5-mers, so chance matches are rare in proteins of a few
hundred residues while 5-mers still survive ~50% divergence), 11 for DNA (4^11 = 4e6 as well, the same
random-match level; Mash's own default of 21 targets whole genomes). k-mers holding the unknown letter (X / N)
are left out. ``J = 0`` (no shared k-mer) is floored at half a shared k-mer, ``J = 1 / (2 |A ∪ B|)``, so distances
stay finite and still grow with length of the unshared part.

Jaccard is exact (a sequences × distinct-k-mers 0/1 matrix product) when that matrix is small, else estimated
with MinHash sketches (``sketch_size`` hash functions; standard error ≈ sqrt(J(1-J)/sketch_size)).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from phylocl.atomic import atomic_path
from phylocl.data.alphabet import Alphabet
from phylocl.data.dataset import OrthologDataset
from phylocl.data.trees import patristic_matrix, read_tree
from phylocl.data.words import window_words

__all__ = ["DEFAULT_K", "kmer_codes", "jaccard_matrix", "mash_distance", "kmer_distance_matrix", "FamilyDistances"]

DEFAULT_K = {"protein": 5, "dna": 11}
_EXACT_LIMIT = 5_000_000  # entries of the sequences x distinct-k-mers matrix above which MinHash is used
_PRIME = 2_147_483_647  # 2^31 - 1; hash (a*x + b) mod p stays inside int64 for codes < 2^32


def kmer_codes(seq: str, alphabet: Alphabet, k: int) -> np.ndarray:
    """Sorted distinct integer codes of the k-mers of ``seq`` (k-mers with the unknown letter dropped), int64.

    Codes are base ``len(alphabet.letters)`` words (the unknown letter counts in the base, which keeps the MinHash
    values of :func:`jaccard_matrix` as they were), not the base-``n`` columns of ``kmer:K``.
    """
    base = len(alphabet.letters)
    if base ** k >= 2**62:
        raise ValueError(f"k={k} is too large for the {alphabet.name} alphabet")
    words = window_words(alphabet.letter_codes()[alphabet.encode(seq)], k, base)  # (L-k+1,), -1 across X
    return np.unique(words[words >= 0])


def _exact_jaccard(sets: Sequence[np.ndarray]) -> np.ndarray:
    allc = np.concatenate(sets)
    _, inv = np.unique(allc, return_inverse=True)
    m = np.zeros((len(sets), int(inv.max()) + 1 if inv.size else 1), dtype=np.float32)
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    m[rows, inv] = 1.0
    inter = (m @ m.T).astype(np.float64)  # (n, n) exact small integers
    sizes = np.array([len(s) for s in sets], dtype=np.float64)
    union = sizes[:, None] + sizes[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0), union


def _minhash_jaccard(sets: Sequence[np.ndarray], sketch_size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, _PRIME, size=sketch_size, dtype=np.int64)
    b = rng.integers(0, _PRIME, size=sketch_size, dtype=np.int64)
    sketches = np.full((len(sets), sketch_size), _PRIME, dtype=np.int64)  # (n, s); _PRIME marks "empty set"
    for i, s in enumerate(sets):
        if len(s):
            x = s % _PRIME
            sketches[i] = ((x[:, None] * a[None, :] + b[None, :]) % _PRIME).min(axis=0)
    n = len(sets)
    jac = np.zeros((n, n))
    for start in range(0, n, 64):
        blk = sketches[start:start + 64]  # (c, s)
        same = (blk[:, None, :] == sketches[None, :, :]) & (blk[:, None, :] != _PRIME)  # (c, n, s)
        jac[start:start + 64] = same.mean(axis=2)
    sizes = np.array([len(s) for s in sets], dtype=np.float64)
    union = (sizes[:, None] + sizes[None, :]) / (1.0 + jac)  # |A|+|B| = |A∪B|(1+J)
    return jac, union


def jaccard_matrix(sets: Sequence[np.ndarray], *, method: str = "auto", sketch_size: int = 256,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise Jaccard indices of k-mer sets and the sizes of their unions, both ``(n, n)`` float64.

    ``method``: ``"exact"``, ``"minhash"`` or ``"auto"`` (exact when ``n * distinct k-mers <= 5e6``).
    """
    if method not in ("auto", "exact", "minhash"):
        raise ValueError(f"method must be auto, exact or minhash, got {method!r}")
    if method == "auto":
        distinct = len(np.unique(np.concatenate(sets))) if sets else 0
        method = "exact" if len(sets) * distinct <= _EXACT_LIMIT else "minhash"
    if method == "exact":
        return _exact_jaccard(sets)
    return _minhash_jaccard(sets, sketch_size, seed)


def mash_distance(jaccard: np.ndarray, k: int, union: np.ndarray | None = None) -> np.ndarray:
    """``-1/k * ln(2J/(1+J))``; with ``union`` given, ``J`` is floored at ``1/(2*union)`` (see module doc)."""
    j = np.asarray(jaccard, dtype=np.float64)
    floor = 0.5 / np.maximum(union, 1.0) if union is not None else np.finfo(float).tiny
    j = np.clip(j, floor, 1.0)
    return -np.log(2.0 * j / (1.0 + j)) / k


def kmer_distance_matrix(sequences: Sequence[str], alphabet: Alphabet, *, k: int | None = None,
                         method: str = "auto", sketch_size: int = 256, seed: int = 0) -> np.ndarray:
    """Mash distances between ``sequences``, shape ``(n, n)`` float64, zero diagonal, symmetric."""
    k = DEFAULT_K[alphabet.name] if k is None else int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    sets = [kmer_codes(s, alphabet, k) for s in sequences]
    jac, union = jaccard_matrix(sets, method=method, sketch_size=sketch_size, seed=seed)
    dist = mash_distance(jac, k, union)
    np.fill_diagonal(dist, 0.0)
    return dist


class FamilyDistances:
    """Distances between the members of each family, computed on first use and cached.

    Args:
        dataset: the families.
        method: ``"auto"`` (the family's tree when it has one, else k-mers), ``"tree"`` (tree required) or
            ``"kmer"``.
        k, sketch_size, seed: k-mer settings (see :func:`kmer_distance_matrix`).
        cache_dir: optional folder for ``.npy`` files keyed by a hash of the family's ids, sequences and settings;
            nothing is written unless it is given.

    ``dist(family)`` returns ``(n, n)`` for the members in ``dataset.family_index[family]`` order.
    """

    def __init__(self, *, dataset: OrthologDataset, method: str = "auto", k: int | None = None,
                 sketch_size: int = 256, seed: int = 0, cache_dir: str | Path | None = None) -> None:
        if method not in ("auto", "tree", "kmer"):
            raise ValueError(f"distance method must be auto, tree or kmer, got {method!r}")
        if sketch_size < 1:
            raise ValueError(f"sketch_size must be >= 1, got {sketch_size}")
        self.dataset, self.method, self.k, self.sketch_size, self.seed = dataset, method, k, sketch_size, seed
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._memo: dict[str, np.ndarray] = {}

    def source(self, family: str) -> str:
        """``"tree"`` or ``"kmer"``: where the distances of ``family`` come from."""
        if self.method == "kmer":
            return "kmer"
        if family in self.dataset.trees:
            return "tree"
        if self.method == "tree":
            raise ValueError(f"family {family!r} has no tree and distance method is 'tree'")
        return "kmer"

    def __call__(self, family: str) -> np.ndarray:
        if family in self._memo:
            return self._memo[family]
        idx = self.dataset.family_index[family]
        ids = [self.dataset.ids[i] for i in idx]
        src = self.source(family)
        cache = self._cache_file(family, src, ids, idx)
        if cache is not None and cache.is_file():
            dist = np.load(cache, allow_pickle=False)
        elif src == "tree":
            dist = patristic_matrix(read_tree(self.dataset.trees[family]), ids)
        else:
            seqs = [self.dataset.sequences[i] for i in idx]
            dist = kmer_distance_matrix(seqs, self.dataset.alphabet, k=self.k, sketch_size=self.sketch_size,
                                        seed=self.seed)
        if cache is not None and not cache.is_file():
            with atomic_path(cache) as tmp:
                np.save(tmp, dist)
        self._memo[family] = dist
        return dist

    def precompute(self, families: Sequence[str] | None = None) -> None:
        """Fill the cache for ``families`` (default: every family with at least two members)."""
        for fam in self.dataset.pair_families if families is None else families:
            self(fam)

    def _cache_file(self, family: str, src: str, ids: list[str], idx: list[int]) -> Path | None:
        if self.cache_dir is None:
            return None
        h = hashlib.sha1(f"{src}|{self.k}|{self.sketch_size}|{self.seed}".encode())
        for i, sid in zip(idx, ids):
            h.update(sid.encode() + b"\0" + self.dataset.sequences[i].encode() + b"\0")
        if src == "tree":  # the file's bytes, not only its path: an edited tree was read from the stale cache
            tree = Path(self.dataset.trees[family])
            h.update(b"edges-if-no-lengths\0" + str(tree).encode() + b"\0" + tree.read_bytes())
        return self.cache_dir / f"{h.hexdigest()[:20]}.npy"

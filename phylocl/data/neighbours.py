"""Family centroids and their nearest neighbours, the input of hard-negative batches.

A family's centroid is the renormalised mean of unit vectors of a bounded, seeded sample of its members
(:func:`centroid_sample`): k-mer count profiles before training (:func:`kmer_centroids`, so that step 0 is already
hard) and the encoder's embeddings at each refresh (computed by the training side, which hands the rows to
:func:`centroids_from_rows`). :func:`nearest_families` finds each family's ``pool`` nearest other families by inner
product with an exact FAISS index.
"""

from __future__ import annotations

import numpy as np

from phylocl.data.dataset import OrthologDataset
from phylocl.data.words import window_words

__all__ = ["centroid_sample", "centroids_from_rows", "kmer_centroids", "nearest_families", "group_ids"]

MAX_PROFILE_DIM = 4096  # k-mer columns are folded (index mod this) above it: protein k=3 has 8000


def centroid_sample(dataset: OrthologDataset, families: list[str], *, members: int,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``members`` sequences of each family, chosen with ``default_rng(seed)``.

    Returns ``(rows (N,), owner (N,))``: sequence indices into ``dataset`` and the position of their family in
    ``families``.
    """
    if members < 1:
        raise ValueError(f"members must be >= 1, got {members}")
    rng = np.random.default_rng(seed)
    rows, owner = [], []
    for f, fam in enumerate(families):
        idx = np.asarray(dataset.family_index[fam])
        pick = idx if len(idx) <= members else np.sort(rng.choice(idx, size=members, replace=False))
        rows.append(pick)
        owner.append(np.full(len(pick), f))
    return np.concatenate(rows), np.concatenate(owner)


def centroids_from_rows(x: np.ndarray, owner: np.ndarray, num_families: int) -> np.ndarray:
    """``(F, D)`` unit centroids: the mean of the unit rows ``x (N, D)`` of each family (``owner (N,)``)."""
    x = np.asarray(x, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sums = np.zeros((num_families, x.shape[1]))
    np.add.at(sums, owner, x)
    return (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def kmer_centroids(dataset: OrthologDataset, families: list[str], *, k: int | None = None, members: int = 4,
                   seed: int = 0) -> np.ndarray:
    """``(F, D)`` unit centroids of k-mer count profiles (``k``: 3 protein, 5 DNA; canonical letters only; more
    than :data:`MAX_PROFILE_DIM` columns are folded modulo it) over :func:`centroid_sample`'s members."""
    alpha = dataset.alphabet
    k = k or (3 if alpha.name == "protein" else 5)
    dim = min(len(alpha.canonical) ** k, MAX_PROFILE_DIM)
    code = alpha.letter_codes()  # token id -> letter code
    rows, owner = centroid_sample(dataset, families, members=members, seed=seed)
    x = np.zeros((len(rows), dim), dtype=np.float32)
    for n, r in enumerate(rows):
        words = window_words(code[alpha.encode(dataset.sequences[r])], k, len(alpha.canonical))  # (L-k+1,)
        x[n] = np.bincount(words[words >= 0] % dim, minlength=dim)
    return centroids_from_rows(x, owner, len(families))


def nearest_families(centroids: np.ndarray, *, pool: int) -> np.ndarray:
    """``(F, min(pool, F-1))`` indices of each family's nearest other families, most similar first (exact
    inner-product search with FAISS; ties broken by index)."""
    import faiss

    x = np.ascontiguousarray(centroids, dtype=np.float32)
    n = len(x)
    width = min(pool, n - 1)
    if width < 1:
        return np.zeros((n, 0), dtype=np.int64)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    _, found = index.search(x, width + 1)  # (F, width + 1), usually self first
    out = np.empty((n, width), dtype=np.int64)
    for f in range(n):
        row = [int(g) for g in found[f] if g != f and g >= 0][:width]
        if len(row) < width:  # FAISS put self past the cut (ties): complete with the lowest other indices
            seen = set(row) | {f}
            row += [g for g in range(n) if g not in seen][: width - len(row)]
        out[f] = row
    return out


def group_ids(dataset: OrthologDataset, families: list[str], column: str) -> np.ndarray:
    """``(F,)`` integer group of each family from metadata ``column`` (its first member's value); ``-1`` where the
    value is empty (a dataset without that column). Raises ``ValueError`` for an unknown column."""
    if column not in dataset.metadata:
        have = ", ".join(sorted(dataset.metadata)) or "none"
        raise ValueError(f"no labels column {column!r} to group families by (columns: {have})")
    values = [dataset.metadata[column][dataset.family_index[f][0]] for f in families]
    names = sorted({v for v in values if v})
    lookup = {v: i for i, v in enumerate(names)}
    return np.array([lookup.get(v, -1) for v in values], dtype=np.int64)

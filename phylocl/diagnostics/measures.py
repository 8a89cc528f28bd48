"""Representation-health measures on arrays (numpy, and torch for the batched residual); no model imports.

* :func:`rank_collapse_residual` / :func:`masked_residual`: how far token representations are from rank one
  (Dong, Cordonnier & Loukas 2021, "Attention is not all you need: pure attention loses rank doubly exponentially
  with depth", arXiv 2103.03404): ``res(X) = X - 1 x^T`` with ``x`` the row minimising the norm of ``res``,
  reported relative to ``X``: ``||X - 1 x^T|| / ||X||``, in ``[0, 1]``, 0 exactly when every token is the same
  vector. **Norm**: the paper's proofs use the composite ``||X||_{1,inf} = sqrt(||X||_1 ||X||_inf)``; here it is the
  Frobenius norm, whose minimiser is the column mean in closed form (the composite one has none and is not even
  a norm), which does not depend on the basis of the feature space, and which is equivalent to the composite one
  up to factors of the matrix size, so convergence to rank one (and its speed with depth) reads the same.
* :func:`effective_rank`: ``exp`` of the Shannon entropy of the singular values normalised to sum 1 (Roy &
  Vetterli 2007); between 1 (all rows on one line) and ``min(N, D)`` (all singular values equal).
* :func:`alignment` / :func:`uniformity`: Wang & Isola 2020, on the unit sphere: ``E ||f(x) - f(y)||^alpha``
  over positive pairs (0 = identical pairs) and ``log E exp(-t ||f(x) - f(y)||^2)`` over all pairs (more
  negative = more uniform; -4t for two antipodal points).
* :func:`embedding_health`: all of these for a labelled embedding set (family pairs are the positives).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["rank_collapse_residual", "masked_residual", "singular_values", "effective_rank", "alignment",
           "uniformity", "pair_alignment", "family_pairs", "embedding_health"]


def rank_collapse_residual(x) -> float:
    """``||X - 1 mean(X)^T||_F / ||X||_F`` of one sequence's token matrix ``x`` ``(L, D)``; 0.0 for ``X = 0``.

    >>> rank_collapse_residual(np.ones((5, 3)) * [1.0, 2.0, 3.0])
    0.0
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"expected an (L, D) matrix with L >= 1, got shape {x.shape}")
    total = np.linalg.norm(x)
    if total == 0.0:
        return 0.0
    return float(np.linalg.norm(x - x.mean(axis=0, keepdims=True)) / total)


def masked_residual(h, mask):
    """Per-sequence :func:`rank_collapse_residual` of a padded batch, padding excluded (torch, vectorised).

    Args:
        h: ``(B, L, D)`` float tensor of token representations.
        mask: ``(B, L)`` bool, True on real tokens (at least one per row).

    Returns ``(B,)`` float64 tensor; rows whose real tokens are all zero get 0.
    """
    import torch

    m = mask.to(torch.float64).unsqueeze(-1)  # (B, L, 1)
    x = h.to(torch.float64) * m  # (B, L, D), padding zeroed
    count = m.sum(dim=1).clamp(min=1.0)  # (B, 1)
    mean = x.sum(dim=1) / count  # (B, D)
    res = (x - mean.unsqueeze(1)) * m  # (B, L, D)
    num = res.pow(2).sum(dim=(1, 2)).sqrt()  # (B,)
    den = x.pow(2).sum(dim=(1, 2)).sqrt()  # (B,)
    return torch.where(den > 0, num / den.clamp(min=1e-300), torch.zeros_like(num))


_GRAM_ABOVE = 4_000_000  # entries of z above which singular values come from the Gram matrix


def singular_values(z) -> np.ndarray:
    """Singular values of ``z`` ``(N, D)`` (uncentred), descending, float64 ``(min(N, D),)``."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"expected an (N, D) matrix, got shape {z.shape}")
    if z.size <= _GRAM_ABOVE:
        return np.linalg.svd(z, compute_uv=False)
    # large and wide (e.g. 2,560 x 24,000 k-mer profile embeddings): the eigenvalues of the small Gram matrix
    # (min(N, D) squared) are the squared singular values; several times faster than an SVD of z, and its memory
    # is that of z plus min(N, D)^2. Squaring loses singular values below ~1e-8 of the largest, which add nothing
    # measurable to the effective rank.
    gram = z @ z.T if z.shape[0] <= z.shape[1] else z.T @ z  # (m, m), m = min(N, D)
    ev = np.linalg.eigvalsh(gram)[::-1]
    return np.sqrt(np.clip(ev, 0.0, None))


def effective_rank(z) -> float:
    """Roy & Vetterli's effective rank of ``z`` ``(N, D)``: ``exp(-sum p_i log p_i)``, ``p = s / sum(s)``.

    The matrix is not centred (as in RankMe, Garrido et al. 2023): embeddings that all point one way have
    effective rank ~1. ``k`` orthonormal rows give exactly ``k``. A zero matrix gives 0.0.
    """
    s = singular_values(z)
    total = s.sum()
    if total <= 0.0:
        return 0.0
    p = s[s > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


def alignment(za, zb, *, alpha: float = 2.0) -> float:
    """Wang & Isola's alignment ``mean_i ||za_i - zb_i||_2^alpha`` of positive pairs ``za, zb`` ``(P, D)``."""
    za, zb = np.asarray(za, dtype=np.float64), np.asarray(zb, dtype=np.float64)
    if za.shape != zb.shape or za.ndim != 2 or len(za) == 0:
        raise ValueError(f"expected two (P, D) arrays of the same shape with P >= 1, got {za.shape}, {zb.shape}")
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    return float((np.linalg.norm(za - zb, axis=1) ** alpha).mean())


_PAIR_BLOCK = 4_000_000  # entries of z[i] gathered at once by pair_alignment (32 MB of float64)


def pair_alignment(z, i, j, *, alpha: float = 2.0) -> float:
    """:func:`alignment` of the index pairs ``(i[k], j[k])`` of ``z`` ``(N, D)``, gathered in blocks.

    Same value as ``alignment(z[i], z[j])`` without holding two ``(P, D)`` copies: 14,000 family pairs of
    24,000-d k-mer profile embeddings would be 5 GB in float64; here the memory is ``_PAIR_BLOCK`` entries.
    """
    z = np.asarray(z, dtype=np.float64)
    i, j = np.asarray(i), np.asarray(j)
    if z.ndim != 2 or i.shape != j.shape or i.ndim != 1 or len(i) == 0:
        raise ValueError(f"expected an (N, D) array and two index vectors of one length >= 1, got {z.shape}, "
                         f"{i.shape}, {j.shape}")
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    step = max(1, _PAIR_BLOCK // max(1, z.shape[1]))
    total = 0.0
    for start in range(0, len(i), step):
        a, b = z[i[start:start + step]], z[j[start:start + step]]  # (block, D) each
        total += float((np.linalg.norm(a - b, axis=1) ** alpha).sum())
    return total / len(i)


def uniformity(z, *, t: float = 2.0, max_points: int = 4096, seed: int = 0) -> float:
    """Wang & Isola's uniformity ``log mean_{i<j} exp(-t ||z_i - z_j||^2)`` of the rows of ``z`` ``(N, D)``.

    Sets larger than ``max_points`` are scored on a random subset of that many rows (``seed``). Computed with a
    log-sum-exp, so very uniform sets do not underflow.
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or len(z) < 2:
        raise ValueError(f"uniformity needs an (N, D) array with N >= 2, got shape {z.shape}")
    if t <= 0:
        raise ValueError(f"t must be > 0, got {t}")
    if len(z) > max_points:
        z = z[np.sort(np.random.default_rng(seed).choice(len(z), max_points, replace=False))]
    sq = (z * z).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * z @ z.T, 0.0)  # (n, n) squared distances
    iu = np.triu_indices(len(z), k=1)
    a = -t * d2[iu]  # (n (n - 1) / 2,)
    top = a.max()
    return float(top + np.log(np.exp(a - top).mean()))


def family_pairs(labels: Sequence, *, max_pairs: int = 100_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs ``i < j`` with ``labels[i] == labels[j]`` (a random ``max_pairs`` of them if more)."""
    groups: dict = {}
    for i, lab in enumerate(labels):
        groups.setdefault(lab, []).append(i)
    left, right = [], []
    for members in groups.values():
        if len(members) > 1:
            a, b = np.triu_indices(len(members), k=1)
            idx = np.asarray(members)
            left.append(idx[a])
            right.append(idx[b])
    if not left:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    i, j = np.concatenate(left), np.concatenate(right)
    if len(i) > max_pairs:
        keep = np.sort(np.random.default_rng(seed).choice(len(i), max_pairs, replace=False))
        i, j = i[keep], j[keep]
    return i, j


def embedding_health(z, labels: Sequence | None = None, *, seed: int = 0) -> dict:
    """Spread of an embedding set ``z`` ``(N, D)`` (rows are L2-normalised first); ``labels``: ``N`` families.

    Returns ``{"n", "dim", "effective_rank", "effective_rank_fraction" (= effective_rank / dim), "dim_std" (list,
    per dimension), "dim_std_mean", "dim_std_min", "dim_std_uniform" (1/sqrt(dim): what a spherically uniform set
    has), "uniformity", "alignment" (family pairs; None without labels or pairs), "n_family_pairs"}``.
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or len(z) < 2:
        raise ValueError(f"embedding_health needs an (N, D) array with N >= 2, got shape {z.shape}")
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    std = z.std(axis=0)  # (D,)
    out = {"n": int(len(z)), "dim": int(z.shape[1]), "effective_rank": effective_rank(z)}
    out["effective_rank_fraction"] = out["effective_rank"] / z.shape[1]
    out.update(dim_std=[float(s) for s in std], dim_std_mean=float(std.mean()), dim_std_min=float(std.min()),
               dim_std_uniform=float(1.0 / np.sqrt(z.shape[1])), uniformity=uniformity(z, seed=seed))
    i, j = family_pairs(labels, seed=seed) if labels is not None else (np.zeros(0, int), np.zeros(0, int))
    if labels is not None and len(labels) != len(z):
        raise ValueError(f"{len(labels)} labels for {len(z)} embeddings")
    out["alignment"] = pair_alignment(z, i, j) if len(i) else None
    out["n_family_pairs"] = int(len(i))
    return out

"""Slow, obvious reference implementations (explicit Python loops over anchors and negatives)."""

from __future__ import annotations

import torch


def _directions(z_a, z_b, symmetric):
    return [(z_a, z_b)] + ([(z_b, z_a)] if symmetric else [])


def _negatives(i, n, labels):
    return [j for j in range(n) if j != i and (labels is None or int(labels[j]) != int(labels[i]))]


def infonce_reference(z_a, z_b, temperature, labels=None, symmetric=True):
    """Mean over anchors (that have a negative) of -log(exp(s_ii) / (exp(s_ii) + sum_neg exp(s_ij)))."""
    per_anchor = []
    for q, k in _directions(z_a, z_b, symmetric):
        for i in range(q.shape[0]):
            negs = _negatives(i, q.shape[0], labels)
            if not negs:
                continue
            s_ii = torch.dot(q[i], k[i]) / temperature
            denom = torch.exp(s_ii)
            for j in negs:
                denom = denom + torch.exp(torch.dot(q[i], k[j]) / temperature)
            per_anchor.append(-torch.log(torch.exp(s_ii) / denom))
    return torch.stack(per_anchor).mean() if per_anchor else None


def flat_objective_reference(z_a, z_b, temperature, labels=None, symmetric=True):
    """Mean over anchors of log sum_{j negative} exp(s_ij - s_ii): the function whose gradient FlatNCE has."""
    per_anchor = []
    for q, k in _directions(z_a, z_b, symmetric):
        for i in range(q.shape[0]):
            negs = _negatives(i, q.shape[0], labels)
            if not negs:
                continue
            s_ii = torch.dot(q[i], k[i]) / temperature
            total = 0.0
            for j in negs:
                total = total + torch.exp(torch.dot(q[i], k[j]) / temperature - s_ii)
            per_anchor.append(torch.log(total))
    return torch.stack(per_anchor).mean() if per_anchor else None


def pos_prob_reference(z_a, z_b, temperature, labels=None, symmetric=True):
    """Mean softmax probability of the positive among {positive} + negatives."""
    probs = []
    for q, k in _directions(z_a, z_b, symmetric):
        for i in range(q.shape[0]):
            negs = _negatives(i, q.shape[0], labels)
            if not negs:
                continue
            num = torch.exp(torch.dot(q[i], k[i]) / temperature)
            den = num + sum(torch.exp(torch.dot(q[i], k[j]) / temperature) for j in negs)
            probs.append(num / den)
    return torch.stack(probs).mean()


def logit_gap_reference(z_a, z_b, temperature, labels=None, symmetric=True):
    """Mean over anchors of s_ii - max_neg s_ij."""
    gaps = []
    for q, k in _directions(z_a, z_b, symmetric):
        for i in range(q.shape[0]):
            negs = _negatives(i, q.shape[0], labels)
            if not negs:
                continue
            best = max(float(torch.dot(q[i], k[j])) for j in negs)
            gaps.append((float(torch.dot(q[i], k[i])) - best) / temperature)
    return sum(gaps) / len(gaps)


def unit_pairs(b, d, *, seed=0, dtype=torch.float64, noise=0.5):
    """Two correlated views of ``b`` random unit vectors, ``(b, d)`` each."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(b, d, generator=g, dtype=dtype)
    a = base + noise * torch.randn(b, d, generator=g, dtype=dtype)
    c = base + noise * torch.randn(b, d, generator=g, dtype=dtype)
    return torch.nn.functional.normalize(a, dim=1), torch.nn.functional.normalize(c, dim=1)

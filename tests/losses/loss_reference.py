"""Slow, obvious reference implementations (explicit Python loops over anchors and negatives)."""

from __future__ import annotations

import torch


def anchors(z_a, z_b, labels=None, symmetric=True):
    """Yield ``(q, k, i, negatives)`` for every anchor ``q[i]`` (positive ``k[i]``) that has a negative."""
    for q, k in [(z_a, z_b)] + ([(z_b, z_a)] if symmetric else []):
        for i in range(q.shape[0]):
            negs = [j for j in range(q.shape[0])
                    if j != i and (labels is None or int(labels[j]) != int(labels[i]))]
            if negs:
                yield q, k, i, negs


def infonce_reference(z_a, z_b, temperature, labels=None, symmetric=True):
    """Mean over anchors of -log(exp(s_ii) / (exp(s_ii) + sum_neg exp(s_ij)))."""
    per_anchor = []
    for q, k, i, negs in anchors(z_a, z_b, labels, symmetric):
        pos = torch.exp(torch.dot(q[i], k[i]) / temperature)
        denom = pos
        for j in negs:
            denom = denom + torch.exp(torch.dot(q[i], k[j]) / temperature)
        per_anchor.append(-torch.log(pos / denom))
    return torch.stack(per_anchor).mean()


def flat_objective_reference(z_a, z_b, temperature, labels=None, symmetric=True):
    """Mean over anchors of log sum_{j negative} exp(s_ij - s_ii): the function whose gradient FlatNCE has."""
    per_anchor = []
    for q, k, i, negs in anchors(z_a, z_b, labels, symmetric):
        s_ii = torch.dot(q[i], k[i]) / temperature
        total = 0.0
        for j in negs:
            total = total + torch.exp(torch.dot(q[i], k[j]) / temperature - s_ii)
        per_anchor.append(torch.log(total))
    return torch.stack(per_anchor).mean()


def pos_prob_reference(z_a, z_b, temperature, labels=None, symmetric=True):
    """Mean softmax probability of the positive among {positive} + negatives."""
    probs = []
    for q, k, i, negs in anchors(z_a, z_b, labels, symmetric):
        num = torch.exp(torch.dot(q[i], k[i]) / temperature)
        den = num + sum(torch.exp(torch.dot(q[i], k[j]) / temperature) for j in negs)
        probs.append(num / den)
    return torch.stack(probs).mean()


def logit_gap_reference(z_a, z_b, temperature, labels=None, symmetric=True):
    """Mean over anchors of s_ii - max_neg s_ij."""
    gaps = []
    for q, k, i, negs in anchors(z_a, z_b, labels, symmetric):
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


def value_and_grads(fn, z_a, z_b):
    """``fn(z_a, z_b)`` (detached) and its gradients with respect to ``z_a`` and ``z_b``."""
    z_a = z_a.clone().requires_grad_()
    z_b = z_b.clone().requires_grad_()
    value = fn(z_a, z_b)
    value.backward()
    return value.detach(), z_a.grad, z_b.grad

"""DeBERTa disentangled attention (models/deberta.py): buckets, eq. 4 against explicit loops, shift invariance."""

from __future__ import annotations

import math

import pytest
import torch

from phylocl.models.deberta import DisentangledAttention, RelativePositions, relative_buckets


def test_buckets_exact_near_log_far_and_saturating():
    k, max_d = 8, 64
    idx = relative_buckets(100, k, max_d)
    d = torch.arange(100)[:, None] - torch.arange(100)[None, :]
    near = d.abs() < k // 2
    assert torch.equal(idx[near], d[near] + k)  # one bucket per offset near the diagonal
    assert idx.min() >= 0 and idx.max() < 2 * k
    assert torch.equal(idx - k, -(idx.t() - k))  # antisymmetric in the offset
    row = idx[99, :].flip(0) - k  # offsets 0..99 (query 99, keys 99..0)
    assert (row[1:] >= row[:-1]).all()  # monotone in the offset
    assert (row[max_d - 1:] == k - 1).all()  # saturated from max_distance - 1 on
    assert set(row.tolist()) == set(range(k))  # every bucket of the sign is used
    for dist in range(k // 2, max_d):  # the documented formula, far from the diagonal
        half = k // 2
        want = min(k - 1, half + math.ceil(math.log(dist / half) / math.log((max_d - 1) / half) * (half - 1)))
        assert int(row[dist]) == want, dist


def _reference(att, x, mask, table, index):
    """Explicit loops over heads, queries and keys of DeBERTa eq. 4 with the 1/sqrt(3d) scale."""
    b, length, dim = x.shape
    h, hd = att.heads, att.head_dim
    q, k, v = att.qkv(x).chunk(3, dim=-1)
    qr, kr = att.pos_qk(table).chunk(2, dim=-1)
    out = torch.zeros(b, length, dim)
    for n in range(b):
        for head in range(h):
            s = slice(head * hd, (head + 1) * hd)
            scores = torch.full((length, length), float("-inf"))
            for i in range(length):
                for j in range(length):
                    if mask[n, j]:
                        scores[i, j] = (q[n, i, s] @ k[n, j, s] + q[n, i, s] @ kr[index[i, j], s]
                                        + k[n, j, s] @ qr[index[j, i], s]) / math.sqrt(3 * hd)
            out[n, :, s] = scores.softmax(-1) @ v[n, :, s]
    return att.out(out)


def test_disentangled_attention_matches_eq4_loops():
    torch.manual_seed(0)
    pos = RelativePositions(dim=8, buckets=4, max_distance=8)
    att = DisentangledAttention(dim=8, heads=2).eval()
    x = torch.randn(2, 7, 8)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    table, index = pos(7)
    torch.testing.assert_close(att(x, mask, table, index), _reference(att, x, mask, table, index),
                               atol=1e-5, rtol=1e-5)


def test_scores_depend_on_relative_positions_only():
    """The same tokens at another offset (preceded by padding-free context that is masked out) attend alike."""
    torch.manual_seed(1)
    pos = RelativePositions(dim=8, buckets=4, max_distance=16)
    att = DisentangledAttention(dim=8, heads=2).eval()
    x = torch.randn(1, 5, 8)
    shifted = torch.cat([torch.randn(1, 3, 8), x], dim=1)  # 3 masked positions in front
    mask = torch.tensor([[False] * 3 + [True] * 5])
    y = att(x, torch.ones(1, 5, dtype=torch.bool), *pos(5))
    y_shift = att(shifted, mask, *pos(8))[:, 3:]
    torch.testing.assert_close(y_shift, y, atol=1e-5, rtol=1e-5)


def test_validation():
    with pytest.raises(ValueError, match="even"):
        RelativePositions(dim=8, buckets=3, max_distance=8)
    with pytest.raises(ValueError, match="heads"):
        DisentangledAttention(dim=9, heads=2)

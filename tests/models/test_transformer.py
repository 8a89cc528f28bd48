"""Rotary embeddings and masked self-attention against explicit references."""

from __future__ import annotations

import math

import numpy as np
import torch

from phylocl.models.transformer import SelfAttention, Transformer, apply_rotary, rotary_angles


def test_rotary_matches_explicit_pair_rotation():
    hd, length, base = 8, 5, 10000.0
    torch.manual_seed(0)
    x = torch.randn(length, hd)
    cos, sin = rotary_angles(length, hd, base=base)
    got = apply_rotary(x, cos, sin).numpy()
    xn = x.double().numpy()
    half = hd // 2
    for p in range(length):
        for i in range(half):
            theta = p * base ** (-2 * i / hd)
            a, b = xn[p, i], xn[p, i + half]
            np.testing.assert_allclose(got[p, i], a * math.cos(theta) - b * math.sin(theta), atol=1e-5)
            np.testing.assert_allclose(got[p, i + half], b * math.cos(theta) + a * math.sin(theta), atol=1e-5)


def test_rotary_scores_depend_only_on_relative_position():
    hd = 16
    torch.manual_seed(1)
    q, k = torch.randn(hd), torch.randn(hd)
    cos, sin = rotary_angles(40, hd)

    def score(m, n):
        return float(apply_rotary(q, cos[m], sin[m]) @ apply_rotary(k, cos[n], sin[n]))

    assert abs(score(3, 7) - score(20, 24)) < 1e-4
    assert abs(score(9, 2) - score(30, 23)) < 1e-4
    assert abs(score(3, 7) - score(3, 8)) > 1e-3  # and it does depend on the offset
    assert abs(score(5, 5) - float(q @ k)) < 1e-4  # equal positions: plain dot product


@torch.no_grad()
def test_self_attention_matches_reference_with_key_padding():
    dim, heads, length = 8, 2, 5
    hd = dim // heads
    torch.manual_seed(2)
    att = SelfAttention(dim=dim, heads=heads).eval()
    x = torch.randn(2, length, dim)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)
    got = att(x, mask)
    cos, sin = rotary_angles(length, hd)
    q, k, v = att.qkv(x).chunk(3, dim=-1)
    for b in range(2):
        heads_out = []
        for h in range(heads):
            sl = slice(h * hd, (h + 1) * hd)
            qh = apply_rotary(q[b, :, sl], cos, sin)
            kh = apply_rotary(k[b, :, sl], cos, sin)
            rows = []
            for i in range(length):
                s = torch.tensor([float(qh[i] @ kh[j]) / math.sqrt(hd) if mask[b, j] else -math.inf
                                  for j in range(length)])
                w = torch.softmax(s, dim=0)
                rows.append(sum(w[j] * v[b, j, sl] for j in range(length)))
            heads_out.append(torch.stack(rows))
        want = att.out(torch.cat(heads_out, dim=-1))
        torch.testing.assert_close(got[b], want, atol=1e-5, rtol=0)


@torch.no_grad()
def test_transformer_accepts_any_length_and_ignores_padding():
    torch.manual_seed(3)
    net = Transformer(dim=16, depth=2, heads=2, ffn_dim=32).eval()
    x = torch.randn(1, 300, 16)  # no position table: long inputs work
    assert net(x, torch.ones(1, 300, dtype=torch.bool)).shape == (1, 300, 16)
    short = x[:, :7]
    alone = net(short, torch.ones(1, 7, dtype=torch.bool))
    padded = torch.cat([short, 50 * torch.randn(1, 13, 16)], dim=1)
    mask = torch.arange(20)[None] < 7
    torch.testing.assert_close(net(padded, mask)[:, :7], alone, atol=1e-5, rtol=0)

"""gMLP pieces against explicit-loop references: SGU (masking, top-left block, init), tiny attention, blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from phylocl.models.gmlp import GMLP, GMLPBlock, SpatialGatingUnit, TinyAttention

B, L, N, FFN, D = 3, 6, 8, 10, 12


def _mask(lengths, width=L):
    return torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]  # (B, L)


def _sgu_reference(sgu: SpatialGatingUnit, z, mask, gate_res=None):
    """out[b, i, c] = u[b, i, c] * (sum over real j of W[i, j] * LN(v)[b, j, c] + bias[i] (+ gate_res))."""
    z = z.double().numpy()
    w = sgu.weight.detach().double().numpy()
    bias = sgu.bias.detach().double().numpy()
    gamma = sgu.norm.weight.detach().double().numpy()
    beta = sgu.norm.bias.detach().double().numpy()
    half = z.shape[-1] // 2
    out = np.zeros(z.shape[:2] + (half,))
    for b in range(z.shape[0]):
        for i in range(z.shape[1]):
            acc = np.full(half, bias[i])
            for j in range(z.shape[1]):
                if not mask[b, j]:
                    continue
                v = z[b, j, half:]
                lnv = (v - v.mean()) / np.sqrt(v.var() + sgu.norm.eps) * gamma + beta
                acc = acc + w[i, j] * lnv
            if gate_res is not None:
                acc = acc + gate_res[b, i].double().numpy()
            out[b, i] = z[b, i, :half] * acc
    return out


@torch.no_grad()
def test_sgu_matches_loop_reference_with_per_sample_masks():
    torch.manual_seed(0)
    sgu = SpatialGatingUnit(ffn_dim=FFN, seq_len=N)
    with torch.no_grad():  # a trained-looking projection, far from the identity init
        sgu.weight.normal_()
        sgu.bias.normal_()
        sgu.norm.weight.normal_()
    z = torch.randn(B, L, FFN)
    mask = _mask([6, 2, 4])
    res = torch.randn(B, L, FFN // 2)
    for gate_res in (None, res):
        got = sgu(z, mask, gate_res).double().numpy()
        want = _sgu_reference(sgu, z, mask, gate_res)
        real = mask.numpy()
        np.testing.assert_allclose(got[real], want[real], atol=1e-5)


@torch.no_grad()
def test_sgu_ignores_padded_columns_and_uses_top_left_block():
    torch.manual_seed(1)
    sgu = SpatialGatingUnit(ffn_dim=FFN, seq_len=N)
    with torch.no_grad():
        sgu.weight.normal_()
    z = torch.randn(1, 3, FFN)
    alone = sgu(z, _mask([3], 3))
    # same sequence in a batch of width N with garbage at the padded positions
    wide = torch.cat([z, 1e3 * torch.randn(1, N - 3, FFN)], dim=1)
    padded = sgu(wide, _mask([3], N))
    torch.testing.assert_close(padded[:, :3], alone, atol=1e-5, rtol=0)


@torch.no_grad()
def test_sgu_at_init_is_identity_gating():
    """At init b = 1 and |W| <= eps / n, so |SGU(z) - u| <= |u| * eps * max_j |LN(v)_j| channel-wise; W = 0 gives u."""
    torch.manual_seed(2)
    eps = 1e-3
    sgu = SpatialGatingUnit(ffn_dim=FFN, seq_len=N, init_eps=eps)
    assert torch.equal(sgu.bias, torch.ones(N))
    assert sgu.weight.abs().max() <= eps / N
    assert sgu.weight.abs().max() > 0  # near zero, not zero
    z = torch.randn(B, L, FFN)
    mask = _mask([6, 3, 1])
    u, v = z.chunk(2, dim=-1)
    lnv = F.layer_norm(v, (FFN // 2,))  # LN at init: gamma 1, beta 0
    out = sgu(z, mask)
    bound = u.abs() * eps * lnv.abs().amax(dim=1, keepdim=True) + 1e-7  # (B, L, F/2)
    assert ((out - u).abs() <= bound).all()
    with torch.no_grad():
        sgu.weight.zero_()
    assert torch.equal(sgu(z, mask), u)


@torch.no_grad()
def test_gmlp_block_at_zero_spatial_weights_is_a_feed_forward_block():
    torch.manual_seed(3)
    block = GMLPBlock(dim=D, ffn_dim=FFN, seq_len=N, init_eps=0.0).eval()
    x = torch.randn(B, L, D)
    mask = _mask([6, 4, 2])
    u = F.gelu(block.proj_in(block.norm(x)))[..., : FFN // 2]
    want = x + block.proj_out(u)
    torch.testing.assert_close(block(x, mask), want, atol=1e-6, rtol=0)


@torch.no_grad()
def test_tiny_attention_matches_softmax_reference_with_masked_keys():
    torch.manual_seed(4)
    att = TinyAttention(dim=D, out_dim=FFN // 2, attn_dim=4)
    x = torch.randn(B, L, D)
    mask = _mask([6, 3, 1])
    got = att(x, mask)
    q, k, v = att.qkv(x).chunk(3, dim=-1)
    for b in range(B):
        for i in range(L):
            scores = torch.tensor([float(q[b, i] @ k[b, j]) / 2.0 if mask[b, j] else -np.inf for j in range(L)])
            w = torch.softmax(scores, dim=0)
            y = sum(w[j] * v[b, j] for j in range(L))
            torch.testing.assert_close(got[b, i], att.out(y), atol=1e-5, rtol=0)


@pytest.mark.parametrize("attn_dim", [None, 4])
def test_gmlp_stack_padding_and_width_limits(attn_dim):
    torch.manual_seed(5)
    net = GMLP(dim=D, depth=2, ffn_dim=FFN, seq_len=N, attn_dim=attn_dim).eval()
    with torch.no_grad():
        for blk in net.blocks:
            blk.sgu.weight.normal_(std=0.3)
    x = torch.randn(1, 3, D)
    alone = net(x, _mask([3], 3))
    wide = torch.cat([x, torch.randn(1, N - 3, D)], dim=1)
    torch.testing.assert_close(net(wide, _mask([3], N))[:, :3], alone, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="spatial projection holds 8"):
        net(torch.randn(1, N + 1, D), _mask([N + 1], N + 1))


def test_sgu_rejects_odd_width():
    with pytest.raises(ValueError, match="even"):
        SpatialGatingUnit(ffn_dim=7, seq_len=4)

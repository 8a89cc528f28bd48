"""sMLP (models/smlp.py): the sMoE against a per-chunk loop, padding, block layout, config checks."""

from __future__ import annotations

import math

import pytest
import torch

from phylocl.models.encoder_config import EncoderConfig
from phylocl.models.moe import MoESublayer, pop_router_records, record_routing
from phylocl.models.smlp import SMLP, SpatialMoE


def _smoe(seed=0, **kw):
    torch.manual_seed(seed)
    args = dict(ffn_dim=16, seq_len=12, experts=3, chunk=2, capacity_factor=1.0, init_eps=0.5)
    m = SpatialMoE(**{**args, **kw})
    with torch.no_grad():
        m.router.weight.normal_()
        m.weight.normal_(std=0.3)
        m.bias.normal_()
    return m


def _reference(m: SpatialMoE, z, mask):
    """Per row, per chunk: route the chunk's channel mean, apply the chosen expert's spatial projection."""
    b, width, f = z.shape
    u, v = z.chunk(2, dim=-1)
    v = m.norm(v) * mask[..., None]
    k, c, e = v.shape[-1] // m.chunk, m.chunk, m.router.experts
    out = torch.zeros_like(u)
    for row in range(b):
        probs = torch.stack([(v[row, :, j * c:(j + 1) * c].mean(-1) @ m.router.weight[:, :width].t()).softmax(-1)
                             for j in range(k)])  # (K, E)
        cap = max(1, math.ceil(m.router.capacity_factor * k / e))
        for expert in range(e):
            mine = sorted((j for j in range(k) if int(probs[j].argmax()) == expert),
                          key=lambda j: (-float(probs[j].max().detach()), j))
            for j in mine[:cap]:
                proj = m.weight[expert, :width, :width] @ v[row, :, j * c:(j + 1) * c] + m.bias[expert, :width, None]
                out[row, :, j * c:(j + 1) * c] = proj * probs[j].max()
    return u * out


@pytest.mark.parametrize("cf", [0.5, 1.0, 3.0])
def test_spatial_moe_matches_per_chunk_loop(cf):
    m = _smoe(capacity_factor=cf)
    z = torch.randn(3, 10, 16)
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[1, 6:] = False
    torch.testing.assert_close(m(z, mask), _reference(m, z, mask), atol=1e-5, rtol=1e-5)


def test_spatial_moe_padding_and_width_invariance():
    m = _smoe(seed=1)
    z = torch.randn(1, 5, 16)
    alone = m(z, torch.ones(1, 5, dtype=torch.bool))
    wide = torch.cat([z, 100 * torch.randn(1, 7, 16)], dim=1)  # padded to 12 positions with large garbage
    mask = torch.zeros(1, 12, dtype=torch.bool)
    mask[0, :5] = True
    torch.testing.assert_close(m(wide, mask)[:, :5], alone, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="positions"):
        m(torch.randn(1, 13, 16), torch.ones(1, 13, dtype=torch.bool))


def test_spatial_moe_counts_chunks_and_drops_over_capacity():
    m = _smoe(seed=2, capacity_factor=0.5)  # capacity ceil(0.5 * 4 / 3) = 1 chunk per expert and row
    record_routing(m)
    m(torch.randn(2, 8, 16), torch.ones(2, 8, dtype=torch.bool))
    (rec,) = pop_router_records(m)[0]
    assert rec.units.item() == 8  # 2 rows x 4 chunks
    assert rec.chosen.sum().item() == 8 and rec.kept.sum().item() <= 6
    assert (rec.kept <= 2).all()


def test_smlp_layout_dense_then_sparse():
    net = SMLP(dim=16, depth=4, dense=1, ffn_dim=32, seq_len=20, experts=2, chunk=4, capacity_factor=1.25,
               moe_hidden=24)
    kinds = [(type(b.sgu).__name__, type(b.moe).__name__) for b in net.blocks]
    assert kinds == [("SpatialGatingUnit", "NoneType")] + [("SpatialMoE", "MoESublayer")] * 3
    assert isinstance(net.blocks[1].moe, MoESublayer) and net.blocks[1].moe.ffn.experts[0][0].out_features == 24
    record_routing(net)
    y = net(torch.randn(2, 9, 16), torch.ones(2, 9, dtype=torch.bool))
    assert y.shape == (2, 9, 16)
    assert [len(c) for c in pop_router_records(net)] == [1] * 6  # 3 sparse blocks x (sMoE, tMoE)


@pytest.mark.parametrize("bad, match", [
    (dict(moe_experts=0), "moe_experts >= 2"),
    (dict(smlp_dense=2), "smlp_dense must be <"),
    (dict(smoe_chunk=5), "smoe_chunk"),
    (dict(attn_dim=8), "attn_dim"),
    (dict(attention="deberta"), "attention"),
])
def test_smlp_config_errors(bad, match):
    base = dict(backbone="smlp", dim=16, depth=2, max_len=16, embed_dim=8, ffn_dim=32, moe_experts=2)
    assert EncoderConfig(**base).smlp_dense == 1  # default: depth // 2
    with pytest.raises(ValueError, match=match):
        EncoderConfig(**{**base, **bad})


@pytest.mark.parametrize("bad, match", [
    (dict(moe_experts=1), "moe_experts"), (dict(moe_capacity_factor=0), "moe_capacity_factor"),
    (dict(moe_every=0), "moe_every"), (dict(smlp_dense=1), "smlp_dense"), (dict(rel_buckets=7), "rel_buckets"),
])
def test_moe_and_attention_config_errors(bad, match):
    base = dict(backbone="transformer", dim=16, depth=2, max_len=16, embed_dim=8, heads=2)
    cfg = EncoderConfig(**base, moe_experts=2)
    assert cfg.moe_ffn_dim == cfg.ffn_dim == 64
    with pytest.raises(ValueError, match=match):
        EncoderConfig(**{**base, "attention": "deberta", **bad})

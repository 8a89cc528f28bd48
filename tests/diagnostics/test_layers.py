"""Per-block residuals: hooks see every block with its padding mask; attention without skips collapses."""

from __future__ import annotations

import pytest
import torch

import phylocl
from phylocl.diagnostics.layers import BlockRecorder, find_blocks, layer_residuals
from phylocl.diagnostics.measures import masked_residual
from phylocl.models.attention_stack import AttentionStack
from phylocl.models.registry import list_models


def _stack_residuals(stack, x, mask):
    with torch.no_grad(), BlockRecorder(blocks=stack.blocks) as rec:
        stack(x, mask)
    return rec


def test_recorder_equals_a_manual_loop_over_blocks():
    torch.manual_seed(0)
    stack = AttentionStack(dim=16, depth=3, heads=2, ffn_dim=32, skip=True, mlp=True, norm=True)
    x = torch.randn(3, 10, 16)
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[0, 6:] = False
    rec = _stack_residuals(stack, x, mask)
    h, want = x, []
    with torch.no_grad():
        for block in stack.blocks:
            h = block(h, mask)
            want.append(float(masked_residual(h, mask).mean()))
    assert rec.count == 3 and rec.residuals == pytest.approx(want, rel=1e-9)
    assert rec.input_residual == pytest.approx(float(masked_residual(x, mask).mean()))
    assert not stack.blocks[0]._forward_hooks  # hooks removed on exit


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_deep_pure_attention_collapses_faster_than_the_same_stack_with_skips(seed):
    x = torch.randn(4, 24, 32, generator=torch.Generator().manual_seed(seed))
    mask = torch.ones(4, 24, dtype=torch.bool)
    mask[2, 15:] = False
    res = {}
    for skip in (False, True):
        torch.manual_seed(seed)  # the same attention weights in both stacks
        stack = AttentionStack(dim=32, depth=8, heads=4, ffn_dim=64, skip=skip)
        res[skip] = _stack_residuals(stack, x, mask).residuals
    assert res[False][-1] < 1e-3 < 0.5 < res[True][-1]
    assert all(a < b for a, b in zip(res[False][1:], res[True][1:]))


@pytest.mark.parametrize("name", ["gmlp-tiny", "transformer-tiny", "smlp-tiny"])
def test_layer_residuals_of_an_encoder_one_per_block_and_none_for_kmer(name):
    torch.manual_seed(0)
    enc = phylocl.build_encoder(name)
    r = layer_residuals(enc, ["MKVLAAGIVGLLLA" * 20, "MSTAPQRW", "PQRSTVWYAC"], batch_size=2)
    assert len(r["layer_residual"]) == enc.config.depth
    assert all(0.0 < v <= 1.0 for v in r["layer_residual"]) and 0.0 < r["input_residual"] <= 1.0
    assert enc.training  # mode restored
    from phylocl.models.kmer import KmerEmbedder

    assert find_blocks(KmerEmbedder(k=2, alphabet="protein")) is None
    assert layer_residuals(KmerEmbedder(k=2, alphabet="protein"), ["MKV"]) == {"input_residual": None,
                                                                             "layer_residual": []}


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_gives_one_residual_per_block_or_none(name):
    """Stacks of blocks called as block(x, mask) get one value per block; k-mer backbones (no such stack) none."""
    torch.manual_seed(0)
    enc = phylocl.build_encoder(name)
    r = layer_residuals(enc, ["MKVLAAGIVGLLLA", "MSTAPQRW"])
    want = enc.config.depth if find_blocks(enc) is not None else 0
    assert len(r["layer_residual"]) == want and all(0.0 <= v <= 1.0 for v in r["layer_residual"])

"""Switch routing (models/moe.py): decisions against a slow reference, capacity overflow, padding, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from phylocl.models.moe import MoESublayer, SwitchFFN, Top1Router, capacity, pop_router_records, record_routing


def _reference_keep(probs, valid, cf):
    """Slow reference: per row and expert, keep the ceil(cf * n / E) most confident units (ties: earlier)."""
    b, u, e = probs.shape
    keep = torch.zeros(b, u, dtype=torch.bool)
    for row in range(b):
        n = int(valid[row].sum())
        cap = max(1, math.ceil(cf * n / e))
        for expert in range(e):
            units = [t for t in range(u) if valid[row, t] and int(probs[row, t].argmax()) == expert]
            units.sort(key=lambda t: (-float(probs[row, t].max().detach()), t))
            for t in units[:cap]:
                keep[row, t] = True
    return keep


@pytest.mark.parametrize("cf", [0.5, 1.0, 1.25, 4.0])
def test_routing_matches_slow_reference(cf):
    torch.manual_seed(0)
    router = Top1Router(in_dim=6, experts=3, capacity_factor=cf)
    with torch.no_grad():
        router.weight.normal_()
    x = torch.randn(4, 9, 6)
    valid = torch.ones(4, 9, dtype=torch.bool)
    valid[1, 5:] = False
    valid[3, 1:] = False
    r = router(x, valid)
    probs = (x @ router.weight.t()).softmax(-1)
    assert torch.equal(r.expert, probs.argmax(-1))
    torch.testing.assert_close(r.gate, probs.max(-1).values)
    assert torch.equal(r.keep, _reference_keep(probs, valid, cf))
    assert not r.keep[~valid].any()  # padding is never routed


def test_ties_keep_the_earlier_position():
    router = Top1Router(in_dim=2, experts=2, capacity_factor=0.5)  # capacity ceil(0.5 * 4 / 2) = 1 per expert
    with torch.no_grad():
        router.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    x = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 1.0]]])  # two identical units for expert 0
    r = router(x, torch.ones(1, 4, dtype=torch.bool))
    assert r.keep.tolist() == [[True, False, True, False]]  # expert 1 keeps its most confident unit (position 2)


def test_capacity_overflow_is_counted_and_dropped_tokens_pass_through_the_residual():
    torch.manual_seed(1)
    layer = MoESublayer(dim=8, hidden=16, experts=4, capacity_factor=1.0)
    with torch.no_grad():  # every token prefers expert 2
        layer.ffn.router.weight.zero_()
        layer.ffn.router.weight[2] = 1.0
        layer.norm.bias.fill_(1.0)  # LN(x) sums to 8: a positive logit for expert 2 only
    x = torch.randn(2, 10, 8)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 7:] = False
    record_routing(layer)
    y = layer(x, mask)
    (rec,) = pop_router_records(layer)[0]
    caps = [capacity(10, 4, 1.0), capacity(7, 4, 1.0)]  # 3 and 2 tokens per row reach the expert
    assert rec.units.item() == 17 and rec.chosen.tolist() == [0, 0, 17, 0]
    assert rec.kept.tolist() == [0, 0, sum(caps), 0]  # the other 12 are counted as dropped, not lost silently
    changed = (y - x).abs().sum(-1) > 0  # (B, L)
    assert changed.sum(1).tolist() == caps
    dropped = mask & ~changed
    torch.testing.assert_close(y[dropped], x[dropped], rtol=0, atol=0)  # residual only
    torch.testing.assert_close(y[~mask], x[~mask], rtol=0, atol=0)  # padding: zero expert output


def test_switch_ffn_matches_per_token_loop_and_ignores_padding():
    torch.manual_seed(2)
    ffn = SwitchFFN(dim=6, hidden=12, experts=3, capacity_factor=2.0)
    with torch.no_grad():
        ffn.router.weight.normal_()
    x = torch.randn(3, 7, 6)
    mask = torch.rand(3, 7) > 0.3
    mask[:, 0] = True
    y = ffn(x, mask)
    r = ffn.router(x, mask)
    for b in range(3):
        for t in range(7):
            want = torch.zeros(6)
            if r.keep[b, t]:
                want = ffn.experts[int(r.expert[b, t])](x[b, t]) * r.gate[b, t]
            torch.testing.assert_close(y[b, t], want, atol=1e-6, rtol=1e-5)
    noisy = x.clone()
    noisy[~mask] = 1e3  # padded inputs change nothing at real positions
    torch.testing.assert_close(ffn(noisy, mask)[mask], y[mask], atol=0, rtol=0)


def test_every_expert_gets_a_gradient_when_all_are_routed_to():
    torch.manual_seed(3)
    ffn = SwitchFFN(dim=4, hidden=8, experts=4, capacity_factor=1.0)
    with torch.no_grad():
        ffn.router.weight.copy_(torch.eye(4) * 5)
    x = torch.eye(4).repeat(2, 3, 1) + 0.01 * torch.randn(2, 12, 4)  # each expert's direction 3 times per row
    record_routing(ffn)
    ffn(x, torch.ones(2, 12, dtype=torch.bool)).square().sum().backward()
    (rec,) = pop_router_records(ffn)[0]
    assert rec.kept.tolist() == [6, 6, 6, 6]
    for name, p in ffn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # an expert that got no token still gets a zero (not a missing) gradient
    ffn.zero_grad(set_to_none=True)
    ffn(torch.eye(4)[:1].expand(1, 5, 4).contiguous(), torch.ones(1, 5, dtype=torch.bool)).sum().backward()
    assert all(p.grad is not None for p in ffn.parameters())
    assert not ffn.experts[3][0].weight.grad.any()


def test_records_only_while_recording_in_training_mode():
    ffn = SwitchFFN(dim=4, hidden=8, experts=2, capacity_factor=1.0)
    x, mask = torch.randn(2, 5, 4), torch.ones(2, 5, dtype=torch.bool)
    ffn(x, mask)
    assert pop_router_records(ffn) == [[]]  # recording is off by default
    assert record_routing(ffn) == 1
    ffn(x, mask)
    ffn.eval()
    ffn(x, mask)
    assert [len(c) for c in pop_router_records(ffn)] == [1]  # eval mode records nothing
    record_routing(ffn, False)
    ffn.train()
    ffn(x, mask)
    assert pop_router_records(ffn) == [[]]


def test_router_validation():
    with pytest.raises(ValueError, match="experts"):
        Top1Router(in_dim=4, experts=1, capacity_factor=1.0)
    with pytest.raises(ValueError, match="capacity_factor"):
        Top1Router(in_dim=4, experts=2, capacity_factor=0.0)

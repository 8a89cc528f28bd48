"""CachedContrastiveLoss: loss.backward() leaves the plain full-batch gradients, with dropout, in an optimizer loop."""

from __future__ import annotations

import pytest
import torch

import phylocl
from phylocl.data.tokens import slice_batch
from phylocl.losses.flatnce import FlatNCE
from phylocl.losses.infonce import InfoNCE
from phylocl.training.gradcache import plan_chunks

from test_gradcache import LABELS, TinyEncoder, _assert_same_grads, _batches, _collect, _plain_grads


def _cached_grads(enc, loss_fn, a, b, labels=None, **kwargs):
    enc.zero_grad(set_to_none=True)
    loss_fn.zero_grad(set_to_none=True)
    loss = phylocl.CachedContrastiveLoss(enc, loss_fn, **kwargs)(a, b, labels)
    assert loss.requires_grad and loss.dim() == 0
    loss.backward()
    return loss.detach(), _collect(enc, loss_fn)


@pytest.mark.parametrize("loss_name", ["infonce-learned", "flatnce"])
@pytest.mark.parametrize("chunking", [dict(chunk_size=1), dict(chunk_size=3), dict(chunk_size=None),
                                      dict(chunk_size=None, token_budget=40)], ids=str)
@pytest.mark.parametrize("labels", [None, LABELS], ids=["nolabels", "labels"])
def test_backward_equals_plain_full_batch_gradient(loss_name, chunking, labels):
    torch.manual_seed(0)
    enc = TinyEncoder()
    make = {"infonce-learned": lambda: InfoNCE(temperature=0.2, learn_temperature=True),
            "flatnce": lambda: FlatNCE(temperature=0.2)}[loss_name]
    loss_fn = make()
    a, b = _batches()
    ref_loss, ref = _plain_grads(enc, loss_fn, a, b, labels)
    loss, got = _cached_grads(enc, loss_fn, a, b, labels, **chunking)
    assert float(loss) == pytest.approx(float(ref_loss), rel=1e-6)
    _assert_same_grads(got, ref)
    if loss_name == "infonce-learned":
        assert float(got["1.logit_scale"]) != 0.0


def test_one_chunk_with_dropout_is_the_plain_call_exactly():
    enc, loss_fn = TinyEncoder(dropout=0.3), InfoNCE(temperature=0.2)
    a, b = _batches(seed=2)
    torch.manual_seed(123)
    ref_loss, ref = _plain_grads(enc, loss_fn, a, b, LABELS)
    after_plain = torch.get_rng_state()
    torch.manual_seed(123)
    loss, got = _cached_grads(enc, loss_fn, a, b, LABELS, chunk_size=None)
    assert torch.equal(torch.get_rng_state(), after_plain)  # backward left the RNG where the plain step does
    assert float(loss) == float(ref_loss)
    _assert_same_grads(got, ref, rtol=1e-5)
    torch.manual_seed(7)  # dropout is really on: another seed, another gradient
    _, other = _plain_grads(enc, loss_fn, a, b, LABELS)
    assert not torch.allclose(other["0.head.weight"], ref["0.head.weight"], rtol=1e-3)


def test_many_chunks_with_dropout_match_the_same_chunks_run_with_gradients():
    enc, loss_fn = TinyEncoder(dropout=0.3), FlatNCE(temperature=0.2)
    a, b = _batches(seed=3)
    torch.manual_seed(5)
    _, got = _cached_grads(enc, loss_fn, a, b, LABELS, chunk_size=3)
    torch.manual_seed(5)  # reference: the chunks run once with gradients, masks drawn in the same order
    enc.zero_grad(set_to_none=True)
    zs = [torch.cat([enc(slice_batch(v, s)) for s in plan_chunks(v, chunk_size=3)]) for v in (a, b)]
    loss_fn(zs[0], zs[1], LABELS).backward()
    _assert_same_grads(got, _collect(enc))


def test_scaling_the_loss_scales_the_gradient_and_no_backward_costs_no_replay():
    torch.manual_seed(1)
    enc, loss_fn = TinyEncoder(), InfoNCE(temperature=0.2)
    a, b = _batches(seed=1)
    _, ref = _plain_grads(enc, loss_fn, a, b, scale=0.25)
    cached = phylocl.CachedContrastiveLoss(enc, loss_fn, chunk_size=4)
    enc.zero_grad(set_to_none=True)
    (cached(a, b) * 0.25).backward()
    _assert_same_grads(_collect(enc), ref)
    calls = []
    handle = enc.register_forward_hook(lambda *args: calls.append(1))
    value = cached.cached(a, b)
    assert len(calls) == 6  # 3 chunks per view, first pass only
    value.backward()
    assert len(calls) == 12  # the replay: one more forward per chunk
    handle.remove()
    with torch.no_grad():
        assert float(cached(a, b)) == pytest.approx(float(value), rel=1e-6)


def test_training_loop_with_optimizer_follows_the_plain_loop():
    """Five AdamW steps with dropout, one chunk per view: the cached loop's weights equal the plain loop's."""
    a, b = _batches(seed=6)
    torch.manual_seed(0)
    plain_enc, cached_enc = TinyEncoder(dropout=0.2), TinyEncoder(dropout=0.2)
    cached_enc.load_state_dict(plain_enc.state_dict())
    runs = {}
    for name, enc in (("plain", plain_enc), ("cached", cached_enc)):
        loss_fn = InfoNCE(temperature=0.2, learn_temperature=True)
        cached = phylocl.CachedContrastiveLoss(enc, loss_fn, chunk_size=None)
        opt = torch.optim.AdamW([*enc.parameters(), *loss_fn.parameters()], lr=1e-2)
        torch.manual_seed(42)
        losses = []
        for _ in range(5):
            opt.zero_grad()
            loss = loss_fn(enc(a), enc(b), LABELS) if name == "plain" else cached(a, b, LABELS)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        runs[name] = (losses, {k: v.clone() for k, v in enc.state_dict().items()}, float(loss_fn.logit_scale))
    assert runs["cached"][0] == pytest.approx(runs["plain"][0], rel=1e-5)
    assert runs["plain"][0][-1] < runs["plain"][0][0]  # it trains
    for k, v in runs["plain"][1].items():
        torch.testing.assert_close(runs["cached"][1][k], v, rtol=1e-4, atol=1e-6)
    assert runs["cached"][2] == pytest.approx(runs["plain"][2], rel=1e-5)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="chunk_size"):
        phylocl.CachedContrastiveLoss(TinyEncoder(), InfoNCE(), chunk_size=0)
    with pytest.raises(ValueError, match="token_budget"):
        phylocl.CachedContrastiveLoss(TinyEncoder(), InfoNCE(), token_budget=True)
    a, b = _batches()
    with pytest.raises(ValueError, match="same number"):
        phylocl.CachedContrastiveLoss(TinyEncoder(), InfoNCE())(a, slice_batch(b, slice(0, 3)))

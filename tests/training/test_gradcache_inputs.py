"""cached_backward / CachedContrastiveLoss called as a user of the Python API would: wrong batches, encoders, chunk
sizes, labels and loss functions are refused naming the argument; a retained graph back-propagates twice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import phylocl
from phylocl.losses.infonce import InfoNCE

from test_gradcache import LABELS, TinyEncoder, _assert_same_grads, _batches, _collect, _plain_grads


def _grads_of(fn, enc):
    enc.zero_grad(set_to_none=True)
    fn()
    return _collect(enc)


def test_labels_as_a_list_or_strings_work_like_the_tensor():
    torch.manual_seed(0)
    enc, loss_fn = TinyEncoder(), InfoNCE(temperature=0.2)
    a, b = _batches()
    _, ref = _plain_grads(enc, loss_fn, a, b, LABELS)
    strings = np.array([f"fam{i}" for i in LABELS.tolist()])
    for labels in (LABELS.tolist(), strings):  # a list was an AttributeError (labels.shape)
        got = _grads_of(lambda: phylocl.cached_backward(enc, a, b, loss_fn, 3, labels), enc)
        _assert_same_grads(got, ref)  # InfoNCE without a learned temperature: encoder gradients only
    with pytest.raises(ValueError, match=r"labels must have shape \(10,\), got \(3,\)"):
        phylocl.cached_backward(enc, a, b, loss_fn, 3, [0, 1, 2])
    with pytest.raises(ValueError, match="single str"):
        phylocl.cached_backward(enc, a, b, loss_fn, 3, "abcdefghij")


@pytest.mark.parametrize("call", ["cached_backward", "CachedContrastiveLoss"])
def test_batches_that_are_not_token_batches_are_refused_naming_them(call):
    enc, loss_fn = TinyEncoder(), InfoNCE()
    a, b = _batches()
    run = {"cached_backward": lambda x, y: phylocl.cached_backward(enc, x, y, loss_fn, 3),
           "CachedContrastiveLoss": lambda x, y: phylocl.CachedContrastiveLoss(enc, loss_fn, chunk_size=3)(x, y)}[call]
    with pytest.raises(TypeError, match="batch_a must be a token batch.*got list"):  # list indices must be integers
        run([a["input_ids"]], b)
    with pytest.raises(TypeError, match="batch_b must be a token batch.*got Tensor"):
        run(a, b["input_ids"])
    with pytest.raises(ValueError, match="batch_a has no attention_mask"):  # was KeyError
        run({"input_ids": a["input_ids"]}, b)
    with pytest.raises(ValueError, match=r"batch_b: input_ids and attention_mask must be tensors of one shape"):
        run(a, {"input_ids": b["input_ids"], "attention_mask": b["attention_mask"][:, :3]})


def test_numpy_chunk_sizes_are_accepted_and_bools_refused():
    torch.manual_seed(0)
    enc, loss_fn = TinyEncoder(), InfoNCE(temperature=0.2)
    a, b = _batches()
    ref = _grads_of(lambda: phylocl.cached_backward(enc, a, b, loss_fn, 3), enc)
    got = _grads_of(lambda: phylocl.cached_backward(enc, a, b, loss_fn, np.int64(3),  # was refused
                                                    token_budget=np.int32(1000)), enc)
    _assert_same_grads(got, ref, rtol=1e-6)
    phylocl.CachedContrastiveLoss(enc, loss_fn, chunk_size=np.int64(3))
    for bad in (True, 0, -2, 2.0):
        with pytest.raises(ValueError, match="chunk_size must be an int >= 1"):
            phylocl.cached_backward(enc, a, b, loss_fn, bad)
        with pytest.raises(ValueError, match="chunk_size must be an int >= 1"):
            phylocl.CachedContrastiveLoss(enc, loss_fn, chunk_size=bad)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 10, 11, 1000])
def test_any_chunk_size_gives_the_plain_gradient(chunk_size):
    torch.manual_seed(0)
    enc, loss_fn = TinyEncoder(), InfoNCE(temperature=0.2)
    a, b = _batches()
    _, ref = _plain_grads(enc, loss_fn, a, b, LABELS)
    enc.zero_grad(set_to_none=True)
    loss_fn.zero_grad(set_to_none=True)
    phylocl.cached_backward(enc, a, b, loss_fn, chunk_size, LABELS)
    _assert_same_grads(_collect(enc, loss_fn), ref)


class _TupleEncoder(TinyEncoder):
    def forward(self, batch):
        return (super().forward(batch),)


class _FlatEncoder(TinyEncoder):
    def forward(self, batch):
        return super().forward(batch)[:, 0]


def test_encoder_outputs_and_loss_values_that_cannot_work_are_named():
    a, b = _batches()
    with pytest.raises(TypeError, match=r"encoder\(batch\) must return a tensor of shape \(n, D\), got tuple"):
        phylocl.cached_backward(_TupleEncoder(), a, b, InfoNCE(), 3)  # was AttributeError: no .dtype
    with pytest.raises(ValueError, match=r"must return a tensor of shape \(n, D\) = \(3, D\).*got \(3,\)"):
        phylocl.cached_backward(_FlatEncoder(), a, b, InfoNCE(), 3)
    with pytest.raises(ValueError, match=r"loss_fn must return a scalar tensor, got shape \(10,\)"):
        phylocl.cached_backward(TinyEncoder(), a, b, lambda x, y, labels: (x * y).sum(1), 3)
    with pytest.raises(TypeError, match="loss_fn must return a scalar tensor, got float"):
        phylocl.cached_backward(TinyEncoder(), a, b, lambda x, y, labels: 1.0, 3)
    with pytest.raises(ValueError, match="does not depend on the embeddings"):
        phylocl.cached_backward(TinyEncoder(), a, b, lambda x, y, labels: torch.tensor(1.0), 3)
    with pytest.raises(TypeError, match="encoder must be a torch.nn.Module"):
        phylocl.cached_backward(lambda batch: batch, a, b, InfoNCE(), 3)
    with pytest.raises(TypeError, match="encoder must be a torch.nn.Module"):  # accepted, failed at the first call
        phylocl.CachedContrastiveLoss(lambda batch: batch, InfoNCE())


def test_cached_backward_without_gradients_says_so():
    a, b = _batches()
    with torch.no_grad(), pytest.raises(RuntimeError, match="gradients disabled"):
        phylocl.cached_backward(TinyEncoder(), a, b, InfoNCE(), 3)


def test_a_retained_graph_back_propagates_twice_like_a_plain_one():
    torch.manual_seed(0)
    enc, loss_fn = TinyEncoder(dropout=0.2), InfoNCE(temperature=0.2)
    a, b = _batches()
    torch.manual_seed(4)
    once = _grads_of(lambda: phylocl.CachedContrastiveLoss(enc, loss_fn, chunk_size=4)(a, b).backward(), enc)

    def twice():
        loss = phylocl.CachedContrastiveLoss(enc, loss_fn, chunk_size=4)(a, b)
        loss.backward(retain_graph=True)
        loss.backward()  # was AttributeError: 'NoneType' object has no attribute 'devices'

    torch.manual_seed(4)
    got = _grads_of(twice, enc)
    _assert_same_grads(got, {k: 2 * v for k, v in once.items()}, rtol=1e-5)


class _FailingReplay(TinyEncoder):
    def forward(self, batch):
        if torch.is_grad_enabled():
            raise RuntimeError("replay failed")
        return super().forward(batch)


def test_a_failing_replay_propagates_and_restores_the_rng_as_documented():
    a, b = _batches()
    torch.manual_seed(1)
    loss = phylocl.CachedContrastiveLoss(_FailingReplay(dropout=0.3), InfoNCE(), chunk_size=3)(a, b)
    state = torch.get_rng_state()
    with pytest.raises(RuntimeError, match="replay failed"):
        loss.backward()
    assert torch.equal(torch.get_rng_state(), state)
    assert "propagates" in phylocl.cached_backward.__doc__ and "torch.Generator" in phylocl.cached_backward.__doc__


def test_a_loss_fn_that_cannot_be_called_is_refused_by_name_before_the_first_pass():
    """``cached_backward(enc, a, b, "infonce", 3)`` embedded both views, then failed as "'str' object is not
    callable"; it is now a TypeError naming loss_fn, before the encoder runs."""
    enc = TinyEncoder()
    a, b = _batches()
    calls = []
    enc.register_forward_hook(lambda *_: calls.append(1))
    with pytest.raises(TypeError, match=r"^loss_fn must be called as loss_fn\(z_a, z_b, labels\).*got str"):
        phylocl.cached_backward(enc, a, b, "infonce", 3)
    assert calls == []


@pytest.mark.parametrize("autocast", ["bf16", torch.float32, True])
def test_an_autocast_that_is_not_a_half_dtype_is_refused_by_name(autocast):
    """``autocast="bf16"`` failed inside torch at the first forward (after its warning that autocast was disabled),
    with torch's argument name; ``CachedContrastiveLoss`` took it in its constructor without a word."""
    enc, loss_fn = TinyEncoder(), InfoNCE()
    a, b = _batches()
    with pytest.raises(TypeError, match="autocast must be None, torch.bfloat16 or torch.float16"):
        phylocl.CachedContrastiveLoss(enc, loss_fn, autocast=autocast)
    with pytest.raises(TypeError, match="autocast must be None, torch.bfloat16 or torch.float16"):
        phylocl.cached_backward(enc, a, b, loss_fn, 3, autocast=autocast)
    assert all(p.grad is None for p in enc.parameters())  # refused before any work

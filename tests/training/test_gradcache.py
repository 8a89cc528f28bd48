import numpy as np
import pytest
import torch
import torch.nn.functional as F

from phylocl.data.tokens import pad_batch, slice_batch
from phylocl.losses.flatnce import FlatNCE
from phylocl.losses.infonce import InfoNCE
from phylocl.training.gradcache import cached_backward, plan_chunks

B = 10
LABELS = torch.tensor([0, 1, 0, 2, 1, 3, 3, 4, 5, 0])


class TinyEncoder(torch.nn.Module):
    """Test encoder with the phylocl contract: token batch -> (N, D) unit rows; token- and feature-level dropout."""

    def __init__(self, *, vocab=32, dim=16, out=8, dropout=0.0):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, dim, padding_idx=0)
        self.mix = torch.nn.Linear(dim, dim)
        self.drop = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(dim, out)

    def forward(self, batch):
        mask = batch["attention_mask"]
        h = self.drop(torch.tanh(self.mix(self.emb(batch["input_ids"]))))  # (N, L, dim)
        m = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1)  # (N, dim)
        return F.normalize(self.head(self.drop(pooled)), dim=-1)  # (N, out)


def _batches(n=B, seed=0, vocab=24):
    rng = np.random.default_rng(seed)
    views = []
    for _ in range(2):
        arrays = [rng.integers(3, vocab, size=int(rng.integers(2, 20))) for _ in range(n)]
        views.append(pad_batch(arrays, pad_to_multiple_of=8))  # wider than the longest row: chunks get trimmed
    return views


def _plain_grads(encoder, loss_fn, batch_a, batch_b, labels=None, scale=1.0):
    encoder.zero_grad(set_to_none=True)
    loss_fn.zero_grad(set_to_none=True)
    loss = loss_fn(encoder(batch_a), encoder(batch_b), labels)
    (loss * scale).backward()
    return loss.detach(), _collect(encoder, loss_fn)


def _cached_grads(encoder, loss_fn, batch_a, batch_b, labels=None, **kwargs):
    encoder.zero_grad(set_to_none=True)
    loss_fn.zero_grad(set_to_none=True)
    chunk_size = kwargs.pop("chunk_size", None)
    loss = cached_backward(encoder, batch_a, batch_b, loss_fn, chunk_size, labels, **kwargs)
    return loss, _collect(encoder, loss_fn)


def _collect(*modules):
    return {f"{i}.{n}": p.grad.clone() for i, m in enumerate(modules) for n, p in m.named_parameters()
            if p.grad is not None}


def _assert_same_grads(got, ref, rtol=1e-4):
    assert got.keys() == ref.keys() and len(ref) > 0
    for name in ref:
        err = (got[name] - ref[name]).norm() / ref[name].norm().clamp(min=1e-12)
        assert float(err) < rtol, f"{name}: relative error {float(err):.2e}"


LOSSES = {"infonce-learned": lambda: InfoNCE(temperature=0.2, learn_temperature=True),
          "flatnce": lambda: FlatNCE(temperature=0.2)}
CHUNKINGS = [dict(chunk_size=1), dict(chunk_size=3), dict(chunk_size=4), dict(chunk_size=B),
             dict(chunk_size=None, token_budget=40), dict(chunk_size=3, token_budget=30)]


@pytest.mark.parametrize("loss_name", list(LOSSES))
@pytest.mark.parametrize("chunking", CHUNKINGS, ids=str)
@pytest.mark.parametrize("labels", [None, LABELS], ids=["nolabels", "labels"])
def test_equals_plain_gradient_without_dropout(loss_name, chunking, labels):
    torch.manual_seed(0)
    enc = TinyEncoder()
    loss_fn = LOSSES[loss_name]()
    a, b = _batches()
    ref_loss, ref = _plain_grads(enc, loss_fn, a, b, labels)
    loss, got = _cached_grads(enc, loss_fn, a, b, labels, **chunking)
    assert float(loss) == pytest.approx(float(ref_loss), rel=1e-5)
    assert not loss.requires_grad
    _assert_same_grads(got, ref)
    if loss_name == "infonce-learned":
        assert "1.logit_scale" in got and float(got["1.logit_scale"]) != 0.0


def test_accumulates_on_top_of_existing_grad():
    torch.manual_seed(1)
    enc, loss_fn = TinyEncoder(), InfoNCE(temperature=0.2)
    a, b = _batches(seed=1)
    _, once = _plain_grads(enc, loss_fn, a, b)
    enc.zero_grad(set_to_none=True)
    cached_backward(enc, a, b, loss_fn, 3)
    cached_backward(enc, a, b, loss_fn, 3)
    _assert_same_grads(_collect(enc), {k: 2 * v for k, v in once.items()})


def test_one_chunk_with_dropout_draws_exactly_like_the_plain_call():
    enc, loss_fn = TinyEncoder(dropout=0.3), InfoNCE(temperature=0.2)
    a, b = _batches(seed=2)
    torch.manual_seed(123)
    ref_loss, ref = _plain_grads(enc, loss_fn, a, b, LABELS)
    after_plain = torch.get_rng_state()
    torch.manual_seed(123)
    loss, got = _cached_grads(enc, loss_fn, a, b, LABELS, chunk_size=None)
    assert torch.equal(torch.get_rng_state(), after_plain)
    assert float(loss) == float(ref_loss)
    _assert_same_grads(got, ref, rtol=1e-5)
    # sanity: dropout is really on, another seed gives another gradient
    torch.manual_seed(7)
    _, other = _plain_grads(enc, loss_fn, a, b, LABELS)
    assert not torch.allclose(other["0.head.weight"], ref["0.head.weight"], rtol=1e-3)


@pytest.mark.parametrize("chunking", [dict(chunk_size=3), dict(chunk_size=None, token_budget=40)], ids=str)
def test_many_chunks_with_dropout_replay_bitwise_and_match_chunked_reference(chunking):
    enc, loss_fn = TinyEncoder(dropout=0.3), FlatNCE(temperature=0.2)
    a, b = _batches(seed=3)
    seen = []
    torch.manual_seed(5)
    _, got = _cached_grads(enc, loss_fn, a, b, LABELS, **chunking,
                           replay_hook=lambda view, k, first, again: seen.append((view, k, first, again)))
    assert len(seen) > 2 and {v for v, *_ in seen} == {"a", "b"}
    for view, k, first, again in seen:
        assert torch.equal(first, again), f"view {view} chunk {k} replayed differently"
    # Reference: the same chunks run once with gradients, drawing dropout masks in the same order.
    torch.manual_seed(5)
    enc.zero_grad(set_to_none=True)
    zs = []
    for batch in (a, b):
        chunks = plan_chunks(batch, chunk_size=chunking["chunk_size"], token_budget=chunking.get("token_budget"))
        zs.append(torch.cat([enc(slice_batch(batch, s)) for s in chunks]))
    loss_fn(zs[0], zs[1], LABELS).backward()
    _assert_same_grads(got, _collect(enc))


def test_without_rng_replay_dropout_gives_a_different_gradient():
    enc, loss_fn = TinyEncoder(dropout=0.3), InfoNCE(temperature=0.2)
    a, b = _batches(seed=4)
    seen = []
    torch.manual_seed(9)
    _, ref = _cached_grads(enc, loss_fn, a, b, chunk_size=4)
    torch.manual_seed(9)
    _, got = _cached_grads(enc, loss_fn, a, b, chunk_size=4, replay_rng=False,
                           replay_hook=lambda view, k, first, again: seen.append(torch.equal(first, again)))
    assert not any(seen)
    err = (got["0.head.weight"] - ref["0.head.weight"]).norm() / ref["0.head.weight"].norm()
    assert float(err) > 1e-2


@pytest.mark.parametrize("chunk_size", [None, 3])
def test_backward_hook_sees_every_chunk_and_flags_only_the_last(chunk_size):
    torch.manual_seed(4)
    enc, loss_fn = TinyEncoder(), InfoNCE(temperature=0.2, learn_temperature=True)
    a, b = _batches(seed=11)
    _, ref = _plain_grads(enc, loss_fn, a, b, LABELS)
    calls = []

    def backward(tensor, last):
        calls.append(last)
        assert tensor.dim() == 0 and tensor.requires_grad
        tensor.backward()

    _, got = _cached_grads(enc, loss_fn, a, b, LABELS, chunk_size=chunk_size, backward=backward)
    n_chunks = 2 * len(plan_chunks(a, chunk_size=chunk_size))
    assert calls == [False] * (n_chunks - 1) + [True]
    _assert_same_grads(got, ref)


def test_grad_scaler_scales_the_gradient():
    torch.manual_seed(2)
    enc, loss_fn = TinyEncoder(), InfoNCE(temperature=0.2, learn_temperature=True)
    a, b = _batches(seed=5)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    ref_loss, ref = _plain_grads(enc, loss_fn, a, b, LABELS, scale=1024.0)
    loss, got = _cached_grads(enc, loss_fn, a, b, LABELS, chunk_size=3, scaler=scaler)
    assert float(loss) == pytest.approx(float(ref_loss), rel=1e-5)  # returned unscaled
    _assert_same_grads(got, ref)
    assert float(got["1.logit_scale"]) == pytest.approx(float(ref["1.logit_scale"]), rel=1e-4)


def test_grad_scaler_scales_the_replay_term_too():
    """A replay term (MoE router losses) is scaled like the cached gradients: with a GradScaler the step's
    gradient is scale x that of loss + the terms of every replayed chunk (2 views x chunks)."""
    torch.manual_seed(2)
    enc, loss_fn = TinyEncoder(), InfoNCE(temperature=0.2)
    a, b = _batches(seed=5)
    n_calls = 2 * len(plan_chunks(a, chunk_size=3))

    def term():
        return 0.05 * enc.head.weight.square().sum()

    enc.zero_grad(set_to_none=True)
    (1024.0 * (loss_fn(enc(a), enc(b), LABELS) + n_calls * term())).backward()
    ref = _collect(enc)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    _, got = _cached_grads(enc, loss_fn, a, b, LABELS, chunk_size=3, scaler=scaler, replay_term=term)
    _assert_same_grads(got, ref)


def test_a_failed_replay_leaves_the_rng_where_a_full_step_leaves_it():
    """Documented: after a failure in the replay the global RNG is restored as after a full step (the end of the
    first pass), so a retry draws what it would have drawn."""
    a, b = _batches(seed=7)
    torch.manual_seed(3)
    _cached_grads(TinyEncoder(dropout=0.3), InfoNCE(temperature=0.2), a, b, chunk_size=3)
    after_step = torch.get_rng_state()

    class FailsInReplay(TinyEncoder):
        calls = 0

        def forward(self, batch):
            FailsInReplay.calls += 1
            if FailsInReplay.calls == n_first + 2:  # the second replayed chunk, after its dropout draws
                super().forward(batch)
                raise RuntimeError("out of memory (simulated)")
            return super().forward(batch)

    n_first = 2 * len(plan_chunks(a, chunk_size=3))
    torch.manual_seed(3)
    with pytest.raises(RuntimeError, match="simulated"):
        _cached_grads(FailsInReplay(dropout=0.3), InfoNCE(temperature=0.2), a, b, chunk_size=3)
    assert torch.equal(torch.get_rng_state(), after_step)


def test_bf16_autocast_is_close_to_fp32():
    torch.manual_seed(3)
    enc, loss_fn = TinyEncoder(), InfoNCE(temperature=0.2)
    a, b = _batches(seed=6)
    _, ref = _cached_grads(enc, loss_fn, a, b, LABELS, chunk_size=3)
    seen = []
    loss, got = _cached_grads(enc, loss_fn, a, b, LABELS, chunk_size=3, autocast=torch.bfloat16,
                              replay_hook=lambda view, k, first, again: seen.append(again.dtype))
    assert seen and all(d == torch.bfloat16 for d in seen)  # the encoder really ran in bf16
    assert loss.dtype == torch.float32
    for name in ref:
        assert got[name].dtype == torch.float32 and torch.isfinite(got[name]).all()
    _assert_same_grads(got, ref, rtol=5e-2)


def test_plan_chunks_by_count_and_token_budget():
    lengths = [5, 3, 9, 2, 2, 8, 1]
    batch = pad_batch([np.full(n, 4) for n in lengths])
    assert plan_chunks(batch, chunk_size=3) == [slice(0, 3), slice(3, 6), slice(6, 7)]
    assert plan_chunks(batch, chunk_size=None) == [slice(0, 7)]
    # budget 12: [5,3] -> 2*5=10; +9 -> 27 no. [9] alone (9); +2 -> 18 no. [2,2] -> 4; +8 -> 24 no. [8,1] -> 16 no.
    assert plan_chunks(batch, chunk_size=None, token_budget=12) == [slice(0, 2), slice(2, 3), slice(3, 5),
                                                                    slice(5, 6), slice(6, 7)]
    # a row longer than the budget still gets a chunk of its own
    assert plan_chunks(batch, chunk_size=None, token_budget=4) == [slice(0, 1), slice(1, 2), slice(2, 3),
                                                                   slice(3, 5), slice(5, 6), slice(6, 7)]
    assert plan_chunks(batch, chunk_size=2, token_budget=100) == [slice(0, 2), slice(2, 4), slice(4, 6),
                                                                  slice(6, 7)]
    for chunks in (plan_chunks(batch, chunk_size=None, token_budget=t) for t in range(1, 40)):
        assert chunks[0].start == 0 and chunks[-1].stop == 7
        assert all(x.stop == y.start for x, y in zip(chunks, chunks[1:]))


@pytest.mark.parametrize("kwargs, match", [(dict(chunk_size=0), "chunk_size"), (dict(chunk_size=2.5), "chunk_size"),
                                           (dict(chunk_size=2, token_budget=0), "token_budget"),
                                           (dict(chunk_size=2, labels=torch.zeros(3)), "labels")])
def test_invalid_arguments(kwargs, match):
    a, b = _batches(seed=7)
    chunk_size = kwargs.pop("chunk_size")
    with pytest.raises(ValueError, match=match):
        cached_backward(TinyEncoder(), a, b, InfoNCE(), chunk_size, **kwargs)


def test_views_must_have_the_same_rows():
    a, _ = _batches(n=4, seed=8)
    _, b = _batches(n=5, seed=8)
    with pytest.raises(ValueError, match="same number"):
        cached_backward(TinyEncoder(), a, b, InfoNCE(), 2)


# ------------------------------------------------------------------ registered encoders
def _registered_tiny():
    try:
        from phylocl.models.registry import list_models
    except ImportError:
        return []
    small = dict(dim=32, depth=2, ffn_dim=64, max_len=64, embed_dim=16)
    out = []
    for name in list_models():
        if name.endswith("-tiny"):
            out.append((name, {}))
        elif name.startswith("amlp-"):
            out.append((name, {**small, "attn_dim": 16}))
    return out


REGISTERED = _registered_tiny()


@pytest.mark.parametrize("name, overrides", REGISTERED, ids=[n for n, _ in REGISTERED])
def test_registered_encoders_match_plain_gradient(name, overrides):
    from phylocl import build_encoder

    torch.manual_seed(0)
    enc = build_encoder(name, **overrides, dropout=0.0, drop_path=0.0)
    loss_fn = InfoNCE(temperature=0.1)
    a, b = _batches(n=8, seed=9)
    _, ref = _plain_grads(enc, loss_fn, a, b, LABELS[:8])
    _, got = _cached_grads(enc, loss_fn, a, b, LABELS[:8], chunk_size=3)
    _assert_same_grads(got, ref)


@pytest.mark.parametrize("name, overrides", REGISTERED, ids=[n for n, _ in REGISTERED])
def test_registered_encoders_with_dropout_replay_bitwise(name, overrides):
    from phylocl import build_encoder

    torch.manual_seed(0)
    enc = build_encoder(name, **overrides, dropout=0.2, drop_path=0.2)
    a, b = _batches(n=8, seed=10)
    seen = []
    cached_backward(enc, a, b, FlatNCE(), 3, replay_hook=lambda v, k, first, again: seen.append(
        torch.equal(first, again)))
    assert len(seen) == 6 and all(seen)
    # one chunk per view: the plain call's gradient under the same seed
    loss_fn = InfoNCE(temperature=0.1)
    torch.manual_seed(4)
    _, ref = _plain_grads(enc, loss_fn, a, b)
    torch.manual_seed(4)
    _, got = _cached_grads(enc, loss_fn, a, b, chunk_size=None)
    _assert_same_grads(got, ref, rtol=1e-5)

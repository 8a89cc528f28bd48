"""Router losses (training/router_loss.py): Switch eq. 4 by hand, exact split over chunks, cached path and DDP."""

from __future__ import annotations

import gc
import json
import os

import numpy as np
import pytest
import torch

from phylocl.data.tokens import pad_batch, slice_batch
from phylocl.losses.infonce import InfoNCE
from phylocl.models.moe import Top1Router, pop_router_records, record_routing
from phylocl.models.registry import build_encoder
from phylocl.training.gradcache import cached_backward, plan_chunks
from phylocl.training.router_loss import RouterLoss

LABELS = torch.tensor([0, 1, 0, 2, 1, 3, 3, 4, 5, 0])
WEIGHTS = dict(balance_weight=0.5, z_weight=0.1)  # large, so that the router terms matter in the gradients


def _switch_reference(logits, valid, bw, zw):
    """Switch eq. 4 and the z-loss on all units at once (one layer)."""
    logits = logits[valid]  # (T, E)
    probs = logits.softmax(-1)
    e = probs.shape[1]
    f = torch.bincount(probs.argmax(-1), minlength=e).float() / probs.shape[0]
    return bw * e * (f * probs.mean(0)).sum() + zw * torch.logsumexp(logits, -1).square().mean()


def test_value_and_gradient_equal_switch_formula_and_split_exactly_over_calls():
    torch.manual_seed(0)
    router = Top1Router(in_dim=5, experts=3, capacity_factor=1.0)
    with torch.no_grad():
        router.weight.normal_()
    record_routing(router)
    x = torch.randn(6, 8, 5)
    valid = torch.rand(6, 8) > 0.25
    valid[:, 0] = True
    for rows in (slice(0, 2), slice(2, 3), slice(3, 6)):  # three calls ("chunks") of one step
        router(x[rows], valid[rows])
    records = pop_router_records(router)
    loss = RouterLoss(**WEIGHTS)
    totals = loss.totals(records)
    ref = _switch_reference(x @ router.weight.t(), valid, WEIGHTS["balance_weight"], WEIGHTS["z_weight"])
    assert loss.value(totals)["moe/aux"] == pytest.approx(ref.item(), rel=1e-6)
    (grad_ref,) = torch.autograd.grad(ref, router.weight)
    parts = [loss.surrogate([[r]], totals) for r in records[0]]  # one share per call
    assert sum(parts).item() == pytest.approx(ref.item(), rel=1e-6)
    (grad,) = torch.autograd.grad(sum(parts), router.weight)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-5, atol=1e-7)
    v = loss.value(totals)
    assert v["moe/l0_dropped"] == pytest.approx(1 - float(totals.kept[0].sum() / valid.sum()))
    assert sum(v[f"moe/l0_util{e}"] for e in range(3)) == pytest.approx(1 - v["moe/l0_dropped"])


def _batches(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return [pad_batch([rng.integers(3, 23, size=int(rng.integers(3, 30))) for _ in range(n)], pad_to_multiple_of=8)
            for _ in range(2)]


def _encoder(name="smlp-tiny", **kw):
    torch.manual_seed(0)
    enc = build_encoder(name, max_len=24, **kw)
    record_routing(enc)
    return enc


def _full_step(enc, loss_fn, router_loss, chunks_a, chunks_b):
    """Reference: the given chunks run once with gradients (same RNG order as the cached first pass)."""
    z_a = torch.cat([enc(c) for c in chunks_a])
    z_b = torch.cat([enc(c) for c in chunks_b])
    records = pop_router_records(enc)
    aux = router_loss.surrogate(records, router_loss.totals(records))
    (loss_fn(z_a, z_b, LABELS) + aux).backward()


def _cached_step(enc, loss_fn, router_loss, a, b, chunk_size, seen=None, labels=LABELS):
    state = {}

    def first_pass():
        state["totals"] = router_loss.totals(pop_router_records(enc))
        if seen is not None:
            seen.append(("first", state["totals"]))

    def term():
        records = pop_router_records(enc)
        if seen is not None:
            seen.append(("replay", router_loss.totals(records)))
        return router_loss.surrogate(records, state["totals"])

    cached_backward(enc, a, b, loss_fn, chunk_size, labels, after_first_pass=first_pass, replay_term=term)


def _grads(enc):
    return {n: p.grad.clone() for n, p in enc.named_parameters() if p.grad is not None}


def _assert_same(got, ref, rtol=1e-4):
    assert got.keys() == ref.keys() and ref
    for name in ref:
        err = float((got[name] - ref[name]).norm() / ref[name].norm().clamp(min=1e-12))
        assert err < rtol, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize("name", ["smlp-tiny", "gmlp-tiny", "transformer-tiny"])
def test_cached_equals_full_batch_with_capacity_overflow(name):
    """No dropout: the cached step equals one full-batch step, drops included (capacity is per row)."""
    extra = {} if name == "smlp-tiny" else {"moe_experts": 3, "moe_every": 1}
    enc = _encoder(name, moe_capacity_factor=0.5, **extra)
    loss_fn, rl = InfoNCE(temperature=0.2), RouterLoss(**WEIGHTS)
    a, b = _batches()
    _full_step(enc, loss_fn, rl, [a], [b])
    ref = _grads(enc)
    enc.zero_grad(set_to_none=True)
    seen = []
    _cached_step(enc, loss_fn, rl, a, b, 3, seen)
    _assert_same(_grads(enc), ref)
    first = seen[0][1]
    assert float(sum(t.sum() for t in first.chosen)) > float(sum(t.sum() for t in first.kept))  # tokens dropped


def test_cached_with_dropout_takes_the_same_routing_decisions_in_both_passes():
    enc = _encoder("smlp-tiny", dropout=0.2, drop_path=0.1)
    loss_fn, rl = InfoNCE(temperature=0.2), RouterLoss(**WEIGHTS)
    a, b = _batches(seed=1)
    seen = []
    torch.manual_seed(5)
    _cached_step(enc, loss_fn, rl, a, b, 4, seen)
    got = _grads(enc)
    first = seen[0][1]
    replayed = [t for kind, t in seen if kind == "replay"]
    assert len(replayed) == 6  # 3 chunks per view
    for key in ("chosen", "kept", "units"):  # the replay routes exactly as the first pass did
        summed = [sum(getattr(t, key)[k] for t in replayed) for k in range(len(first.units))]
        for s, f in zip(summed, getattr(first, key)):
            assert torch.equal(s, f), key
    # reference: the same chunks once with gradients, drawing dropout masks in the same order
    torch.manual_seed(5)
    enc.zero_grad(set_to_none=True)
    chunks = [[slice_batch(v, s) for s in plan_chunks(v, chunk_size=4)] for v in (a, b)]
    _full_step(enc, loss_fn, rl, *chunks)
    _assert_same(got, _grads(enc))


def test_router_terms_change_the_gradient():
    """The aux loss really enters: zero weights give another router gradient."""
    a, b = _batches(seed=2)
    grads = []
    for weights in (WEIGHTS, dict(balance_weight=0.0, z_weight=0.0)):
        enc = _encoder("smlp-tiny")
        _full_step(enc, InfoNCE(temperature=0.2), RouterLoss(**weights), [a], [b])
        grads.append({n: g for n, g in _grads(enc).items() if "router" in n})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    assert all(not torch.allclose(grads[0][n], grads[1][n]) for n in grads[0])


# ------------------------------------------------------------------ two processes (gloo)
WORLD, SIZES = 2, (4, 6)


class _Step(torch.nn.Module):
    """Encoder + contrastive loss + router losses in one module, as DDP wraps a LightningModule."""

    def __init__(self, encoder, loss, router_loss):
        super().__init__()
        self.encoder, self.loss, self.router_loss = encoder, loss, router_loss

    def forward(self, a, b, labels):
        from phylocl.training.distributed import gather_labels, gather_with_grad

        z_a, z_b = gather_with_grad(self.encoder(a)), gather_with_grad(self.encoder(b))
        records = pop_router_records(self.encoder)
        aux = self.router_loss.surrogate(records, self.router_loss.totals(records))
        return self.loss(z_a, z_b, gather_labels(labels)) + aux


def _worker(r, port, out_dir):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from phylocl.training.distributed import gather_labels, gather_with_grad

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=r, world_size=WORLD)
    try:
        a, b = _batches()
        rows = slice(sum(SIZES[:r]), sum(SIZES[:r + 1]))
        la, lb, lab = slice_batch(a, rows), slice_batch(b, rows), LABELS[rows]
        loss_fn, rl = InfoNCE(temperature=0.2), RouterLoss(**WEIGHTS)
        ref = _encoder(moe_capacity_factor=0.5)
        _full_step(ref, loss_fn, rl, [a], [b])  # single process, full batch

        def global_loss(za, zb, labels):
            return loss_fn(gather_with_grad(za), gather_with_grad(zb), gather_labels(labels))

        out = {}
        want = dict(ref.named_parameters())
        for mode in ("plain", "cached"):
            if mode == "plain":
                ddp = DDP(_Step(_encoder(moe_capacity_factor=0.5), loss_fn, rl))
                ddp(la, lb, lab).backward()
                enc = ddp.module.encoder
            else:
                ddp = DDP(_encoder(moe_capacity_factor=0.5))
                _cached_step(ddp, global_loss, rl, la, lb, 3, labels=lab)
                enc = ddp.module
            out[mode] = {n: float((p.grad - want[n].grad).norm() / want[n].grad.norm().clamp(min=1e-12))
                         for n, p in enc.named_parameters()}
            del ddp, enc
        with open(os.path.join(out_dir, f"rank{r}.json"), "w") as fh:
            json.dump(out, fh)
        gc.collect()
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.multiprocess
@pytest.mark.timeout(180)
def test_two_process_moe_gradients_equal_full_batch_gradients(tmp_path, free_port):
    torch.multiprocessing.spawn(_worker, args=(free_port, str(tmp_path)), nprocs=WORLD, join=True)
    for r in range(WORLD):
        out = json.loads((tmp_path / f"rank{r}.json").read_text())
        for mode in ("plain", "cached"):
            assert any("router" in n for n in out[mode])
            for name, err in out[mode].items():
                assert err < 1e-4, f"rank {r} {mode} {name}: relative error {err:.2e}"

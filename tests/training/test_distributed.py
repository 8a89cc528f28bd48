import gc
import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from phylocl.training.distributed import (ddp_loss_scale, gather_labels, gather_with_grad, offset_labels, rank,
                                          world_size)

WORLD = 2
SIZES = (4, 7)  # uneven local batches (token-budget batches differ per rank)
LABELS = torch.tensor([0, 1, 2, 0, 3, 4, 1, 5, 6, 6, 7])  # global family ids, shared across ranks


# ------------------------------------------------------------------ single process
def test_defaults_without_process_group():
    assert rank() == 0 and world_size() == 1
    z = torch.randn(3, 4, requires_grad=True)
    assert gather_with_grad(z) is z
    labels = torch.tensor([1, 2, 3])
    assert gather_labels(labels) is labels
    assert ddp_loss_scale() == 1.0


def test_offset_labels():
    labels = torch.tensor([0, 2, 1, 2])
    assert offset_labels(labels, 0, 3).tolist() == [0, 2, 1, 2]
    assert offset_labels(labels, 2, 3).tolist() == [6, 8, 7, 8]
    # rows of different ranks never collide, rows of the same rank keep their equalities
    both = torch.cat([offset_labels(labels, r, 3) for r in range(2)])
    assert len(set(both.tolist())) == 6
    for kwargs in (dict(rank=0, num_families=2), dict(rank=-1, num_families=3), dict(rank=0, num_families=0)):
        with pytest.raises(ValueError):
            offset_labels(labels, **kwargs)


# ------------------------------------------------------------------ two processes (gloo)
class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(24, 12, padding_idx=0)
        self.head = torch.nn.Linear(12, 6)

    def forward(self, batch):
        m = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (torch.tanh(self.emb(batch["input_ids"])) * m).sum(1) / m.sum(1)  # (N, 12)
        return F.normalize(self.head(pooled), dim=-1)  # (N, 6)


class Step(torch.nn.Module):
    """Encoder + loss in one module, as a LightningModule would be wrapped by DDP."""

    def __init__(self, loss):
        super().__init__()
        self.encoder, self.loss = Encoder(), loss

    def forward(self, a, b, labels):
        return self.loss(gather_with_grad(self.encoder(a)), gather_with_grad(self.encoder(b)), gather_labels(labels))


class SelfGathering(torch.nn.Module):
    """Encoder + a loss that gathers by itself (``gather_distributed=True``): no gather in user code."""

    def __init__(self, loss):
        super().__init__()
        self.encoder, self.loss = Encoder(), loss

    def forward(self, a, b, labels):
        return self.loss(self.encoder(a), self.encoder(b), labels)


def _data():
    from phylocl.data.tokens import pad_batch

    rng = np.random.default_rng(0)
    n = sum(SIZES)
    return [pad_batch([rng.integers(3, 24, size=int(rng.integers(2, 12))) for _ in range(n)]) for _ in range(2)]


def _rows(batch, r):
    from phylocl.data.tokens import slice_batch

    start = sum(SIZES[:r])
    return slice_batch(batch, slice(start, start + SIZES[r]))


def _rel(got, ref):
    return float((got - ref).norm() / ref.norm().clamp(min=1e-12))


def _worker(r, port, out_dir):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from phylocl.losses import FlatNCE, InfoNCE
    from phylocl.training.gradcache import cached_backward

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=r, world_size=WORLD)
    try:
        a, b = _data()
        la, lb, lab = _rows(a, r), _rows(b, r), LABELS[sum(SIZES[:r]): sum(SIZES[:r + 1])]
        out = {"rank": rank(), "world": world_size()}

        # Plain DDP step with a learnable temperature inside the wrapped module.
        torch.manual_seed(0)
        ref_model = Step(InfoNCE(temperature=0.2, learn_temperature=True))
        ddp_model = DDP(Step(InfoNCE(temperature=0.2, learn_temperature=True)))
        ddp_model.module.load_state_dict(ref_model.state_dict())
        ref_model.loss(ref_model.encoder(a), ref_model.encoder(b), LABELS).backward()  # single process, full batch
        (ddp_model(la, lb, lab) * ddp_loss_scale()).backward()
        ref = dict(ref_model.named_parameters())
        out["plain"] = {n: _rel(p.grad, ref[n].grad) for n, p in ddp_model.module.named_parameters()}

        # The loss gathers by itself (gather_distributed=True), as a DDP user outside `phylocl train` writes it.
        torch.manual_seed(2)
        ref_model = SelfGathering(InfoNCE(temperature=0.2, learn_temperature=True))  # full batch, one process
        ddp_model2 = DDP(SelfGathering(InfoNCE(temperature=0.2, learn_temperature=True, gather_distributed=True)))
        ddp_model2.module.load_state_dict(ref_model.state_dict())
        ref_model(a, b, LABELS).backward()
        ddp_model2(la, lb, lab).backward()
        ref = dict(ref_model.named_parameters())
        out["self_gathering"] = {n: _rel(p.grad, ref[n].grad) for n, p in ddp_model2.module.named_parameters()}

        # Cached gradients under DDP: gather inside the loss, uneven chunk counts per rank (2 and 3).
        torch.manual_seed(1)
        enc = Encoder()
        ddp_enc = DDP(Encoder())
        ddp_enc.module.load_state_dict(enc.state_dict())
        loss = FlatNCE(temperature=0.3)
        loss(enc(a), enc(b), LABELS).backward()

        def global_loss(za, zb, labels):
            return loss(gather_with_grad(za), gather_with_grad(zb), gather_labels(labels)) * ddp_loss_scale()

        cached_backward(ddp_enc, la, lb, global_loss, 3, lab)
        ref = dict(enc.named_parameters())
        out["cached"] = {n: _rel(p.grad, ref[n].grad) for n, p in ddp_enc.module.named_parameters()}

        # Batch-local labels made global: no accidental collisions across ranks.
        local = torch.arange(SIZES[r]) % 3
        out["offset_labels"] = gather_labels(offset_labels(local, rank(), 3)).tolist()
        with open(os.path.join(out_dir, f"rank{r}.json"), "w") as fh:
            json.dump(out, fh)
        # Tear down in order: the DDP wrappers (their reducers hold the process group) go first, then both ranks meet
        # so that neither destroys gloo while the other still talks; otherwise a rank can abort at exit
        # ("terminate called without an active exception", seen once in CI).
        del ddp_model, ddp_model2, ddp_enc
        gc.collect()
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.multiprocess
@pytest.mark.timeout(120)
def test_two_process_gradients_equal_full_batch_gradients(tmp_path, free_port):
    torch.multiprocessing.spawn(_worker, args=(free_port, str(tmp_path)), nprocs=WORLD, join=True)
    for r in range(WORLD):
        out = json.loads((tmp_path / f"rank{r}.json").read_text())
        assert out["rank"] == r and out["world"] == WORLD
        assert "loss.logit_scale" in out["plain"] and len(out["plain"]) == 4
        assert "loss.logit_scale" in out["self_gathering"] and len(out["self_gathering"]) == 4
        for case in ("plain", "self_gathering", "cached"):
            for name, err in out[case].items():
                assert err < 1e-5, f"rank {r} {case} {name}: relative error {err:.2e}"
        assert out["offset_labels"] == [0, 1, 2, 0, 3, 4, 5, 3, 4, 5, 3]

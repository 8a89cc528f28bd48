"""Helpers for contrastive losses under data parallelism (DDP): every rank contrasts against the global batch.

Recipe, per step on each rank (``B_r`` local pairs, ``N = sum_r B_r`` global pairs)::

    z_a = gather_with_grad(encoder(batch_a))        # (N, D) in rank order
    z_b = gather_with_grad(encoder(batch_b))        # (N, D)
    labels = gather_labels(family_ids)              # (N,) global family ids stay comparable across ranks
    loss = loss_fn(z_a, z_b, labels)                # the same global-batch loss L on every rank
    (loss * ddp_loss_scale()).backward()            # scale is 1 with this gather, see below

Gradient bookkeeping: :func:`gather_with_grad`'s backward *sums* the gradient every rank computes for this
rank's rows (an all-reduce of the ``(N, D)`` gradient), like ``torch.distributed.nn.functional.all_gather`` and
Lightning's ``all_gather(sync_grads=True)``. Since every rank computes the same ``L``, rank ``r`` receives
``W * dL/dz_r``; DDP averages parameter gradients over the ``W`` ranks, which leaves exactly
``sum_r dL/dz_r * dz_r/dtheta = dL/dtheta``, the gradient of the global-batch loss. Parameters of the loss itself
(InfoNCE's learnable temperature) get ``dL/dtau`` on every rank, also exact after averaging. Hence
``ddp_loss_scale() == 1``. (The cheaper open_clip gather, which keeps only the local slice's gradient, would
need a scale of ``W`` for the encoder and then over-scale the temperature's gradient by ``W``.)

Labels: dataset-wide family ids are already comparable across ranks, just gather them. Ids that are only
meaningful within a rank's batch (e.g. ``0 .. F-1`` slots of a per-rank sampler) must first go through
:func:`offset_labels`, so rows of different ranks never share a label by accident. Ranks may hold different
numbers of rows (token-budget batches): the gathers pad to the largest and trim. Every rank must call the
gathers (and the backward through them) the same number of times.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["is_distributed", "rank", "world_size", "gather_with_grad", "gather_labels", "offset_labels",
           "ddp_loss_scale"]


def is_distributed() -> bool:
    """Whether a default process group is initialised (``torch.distributed`` available and set up)."""
    return dist.is_available() and dist.is_initialized()


def rank(group=None) -> int:
    """This process's rank in ``group`` (0 when not distributed)."""
    return dist.get_rank(group) if is_distributed() else 0


def world_size(group=None) -> int:
    """Number of processes in ``group`` (1 when not distributed)."""
    return dist.get_world_size(group) if is_distributed() else 1


def _all_gather_rows(x: torch.Tensor, group=None) -> list[torch.Tensor]:
    """Every rank's ``x`` (same trailing shape, any number of rows), in rank order, without gradient."""
    w = world_size(group)
    n = torch.tensor([x.shape[0]], device=x.device, dtype=torch.long)
    sizes = [torch.zeros_like(n) for _ in range(w)]
    dist.all_gather(sizes, n, group=group)
    sizes = [int(s) for s in sizes]
    padded = x.new_zeros((max(sizes), *x.shape[1:]))  # (max_r B_r, ...)
    padded[: x.shape[0]] = x
    out = [torch.empty_like(padded) for _ in range(w)]
    dist.all_gather(out, padded, group=group)
    return [o[:s] for o, s in zip(out, sizes)]


class _GatherRows(torch.autograd.Function):
    """All-gather of rows whose backward sums every rank's gradient for this rank's rows."""

    @staticmethod
    def forward(ctx, z, group):
        parts = _all_gather_rows(z, group)
        r = rank(group)
        ctx.group = group
        ctx.start = sum(p.shape[0] for p in parts[:r])
        ctx.stop = ctx.start + z.shape[0]
        return torch.cat(parts)  # (N, D)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()  # (N, D)
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad[ctx.start : ctx.stop], None


def gather_with_grad(z: torch.Tensor, group=None) -> torch.Tensor:
    """Concatenate every rank's ``(B_r, D)`` rows into ``(N, D)`` in rank order, differentiably: the gradient
    reaching ``z`` is the sum over ranks of their gradients for these rows. Returns ``z`` when not distributed.
    """
    if world_size(group) == 1:
        return z
    return _GatherRows.apply(z, group)


def gather_labels(labels: torch.Tensor, group=None) -> torch.Tensor:
    """Concatenate every rank's ``(B_r,)`` labels into ``(N,)`` in the order of :func:`gather_with_grad`."""
    if world_size(group) == 1:
        return labels
    return torch.cat(_all_gather_rows(labels, group))


def offset_labels(labels: torch.Tensor, rank: int, num_families: int) -> torch.Tensor:
    """Make batch-local ids ``0 .. num_families - 1`` globally distinct: ``labels + rank * num_families``."""
    if num_families < 1:
        raise ValueError(f"num_families must be >= 1, got {num_families}")
    if rank < 0:
        raise ValueError(f"rank must be >= 0, got {rank}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_families):
        raise ValueError(f"labels must lie in [0, {num_families}), got range "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    return labels + rank * num_families


def ddp_loss_scale() -> float:
    """Factor for a loss over :func:`gather_with_grad` embeddings so that DDP's gradient *averaging* yields the
    gradient of the global-batch loss. It is 1 for any world size: the gather's backward already sums the
    ranks' gradients, which cancels the averaging (module docstring). Kept as a function so the contract is
    named, tested and found where the loss is scaled.
    """
    return 1.0

"""All-gather across data-parallel ranks, with gradient: every rank sees the global batch of embeddings.

Here, below the losses, so that :class:`~phylocl.losses.InfoNCE` / :class:`~phylocl.losses.FlatNCE` can gather
themselves (``gather_distributed=True``, as lightly's losses do) without importing the training package; the
gradient bookkeeping and the training recipe are in :mod:`phylocl.training.distributed`, which re-exports these.

:func:`gather_with_grad`'s backward *sums* the gradient every rank computes for this rank's rows (an all-reduce),
like ``torch.distributed.nn.functional.all_gather`` and Lightning's ``all_gather(sync_grads=True)``. Ranks may
hold different numbers of rows: the gathers pad to the largest and trim.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["is_distributed", "rank", "world_size", "gather_with_grad", "gather_labels"]


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

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

The gathers live in :mod:`phylocl.losses.gather` (so the losses can gather without importing training) and are
re-exported here.
"""

from __future__ import annotations

import torch

from phylocl.losses.gather import gather_labels, gather_with_grad, is_distributed, rank, world_size

__all__ = ["is_distributed", "rank", "world_size", "gather_with_grad", "gather_labels", "offset_labels",
           "ddp_loss_scale"]


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

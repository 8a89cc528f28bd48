"""FlatNCE (Chen et al. 2021, arXiv:2107.01152): InfoNCE's gradient without its vanishing factor.

With ``v_i = logsumexp_{j in N(i)} (s_ij - s_ii)`` over the negatives only (see :mod:`phylocl.losses.logits`)::

    loss = mean_i exp(v_i - stopgrad(v_i))      # value is exactly 1 (0 if no anchor has a negative)
    d loss = mean_i d v_i                        # the gradient of mean_i log sum_{j in N(i)} exp(s_ij - s_ii)

InfoNCE's gradient is ``sigmoid(v_i) * d v_i``, which vanishes once the positive dominates (small batches,
easy negatives); FlatNCE keeps the full ``d v_i``. The positive is deliberately *not* inside the
log-sum-exp: adding it would turn ``v_i`` into InfoNCE's ``softplus(v_i)``. The InfoNCE value is reported
in ``last_stats["infonce"]`` for monitoring, since FlatNCE's own value carries no information.
"""

from __future__ import annotations

import torch

from phylocl.losses.logits import ContrastiveLoss

__all__ = ["FlatNCE"]


class FlatNCE(ContrastiveLoss):
    """FlatNCE over a batch of positive pairs.

    Args:
        temperature: similarities are divided by it (``scale = 1 / temperature``); > 0.
        symmetric: average the a→b and b→a directions (same negatives as :class:`~phylocl.InfoNCE`).
        chunk_size: compute the logits this many anchor rows at a time (identical value and gradient).
        normalize: L2-normalise both views first (cosine similarities whatever the encoder; default).
        gather_distributed: all-gather both views and the labels from every DDP rank, with gradient (global
            negatives, as lightly's losses); nothing happens without a process group.

    Called as ``loss(z_a, z_b, labels=None)`` with ``(B, D)`` embeddings and optional ``(B,)`` family ids;
    returns a scalar whose value is 1 and whose gradient is FlatNCE's (the InfoNCE value, in nats, is in
    ``last_stats["infonce"]``). A batch without any negative (``B = 1``, or all rows of one family) gives ``0``
    with zero gradients (:meth:`~phylocl.losses.logits.ContrastiveLoss.forward` lists the accepted inputs).
    """

    def __init__(self, *, temperature: float = 0.1, symmetric: bool = True, chunk_size: int | None = None,
                 normalize: bool = True, gather_distributed: bool = False) -> None:
        super().__init__(temperature=temperature, symmetric=symmetric, chunk_size=chunk_size, normalize=normalize,
                         gather_distributed=gather_distributed)

    def row_loss(self, v: torch.Tensor) -> torch.Tensor:
        return torch.exp(v - v.detach())

    def extra_repr(self) -> str:
        return (f"temperature={self.temperature:g}, symmetric={self.symmetric}, chunk_size={self.chunk_size}, "
                f"normalize={self.normalize}, gather_distributed={self.gather_distributed}")

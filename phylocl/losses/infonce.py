"""InfoNCE (CLIP-style, cross-view negatives), optionally with a learnable temperature.

For anchor ``a_i`` with positive ``b_i`` and negatives ``N(i)`` (see :mod:`phylocl.losses.logits`)::

    loss_i = -log( exp(s_ii) / (exp(s_ii) + sum_{j in N(i)} exp(s_ij)) ) = softplus(v_i)

computed from ``v_i = logsumexp_{j in N(i)} (s_ij - s_ii)``, so it is stable at any temperature.
"""

from __future__ import annotations

import math

import torch

from phylocl.arguments import positive_real
from phylocl.losses.logits import ContrastiveLoss, check_flag

__all__ = ["InfoNCE"]


class InfoNCE(ContrastiveLoss):
    """InfoNCE over a batch of positive pairs.

    Args:
        temperature: similarities are divided by it (``scale = 1 / temperature``); > 0. With
            ``learn_temperature`` it is the initial value.
        learn_temperature: learn the temperature as open_clip does: a parameter ``logit_scale =
            log(1 / temperature)``, used as ``exp(min(logit_scale, log(max_scale)))``. Beyond the clamp its
            gradient is zero, so the effective temperature never drops below ``1 / max_scale``.
        symmetric: average the a→b and b→a directions (the CLIP loss).
        max_scale: upper bound on ``1 / temperature`` for the learnable temperature.
        chunk_size: compute the logits this many anchor rows at a time; identical value and gradient, peak
            memory ``O(chunk_size * B)`` instead of ``O(B * B)``.
        normalize: L2-normalise both views first, so similarities are cosines whatever the encoder (default).
        gather_distributed: all-gather both views and the labels from every DDP rank, with gradient, so the
            negatives are the global batch's (as lightly's losses); nothing happens without a process group.

    Called as ``loss(z_a, z_b, labels=None)`` with ``(B, D)`` embeddings and optional ``(B,)`` family ids;
    returns a scalar in nats (a mean over anchors of ``-log p(positive)``; ``log(B)`` without labels when
    every similarity is equal). A batch without any negative (``B = 1``, or all rows of one family) gives ``0``
    with zero gradients, and anchors without a negative are left out of the mean
    (:meth:`~phylocl.losses.logits.ContrastiveLoss.forward` lists the accepted inputs). Example::

        loss = InfoNCE(temperature=0.07)
        value = loss(encoder(view_a), encoder(view_b), labels=family_ids)
    """

    def __init__(self, *, temperature: float = 0.1, learn_temperature: bool = False, symmetric: bool = True,
                 max_scale: float = 100.0, chunk_size: int | None = None, normalize: bool = True,
                 gather_distributed: bool = False) -> None:
        super().__init__(temperature=temperature, symmetric=symmetric, chunk_size=chunk_size, normalize=normalize,
                         gather_distributed=gather_distributed)
        self.max_scale = positive_real("max_scale", max_scale)
        self.learn_temperature = check_flag("learn_temperature", learn_temperature)
        if self.learn_temperature:
            if 1.0 / temperature > max_scale:
                raise ValueError(f"initial 1 / temperature = {1.0 / temperature:g} exceeds max_scale = "
                                 f"{max_scale:g}; raise max_scale or the temperature")
            self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def scale(self):
        if not self.learn_temperature:
            return super().scale()
        return self.logit_scale.clamp(max=math.log(self.max_scale)).exp()

    def row_loss(self, v: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(v)  # log(1 + sum_neg exp(s_ij - s_ii))

    def extra_repr(self) -> str:
        return (f"temperature={self.temperature:g}, learn_temperature={self.learn_temperature}, "
                f"symmetric={self.symmetric}, max_scale={self.max_scale:g}, chunk_size={self.chunk_size}, "
                f"normalize={self.normalize}, gather_distributed={self.gather_distributed}")
